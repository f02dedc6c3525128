/**
 * budget_guard runs before every paid stage. It halts the run when a limit is already crossed or
 * when the ledger refused a call (the in-call gate); the reason names the limit and the figures.
 */
import type { BriefingState, BriefingUpdate } from "../state";

export interface BudgetView {
  /** Set once the ledger refused a call because it would break a budget. */
  readonly haltReason: string | null;
  spent(): { tokens: number; usd: string };
  /** Why no further call fits a budget shared with other runs (a day, a month), or null. */
  exhausted?(): Promise<string | null>;
}

export interface RunLimits {
  maxTokens?: number;
  maxUsd?: number;
}

/** Pure: the reason to halt, or null. USD compared as exact decimals (strings). */
export function budgetHaltReason(spent: { tokens: number; usd: string }, limits: RunLimits): string | null {
  if (limits.maxTokens !== undefined && spent.tokens >= limits.maxTokens) {
    return `run max tokens ${limits.maxTokens} reached: ${spent.tokens} tokens spent`;
  }
  // toFixed, not String: String(1e-7) is "1e-7", which is no decimal.
  if (limits.maxUsd !== undefined && compareDecimal(spent.usd, limits.maxUsd.toFixed(12)) >= 0) {
    return `run max USD ${limits.maxUsd} reached: $${spent.usd} spent`;
  }
  return null;
}

export async function budgetGuard(state: BriefingState, ledger: BudgetView, limits: RunLimits): Promise<BriefingUpdate> {
  const reason = state.haltReason ?? ledger.haltReason ?? budgetHaltReason(ledger.spent(), limits) ?? (await ledger.exhausted?.()) ?? null;
  return { haltReason: reason };
}

/** Compares two non-negative decimal strings without floating point. */
export function compareDecimal(a: string, b: string): number {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const width = Math.max(af.length, bf.length);
  const x = BigInt(ai + af.padEnd(width, "0"));
  const y = BigInt(bi + bf.padEnd(width, "0"));
  return x === y ? 0 : x < y ? -1 : 1;
}
