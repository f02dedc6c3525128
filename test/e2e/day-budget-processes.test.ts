/**
 * Eight briefings in eight processes on one Postgres with a daily budget of B tokens: the day's
 * recorded total never exceeds B (every call reserves in the shared counters first), and every
 * run that was stopped says which budget stopped it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { rows } from "../../src/db/migrate";
import { describePg, freshPgDb } from "../helpers/db";
import { writeTownFeed } from "../helpers/feeds";

const ROOT = path.resolve(__dirname, "../..");
const PROCESSES = 8;
const DAY_BUDGET = 6000;
function briefingProcess(env: Record<string, string>, feed: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/briefing.ts", "--feeds", feed, "--json"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describePg("a daily budget shared by eight processes on one Postgres", () => {
  let database: Awaited<ReturnType<typeof freshPgDb>>;
  beforeAll(async () => {
    database = await freshPgDb();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it(`never spends past B = ${DAY_BUDGET} tokens in the day; the stopped runs say why`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nl-day-budget-"));
    const env = {
      DATABASE_URL: database.url!,
      NEWSLEDGER_PROVIDER: "offline",
      NEWSLEDGER_OUT_DIR: path.join(dir, "out"),
      NEWSLEDGER_DAY_MAX_TOKENS: String(DAY_BUDGET),
      NEWSLEDGER_ALERT_CONSOLE: "false",
      BRIEFING_TZ: "UTC",
    };
    const results = await Promise.all(Array.from({ length: PROCESSES }, (_, n) => briefingProcess(env, writeTownFeed(dir, n, 6))));
    const outcomes = results.map((r) => {
      const last = r.stdout.trim().split("\n").pop() ?? "";
      expect(last.startsWith("{"), `a process printed no result: ${r.stderr.slice(-500)}`).toBe(true);
      return { code: r.code, ...(JSON.parse(last) as { runId: string; status: string; haltReason: string | null; total_tokens: number }) };
    });

    const db = database.db;
    const [day] = rows(await db.execute(sql`select coalesce(sum(c.total_tokens), 0)::int as tokens, count(distinct c.run_id)::int as runs
      from llm_calls c join runs r on r.id = c.run_id where r.workflow = 'daily_briefing'`));
    expect(Number(day!.tokens)).toBeLessThanOrEqual(DAY_BUDGET);
    // The budget was really contended and really used: several runs spent, the ones stopped were
    // stopped by it, and what is left of B is less than one more call would need.
    const halted = outcomes.filter((o) => o.status === "halted");
    expect(halted.length).toBeGreaterThan(0);
    expect(Number(day!.runs)).toBeGreaterThan(1);
    expect(outcomes.every((o) => o.status === "halted" || o.status === "succeeded")).toBe(true);
    const [largest] = rows(await db.execute(sql`select max(tokens)::int as need from budget_reservations`));
    expect(DAY_BUDGET - Number(day!.tokens)).toBeLessThan(Number(largest!.need));
    for (const o of halted) {
      expect(o.code).toBe(3);
      expect(o.haltReason).toMatch(new RegExp(`^day \\d{4}-\\d\\d-\\d\\d \\(UTC\\) of daily_briefing max tokens ${DAY_BUDGET} reached: \\d+ spent by all runs`));
    }
    const stored = rows(await db.execute(sql`select id, status, halt_reason from runs where status = 'halted' order by id`));
    expect(stored.map((r) => r.id)).toEqual(halted.map((o) => o.runId).sort());
    expect(stored.every((r) => String(r.halt_reason).includes(`max tokens ${DAY_BUDGET} reached`))).toBe(true);
    // The shared counter agrees with the rows, and nothing is left reserved.
    const [counter] = rows(await db.execute(sql`select spent_tokens::int as spent, reserved_tokens::int as reserved from budget_counters where scope = 'day'`));
    expect({ spent: Number(counter!.spent), reserved: Number(counter!.reserved) }).toEqual({ spent: Number(day!.tokens), reserved: 0 });
    expect(outcomes.reduce((a, o) => a + o.total_tokens, 0)).toBe(Number(day!.tokens));
  }, 240_000);
});
