/** Each budget's use and what is left, read from llm_calls (the truth every counter settles to). */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { rows } from "../db/migrate";
import { calendarPeriod, normaliseLimit, type BudgetLimits, type ScopeLimits } from "../ledger/budget";
import { parseDecimal } from "../ledger/decimal";
import { COST_SCALE, formatUsd } from "../ledger/pricing";

export interface BudgetUse {
  scope: string;
  tokens: number;
  usd: string;
  max_tokens: number | null;
  max_usd: string | null;
  tokens_left: number | null;
  usd_left: string | null;
  /** The larger share used of the limits set, in percent; null with no limit. */
  used_pct: number | null;
}

function use(scope: string, tokens: number, usdText: string, limits: ScopeLimits | undefined): BudgetUse {
  const units = parseDecimal(usdText, COST_SCALE, "half-up");
  const maxUnits = normaliseLimit({ maxUsd: limits?.maxUsd }, scope)?.usdUnits ?? null;
  const shares: number[] = [];
  if (limits?.maxTokens !== undefined) shares.push((tokens / limits.maxTokens) * 100);
  if (maxUnits !== null && maxUnits > 0n) shares.push(Number((units * 10000n) / maxUnits) / 100);
  return {
    scope,
    tokens,
    usd: formatUsd(units),
    max_tokens: limits?.maxTokens ?? null,
    max_usd: maxUnits === null ? null : formatUsd(maxUnits),
    tokens_left: limits?.maxTokens === undefined ? null : Math.max(0, limits.maxTokens - tokens),
    usd_left: maxUnits === null ? null : formatUsd(maxUnits > units ? maxUnits - units : 0n),
    used_pct: shares.length ? Math.round(Math.max(...shares) * 10) / 10 : null,
  };
}

export async function budgetUse(db: Database, options: { workflow: string; runId: string | null; limits: BudgetLimits; now?: Date }): Promise<BudgetUse[]> {
  const tz = options.limits.timeZone ?? "UTC";
  const { day, month } = calendarPeriod(options.now ?? new Date(), tz);
  const out: BudgetUse[] = [];
  const sums = (r: Record<string, unknown> | undefined) => [Number(r?.tokens ?? 0), String(r?.usd ?? "0")] as const;
  if (options.runId) {
    const [run] = rows(await db.execute(sql`select coalesce(sum(total_tokens), 0) as tokens, coalesce(sum(cost_usd), 0) as usd from llm_calls where run_id = ${options.runId}`));
    out.push(use(`run ${options.runId.slice(0, 8)}`, ...sums(run), options.limits));
    const nodes = rows(
      await db.execute(sql`select node, coalesce(sum(total_tokens), 0) as tokens, coalesce(sum(cost_usd), 0) as usd from llm_calls where run_id = ${options.runId} group by node order by node`),
    );
    for (const n of nodes) out.push(use(`  node ${String(n.node)}`, ...sums(n), options.limits.node));
  }
  const period = (fmt: string, value: string) =>
    db.execute(sql`select coalesce(sum(c.total_tokens), 0) as tokens, coalesce(sum(c.cost_usd), 0) as usd from llm_calls c join runs r on r.id = c.run_id
      where r.workflow = ${options.workflow} and to_char(c.started_at at time zone ${tz}, ${fmt}) = ${value}`);
  out.push(use(`day ${day}`, ...sums(rows(await period("YYYY-MM-DD", day))[0]), options.limits.day));
  out.push(use(`month ${month}`, ...sums(rows(await period("YYYY-MM", month))[0]), options.limits.month));
  return out;
}

/** The latest alerts with how their delivery went. */
export async function recentAlerts(db: Database, limit = 5): Promise<{ id: number; created_at: string; rule: string; node: string | null; delivery_status: string; message: string }[]> {
  return rows(await db.execute(sql`select id, created_at, rule, node, delivery_status, message from alerts order by id desc limit ${limit}`)).map((r) => ({
    id: Number(r.id),
    created_at: new Date(r.created_at as string).toISOString(),
    rule: String(r.rule),
    node: r.node === null ? null : String(r.node),
    delivery_status: String(r.delivery_status),
    message: String(r.message),
  }));
}
