/**
 * Reads the cost views. Aggregates come back as numbers on PGlite and strings on postgres.js, so
 * every column is mapped explicitly: counts to numbers, money kept as exact decimal strings.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { rows } from "../db/migrate";

export interface NodeCostRow {
  node: string;
  node_attempts: number;
  calls: number;
  attempts: number;
  retries: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  retry_tokens: number;
  /** null when none of the node's calls could be priced */
  cost_usd: string | null;
  retry_cost_usd: string;
  unpriced_calls: number;
  missing_usage_calls: number;
  latency_ms_total: number;
  latency_ms_p95: number | null;
  cache_hits: number;
  /** Tokens the cache hits did not pay for, and what they would cost today (null: unpriced model). */
  avoided_tokens: number;
  avoided_cost_usd: string | null;
}

/** What the response cache saved (node_costs / run_costs / daily_costs columns). */
export interface CacheSavings {
  cache_hits: number;
  avoided_tokens: number;
  avoided_cost_usd: string | null;
}

/** Prompt size of one node in one run (node_prompt_sizes). */
export interface PromptSizeRow {
  node: string;
  calls: number;
  avg_input_tokens: number;
  max_input_tokens: number;
  /** The node's average in the workflow's previous run; null for its first. */
  prev_avg_input_tokens: number | null;
}

export interface RunCostRow {
  run_id: string;
  workflow: string;
  trigger: string;
  provider: string;
  status: string;
  halt_reason: string | null;
  started_at: string;
  finished_at: string | null;
  /** Model calls (an HTTP retry is an attempt of the same call). */
  calls: number;
  attempts: number;
  retries: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: string | null;
  retry_tokens: number;
  retry_cost_usd: string;
  unpriced_calls: number;
  missing_usage_calls: number;
  cache_hits: number;
  avoided_tokens: number;
  avoided_cost_usd: string | null;
}

export interface DailyCostRow {
  day: string;
  workflow: string;
  runs: number;
  calls: number;
  total_tokens: number;
  cost_usd: string | null;
  unpriced_calls: number;
  cache_hits: number;
  avoided_tokens: number;
  avoided_cost_usd: string | null;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const money = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as string).toISOString());
/** The call and token counts node_costs and run_costs share. */
const callCounts = (r: Record<string, unknown>) => ({
  calls: num(r.calls),
  attempts: num(r.attempts),
  retries: num(r.retries),
  input_tokens: num(r.input_tokens),
  cached_input_tokens: num(r.cached_input_tokens),
  output_tokens: num(r.output_tokens),
  reasoning_tokens: num(r.reasoning_tokens),
  total_tokens: num(r.total_tokens),
});
const savings = (r: Record<string, unknown>): CacheSavings => ({
  cache_hits: num(r.cache_hits),
  avoided_tokens: num(r.avoided_tokens),
  avoided_cost_usd: money(r.avoided_cost_usd),
});

/** Graph order first, so the table reads like the flow. */
const NODE_ORDER = ["collect", "budget_guard", "summarize", "embed", "cluster", "generate_social", "validate", "publish"];

/** A per-node view's rows of one run, in graph order. */
async function perNode<T extends { node: string }>(db: Database, view: "node_costs" | "node_prompt_sizes", runId: string, map: (r: Record<string, unknown>) => T): Promise<T[]> {
  const result = await db.execute(sql`select * from ${sql.identifier(view)} where run_id = ${runId}`);
  return rows(result)
    .map(map)
    .sort((a, b) => rank(a.node) - rank(b.node) || a.node.localeCompare(b.node));
}

export function nodeCosts(db: Database, runId: string): Promise<NodeCostRow[]> {
  return perNode(db, "node_costs", runId, (r) => ({
    node: String(r.node),
    node_attempts: num(r.node_attempts),
    ...callCounts(r),
    retry_tokens: num(r.retry_tokens),
    cost_usd: money(r.cost_usd),
    retry_cost_usd: money(r.retry_cost_usd) ?? "0",
    unpriced_calls: num(r.unpriced_calls),
    missing_usage_calls: num(r.missing_usage_calls),
    latency_ms_total: num(r.latency_ms_total),
    latency_ms_p95: numOrNull(r.latency_ms_p95),
    ...savings(r),
  }));
}

function rank(node: string): number {
  const i = NODE_ORDER.indexOf(node);
  return i === -1 ? NODE_ORDER.length : i;
}

function toRunCost(r: Record<string, unknown>): RunCostRow {
  return {
    run_id: String(r.run_id),
    workflow: String(r.workflow),
    trigger: String(r.trigger),
    provider: String(r.provider),
    status: String(r.status),
    halt_reason: (r.halt_reason as string | null) ?? null,
    started_at: iso(r.started_at)!,
    finished_at: iso(r.finished_at),
    ...callCounts(r),
    cost_usd: money(r.cost_usd),
    retry_tokens: num(r.retry_tokens),
    retry_cost_usd: money(r.retry_cost_usd) ?? "0",
    unpriced_calls: num(r.unpriced_calls),
    missing_usage_calls: num(r.missing_usage_calls),
    ...savings(r),
  };
}

export async function runCost(db: Database, runId: string): Promise<RunCostRow | null> {
  const result = await db.execute(sql`select * from run_costs where run_id = ${runId}`);
  const r = rows(result)[0];
  return r ? toRunCost(r) : null;
}

/** The feed errors and warnings of a run, errors first. */
export async function feedProblems(db: Database, runId: string): Promise<{ feed: string; severity: string; code: string; message: string }[]> {
  const result = await db.execute(
    sql`select feed, severity, code, message from feed_errors where run_id = ${runId} order by severity, id`,
  );
  return rows(result).map((r) => ({ feed: String(r.feed), severity: String(r.severity), code: String(r.code), message: String(r.message) }));
}

/** The most recent run, or null when there is none. */
export async function lastRunId(db: Database, workflow?: string): Promise<string | null> {
  const result = workflow
    ? await db.execute(sql`select id from runs where workflow = ${workflow} order by started_at desc limit 1`)
    : await db.execute(sql`select id from runs order by started_at desc limit 1`);
  const r = rows(result)[0];
  return r ? String(r.id) : null;
}

/**
 * A run by its id or a unique prefix of it (the briefing file names show the first 8 characters).
 * Returns the ids that match: none, one, or several when the prefix is ambiguous.
 */
export async function matchRunIds(db: Database, idOrPrefix: string): Promise<string[]> {
  const exact = rows(await db.execute(sql`select id from runs where id = ${idOrPrefix}`));
  if (exact.length > 0) return [String(exact[0].id)];
  if (!/^[0-9a-f-]{4,}$/i.test(idOrPrefix)) return [];
  const like = `${idOrPrefix.toLowerCase().replace(/[%_]/g, "")}%`;
  return rows(await db.execute(sql`select id from runs where id like ${like} order by started_at desc limit 5`)).map((r) => String(r.id));
}

/** Totals for one calendar day (in the zone the database session uses for newsledger.tz). */
export async function dailyCosts(db: Database, day: string): Promise<DailyCostRow[]> {
  const result = await db.execute(sql`select * from daily_costs where day = ${day}::date order by workflow`);
  return rows(result).map((r) => ({
    day: typeof r.day === "string" ? r.day.slice(0, 10) : new Date(r.day as Date).toISOString().slice(0, 10),
    workflow: String(r.workflow),
    runs: num(r.runs),
    calls: num(r.calls),
    total_tokens: num(r.total_tokens),
    cost_usd: money(r.cost_usd),
    unpriced_calls: num(r.unpriced_calls),
    ...savings(r),
  }));
}

/** Average and largest prompt per node of a run, beside the previous run's average (prompt inflation). */
export function promptSizes(db: Database, runId: string): Promise<PromptSizeRow[]> {
  return perNode(db, "node_prompt_sizes", runId, (r) => ({
    node: String(r.node),
    calls: num(r.calls),
    avg_input_tokens: num(r.avg_input_tokens),
    max_input_tokens: num(r.max_input_tokens),
    prev_avg_input_tokens: numOrNull(r.prev_avg_input_tokens),
  }));
}

/** Today's date in a time zone, as YYYY-MM-DD. */
export function dayIn(timezone: string, at: Date = new Date()): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
}
