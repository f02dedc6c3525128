/** Thrown (by the ledger's handler, before a call is sent) when a call would break a budget. */
export class BudgetExceededError extends Error {
  override name = "BudgetExceededError";
  constructor(
    /** A reason a person can read, naming the limit and the figures, e.g. "run exceeded max tokens 3000 (spent 2950, next call needs ~420)". */
    readonly reason: string,
  ) {
    super(reason);
  }
}

export function isBudgetExceeded(err: unknown): err is BudgetExceededError {
  return err instanceof Error && err.name === "BudgetExceededError";
}
