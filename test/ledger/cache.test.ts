/**
 * The response cache through the real ledger path: a chat reply or an embedding served from
 * response_cache is an llm_calls row with usage_source 'cache', 0 tokens and cost 0 billed, and
 * what it avoided (the filling call's tokens at today's price); the server's request count
 * proves nothing was sent. TTL expiry and a changed parameter are misses. On PGlite and Postgres.
 */
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import type { ChatOpenAI } from "@langchain/openai";
import { eq, sql } from "drizzle-orm";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CachedEmbeddings, apportion } from "../../src/cache/embeddings";
import { ResponseCache, chatCacheKey, llmKeyEntries } from "../../src/cache/response-cache";
import { CacheStore } from "../../src/cache/store";
import type { Database } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { responseCache } from "../../src/db/schema";
import type { Ledger } from "../../src/ledger/index";
import { keepsResults } from "../../src/ledger/index";
import { OfflineChatModel } from "../../src/llm/offline";
import { completeJson, ModelReplyError } from "../../src/llm/reply";
import { buildSummarizePrompt, summaryReplySchema } from "../../src/pipeline/summarize/prompt";
import { chatCompletion, useOpenAIServer } from "../helpers/openai-server";
import { callRows, chatModel, describeBackends, embeddingsModel, nodeCosts, openRun, runCosts, type TestDb } from "./_harness";

const State = Annotation.Root({ replies: Annotation<string[]> });
const PROMPT = [new SystemMessage("Summarise in one line."), new HumanMessage("The harbour reopened after the strike.")];
/** gpt-4o-mini-2024-07-18 in C08: input 0.15, cached input 0.075, output 0.6 USD per 1M tokens. */
const USAGE = { prompt: 1200, completion: 300, cached: 200 };
/** (1000 × 0.15 + 200 × 0.075 + 300 × 0.6) / 1e6 USD. */
const COST = "0.000345000000";

/** A one-node graph, as the stages are: node `summarize` makes the calls of `ask`. */
async function inNode(ledger: Ledger, ask: () => Promise<string[]>): Promise<string[]> {
  const graph = new StateGraph(State)
    .addNode("summarize", async () => ({ replies: await ask() }), { metadata: keepsResults() })
    .addEdge(START, "summarize")
    .addEdge("summarize", END)
    .compile();
  const out = await graph.invoke({ replies: [] }, { callbacks: [ledger.handler] });
  await ledger.flush();
  return out.replies;
}

const text = async (model: ChatOpenAI, options: Record<string, unknown> = {}) => (await model.invoke(PROMPT, options as never)).text;

describeBackends("response cache", (open) => {
  const server = useOpenAIServer();
  let t: TestDb;
  let db: Database;
  let clock: Date;
  const now = () => clock;
  beforeEach(async () => {
    t = await open();
    db = t.db;
    clock = new Date("2026-12-01T08:00:00Z");
  });
  afterEach(async () => t.close());

  const cached = (fields: Record<string, unknown> = {}) => chatModel(server, { cache: new ResponseCache({ db, ttlHours: 24, now }), temperature: 0, maxTokens: 500, ...fields });

  it("a hit bills 0 tokens, sends nothing, and records the tokens and cost it avoided", async () => {
    server.script("chat", chatCompletion({ usage: USAGE, content: "The harbour is open again." }));
    const model = cached();
    const { runId, ledger } = await openRun(db);
    const replies = await inNode(ledger, async () => [await text(model), await text(model)]);

    expect(replies).toEqual(["The harbour is open again.", "The harbour is open again."]);
    expect(server.hits("chat")).toBe(1);
    const [miss, hit] = await callRows(db, runId);
    expect(miss).toMatchObject({ node: "summarize", usageSource: "provider", inputTokens: 1200, cachedInputTokens: 200, outputTokens: 300, totalTokens: 1500, costUsd: COST, avoidedTotalTokens: null });
    expect(miss!.cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(hit).toMatchObject({
      node: "summarize",
      kind: "chat",
      status: "ok",
      usageSource: "cache",
      model: "gpt-4o-mini-2024-07-18",
      inputTokens: 0,
      cachedInputTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
      totalTokens: 0,
      costUsd: "0.000000000000",
      providerCostUsd: null,
      streamed: false,
      avoidedInputTokens: 1200,
      avoidedOutputTokens: 300,
      avoidedTotalTokens: 1500,
      avoidedCostUsd: COST,
      cacheKey: miss!.cacheKey,
    });
    expect(ledger.spent()).toEqual({ tokens: 1500, usd: COST });

    const [entry] = await db.select().from(responseCache).where(eq(responseCache.key, miss!.cacheKey!));
    expect(entry).toMatchObject({ kind: "chat", model: "gpt-4o-mini-2024-07-18", hits: 1, costUsd: COST });
    expect(entry!.usage).toEqual({ input: 1200, cached_input: 200, output: 300, reasoning: 0, total: 1500 });
    expect(entry!.expiresAt!.toISOString()).toBe("2026-12-02T08:00:00.000Z");

    const [node] = await nodeCosts(db, runId);
    expect(node).toMatchObject({ node: "summarize", calls: 2, total_tokens: 1500, cost_usd: COST, cache_hits: 1, avoided_tokens: 1500, avoided_cost_usd: COST });
    expect(await runCosts(db, runId)).toMatchObject({ calls: 2, total_tokens: 1500, cost_usd: COST, cache_hits: 1, avoided_tokens: 1500, avoided_cost_usd: COST });
  });

  it("prices what a hit avoided at today's price, not the price when the entry was filled", async () => {
    server.script("chat", chatCompletion({ usage: USAGE }));
    const model = cached();
    await inNode((await openRun(db)).ledger, async () => [await text(model)]);
    // A price change after the entry was filled: gpt-4o-mini doubles from 2026-12-01 09:00.
    const { runId, ledger } = await openRun(db, {
      pricesFile: (await import("./_harness")).tempJson([{ model: "gpt-4o-mini-2024-07-18", input: 0.3, cached_input: 0.15, output: 1.2, valid_from: "2026-12-01T09:00:00Z" }]),
    });
    await inNode(ledger, async () => [await text(model)]);
    expect(server.hits("chat")).toBe(1);
    const [hit] = await callRows(db, runId);
    // Priced at the hit's time (after valid_from): (1000 × 0.3 + 200 × 0.15 + 300 × 1.2) / 1e6.
    expect(hit).toMatchObject({ usageSource: "cache", totalTokens: 0, costUsd: "0.000000000000", avoidedTotalTokens: 1500, avoidedCostUsd: "0.000690000000" });
  });

  it("serves an entry until its TTL, then asks again and refills it", async () => {
    server.script("chat", chatCompletion({ usage: USAGE, content: "first" }), chatCompletion({ usage: { prompt: 1210, completion: 290 }, content: "second" }));
    const model = cached();
    const { runId, ledger } = await openRun(db);
    const replies = await inNode(ledger, async () => {
      const a = await text(model);
      clock = new Date("2026-12-02T07:59:59Z"); // 1 s before expiry: a hit
      const b = await text(model);
      clock = new Date("2026-12-02T08:00:00Z"); // expired: a miss
      const c = await text(model);
      const d = await text(model); // the refilled entry
      return [a, b, c, d];
    });
    expect(replies).toEqual(["first", "first", "second", "second"]);
    expect(server.hits("chat")).toBe(2);
    const got = await callRows(db, runId);
    expect(got.map((r) => [r.usageSource, r.totalTokens, r.avoidedTotalTokens])).toEqual([
      ["provider", 1500, null],
      ["cache", 0, 1500],
      ["provider", 1500, null],
      ["cache", 0, 1500],
    ]);
    expect(got[3]!.avoidedInputTokens).toBe(1210);
    expect(new Set(got.map((r) => r.cacheKey)).size).toBe(1);
  });

  it("keys on every parameter that shapes the reply: temperature, max tokens, response format, model", async () => {
    const base = cached();
    const { runId, ledger } = await openRun(db);
    await inNode(ledger, async () => [
      await text(base),
      await text(cached({ cache: base.cache, temperature: 0.7 })),
      await text(cached({ cache: base.cache, maxTokens: 100 })),
      await text(base, { response_format: { type: "json_object" } }),
      await text(cached({ cache: base.cache, model: "gpt-4o-2024-08-06" })),
      await text(cached({ cache: base.cache, apiKey: "sk-other" })), // a new key is the same request: a hit
    ]);
    expect(server.hits("chat")).toBe(5);
    const got = await callRows(db, runId);
    expect(got.map((r) => r.usageSource)).toEqual(["provider", "provider", "provider", "provider", "provider", "cache"]);
    expect(new Set(got.map((r) => r.cacheKey)).size).toBe(5);
    expect(got[5]!.cacheKey).toBe(got[0]!.cacheKey);
  });

  it("hits do not use up the budget: each settles its reservation at 0, so a run that can pay for one call makes three", async () => {
    server.script("chat", chatCompletion({ usage: USAGE }));
    const model = cached();
    // Room for 1500 billed plus one more reservation (~20 prompt + 500 max output); a third paid call would be refused.
    const { runId, ledger } = await openRun(db, { budget: { maxTokens: 2100 } });
    const replies = await inNode(ledger, async () => [await text(model), await text(model), await text(model)]);
    expect(replies).toHaveLength(3);
    expect(ledger.haltReason).toBeNull();
    expect(ledger.spent().tokens).toBe(1500);
    expect((await callRows(db, runId)).map((r) => r.usageSource)).toEqual(["provider", "cache", "cache"]);
  });

  it("the offline model uses the same cache: the repeat is a cache row avoiding the first call's tokens", async () => {
    const model = new OfflineChatModel({ model: "offline-extractive-1", cache: new ResponseCache({ db, ttlHours: 24, now }) });
    const prompt = buildSummarizePrompt({ title: "Harbour strike ends", feed: "Harbour Gazette", text: "Dock workers returned on Monday. The port reopened at noon." });
    const { runId, ledger } = await openRun(db);
    const replies = await inNode(ledger, async () => [(await model.invoke(prompt)).text, (await model.invoke(prompt)).text]);
    expect(replies[1]).toBe(replies[0]);
    const [miss, hit] = await callRows(db, runId);
    expect(miss).toMatchObject({ usageSource: "provider", model: "offline-extractive-1", costUsd: "0.000000000000" });
    expect(miss!.inputTokens).toBeGreaterThan(0);
    expect(hit).toMatchObject({
      usageSource: "cache",
      model: "offline-extractive-1",
      totalTokens: 0,
      avoidedInputTokens: miss!.inputTokens,
      avoidedOutputTokens: miss!.outputTokens,
      avoidedTotalTokens: miss!.totalTokens,
      avoidedCostUsd: "0.000000000000",
      cacheKey: miss!.cacheKey,
    });
  });

  it("a reply the node rejects is evicted, so its retry asks the model again", async () => {
    server.script("chat", chatCompletion({ usage: USAGE, content: "not JSON at all" }), chatCompletion({ usage: USAGE, content: '{"summary":"The harbour reopened."}' }));
    const model = cached();
    const { runId, ledger } = await openRun(db);
    const replies = await inNode(ledger, async () => {
      const first = await completeJson(model, PROMPT, summaryReplySchema, "summary", { stream: false }).catch((err) => err);
      expect(first).toBeInstanceOf(ModelReplyError);
      const second = await completeJson(model, PROMPT, summaryReplySchema, "summary", { stream: false });
      const third = await completeJson(model, PROMPT, summaryReplySchema, "summary", { stream: false });
      return [second.summary, third.summary];
    });
    expect(replies).toEqual(["The harbour reopened.", "The harbour reopened."]);
    expect(server.hits("chat")).toBe(2);
    expect((await callRows(db, runId)).map((r) => [r.status, r.usageSource])).toEqual([
      ["parse_error", "provider"],
      ["ok", "provider"],
      ["ok", "cache"],
    ]);
  });

  it("embeddings: a second embed of the same texts sends no request and is a cache row with the tokens it avoided", async () => {
    const store = new CacheStore({ db, ttlHours: 24, now });
    const embeddings = new CachedEmbeddings(embeddingsModel(server), { model: "text-embedding-3-small", provider: "openai", store });
    const texts = ["harbour strike ends", "a longer text about the city council budget vote", "rain"];
    const { runId, ledger } = await openRun(db);
    let first: number[][] = [];
    let second: number[][] = [];
    let mixed: number[][] = [];
    await inNode(ledger, async () => {
      first = await embeddings.embedDocuments(texts);
      second = await embeddings.embedDocuments(texts);
      mixed = await embeddings.embedDocuments(["rain", "snow"]);
      return [];
    });
    // The server bills ceil(length / 4) per text: 5 + 12 + 1 = 18, then "snow": 1.
    expect(server.requests.filter((r) => r.endpoint === "embeddings").map((r) => r.body.input)).toEqual([texts, ["snow"]]);
    expect(second).toEqual(first);
    expect(mixed[0]).toEqual(first[2]);
    const got = await callRows(db, runId);
    expect(got.map((r) => [r.kind, r.usageSource, r.inputTokens, r.totalTokens, r.costUsd, r.avoidedTotalTokens, r.avoidedCostUsd])).toEqual([
      ["embedding", "provider", 18, 18, "0.000000360000", null, null],
      ["embedding", "cache", 0, 0, "0.000000000000", 18, "0.000000360000"],
      ["embedding", "cache", 0, 0, "0.000000000000", 1, "0.000000020000"],
      ["embedding", "provider", 1, 1, "0.000000020000", null, null],
    ]);
    const keys = texts.map((x) => embeddings.keyOf(x));
    expect(got[0]!.cacheKey).toBe(keys.join(","));
    expect(got[1]!.cacheKey).toBe(keys.join(","));
    expect(got[2]!.cacheKey).toBe(keys[2]);
    expect(got[3]!.cacheKey).toBe(embeddings.keyOf("snow"));
    // The 18 billed tokens shared out by local token counts (4, 9, 1 with cl100k): 5, 12, 1.
    const entries = rows(await db.execute(sql`select key, (usage->>'input')::int as input from response_cache where kind = 'embedding'`));
    const byKey = new Map(entries.map((e) => [String(e.key), Number(e.input)]));
    expect(keys.map((k) => byKey.get(k))).toEqual([5, 12, 1]);
    const [node] = await nodeCosts(db, runId);
    expect(node).toMatchObject({ cache_hits: 2, avoided_tokens: 19, avoided_cost_usd: "0.000000380000" });
  });
});

it("splits billed tokens in proportion, to the exact total", () => {
  expect(apportion(18, [4, 10, 1])).toEqual([5, 12, 1]);
  expect(apportion(10, [1, 1, 1])).toEqual([4, 3, 3]);
  expect(apportion(0, [3, 2])).toEqual([0, 0]);
  expect(apportion(7, [])).toEqual([]);
});

it("reads core's cache key entries, commas inside values included, and leaves credentials out of the hash", () => {
  const key = `_model:"base_chat_model",apiKey:"sk-1",response_format:{"type":"json_schema","a":[1,2]},signal:{},temperature:0`;
  expect(llmKeyEntries(key).map(([k]) => k)).toEqual(["_model", "apiKey", "response_format", "signal", "temperature"]);
  expect(chatCacheKey("p", key)).toBe(chatCacheKey("p", key.replace("sk-1", "sk-2")));
  expect(chatCacheKey("p", key)).not.toBe(chatCacheKey("p", key.replace("temperature:0", "temperature:1")));
  expect(chatCacheKey("p", key)).not.toBe(chatCacheKey("q", key));
});
