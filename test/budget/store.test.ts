import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { scopesFor } from "../../src/ledger/budget";
import { BudgetStore, releaseAbandonedReservations, settleReservationsIn } from "../../src/ledger/budget-store";
import { startRun, finishRun } from "../../src/ledger/runs";
import { describePg, freshPgDb, memoryDb } from "../helpers/db";

const at = new Date();
for (const [name, open, suite] of [
  ["pglite", () => memoryDb(), describe],
  ["postgres", () => freshPgDb(), describePg],
] as const) {
  suite(`budget counters [${name}]`, () => {
    let database: OpenedDatabase & { drop?: () => Promise<void> };
    beforeAll(async () => {
      database = await open();
    });
    afterAll(async () => {
      await database.close();
      await database.drop?.();
    });

    const counters = async () =>
      rows(await database.db.execute(sql`select key, spent_tokens, reserved_tokens from budget_counters order by key`)).map((r) => [String(r.key), Number(r.spent_tokens), Number(r.reserved_tokens)]);

    it("40 reservations at once against a day of 1000 tokens: exactly 10 fit, the rest wait; settling and a killed run keep the counters true", async () => {
      const db = database.db;
      const runId = await startRun(db, { workflow: "wf", trigger: "test", provider: "offline" });
      const store = new BudgetStore(db, { timeZone: "UTC" });
      const scopes = scopesFor({ workflow: "wf", runId, node: "n", at }, { day: { maxTokens: 1000 } });
      const day = scopes[2]!.key;
      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.reserve(`call-${String(i).padStart(2, "0")}`, runId, "n", scopes, { tokens: 100, usdUnits: 0n }, "n call")),
      );
      expect(decisions.filter((d) => d.verdict === "ok").length).toBe(10);
      expect(decisions.filter((d) => d.verdict === "wait").length).toBe(30);
      expect((await counters()).find(([k]) => k === day)).toEqual([day, 0, 1000]);

      const granted = decisions.map((d, i) => [d, `call-${String(i).padStart(2, "0")}`] as const).filter(([d]) => d.verdict === "ok").map(([, id]) => id);
      // Five calls end, billed 50 each; settling twice changes nothing.
      const charges = new Map(granted.slice(0, 5).map((id) => [id, { tokens: 50, usdUnits: 0n }]));
      await db.transaction((tx) => settleReservationsIn(tx, charges));
      expect(await db.transaction((tx) => settleReservationsIn(tx, charges))).toBe(0);
      expect(await counters()).toEqual([
        [day, 250, 500],
        [scopes[3]!.key, 250, 500],
        [scopes[1]!.key, 250, 500],
        [`run:${runId}`, 250, 500],
      ]);
      // Room again: 250 spent + 500 reserved + 100 fits; a call of 800 does not, even alone.
      expect((await store.reserve("late", runId, "n", scopes, { tokens: 100, usdUnits: 0n }, "n call")).verdict).toBe("ok");
      expect(await store.reserve("huge", runId, "n", scopes, { tokens: 800, usdUnits: 0n }, "n call")).toMatchObject({ verdict: "refuse" });

      // The run dies with 6 calls in flight: the next ledger to open settles them at what they
      // reserved (they may have been billed), so nothing stays held and nothing is forgotten.
      await finishRun(db, runId, { status: "failed", error: "killed" });
      expect(await releaseAbandonedReservations(db)).toBe(6);
      expect((await counters()).find(([k]) => k === day)).toEqual([day, 250 + 6 * 100, 0]);
      const statuses = rows(await db.execute(sql`select status, count(*)::int as n, sum(settled_tokens)::int as t from budget_reservations group by status order by status`));
      expect(statuses.map((r) => [r.status, Number(r.n), Number(r.t)])).toEqual([["settled", 11, 5 * 50 + 6 * 100]]);
    });

    it("a counter first used by another process keeps what calls without usage were charged; it is never lowered", async () => {
      const db = database.db;
      const runId = await startRun(db, { workflow: "wf3", trigger: "test", provider: "offline" });
      const now = new Date();
      // A call that came back without usage: NULL tokens, a local estimate of 300 in and 50 out.
      await db.execute(sql`insert into llm_calls (id, run_id, call_id, node, kind, provider, usage_source, status, price_status, estimated_input_tokens, estimated_output_tokens, started_at, finished_at)
        values ('nousage-1', ${runId}, 'nousage-1', 'n', 'chat', 'offline', 'missing', 'ok', 'no_usage', 300, 50, ${now.toISOString()}, ${now.toISOString()})`);
      const scopes = scopesFor({ workflow: "wf3", runId, node: "n", at: now }, { day: { maxTokens: 1000 } });
      expect(await new BudgetStore(db, { timeZone: "UTC" }).reserve("a1", runId, "n", scopes, { tokens: 700, usdUnits: 0n }, "n call")).toMatchObject({
        verdict: "refuse",
        reason: expect.stringMatching(/350 spent by all runs/),
      });
      // The counter holds more than the rows show (a call without usage charged its whole reservation): a new process keeps it.
      await db.execute(sql`update budget_counters set spent_tokens = 900 where key = ${scopes[2]!.key}`);
      expect(await new BudgetStore(db, { timeZone: "UTC" }).reserve("a2", runId, "n", scopes, { tokens: 200, usdUnits: 0n }, "n call")).toMatchObject({
        verdict: "refuse",
        reason: expect.stringMatching(/900 spent by all runs/),
      });
    });

    it("a counter created mid-day starts from what llm_calls already holds for the day", async () => {
      const db = database.db;
      const runId = await startRun(db, { workflow: "wf2", trigger: "test", provider: "offline" });
      const now = new Date();
      await db.execute(sql`insert into llm_calls (id, run_id, call_id, node, kind, provider, usage_source, status, price_status, total_tokens, cost_usd, started_at, finished_at)
        values ('old-1', ${runId}, 'old-1', 'n', 'chat', 'offline', 'provider', 'ok', 'ok', 700, 0.5, ${now.toISOString()}, ${now.toISOString()})`);
      const store = new BudgetStore(db, { timeZone: "UTC" });
      const scopes = scopesFor({ workflow: "wf2", runId: "other-run", node: "n", at: now }, { day: { maxTokens: 1000 } });
      await startRun(db, { id: "other-run", workflow: "wf2", trigger: "test", provider: "offline" });
      expect(await store.reserve("c1", "other-run", "n", scopes, { tokens: 400, usdUnits: 0n }, "n call")).toMatchObject({
        verdict: "refuse",
        reason: expect.stringMatching(/^day \d{4}-\d\d-\d\d \(UTC\) of wf2 max tokens 1000 reached: 700 spent by all runs, next n call needs ~400$/),
      });
      expect(await store.exhausted(scopes)).toBeNull();
      expect(await new BudgetStore(db, { timeZone: "UTC" }).exhausted(scopesFor({ workflow: "wf2", runId: "x", node: "n", at: now }, { day: { maxTokens: 700 } }))).toMatch(
        /max tokens 700 reached: 700 spent by all runs$/,
      );
    });
  });
}
