/**
 * Budget counters in the database: the shared truth that makes a budget hold across runs and
 * processes. A reservation locks the counters it touches (always in key order, so two
 * transactions cannot deadlock), decides with budget.ts, and adds to `reserved`; a settlement,
 * written in the same transaction as the call's ledger row, moves it to `spent` at the real cost.
 * A process sets a counter's spend from llm_calls when it first uses it, so runs without limits
 * (which reserve nothing, to stay cheap) are counted against the day of the runs with limits.
 */
import { sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { rows } from "../db/migrate";
import { parseDecimal } from "./decimal";
import { COST_SCALE, formatUsd, unitsToUsd } from "./pricing";
import { decide, scopeLabel, type Charge, type CounterState, type Decision, type Scope } from "./budget";

type Executor = Pick<Database, "execute">;

const units = (value: unknown): bigint => (value === null || value === undefined ? 0n : parseDecimal(String(value), COST_SCALE, "half-up"));
const num = (value: unknown): number => Number(value ?? 0);

/** What llm_calls holds for a scope: every settled call, and the calls of runs that reserved nothing. */
function alreadySpentSql(scope: Scope, timeZone: string): SQL {
  // A call without usage counts its local estimate (the ledger charged it at least that).
  const spent = sql`coalesce(sum(coalesce(c.total_tokens, c.estimated_input_tokens + coalesce(c.estimated_output_tokens, 0))), 0), coalesce(sum(c.cost_usd), 0)`;
  switch (scope.kind) {
    case "run":
      return sql`select ${spent} from llm_calls c where c.run_id = ${scope.runId}`;
    case "node":
      return sql`select ${spent} from llm_calls c where c.run_id = ${scope.runId} and c.node = ${scope.node}`;
    case "day":
      return sql`select ${spent} from llm_calls c join runs r on r.id = c.run_id
        where r.workflow = ${scope.workflow} and to_char(c.started_at at time zone ${timeZone}, 'YYYY-MM-DD') = ${scope.period}`;
    case "month":
      return sql`select ${spent} from llm_calls c join runs r on r.id = c.run_id
        where r.workflow = ${scope.workflow} and to_char(c.started_at at time zone ${timeZone}, 'YYYY-MM') = ${scope.period}`;
  }
}

export class BudgetStore {
  /** Counters known to exist: creating one costs a sum over llm_calls, so it is done once. */
  private readonly known = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly options: { softRatio?: number; timeZone: string },
  ) {}

  /**
   * Reserves `need` in every scope as call `id`, or says why not. Atomic: two processes that
   * reserve against the same day at once are serialised by the counter's row lock.
   */
  async reserve(id: string, runId: string, node: string, scopes: readonly Scope[], need: Charge, label: string): Promise<Decision> {
    const ordered = [...scopes].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const keys = ordered.map((s) => s.key);
    return this.db.transaction(async (tx) => {
      const fresh = ordered.filter((s) => !this.known.has(s.key));
      for (const scope of fresh) {
        await tx.execute(sql`insert into budget_counters (key, scope, workflow, run_id, node, period)
          values (${scope.key}, ${scope.kind}, ${scope.workflow}, ${scope.runId}, ${scope.node}, ${scope.period}) on conflict (key) do nothing`);
      }
      const locked = rows(
        await tx.execute(sql`select key, spent_tokens, spent_usd, reserved_tokens, reserved_usd from budget_counters
          where key in ${sqlList(keys)} order by key for update`),
      );
      // The first time this process uses a counter, its spend is set from llm_calls, read after
      // the lock is held: that also counts calls of runs that reserved nothing (no limit set).
      for (const scope of fresh) {
        const [synced] = rows(
          // Never lowered: a counter also holds charges the rows cannot show (calls without usage
          // charged their whole reservation, calls of a killed process).
          await tx.execute(sql`update budget_counters set spent_tokens = greatest(spent_tokens, s.tokens), spent_usd = greatest(spent_usd, s.usd), updated_at = now()
            from (${alreadySpentSql(scope, this.options.timeZone)}) as s(tokens, usd) where key = ${scope.key} returning key, spent_tokens, spent_usd`),
        );
        const row = locked.find((r) => r.key === scope.key);
        if (row && synced) Object.assign(row, { spent_tokens: synced.spent_tokens, spent_usd: synced.spent_usd });
      }
      const counters = new Map<string, CounterState>(
        locked.map((r) => [
          String(r.key),
          { spentTokens: num(r.spent_tokens), spentUnits: units(r.spent_usd), reservedTokens: num(r.reserved_tokens), reservedUnits: units(r.reserved_usd) },
        ]),
      );
      for (const key of keys) this.known.add(key);
      const decision = decide(ordered, counters, need, label, this.options);
      if (decision.verdict !== "ok") return decision;
      const usd = unitsToUsd(need.usdUnits);
      await tx.execute(sql`update budget_counters set reserved_tokens = reserved_tokens + ${need.tokens},
        reserved_usd = reserved_usd + ${usd}::numeric, updated_at = now() where key in ${sqlList(keys)}`);
      await tx.execute(sql`insert into budget_reservations (id, run_id, node, counter_keys, tokens, usd, status)
        values (${id}, ${runId}, ${node}, ${JSON.stringify(keys)}::jsonb, ${need.tokens}, ${usd}::numeric, 'reserved')
        on conflict (id) do nothing`);
      return decision;
    });
  }

  /**
   * The first scope already spent to its limit (nothing more can fit), as a halt reason; read
   * without locking, for the checks between stages.
   */
  async exhausted(scopes: readonly Scope[]): Promise<string | null> {
    const limited = scopes.filter((s) => s.limit);
    if (limited.length === 0) return null;
    const found = rows(
      await this.db.execute(sql`select key, spent_tokens, spent_usd from budget_counters where key in ${sqlList(limited.map((s) => s.key))}`),
    );
    const byKey = new Map(found.map((r) => [String(r.key), r]));
    for (const scope of limited) {
      const r = byKey.get(scope.key);
      if (!r) continue;
      const name = scopeLabel(scope, this.options.timeZone);
      const by = scope.kind === "day" || scope.kind === "month" ? " by all runs" : "";
      if (scope.limit!.tokens !== undefined && num(r.spent_tokens) >= scope.limit!.tokens) return `${name} max tokens ${scope.limit!.tokens} reached: ${num(r.spent_tokens)} spent${by}`;
      if (scope.limit!.usdUnits !== undefined && units(r.spent_usd) >= scope.limit!.usdUnits) return `${name} max USD ${scope.limit!.usdText} reached: $${formatUsd(units(r.spent_usd))} spent${by}`;
    }
    return null;
  }

  /** Frees what a run still holds (calls that never reached the provider, a run cut short). */
  async releaseRun(runId: string): Promise<number> {
    return this.db.transaction(async (tx) => settleReservations(tx, sql`run_id = ${runId} and status = 'reserved'`, "release"));
  }
}

/**
 * Settles reservations inside the caller's transaction (the one that writes the calls' rows):
 * each moves from reserved to spent at its real charge. Reservations already settled are left
 * alone, so writing a row twice never counts it twice.
 */
export async function settleReservationsIn(tx: Executor, charges: ReadonlyMap<string, Charge>): Promise<number> {
  if (charges.size === 0) return 0;
  return settleReservations(tx, sql`id in ${sqlList([...charges.keys()])} and status = 'reserved'`, charges);
}

/**
 * Settles the reservations of runs that are no longer running (a killed process's calls in
 * flight) at what they reserved: they may have reached the provider and been billed, and an
 * unknown bill is charged conservatively, as a call without usage is.
 */
export async function releaseAbandonedReservations(db: Database): Promise<number> {
  return db.transaction(async (tx) =>
    settleReservations(tx, sql`status = 'reserved' and run_id in (select id from runs where status <> 'running')`, "charge_reserved"),
  );
}

/** "release": nothing spent (the call never reached the provider); "charge_reserved": the whole reservation spent. */
async function settleReservations(tx: Executor, where: SQL, charges: ReadonlyMap<string, Charge> | "release" | "charge_reserved"): Promise<number> {
  const held = rows(await tx.execute(sql`select id, counter_keys, tokens, usd from budget_reservations where ${where} order by id for update`));
  if (held.length === 0) return 0;
  const deltas = new Map<string, { spentTokens: number; spentUnits: bigint; reservedTokens: number; reservedUnits: bigint }>();
  for (const r of held) {
    const charge = chargeOf(r, charges);
    const keys = (typeof r.counter_keys === "string" ? JSON.parse(r.counter_keys) : r.counter_keys) as string[];
    for (const key of keys) {
      const d = deltas.get(key) ?? { spentTokens: 0, spentUnits: 0n, reservedTokens: 0, reservedUnits: 0n };
      d.spentTokens += charge.tokens;
      d.spentUnits += charge.usdUnits;
      d.reservedTokens += num(r.tokens);
      d.reservedUnits += units(r.usd);
      deltas.set(key, d);
    }
  }
  const keys = [...deltas.keys()].sort();
  await tx.execute(sql`select key from budget_counters where key in ${sqlList(keys)} order by key for update`);
  for (const key of keys) {
    const d = deltas.get(key)!;
    await tx.execute(sql`update budget_counters set
      spent_tokens = spent_tokens + ${d.spentTokens}, spent_usd = spent_usd + ${unitsToUsd(d.spentUnits)}::numeric,
      reserved_tokens = greatest(reserved_tokens - ${d.reservedTokens}, 0), reserved_usd = greatest(reserved_usd - ${unitsToUsd(d.reservedUnits)}::numeric, 0),
      updated_at = now() where key = ${key}`);
  }
  for (const r of held) {
    const charge = charges === "release" ? undefined : chargeOf(r, charges);
    await tx.execute(
      charge
        ? sql`update budget_reservations set status = 'settled', settled_tokens = ${charge.tokens}, settled_usd = ${unitsToUsd(charge.usdUnits)}::numeric, settled_at = now() where id = ${String(r.id)}`
        : sql`update budget_reservations set status = 'released', settled_at = now() where id = ${String(r.id)}`,
    );
  }
  return held.length;
}

function chargeOf(r: Record<string, unknown>, charges: ReadonlyMap<string, Charge> | "release" | "charge_reserved"): Charge {
  if (charges === "release") return { tokens: 0, usdUnits: 0n };
  if (charges === "charge_reserved") return { tokens: num(r.tokens), usdUnits: units(r.usd) };
  return charges.get(String(r.id)) ?? { tokens: 0, usdUnits: 0n };
}

function sqlList(values: readonly string[]): SQL {
  return sql`(${sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  )})`;
}
