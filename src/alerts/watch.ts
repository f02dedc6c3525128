/**
 * Turns what the ledger sees into alerts: budget events as they happen, and at a run's end the
 * spike rule (each node against its own history) and the forecast. Works for any workflow.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { rows } from "../db/migrate";
import { calendarPeriod, type BudgetEvent, type BudgetLimits } from "../ledger";
import { parseDecimal } from "../ledger/decimal";
import { COST_SCALE, formatUsd } from "../ledger/pricing";
import { fireTimesBetween } from "../scheduler/cron-time";
import { addDays, daysLeftInMonth, findSpikes, forecast, type Forecast, type SpikeRule } from "./rules";
import type { Alert } from "./types";

export function budgetAlert(event: BudgetEvent, workflow: string, runId: string): Alert {
  const soft = event.type === "soft_limit";
  const { scope } = event;
  return {
    workflow,
    runId,
    node: scope.node ?? event.node,
    rule: event.type,
    scope: scope.kind,
    severity: soft ? "warning" : "critical",
    message: soft ? `run ${runId}: ${event.message}` : `run ${runId} halted before a ${event.node} call: ${event.message}`,
    figures: {
      scope: scope.key,
      ...(scope.limit?.tokens !== undefined ? { limit_tokens: scope.limit.tokens } : {}),
      ...(scope.limit?.usdText !== undefined ? { limit_usd: scope.limit.usdText } : {}),
      spent_tokens: event.spentTokens,
      spent_usd: event.spentUsd,
      reserved_tokens: event.reservedTokens,
      next_call_tokens: event.needTokens,
    },
    // A day's soft limit is told once per cooldown however many runs pass it; every run that a
    // limit halts is told (an operator must hear of each stopped run).
    dedupeKey: soft ? `${event.type}:${scope.key}` : `${event.type}:${scope.key}:${runId}`,
  };
}

const num = (v: unknown) => Number(v ?? 0);
/** USD from SQL as nano-dollars (a Number stays exact up to $9M): forecasts are estimates, not ledger sums. */
const nanoUsd = (v: unknown) => Number(parseDecimal(String(v ?? "0"), COST_SCALE, "half-up") / 1000n);
const usdFromNano = (n: number) => formatUsd(BigInt(Math.round(n)) * 1000n, 6);

/** Each node's tokens in the run, and in its own last `rule.runs` finished runs of the workflow (newest first). */
export async function nodeHistory(db: Database, workflow: string, runId: string, runs: number): Promise<{ current: Map<string, number>; history: Map<string, number[]> }> {
  const current = new Map<string, number>();
  for (const r of rows(await db.execute(sql`select node, coalesce(sum(total_tokens), 0) as tokens from llm_calls where run_id = ${runId} group by node`))) {
    current.set(String(r.node), num(r.tokens));
  }
  const history = new Map<string, number[]>();
  const past = rows(
    await db.execute(sql`select node, tokens from (
        select c.node, r.started_at, coalesce(sum(c.total_tokens), 0) as tokens,
          row_number() over (partition by c.node order by r.started_at desc) as rn
        from llm_calls c join runs r on r.id = c.run_id
        where r.workflow = ${workflow} and r.id <> ${runId} and r.status in ('succeeded', 'halted')
          and r.started_at <= (select started_at from runs where id = ${runId})
        group by c.node, c.run_id, r.started_at
      ) t where rn <= ${runs} order by node, started_at desc`),
  );
  for (const r of past) {
    const list = history.get(String(r.node)) ?? [];
    list.push(num(r.tokens));
    history.set(String(r.node), list);
  }
  return { current, history };
}

/** The spike rule over a finished run: one alert per node that used far more than its usual. */
export async function spikeAlerts(db: Database, workflow: string, runId: string, rule: SpikeRule): Promise<Alert[]> {
  const { current, history } = await nodeHistory(db, workflow, runId, rule.runs);
  return findSpikes(current, history, rule).map((s) => ({
    workflow,
    runId,
    node: s.node,
    rule: "spike",
    scope: "node",
    severity: "warning",
    message:
      `run ${runId}: node ${s.node} used ${s.tokens} tokens, ${s.ratio}x its median of ${s.median} over its last ${s.historyRuns} runs ` +
      `(rule: more than ${rule.factor}x the median of the last ${rule.runs} runs)`,
    figures: { tokens: s.tokens, median_tokens: s.median, ratio: s.ratio, history_runs: s.historyRuns, factor: rule.factor, window_runs: rule.runs },
    dedupeKey: `spike:${workflow}:${s.node}`,
  }));
}

export interface SpendForecast {
  day: string;
  month: string;
  timeZone: string;
  runsToday: number;
  scheduledRunsLeftToday: number;
  tokens: Forecast & { spentToday: number; spentMonth: number; perRun: number };
  usd: { spentToday: string; spentMonth: string; perRun: string; today: string; month: string; perDay: string; dayLimitCrossedAt: Date | null; monthLimitCrossedOn: string | null };
}

/** Today's and this month's spend so far and forecast, with when the day and month limits would be crossed. */
export async function spendForecast(
  db: Database,
  options: { workflow: string; timeZone: string; cron?: string; limits: BudgetLimits; now?: Date },
): Promise<SpendForecast> {
  const now = options.now ?? new Date();
  const tz = options.timeZone;
  const { day, month } = calendarPeriod(now, tz);
  const since = addDays(day, -7);
  const local = sql`to_char(c.started_at at time zone ${tz}, 'YYYY-MM-DD')`;
  const daily = rows(
    await db.execute(sql`select ${local} as day, coalesce(sum(c.total_tokens), 0) as tokens, coalesce(sum(c.cost_usd), 0) as usd,
        count(distinct c.run_id) as runs
      from llm_calls c join runs r on r.id = c.run_id
      where r.workflow = ${options.workflow} and (${local} >= ${since} or ${local} like ${`${month}-%`})
      group by 1`),
  );
  const byDay = new Map(daily.map((r) => [String(r.day), r]));
  const today = byDay.get(day);
  const monthRows = daily.filter((r) => String(r.day).startsWith(`${month}-`));
  const recent = Array.from({ length: 7 }, (_, i) => byDay.get(addDays(day, i - 7)));
  const perRunRows = rows(
    await db.execute(sql`select coalesce(avg(t.tokens), 0) as tokens, coalesce(avg(t.usd), 0) as usd from (
        select r.id, coalesce(sum(c.total_tokens), 0) as tokens, coalesce(sum(c.cost_usd), 0) as usd
        from runs r left join llm_calls c on c.run_id = r.id
        where r.workflow = ${options.workflow} and r.status in ('succeeded', 'halted')
        group by r.id, r.started_at order by r.started_at desc limit 7) t`),
  )[0];
  let firesLeftToday: Date[] = [];
  if (options.cron) {
    firesLeftToday = fireTimesBetween(options.cron, tz, now, now.getTime() + 24 * 3600_000).filter((d) => calendarPeriod(d, tz).day === day);
  }
  const left = daysLeftInMonth(day);
  const tokens = forecast({
    today: num(today?.tokens),
    month: monthRows.reduce((a, r) => a + num(r.tokens), 0),
    perRun: Math.round(num(perRunRows?.tokens)),
    firesLeftToday,
    recentDays: recent.map((r) => num(r?.tokens)),
    daysLeftInMonth: left,
    todayDate: day,
    dayLimit: options.limits.day?.maxTokens,
    monthLimit: options.limits.month?.maxTokens,
  });
  const usdLimit = (v: number | string | undefined) => (v === undefined ? undefined : nanoUsd(typeof v === "number" ? v.toFixed(12) : v));
  const usdIn = {
    today: nanoUsd(today?.usd),
    month: monthRows.reduce((a, r) => a + nanoUsd(r.usd), 0),
    perRun: nanoUsd(perRunRows?.usd ?? 0),
  };
  const usd = forecast({
    ...usdIn,
    firesLeftToday,
    recentDays: recent.map((r) => nanoUsd(r?.usd)),
    daysLeftInMonth: left,
    todayDate: day,
    dayLimit: usdLimit(options.limits.day?.maxUsd),
    monthLimit: usdLimit(options.limits.month?.maxUsd),
  });
  return {
    day,
    month,
    timeZone: tz,
    runsToday: num(today?.runs),
    scheduledRunsLeftToday: firesLeftToday.length,
    tokens: { ...tokens, spentToday: num(today?.tokens), spentMonth: monthRows.reduce((a, r) => a + num(r.tokens), 0), perRun: Math.round(num(perRunRows?.tokens)) },
    usd: {
      spentToday: usdFromNano(usdIn.today),
      spentMonth: usdFromNano(usdIn.month),
      perRun: usdFromNano(usdIn.perRun),
      today: usdFromNano(usd.today),
      month: usdFromNano(usd.month),
      perDay: usdFromNano(usd.perDay),
      dayLimitCrossedAt: usd.dayLimitCrossedAt,
      monthLimitCrossedOn: usd.monthLimitCrossedOn,
    },
  };
}

/** Alerts for a forecast that crosses a day or month limit. */
export function forecastAlerts(f: SpendForecast, workflow: string, runId: string | null, limits: BudgetLimits): Alert[] {
  const out: Alert[] = [];
  const crossing = (what: "day" | "month", tokensAt: string | null, usdAt: string | null) => {
    if (!tokensAt && !usdAt) return;
    const parts = [];
    if (tokensAt) parts.push(`${what === "day" ? f.tokens.today : f.tokens.month} tokens forecast against a limit of ${limits[what]?.maxTokens} (crossed ${tokensAt})`);
    if (usdAt) parts.push(`$${what === "day" ? f.usd.today : f.usd.month} forecast against a limit of $${limits[what]?.maxUsd} (crossed ${usdAt})`);
    out.push({
      workflow,
      runId,
      node: null,
      rule: "forecast",
      scope: what,
      severity: "warning",
      message: `${workflow} ${what === "day" ? f.day : f.month} (${f.timeZone}): ${parts.join("; ")}`,
      figures: { forecast_tokens: what === "day" ? f.tokens.today : f.tokens.month, forecast_usd: what === "day" ? f.usd.today : f.usd.month, tokens_crossed: tokensAt, usd_crossed: usdAt },
      dedupeKey: `forecast:${workflow}:${what}:${what === "day" ? f.day : f.month}`,
    });
  };
  crossing("day", f.tokens.dayLimitCrossedAt?.toISOString() ?? null, f.usd.dayLimitCrossedAt?.toISOString() ?? null);
  crossing("month", f.tokens.monthLimitCrossedOn, f.usd.monthLimitCrossedOn);
  return out;
}
