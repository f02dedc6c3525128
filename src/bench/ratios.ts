/** The benchmark's arithmetic, pure (unit-tested): medians and the four ratios. */

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Wall time over the floor that latency alone sets: `calls` calls of `latencyMs` each, at most
 * `concurrency` in flight. 1 means the pipeline adds nothing to waiting on the model.
 */
export function limitRatio(wallMs: number, calls: number, latencyMs: number, concurrency: number): number {
  if (calls === 0 || latencyMs <= 0) return Number.NaN;
  return wallMs / ((calls * latencyMs) / concurrency);
}

/** Paired runs (with, without the ledger): the median of each pair's with ÷ without. */
export function overheadRatio(pairs: readonly { withMs: number; withoutMs: number }[]): number {
  return median(pairs.map((p) => p.withMs / p.withoutMs));
}

/** a ÷ b, NaN when b is 0 (no baseline to compare with). */
export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}

/** Rounded for the report: 3 decimals. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
