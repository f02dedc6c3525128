/**
 * Budgets as pure arithmetic: which scopes a call falls in (its run, its node within the run, the
 * workflow's calendar day and month), and whether a call's reservation fits each scope's limit.
 * budget-store.ts applies these decisions to counters in the database, atomically across
 * processes. Tokens are whole numbers, USD BigInt units of 10^-12 USD.
 */
import { stampRetryable } from "@langchain/core/errors";
import { formatUsd, usdToUnits } from "./pricing";

/** Thrown (by the ledger's handler, before a call is sent) when a call would break a budget. */
export class BudgetExceededError extends Error {
  override name = "BudgetExceededError";
  constructor(
    /** A reason a person can read, naming the limit and the figures, e.g. "run max tokens 3000 reached: 2950 spent, next summarize call needs ~420". */
    readonly reason: string,
  ) {
    super(reason);
    // Never retried: not by the model client's AsyncCaller, not by LangGraph (see retryOn).
    stampRetryable(this, false);
  }
}

export function isBudgetExceeded(err: unknown): err is BudgetExceededError {
  return err instanceof Error && err.name === "BudgetExceededError";
}

/** One scope's limits, as given (a USD number is read as the decimal it was written as). */
export interface ScopeLimits {
  maxTokens?: number;
  maxUsd?: number | string;
}

/**
 * Every budget a ledger enforces. The top-level maxTokens / maxUsd are the run's own; `node`
 * applies to each node of the run separately; `day` and `month` to all runs of the workflow in
 * that calendar day or month of `timeZone`, in every process that shares the database.
 */
export interface BudgetLimits extends ScopeLimits {
  node?: ScopeLimits;
  day?: ScopeLimits;
  month?: ScopeLimits;
  /** The share of a limit at which a soft-limit event fires (0 < softRatio ≤ 1; default 0.8). */
  softRatio?: number;
  /** IANA zone of the calendar days and months (default UTC). */
  timeZone?: string;
}

export interface Charge {
  tokens: number;
  /** 10^-12 USD. */
  usdUnits: bigint;
}

export type ScopeKind = "run" | "node" | "day" | "month";
export const SCOPE_KINDS: readonly ScopeKind[] = ["run", "node", "day", "month"];

export interface Limit {
  tokens?: number;
  usdUnits?: bigint;
  /** The USD limit as written, for messages. */
  usdText?: string;
}

/** One budget a call is counted against. */
export interface Scope {
  /** budget_counters.key */
  key: string;
  kind: ScopeKind;
  workflow: string;
  runId: string | null;
  node: string | null;
  /** YYYY-MM-DD or YYYY-MM for day and month scopes. */
  period: string | null;
  /** NULL: counted, not limited. */
  limit: Limit | null;
}

/** A counter's figures as read under its row lock. */
export interface CounterState {
  spentTokens: number;
  spentUnits: bigint;
  reservedTokens: number;
  reservedUnits: bigint;
}

export type Decision =
  | { verdict: "ok"; /** Limited scopes this reservation takes to or past their soft share, with their figures before it. */ overSoft: SoftCrossing[] }
  | { verdict: "wait" }
  | { verdict: "refuse"; scope: Scope; reason: string };

export interface SoftCrossing {
  scope: Scope;
  counter: CounterState;
}

export const DEFAULT_SOFT_RATIO = 0.8;

export function normaliseLimit(limits: ScopeLimits | undefined, what: string): Limit | null {
  if (!limits) return null;
  const out: Limit = {};
  if (limits.maxTokens !== undefined) {
    if (!(Number.isInteger(limits.maxTokens) && limits.maxTokens > 0)) {
      throw new RangeError(`budget ${what} maxTokens must be a positive whole number, got ${limits.maxTokens}`);
    }
    out.tokens = limits.maxTokens;
  }
  if (limits.maxUsd !== undefined) {
    // A number as a plain decimal: String(1e-7) would be "1e-7".
    out.usdText = typeof limits.maxUsd === "number" ? limits.maxUsd.toFixed(12).replace(/\.?0+$/, "") : limits.maxUsd;
    out.usdUnits = usdToUnits(out.usdText);
    if (out.usdUnits <= 0n) throw new RangeError(`budget ${what} maxUsd must be positive, got ${limits.maxUsd}`);
  }
  return out.tokens === undefined && out.usdUnits === undefined ? null : out;
}

/** Checks a whole set of limits up front, so that a bad value fails before the run starts. */
export function validateLimits(limits: BudgetLimits): void {
  normaliseLimit(limits, "run");
  for (const kind of ["node", "day", "month"] as const) normaliseLimit(limits[kind], kind);
  const ratio = limits.softRatio ?? DEFAULT_SOFT_RATIO;
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`budget softRatio must be above 0 and at most 1, got ${ratio}`);
  calendarPeriod(new Date(0), limits.timeZone ?? "UTC");
}

/** The calendar day (YYYY-MM-DD) and month (YYYY-MM) of an instant in a zone. */
export function calendarPeriod(at: Date, timeZone: string): { day: string; month: string } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(at);
  } catch {
    throw new RangeError(`budget timeZone "${timeZone}" is not an IANA time zone (e.g. UTC, Europe/Berlin)`);
  }
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return { day: `${get("year")}-${get("month")}-${get("day")}`, month: `${get("year")}-${get("month")}` };
}

/** The four scopes a call of `node` in run `runId` at `at` is counted against. */
export function scopesFor(call: { workflow: string; runId: string; node: string; at: Date }, limits: BudgetLimits): Scope[] {
  const { day, month } = calendarPeriod(call.at, limits.timeZone ?? "UTC");
  const base = { workflow: call.workflow };
  return [
    { ...base, key: `run:${call.runId}`, kind: "run", runId: call.runId, node: null, period: null, limit: normaliseLimit(limits, "run") },
    { ...base, key: `node:${call.runId}:${call.node}`, kind: "node", runId: call.runId, node: call.node, period: null, limit: normaliseLimit(limits.node, "node") },
    { ...base, key: `day:${call.workflow}:${day}`, kind: "day", runId: null, node: null, period: day, limit: normaliseLimit(limits.day, "day") },
    { ...base, key: `month:${call.workflow}:${month}`, kind: "month", runId: null, node: null, period: month, limit: normaliseLimit(limits.month, "month") },
  ];
}

/** How a scope is named in a halt reason: "run", "node validate", "day 2026-12-03 (UTC) of daily_briefing". */
export function scopeLabel(scope: Scope, timeZone = "UTC"): string {
  switch (scope.kind) {
    case "run":
      return "run";
    case "node":
      return `node ${scope.node}`;
    default:
      return `${scope.kind} ${scope.period} (${timeZone}) of ${scope.workflow}`;
  }
}

/** limit × ratio, rounded down: the point at which a soft-limit event fires. */
export function softThreshold(limit: Limit, ratio: number): Limit {
  const permille = BigInt(Math.round(ratio * 1000));
  return {
    tokens: limit.tokens === undefined ? undefined : Math.floor((limit.tokens * Number(permille)) / 1000),
    usdUnits: limit.usdUnits === undefined ? undefined : (limit.usdUnits * permille) / 1000n,
  };
}

/**
 * Whether a call needing `need` may reserve it in every scope. A call that would fit a scope but
 * for what calls in flight have reserved waits (their real usage is usually well under their
 * reservation) instead of halting a run that still has room.
 */
export function decide(
  scopes: readonly Scope[],
  counters: ReadonlyMap<string, CounterState>,
  need: Charge,
  label: string,
  options: { softRatio?: number; timeZone?: string } = {},
): Decision {
  let wait = false;
  const overSoft: SoftCrossing[] = [];
  for (const scope of scopes) {
    const limit = scope.limit;
    if (!limit) continue;
    const c = counters.get(scope.key) ?? { spentTokens: 0, spentUnits: 0n, reservedTokens: 0, reservedUnits: 0n };
    const name = scopeLabel(scope, options.timeZone);
    const spentBy = scope.kind === "day" || scope.kind === "month" ? " by all runs" : "";
    if (limit.tokens !== undefined && c.spentTokens + need.tokens > limit.tokens) {
      return { verdict: "refuse", scope, reason: `${name} max tokens ${limit.tokens} reached: ${c.spentTokens} spent${spentBy}, next ${label} needs ~${need.tokens}` };
    }
    if (limit.usdUnits !== undefined && c.spentUnits + need.usdUnits > limit.usdUnits) {
      return {
        verdict: "refuse",
        scope,
        reason: `${name} max USD ${limit.usdText} reached: $${formatUsd(c.spentUnits)} spent${spentBy}, next ${label} needs ~$${formatUsd(need.usdUnits)} (${need.tokens} tokens)`,
      };
    }
    const overTokens = limit.tokens !== undefined && c.spentTokens + c.reservedTokens + need.tokens > limit.tokens;
    const overUsd = limit.usdUnits !== undefined && c.spentUnits + c.reservedUnits + need.usdUnits > limit.usdUnits;
    if (overTokens || overUsd) wait = true;
    const soft = softThreshold(limit, options.softRatio ?? DEFAULT_SOFT_RATIO);
    if (
      (soft.tokens !== undefined && c.spentTokens + c.reservedTokens + need.tokens >= soft.tokens) ||
      (soft.usdUnits !== undefined && c.spentUnits + c.reservedUnits + need.usdUnits >= soft.usdUnits)
    ) {
      overSoft.push({ scope, counter: c });
    }
  }
  return wait ? { verdict: "wait" } : { verdict: "ok", overSoft };
}
