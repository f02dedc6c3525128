/**
 * `retryOn` for LangGraph RetryPolicy. LangGraph's default decides by `error.status`, but
 * LangChain wraps some permanent errors without one (ContextOverflowError keeps the 400 only as
 * its `cause`), so the default retries them (case C07). This one reads the whole cause chain and
 * refuses everything that cannot succeed on a second try.
 */
import { getRetryable } from "@langchain/core/errors";
import { isBudgetExceeded } from "./budget";
import { classifyError } from "./errors";

/** Statuses that no retry can fix: 400–409 (a bad request, auth, not found, conflict), 413, 422. */
const PERMANENT_STATUS = (status: number) => (status >= 400 && status <= 409) || status === 413 || status === 422;

export function retryOn(err: unknown): boolean {
  if (isBudgetExceeded(err)) return false;
  const name = err && typeof err === "object" ? String((err as { name?: unknown }).name ?? "") : "";
  if (name === "GraphValueError" || name === "GraphRecursionError") return false;
  const { status, httpStatus } = classifyError(err);
  if (status === "context_overflow" || status === "quota" || status === "aborted" || status === "budget_refused") return false;
  if (httpStatus !== null && PERMANENT_STATUS(httpStatus)) return false;
  if ((err as { code?: unknown })?.code === "ECONNABORTED") return false;
  // LangChain stamps errors it knows to be permanent (abort, no-retry statuses, quota).
  if (getRetryable(err) === false) return false;
  return true;
}
