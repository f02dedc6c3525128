/** Counts in words, and the one progress line each stage logs, e.g. "summarize: 42 articles, 42 calls". */

/** "1 call", "2 calls". */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/** "6 articles" when all were done, else "2 of 6 articles". */
export function countOf(done: number, total: number, noun: string): string {
  return done === total ? count(total, noun) : `${done} of ${count(total, noun)}`;
}

export function progressLine(stage: string, parts: string[], haltReason: string | null = null): string {
  return `${stage}: ${parts.join(", ")}${haltReason ? `; halted: ${haltReason}` : ""}`;
}
