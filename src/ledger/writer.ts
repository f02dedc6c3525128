/**
 * Idempotent batch writes of node_runs and llm_calls rows. A row's id is the attempt's own id, so
 * rewriting it is an upsert. When two ledgers (two handler instances attached at different
 * levels) write the same call, the rows merge instead of doubling: the one that knows the node
 * attempt (node_run_id) keeps it, and a status never goes back from a failure to "ok" (a call
 * marked parse_error by its failed node attempt stays so).
 */
import { getTableColumns, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { llmCalls, nodeRuns, type NewLlmCall } from "../db/schema";

export type NewNodeRun = typeof nodeRuns.$inferInsert;

const BATCH = 200;

const ex = (column: string) => sql.raw(`excluded."${column}"`);
const cur = (table: string, column: string) => sql.raw(`"${table}"."${column}"`);

function excludedSet(table: Parameters<typeof getTableColumns>[0]): Record<string, SQL> {
  const set: Record<string, SQL> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    if (key === "id") continue;
    set[key] = ex(column.name);
  }
  return set;
}

const callSet: Record<string, SQL> = (() => {
  const c = (col: string) => cur("llm_calls", col);
  const set = excludedSet(llmCalls);
  const fromNodeAware = (col: string) => sql`case when ${ex("node_run_id")} is null and ${c("node_run_id")} is not null then ${c(col)} else ${ex(col)} end`;
  const keepFailure = sql`${c("status")} <> 'ok' and ${ex("status")} = 'ok'`;
  set.nodeRunId = sql`coalesce(${ex("node_run_id")}, ${c("node_run_id")})`;
  set.node = fromNodeAware("node");
  set.nodeAttempt = fromNodeAware("node_attempt");
  set.attempt = sql`greatest(${c("attempt")}, ${ex("attempt")})`;
  set.status = sql`case when ${keepFailure} then ${c("status")} else ${ex("status")} end`;
  set.error = sql`case when ${keepFailure} then ${c("error")} else coalesce(${ex("error")}, ${c("error")}) end`;
  set.httpStatus = sql`coalesce(${ex("http_status")}, ${c("http_status")})`;
  set.providerCostUsd = sql`coalesce(${ex("provider_cost_usd")}, ${c("provider_cost_usd")})`;
  return set;
})();

const nodeSet: Record<string, SQL> = (() => {
  const c = (col: string) => cur("node_runs", col);
  const set = excludedSet(nodeRuns);
  set.status = sql`case when ${ex("status")} = 'running' then ${c("status")} else ${ex("status")} end`;
  set.error = sql`coalesce(${ex("error")}, ${c("error")})`;
  set.finishedAt = sql`coalesce(${ex("finished_at")}, ${c("finished_at")})`;
  return set;
})();

export async function upsertNodeRuns(db: Database, rows: NewNodeRun[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) {
    await db
      .insert(nodeRuns)
      .values(rows.slice(i, i + BATCH))
      .onConflictDoUpdate({ target: nodeRuns.id, set: nodeSet });
  }
}

export async function upsertCalls(db: Database, rows: NewLlmCall[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) {
    await db
      .insert(llmCalls)
      .values(rows.slice(i, i + BATCH))
      .onConflictDoUpdate({ target: llmCalls.id, set: callSet });
  }
}
