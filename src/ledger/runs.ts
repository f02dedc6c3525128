/** The run row: started before the graph, finished after the ledger's final flush. */
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { runs } from "../db/schema";

export interface StartRunOptions {
  /** A run id chosen by the caller (a uuid is generated otherwise). */
  id?: string;
  workflow: string;
  /** manual | schedule | bench | test */
  trigger: string;
  /** Which model provider serves the run. */
  provider: string;
  /** The limits the run starts with, as given (recorded, not enforced here). */
  limits?: Record<string, unknown>;
}

export type FinishedRunStatus = "succeeded" | "halted" | "failed";

export interface FinishRunOptions {
  status: FinishedRunStatus;
  haltReason?: string | null;
  error?: string | null;
  summary?: Record<string, unknown>;
}

export async function startRun(db: Database, options: StartRunOptions): Promise<string> {
  const id = options.id ?? randomUUID();
  // JSON cannot hold undefined; drop unset limits instead of storing nulls.
  const limits = Object.fromEntries(Object.entries(options.limits ?? {}).filter(([, v]) => v !== undefined));
  await db.insert(runs).values({
    id,
    workflow: options.workflow,
    trigger: options.trigger,
    provider: options.provider,
    status: "running",
    limits,
  });
  return id;
}

export async function finishRun(db: Database, runId: string, options: FinishRunOptions): Promise<void> {
  const updated = await db
    .update(runs)
    .set({
      status: options.status,
      haltReason: options.haltReason ?? null,
      error: options.error ?? null,
      ...(options.summary ? { summary: options.summary } : {}),
      finishedAt: new Date(),
    })
    .where(eq(runs.id, runId))
    .returning({ id: runs.id });
  if (updated.length === 0) throw new Error(`finishRun: no run ${runId}`);
}

/**
 * Opens a finished run again to continue it (a halted or failed run resumed): status running,
 * no halt reason or error, the new limits. Its recorded calls stay and keep counting.
 */
export async function reopenRun(db: Database, runId: string, options: { limits: Record<string, unknown> }): Promise<void> {
  await db
    .update(runs)
    .set({ status: "running", haltReason: null, error: null, finishedAt: null, limits: options.limits })
    .where(eq(runs.id, runId));
}
