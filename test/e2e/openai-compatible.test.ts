/**
 * The whole briefing through the real @langchain/openai client against a local OpenAI-compatible
 * server: the ledger's rows must equal, field by field, what the server billed; one row per HTTP
 * request the server saw; and the cost must be the exact sum of the shipped rates. The server
 * answers each stage with the offline provider's logic (it reads the same task marker), with
 * seeded random usage including cached and reasoning tokens.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { memoryDb } from "../helpers/db";
import { startOpenAIServer, type FakeOpenAI, type RecordedRequest } from "../helpers/openai-server";

const FIXTURE_FEEDS = path.resolve(__dirname, "../fixtures/feeds");
const PRICES = JSON.parse(readFileSync(path.resolve(__dirname, "../../src/ledger/prices.json"), "utf8"));

/** USD per 1M tokens as an exact count of 1e-12 USD per token. */
function perTokenPicoUsd(rate: number | string | null): bigint {
  const [i, f = ""] = String(rate ?? 0).split(".");
  return BigInt(i + f.padEnd(6, "0").slice(0, 6)) * 1_000_000n / 1_000_000n;
}

function rateOf(model: string) {
  const entries = (PRICES.prices ?? PRICES) as { model: string; input: number; cached_input: number | null; output: number }[];
  const target = PRICES.aliases?.[model] ?? model;
  const e = entries.filter((p) => p.model === target).at(-1)!;
  return { input: perTokenPicoUsd(e.input), cached: perTokenPicoUsd(e.cached_input ?? e.input), output: perTokenPicoUsd(e.output) };
}

/** The exact cost of what the server billed, in 1e-12 USD, as a 12-decimal string. */
function expectedCost(requests: RecordedRequest[]): string {
  let total = 0n;
  for (const r of requests) {
    const rate = rateOf(r.body.model);
    const { input, cached, output } = r.billed;
    total += BigInt(input - cached) * rate.input + BigInt(cached) * rate.cached + BigInt(output) * rate.output;
  }
  const s = total.toString().padStart(13, "0");
  return `${s.slice(0, -12)}.${s.slice(-12)}`;
}

function offlineAnswer(body: { messages: { role: string; content: string }[] }): string {
  return answerPrompt(body.messages.map((m) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content))));
}

async function sums(database: OpenedDatabase, runId: string) {
  const [r] = rows(
    await database.db.execute(sql`select count(*)::int as n,
      sum(input_tokens) as input, sum(cached_input_tokens) as cached, sum(output_tokens) as output,
      sum(reasoning_tokens) as reasoning, sum(total_tokens) as total, sum(cost_usd) as cost
      from llm_calls where run_id = ${runId}`),
  );
  return {
    rows: Number(r.n),
    billed: { input: Number(r.input), cached: Number(r.cached), output: Number(r.output), reasoning: Number(r.reasoning), total: Number(r.total) },
    cost: String(r.cost),
  };
}

describe("daily briefing against a local OpenAI-compatible server", () => {
  let server: FakeOpenAI;
  let database: OpenedDatabase;
  beforeAll(async () => {
    server = await startOpenAIServer({ usage: "random", seed: 7, content: offlineAnswer });
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
    await server.close();
  });

  const settings = (extra: Record<string, string> = {}) =>
    loadConfig(
      {
        OPENAI_BASE_URL: `${server.url}/v1`,
        NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-oai-out-")),
        NEWSLEDGER_MAX_ITEMS_PER_FEED: "50",
        NEWSLEDGER_NODE_ATTEMPTS: "4",
        ...extra,
      },
      { feeds: [FIXTURE_FEEDS] },
    );

  it("records exactly the usage the server billed, one row per request, priced to the exact sum", async () => {
    const config = settings();
    const result = await runBriefing({ config, database, log: () => {} }, { trigger: "test" });
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect(result.provider).toBe("openai-compatible");
    expect(result.articles).toBe(14);

    const got = await sums(database, result.runId);
    expect(got.rows).toBe(server.hits());
    expect(got.billed).toEqual(server.billed());
    expect(server.billed().cached).toBeGreaterThan(0);
    expect(server.billed().reasoning).toBeGreaterThan(0);
    expect(got.cost).toBe(expectedCost(server.requests));
    expect(result.cost_usd).toBe(got.cost);
    expect(server.hits("embeddings")).toBeGreaterThan(0);
  });

  it("still matches the server when replies stream and some attempts fail with 429 and 500", async () => {
    await database.db.execute(sql`delete from articles`);
    server.reset();
    let n = 0;
    // Every fifth request fails: 429 with Retry-After 0, then 500, alternately.
    server.respondWith("chat", () => {
      n += 1;
      if (n % 5 !== 0) return undefined;
      return n % 10 === 0
        ? { status: 500, json: { error: { message: "upstream broke", type: "server_error" } } }
        : { status: 429, headers: { "retry-after": "0" }, json: { error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" } } };
    });
    // No response cache: the first test filled it, and a hit is a row without a request (see cache.test.ts).
    const config = settings({ NEWSLEDGER_STREAM: "true", NEWSLEDGER_HTTP_RETRIES: "1", NEWSLEDGER_CACHE_TTL_HOURS: "0" });
    const result = await runBriefing({ config, database, log: () => {} }, { trigger: "test" });
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    const failed = server.requests.filter((r) => r.status !== 200).length;
    expect(failed).toBeGreaterThan(2);
    const streamed = server.requests.filter((r) => r.body?.stream === true);
    expect(streamed.length).toBeGreaterThan(10);
    for (const r of streamed) expect(r.body.stream_options).toEqual({ include_usage: true });

    const got = await sums(database, result.runId);
    expect(got.rows).toBe(server.hits());
    expect(got.billed).toEqual(server.billed());
    expect(got.cost).toBe(expectedCost(server.requests));
    const statuses = rows(
      await database.db.execute(sql`select status, count(*)::int as n from llm_calls where run_id = ${result.runId} and status <> 'ok' group by status order by status`),
    );
    const byStatus = Object.fromEntries(statuses.map((s) => [String(s.status), Number(s.n)]));
    expect((byStatus.http_429 ?? 0) + (byStatus.http_500 ?? 0)).toBe(failed);
  });
});
