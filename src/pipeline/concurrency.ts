/** Per-item work with a concurrency limit, and the clean stop a budget refusal needs. */
import { isBudgetExceeded } from "../ledger/budget";

/**
 * Runs `work` for every item, at most `limit` at a time, in item order. On the first failure it
 * starts no further item, lets the ones in flight finish (their results are already written),
 * then rejects with that first error.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failure !== undefined) throw failure.error;
}

/**
 * Runs one model call and counts it when it was made: a call the budget refused before sending
 * is not a call (the progress line must agree with the ledger).
 */
export async function countedCall<T>(call: () => Promise<T>, count: () => void): Promise<T> {
  try {
    const result = await call();
    count();
    return result;
  } catch (error) {
    if (!isBudgetExceeded(error)) count();
    throw error;
  }
}

/**
 * Awaits a stage's model work and turns a budget refusal into the halt reason; null when the work
 * completed. Any other error propagates (the node's retry policy decides).
 */
export async function haltOnBudget(work: Promise<unknown>): Promise<string | null> {
  try {
    await work;
    return null;
  } catch (error) {
    if (isBudgetExceeded(error)) return error.reason;
    throw error;
  }
}
