/**
 * A run killed outright (kill -9) on a shared Postgres: the next run sees that nobody holds the
 * dead run's liveness lock, marks it failed, charges what its calls in flight had reserved (they
 * may have been billed), and takes over its articles; the day budget is not left blocked.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import { rows } from "../../src/db/migrate";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { describePg, freshPgDb } from "../helpers/db";
import { writeTownFeed } from "../helpers/feeds";
import { chatCompletion, startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";

const ROOT = path.resolve(__dirname, "../..");
const reply = (body: any) => answerPrompt(body.messages.map((m: { role: string; content: string }) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content))));

describePg("a run killed with kill -9 on Postgres", () => {
  let database: Awaited<ReturnType<typeof freshPgDb>>;
  let server: FakeOpenAI;
  beforeAll(async () => {
    database = await freshPgDb();
    server = await startOpenAIServer({ content: reply, fixed: { prompt: 100, completion: 20 } });
  });
  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  it("is marked failed by the next run, its reservations are charged and released, its articles taken over", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nl-killed-"));
    const feed = writeTownFeed(dir, 41, 6);
    const env = {
      DATABASE_URL: database.url!,
      OPENAI_BASE_URL: `${server.url}/v1`,
      NEWSLEDGER_OUT_DIR: path.join(dir, "out"),
      NEWSLEDGER_DAY_MAX_TOKENS: "100000",
      NEWSLEDGER_ALERT_CONSOLE: "false",
      NEWSLEDGER_CACHE_TTL_HOURS: "0",
    };
    // Every chat reply takes a minute: the child is killed while its summarize calls are in flight.
    server.respondWith("chat", (body) => ({ ...chatCompletion({ content: reply(body), usage: { prompt: 100, completion: 20 } }), delayMs: 60_000 }));
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/briefing.ts", "--feeds", feed], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: "ignore",
    });
    const deadline = Date.now() + 60_000;
    while (server.requests.filter((r) => r.endpoint === "chat").length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(server.requests.filter((r) => r.endpoint === "chat").length).toBe(4);
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    server.respondWith("chat", undefined);

    const db = database.db;
    const [killed] = rows(await db.execute(sql`select id, status from runs`));
    expect(killed!.status).toBe("running");
    const [held] = rows(await db.execute(sql`select reserved_tokens::int as reserved, spent_tokens::int as spent from budget_counters where scope = 'day'`));
    expect(Number(held!.reserved)).toBeGreaterThan(0);
    const reservedByKilled = Number(held!.reserved);

    const lines: string[] = [];
    const next = await runBriefing({ config: loadConfig(env, { feeds: [feed] }), database, log: (l) => lines.push(l) }, { trigger: "test" });
    expect(next.status).toBe("succeeded");
    expect(lines).toContain(`1 run(s) whose process died are marked failed: ${killed!.id}`);
    const [after] = rows(await db.execute(sql`select status, error from runs where id = ${String(killed!.id)}`));
    expect(after!.status).toBe("failed");
    expect(String(after!.error)).toMatch(/^the process ended before the run finished/);
    // The killed run's 4 calls in flight are charged what they reserved; nothing stays reserved.
    const statuses = rows(await db.execute(sql`select status, count(*)::int as n, sum(settled_tokens)::int as charged from budget_reservations where run_id = ${String(killed!.id)} group by status`));
    expect(statuses.map((r) => [r.status, Number(r.n), Number(r.charged)])).toEqual([["settled", 4, reservedByKilled]]);
    const [day] = rows(await db.execute(sql`select reserved_tokens::int as reserved, spent_tokens::int as spent from budget_counters where scope = 'day'`));
    expect(Number(day!.reserved)).toBe(0);
    expect(Number(day!.spent)).toBe(reservedByKilled + next.total_tokens);
    // The articles the killed run collected are summarised by the next one.
    const [collected] = rows(await db.execute(sql`select count(*)::int as n from articles where first_run_id = ${String(killed!.id)}`));
    expect(Number(collected!.n)).toBeGreaterThan(3);
    expect(next.articles).toBe(Number(collected!.n));
    const [unsummarised] = rows(await db.execute(sql`select count(*)::int as n from articles where summary is null`));
    expect(Number(unsummarised!.n)).toBe(0);
  }, 180_000);
});
