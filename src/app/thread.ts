/**
 * Running a checkpointed graph as a thread: a thread id is required before anything starts
 * (case C22: without one the saver fails only after paid work was done), a finished thread is
 * not run again, and an unfinished one (halted, failed, killed) continues from where it stopped.
 */
import type { RunnableConfig } from "@langchain/core/runnables";

export class ThreadIdRequiredError extends Error {
  override name = "ThreadIdRequiredError";
  constructor() {
    super("thread_id required: pass configurable.thread_id so the run can be checkpointed and resumed");
  }
}

/** The part of a compiled LangGraph graph this needs. */
export interface ThreadGraph<S> {
  getState(config: RunnableConfig): Promise<{ values: unknown; next: readonly string[]; config: RunnableConfig }>;
  invoke(input: unknown, config: RunnableConfig): Promise<unknown>;
}

export type ThreadOutcome = "started" | "resumed" | "already_finished";

export async function runThread<S>(
  graph: ThreadGraph<S>,
  input: S,
  config: RunnableConfig,
): Promise<{ state: S; outcome: ThreadOutcome }> {
  const threadId = config.configurable?.thread_id;
  if (typeof threadId !== "string" || threadId.trim() === "") throw new ThreadIdRequiredError();
  const snapshot = await graph.getState(config);
  const hasCheckpoint = Boolean(snapshot.config?.configurable?.checkpoint_id);
  if (hasCheckpoint && snapshot.next.length === 0) {
    return { state: snapshot.values as S, outcome: "already_finished" };
  }
  if (hasCheckpoint) {
    return { state: (await graph.invoke(null, config)) as S, outcome: "resumed" };
  }
  return { state: (await graph.invoke(input, config)) as S, outcome: "started" };
}
