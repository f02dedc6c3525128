/**
 * The response cache over whole briefings: the same articles briefed twice (the articles table
 * cleared between the runs, as after re-ingesting the feeds) against a local OpenAI-compatible
 * server with fixed usage and a priced model. The second run sends no summarize or embeddings
 * request; node_costs shows its calls billed at 0 and what they avoided, to the token and the
 * 1e-12 USD; `npm run report`'s queries and tables show the savings and the prompt sizes.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBriefing, type BriefingResult } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { nodeTable, promptSizeTable, savingsLine } from "../../src/report/format";
import { dailyCosts, dayIn, nodeCosts, promptSizes, runCost } from "../../src/report/queries";
import { describePg, freshPgDb, memoryDb } from "../helpers/db";
import { startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";

const FIXTURE_FEEDS = path.resolve(__dirname, "../fixtures/feeds");
const PAID = ["summarize", "embed", "generate_social", "validate"];

function offlineAnswer(body: { messages: { role: string; content: string }[] }): string {
  return answerPrompt(body.messages.map((m) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content))));
}

const taskOf = (body: any): string => /Task: (\w+)/.exec(String(body?.messages?.[0]?.content ?? ""))?.[1] ?? "embed";

/** Exact decimal sum of two 12-decimal USD strings. */
function addUsd(a: string, b: string): string {
  const units = (s: string) => BigInt(s.replace(".", ""));
  const s = (units(a) + units(b)).toString().padStart(13, "0");
  return `${s.slice(0, -12)}.${s.slice(-12)}`;
}

function suite(open: () => Promise<OpenedDatabase & { drop?: () => Promise<void> }>) {
  let server: FakeOpenAI;
  let database: OpenedDatabase & { drop?: () => Promise<void> };
  beforeAll(async () => {
    // Every chat call bills 100 + 10 tokens: (100 × 0.15 + 10 × 0.6) / 1e6 = $0.000021 on gpt-4o-mini.
    server = await startOpenAIServer({ usage: "fixed", fixed: { prompt: 100, completion: 10 }, content: offlineAnswer });
    database = await open();
  });
  afterAll(async () => {
    if (database.drop) await database.drop();
    else await database.close();
    await server.close();
  });

  const config = () =>
    loadConfig(
      { OPENAI_BASE_URL: `${server.url}/v1`, NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-cache-out-")), NEWSLEDGER_MAX_ITEMS_PER_FEED: "50" },
      { feeds: [FIXTURE_FEEDS] },
    );

  let first: BriefingResult;
  let second: BriefingResult;

  it("a second briefing over the same articles is served from the cache and node_costs shows what it saved", async () => {
    first = await runBriefing({ config: config(), database, log: () => {} }, { trigger: "test" });
    expect(first.status).toBe("succeeded");
    expect(first.articles).toBe(14);
    const firstRequests = server.requests.map((r) => taskOf(r.body));
    server.reset();

    await database.db.execute(sql`delete from articles`);
    second = await runBriefing({ config: config(), database, log: () => {} }, { trigger: "test" });
    expect(second.status).toBe("succeeded");
    expect(second.articles).toBe(14);
    // Not one summarize or embeddings request reached the server.
    expect(server.requests.filter((r) => taskOf(r.body) === "summarize" || r.endpoint === "embeddings")).toHaveLength(0);
    expect(server.hits()).toBeLessThan(firstRequests.length);

    const before = new Map((await nodeCosts(database.db, first.runId)).map((n) => [n.node, n]));
    const after = new Map((await nodeCosts(database.db, second.runId)).map((n) => [n.node, n]));
    expect(before.get("summarize")).toMatchObject({ calls: 14, total_tokens: 1540, cost_usd: "0.000294000000", cache_hits: 0, avoided_tokens: 0, avoided_cost_usd: "0.000000000000" });
    expect(after.get("summarize")).toMatchObject({
      calls: 14,
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      cost_usd: "0.000000000000",
      cache_hits: 14,
      avoided_tokens: 1540,
      avoided_cost_usd: "0.000294000000",
    });
    const embedBefore = before.get("embed")!;
    expect(after.get("embed")).toMatchObject({ calls: 1, total_tokens: 0, cost_usd: "0.000000000000", cache_hits: 1, avoided_tokens: embedBefore.total_tokens, avoided_cost_usd: embedBefore.cost_usd });
    // Same articles, same work: per paid node, what was billed plus what was avoided is the first run's bill.
    for (const node of PAID) {
      const a = after.get(node)!;
      const b = before.get(node)!;
      expect([node, a.calls, a.total_tokens + a.avoided_tokens, addUsd(a.cost_usd!, a.avoided_cost_usd!)]).toEqual([node, b.calls, b.total_tokens, b.cost_usd]);
    }
    const run = (await runCost(database.db, second.runId))!;
    expect(run.cache_hits).toBe([...after.values()].reduce((s, n) => s + n.cache_hits, 0));
    expect(addUsd(run.cost_usd!, run.avoided_cost_usd!)).toBe((await runCost(database.db, first.runId))!.cost_usd);
    // The cache's rows: one per hit, each naming an entry that exists.
    const orphans = rows(
      await database.db.execute(sql`select count(*)::int as n from llm_calls c where c.run_id = ${second.runId} and c.usage_source = 'cache'
        and not exists (select 1 from response_cache e where e.key = split_part(c.cache_key, ',', 1))`),
    );
    expect(Number(orphans[0]!.n)).toBe(0);
  });

  it("reports the savings and the prompt size per node, against the previous run", async () => {
    const db = database.db;
    const run = (await runCost(db, second.runId))!;
    expect(savingsLine(run)).toBe(`response cache: ${run.cache_hits} hit(s) saved ${run.avoided_tokens} tokens ($${run.avoided_cost_usd!.slice(0, 10)} at today's prices)`);
    const table = nodeTable(await nodeCosts(db, second.runId), run);
    expect(table.split("\n")[0]).toMatch(/cost_usd\s+latency_ms\s+p95_ms\s+cache_hits\s+saved_usd$/);
    expect(table).toMatch(/^summarize\s+14\s+0\s+0\s+0\s+0\s+0\s+\$0\.00000000\s+\d+\s+\d+\s+14\s+\$0\.00029400$/m);

    // The server billed 100 input tokens per chat call; a hit's prompt is the filling call's.
    const sizes = await promptSizes(db, second.runId);
    expect(sizes.find((p) => p.node === "summarize")).toEqual({ node: "summarize", calls: 14, avg_input_tokens: 100, max_input_tokens: 100, prev_avg_input_tokens: 100 });
    const firstSizes = await promptSizes(db, first.runId);
    expect(firstSizes.find((p) => p.node === "summarize")!.prev_avg_input_tokens).toBeNull();
    expect(promptSizeTable(sizes)).toMatch(/^summarize\s+14\s+100\s+100\s+100\s+\+0$/m);

    const [today] = await dailyCosts(db, dayIn("UTC"));
    const firstRun = (await runCost(db, first.runId))!;
    expect(today).toMatchObject({ runs: 2, calls: firstRun.calls + run.calls, cache_hits: run.cache_hits, avoided_tokens: run.avoided_tokens, avoided_cost_usd: run.avoided_cost_usd });
  });
}

describe("a budget and the cache", () => {
  it("a run whose calls are all cache hits is not held to a budget its estimates would break: it bills 0 and succeeds", async () => {
    const server = await startOpenAIServer({ usage: "fixed", fixed: { prompt: 100, completion: 10 }, content: offlineAnswer });
    const database = await memoryDb();
    try {
      const env = { OPENAI_BASE_URL: `${server.url}/v1`, NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-cache-budget-")), NEWSLEDGER_MAX_ITEMS_PER_FEED: "50", NEWSLEDGER_ALERT_CONSOLE: "false" };
      const first = await runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS] }), database, log: () => {} }, { trigger: "test" });
      expect(first.status).toBe("succeeded");
      await database.db.execute(sql`delete from articles`);
      server.reset();
      // 300 tokens: less than one summarize call's reservation (~600), and far less than the run.
      const cached = await runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS], maxTokens: 300 }), database, log: () => {} }, { trigger: "test" });
      expect(cached.haltReason).toBeNull();
      expect(cached.status).toBe("succeeded");
      expect(cached.total_tokens).toBe(0);
      expect(server.hits()).toBe(0);
      const sources = rows(await database.db.execute(sql`select usage_source, count(*)::int as n from llm_calls where run_id = ${cached.runId} group by usage_source`));
      expect(sources.map((r) => [r.usage_source, Number(r.n)])).toEqual([["cache", first.calls]]);
    } finally {
      await database.close();
      await server.close();
    }
  });
});

describe("response cache over whole briefings on PGlite", () => {
  suite(() => memoryDb());
});

describePg("response cache over whole briefings on Postgres", () => {
  suite(() => freshPgDb());
});
