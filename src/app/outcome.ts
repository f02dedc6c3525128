/** How a graph's error ends a run: a budget or a step limit halts it, anything else fails it. */
import { isBudgetExceeded } from "../ledger/budget";

export type RunStatus = "succeeded" | "halted" | "failed";

export interface RunOutcome {
  status: RunStatus;
  haltReason: string | null;
  error: string | null;
}

export function outcomeOfError(err: unknown): RunOutcome {
  if (isBudgetExceeded(err)) return { status: "halted", haltReason: err.reason, error: null };
  const code = (err as { lc_error_code?: string })?.lc_error_code;
  if (code === "GRAPH_RECURSION_LIMIT") {
    return { status: "halted", haltReason: `recursion_limit: ${(err as Error).message.split("\n")[0]}`, error: null };
  }
  return { status: "failed", haltReason: null, error: describeError(err) };
}

/** One line: the name, LangChain's error code, and the message without its troubleshooting footer. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { lc_error_code?: string }).lc_error_code;
    const message = err.message.split("\n").map((l) => l.trim()).filter((l) => l && !/^Troubleshooting URL/i.test(l)).join(" ");
    return code ? `${err.name} (${code}): ${message}` : `${err.name}: ${message}`;
  }
  return String(err);
}
