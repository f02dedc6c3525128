/**
 * The ledger handler through the real @langchain/openai ChatOpenAI / OpenAIEmbeddings (1.5.8)
 * against the local OpenAI-compatible server, on real StateGraphs and an in-memory PGlite.
 */
import { HumanMessage, SystemMessage, type AIMessageChunk } from "@langchain/core/messages";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/client";
import { modelPrices } from "../../src/db/schema";
import { isBudgetExceeded } from "../../src/ledger/budget";
import { LedgerWriteError } from "../../src/ledger/index";
import { costUnits, conservativeRate, formatUsd, ratesForEstimate } from "../../src/ledger/pricing";
import { countTextTokens, estimateMessagesTokens } from "../../src/ledger/tokens";
import { eq, and } from "drizzle-orm";
import { chatCompletion, startOpenAIServer, useOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";
import { trackEmbeddingCall } from "../../src/ledger/events";
import { Ledger } from "../../src/ledger/index";
import { callRows, chatModel, embeddingsModel, fixture, fixtureJson, nodeCosts, nodeRunRows, openRun, runCosts, describeBackends, useTestDb } from "./_harness";

const State = Annotation.Root({ text: Annotation<string> });
const PROMPT = [new SystemMessage("You summarise local news in one sentence."), new HumanMessage("The harbour reopened after the storm on Tuesday.")];

const server = useOpenAIServer();


/** One node `summarize` that calls the model; the graph is consumed with streamMode "messages". */
function summarizeGraph(model: ReturnType<typeof chatModel>) {
  return new StateGraph(State)
    .addNode("summarize", async () => {
      const reply = await model.invoke(PROMPT);
      return { text: String(reply.content) };
    })
    .addEdge(START, "summarize")
    .addEdge("summarize", END)
    .compile();
}

async function streamMessages(graph: ReturnType<typeof summarizeGraph>, callbacks: unknown[]) {
  const chunks: AIMessageChunk[] = [];
  for await (const [message] of await graph.stream({ text: "" }, { callbacks: callbacks as never, streamMode: "messages" })) {
    chunks.push(message as AIMessageChunk);
  }
  return chunks;
}

describeBackends("ledger handler", (open) => {
  let db: Database;
  useTestDb(open, (opened) => (db = opened));

async function priceIdOf(model: string, source = "user"): Promise<number> {
  const [row] = await db.select().from(modelPrices).where(and(eq(modelPrices.model, model), eq(modelPrices.source, source)));
  return row!.id;
}

  describe("C01: streaming usage", () => {
    it("with usage: exactly one row, summarize, 42/7/49 from the provider; the request asked for include_usage", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", { sse: fixture("C01-stream-with-usage.sse") });
      const chunks = await streamMessages(summarizeGraph(chatModel(server)), [ledger.handler]);
      await ledger.flush();

      expect(server.hits("chat")).toBe(1);
      expect(server.requests[0]!.text).toContain(`"stream_options":{"include_usage":true}`);
      // Exactly one streamed chunk carries usage: the sum over chunks is 49, not a multiple.
      const withUsage = chunks.filter((c) => c.usage_metadata !== undefined);
      expect(withUsage.length).toBe(1);
      expect(chunks.reduce((sum, c) => sum + (c.usage_metadata?.total_tokens ?? 0), 0)).toBe(49);

      const rows = await callRows(db, runId);
      expect(rows.length).toBe(1);
      expect(rows[0]).toMatchObject({
        node: "summarize",
        kind: "chat",
        inputTokens: 42,
        cachedInputTokens: 0,
        outputTokens: 7,
        reasoningTokens: 0,
        totalTokens: 49,
        usageSource: "provider",
        status: "ok",
        httpStatus: 200,
        streamed: true,
        model: "gpt-4o-mini-2024-07-18",
        requestModel: "gpt-4o-mini",
        priceStatus: "ok",
        // 42 × 0.15 + 7 × 0.60 per 1M
        costUsd: "0.000010500000",
        estimatedInputTokens: null,
        estimatedOutputTokens: null,
      });
      const run = await runCosts(db, runId);
      expect([run.calls, run.total_tokens, run.missing_usage_calls]).toEqual([1, 49, 0]);
      expect(ledger.spent()).toEqual({ tokens: 49, usd: "0.000010500000" });
    });

    it("no usage: a row with NULL tokens, usage_source missing and a local estimate; the budget keeps the reservation", async () => {
      const { runId, ledger } = await openRun(db, { defaultMaxOutputTokens: 256 });
      server.script("chat", { sse: fixture("C01-stream-no-usage.sse") });
      await streamMessages(summarizeGraph(chatModel(server)), [ledger.handler]);
      await ledger.flush();

      const rows = await callRows(db, runId);
      expect(rows.length).toBe(1);
      const estimatedIn = estimateMessagesTokens(PROMPT, "gpt-4o-mini");
      const estimatedOut = countTextTokens("Harbour reopens after storm.", "gpt-4o-mini");
      expect(estimatedIn).toBeGreaterThan(10);
      expect(estimatedOut).toBeGreaterThan(0);
      expect(rows[0]).toMatchObject({
        node: "summarize",
        inputTokens: null,
        cachedInputTokens: null,
        outputTokens: null,
        reasoningTokens: null,
        totalTokens: null,
        usageSource: "missing",
        estimatedInputTokens: estimatedIn,
        estimatedOutputTokens: estimatedOut,
        status: "ok",
        streamed: true,
        priceStatus: "no_usage",
        costUsd: null,
      });
      const run = await runCosts(db, runId);
      expect([run.calls, run.total_tokens, run.missing_usage_calls]).toEqual([1, 0, 1]);
      // Unknown usage is charged at what was reserved: the input estimate + the max output tokens.
      expect(ledger.spent().tokens).toBe(estimatedIn + 256);
      expect(ledger.alerts().map((a) => a.kind)).toEqual(["missing_usage"]);
    });

    it("cut stream (no finish, no [DONE]): status stream_interrupted, tokens NULL, estimate of what arrived", async () => {
      const { runId, ledger } = await openRun(db, { defaultMaxOutputTokens: 256 });
      server.script("chat", { sse: fixture("C01-stream-cut.sse") });
      await streamMessages(summarizeGraph(chatModel(server)), [ledger.handler]);
      await ledger.flush();

      const rows = await callRows(db, runId);
      expect(rows.length).toBe(1);
      expect(rows[0]).toMatchObject({
        status: "stream_interrupted",
        usageSource: "missing",
        inputTokens: null,
        outputTokens: null,
        totalTokens: null,
        estimatedInputTokens: estimateMessagesTokens(PROMPT, "gpt-4o-mini"),
        estimatedOutputTokens: countTextTokens("Harbour reopens", "gpt-4o-mini"),
        streamed: true,
        httpStatus: 200,
      });
      expect(ledger.spent().tokens).toBe(estimateMessagesTokens(PROMPT, "gpt-4o-mini") + 256);
      expect(ledger.alerts().map((a) => a.kind)).toEqual(["stream_interrupted"]);
    });

    it("connection cut mid-stream: the node fails, the row is stream_interrupted with an estimate", async () => {
      const { runId, ledger } = await openRun(db, { defaultMaxOutputTokens: 100 });
      server.script("chat", { sse: fixture("C01-stream-cut.sse"), destroy: true });
      await expect(streamMessages(summarizeGraph(chatModel(server)), [ledger.handler])).rejects.toThrow();
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.length).toBe(1);
      expect(rows[0]).toMatchObject({ status: "stream_interrupted", usageSource: "missing", inputTokens: null, streamed: true, httpStatus: 200 });
      expect(rows[0]!.estimatedInputTokens).toBe(estimateMessagesTokens(PROMPT, "gpt-4o-mini"));
      const [node] = await nodeRunRows(db, runId);
      expect(node).toMatchObject({ node: "summarize", status: "error", attempt: 1 });
    });
  });

  describe("C03: cached and reasoning tokens", () => {
    it("records every column from usage_metadata (cache_read, reasoning), priced 0.00272800", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", { json: fixtureJson("C03-completion-cached-reasoning.json") });
      const model = chatModel(server, { model: "o3-mini" });
      await summarizeGraph(model).invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();

      const rows = await callRows(db, runId);
      const [node] = await nodeRunRows(db, runId);
      expect(rows.length).toBe(1);
      const row = rows[0]!;
      expect(row).toEqual({
        id: row.callId,
        runId,
        callId: row.callId,
        nodeRunId: node!.id,
        node: "summarize",
        nodeAttempt: 1,
        attempt: 1,
        kind: "chat",
        provider: "openai",
        requestModel: "o3-mini",
        model: "o3-mini-2025-01-31",
        inputTokens: 2048,
        cachedInputTokens: 1536,
        outputTokens: 300,
        reasoningTokens: 256,
        totalTokens: 2348,
        usageSource: "provider",
        estimatedInputTokens: null,
        estimatedOutputTokens: null,
        status: "ok",
        httpStatus: 200,
        error: null,
        latencyMs: expect.any(Number),
        streamed: false,
        priceStatus: "ok",
        priceId: await priceIdOf("o3-mini-2025-01-31"),
        costUsd: "0.002728000000",
        providerCostUsd: null,
        // Not served from the response cache, and no cache on this model.
        avoidedInputTokens: null,
        avoidedOutputTokens: null,
        avoidedTotalTokens: null,
        avoidedCostUsd: null,
        cacheKey: null,
        startedAt: expect.any(Date),
        finishedAt: expect.any(Date),
      });
      expect(formatUsd(row.costUsd!)).toBe("0.00272800");
      expect(row.finishedAt.getTime()).toBeGreaterThanOrEqual(row.startedAt.getTime());
      expect(node).toMatchObject({ node: "summarize", attempt: 1, status: "ok", step: 1 });
      expect(node!.taskNs).toMatch(/^summarize:/);
    });

    it("keeps the provider's own cost (usage.cost, e.g. OpenRouter) beside ours, without a float", async () => {
      const { runId, ledger } = await openRun(db);
      const body = fixtureJson("C03-completion-cached-reasoning.json");
      server.script("chat", { raw: JSON.stringify(body).replace(`"total_tokens":2348`, `"total_tokens":2348,"cost":0.0027280000000000001`), headers: { "content-type": "application/json" } });
      await summarizeGraph(chatModel(server, { model: "o3-mini" })).invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      const [row] = await callRows(db, runId);
      // The literal has more digits than a double keeps; it was read from the JSON text, rounded at 12 decimals.
      expect(row).toMatchObject({ providerCostUsd: "0.002728000000", costUsd: "0.002728000000" });
    });
  });

  describe("C04: embeddings usage", () => {
    it("embedDocuments of 5 texts, batchSize 3: 2 rows, 512 + 311 = 823 input, 0 output, 0.00001646, attributed to the node", async () => {
      const { runId, ledger } = await openRun(db);
      const toBase64 = (json: any) => ({
        ...json,
        data: json.data.map((d: any) => ({ ...d, embedding: Buffer.from(new Float32Array(d.embedding).buffer).toString("base64") })),
      });
      server.script("embeddings", { json: toBase64(fixtureJson("C04-embeddings-batch1.json")) }, { json: toBase64(fixtureJson("C04-embeddings-batch2.json")) });
      const embeddings = embeddingsModel(server, { batchSize: 3 });
      let vectors: number[][] = [];
      const graph = new StateGraph(State)
        .addNode("embed", async () => {
          vectors = await embeddings.embedDocuments(["one", "two", "three", "four", "five"]);
          return {};
        })
        .addEdge(START, "embed")
        .addEdge("embed", END)
        .compile();
      await graph.invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();

      expect(vectors.length).toBe(5);
      expect(vectors[0]![0]).toBeCloseTo(0.0123, 6);
      expect(server.requests.map((r) => r.body.input.length)).toEqual([3, 2]);
      const rows = await callRows(db, runId);
      const [node] = await nodeRunRows(db, runId);
      expect(rows.length).toBe(2);
      expect(rows.map((r) => r.inputTokens).sort()).toEqual([311, 512]);
      for (const row of rows) {
        expect(row).toMatchObject({
          kind: "embedding",
          node: "embed",
          nodeRunId: node!.id,
          model: "text-embedding-3-small",
          outputTokens: 0,
          usageSource: "provider",
          status: "ok",
          httpStatus: 200,
          priceStatus: "ok",
        });
      }
      const costs = await nodeCosts(db, runId);
      expect(costs).toEqual([expect.objectContaining({ node: "embed", calls: 2, input_tokens: 823, output_tokens: 0, total_tokens: 823 })]);
      expect(formatUsd(costs[0]!.cost_usd)).toBe("0.00001646");
      expect(formatUsd((await runCosts(db, runId)).cost_usd)).toBe("0.00001646");
      expect(ledger.spent()).toEqual({ tokens: 823, usd: "0.000016460000" });
    });
  });

  describe("C05: nested runs and several handlers", () => {
    function nestedGraph(model: ReturnType<typeof chatModel>) {
      const inner = new StateGraph(State)
        .addNode("inner", async () => {
          await model.invoke([new HumanMessage("Enrich: harbour reopened.")]);
          return {};
        })
        .addEdge(START, "inner")
        .addEdge("inner", END)
        .compile();
      return new StateGraph(State)
        .addNode("summarize", async () => {
          await model.invoke([new HumanMessage("Summarise: harbour reopened.")]);
          return {};
        })
        .addNode("enrich", inner)
        .addEdge(START, "summarize")
        .addEdge("summarize", "enrich")
        .addEdge("enrich", END)
        .compile();
    }

    it("two ledgers (one on the graph run, one on the model) writing one table: 2 rows, 220 tokens, subgraph node kept", async () => {
      const { runId, ledger } = await openRun(db);
      // A second, independent ledger on the same run, attached to the model itself.
      const second = await Ledger.open({ db, runId, budget: {}, defaultMaxOutputTokens: 256 });
      const model = chatModel(server, { callbacks: [second.handler] });
      await nestedGraph(model).invoke({ text: "" }, { callbacks: [ledger.handler] });
      // The model-level ledger never saw the node runs; it writes last, and must not undo what the other knew.
      await ledger.flush();
      await second.flush();

      expect(server.hits("chat")).toBe(2);
      const rows = await callRows(db, runId);
      expect(rows.length).toBe(2);
      expect(new Set(rows.map((r) => r.callId)).size).toBe(2);
      expect(rows.map((r) => r.node)).toEqual(["summarize", "inner"]);
      expect(rows.map((r) => [r.inputTokens, r.outputTokens])).toEqual([
        [100, 10],
        [100, 10],
      ]);
      const nodes = await nodeRunRows(db, runId);
      expect(nodes.map((n) => n.node)).toEqual(["summarize", "enrich", "inner"]);
      const inner = nodes.find((n) => n.node === "inner")!;
      expect(inner.taskNs).toMatch(/^enrich:[^|]+\|inner:/);
      expect(rows[1]!.nodeRunId).toBe(inner.id);
      expect(rows[0]!.nodeRunId).toBe(nodes[0]!.id);
      const run = await runCosts(db, runId);
      expect([run.calls, run.total_tokens]).toEqual([2, 220]);
      expect(ledger.spent().tokens).toBe(220);
      expect(second.spent().tokens).toBe(220);
    });

    it("one ledger attached twice (the same handler, and a second handler instance on the model) counts each call once", async () => {
      const { runId, ledger } = await openRun(db);
      const model = chatModel(server, { callbacks: [ledger.createHandler()] });
      await nestedGraph(model).invoke({ text: "" }, { callbacks: [ledger.handler, ledger.handler] });
      await ledger.flush();
      expect(server.hits("chat")).toBe(2);
      expect((await callRows(db, runId)).length).toBe(2);
      expect((await nodeRunRows(db, runId)).map((n) => [n.node, n.attempt])).toEqual([
        ["summarize", 1],
        ["enrich", 1],
        ["inner", 1],
      ]);
      expect(ledger.spent().tokens).toBe(220);
      expect((await runCosts(db, runId)).total_tokens).toBe(220);
    });
  });

  describe("budget gate", () => {
    it("refuses a call before it is sent: the server sees nothing, nothing is billed, the halt reason names the figures", async () => {
      const { runId, ledger } = await openRun(db, { budget: { maxTokens: 50 }, defaultMaxOutputTokens: 256 });
      let caught: unknown;
      try {
        await summarizeGraph(chatModel(server)).invoke({ text: "" }, { callbacks: [ledger.handler] });
      } catch (err) {
        caught = err;
      }
      expect(isBudgetExceeded(caught)).toBe(true);
      expect(server.hits()).toBe(0);
      expect(await callRows(db, runId)).toEqual([]);
      const need = estimateMessagesTokens(PROMPT, "gpt-4o-mini") + 256;
      expect(ledger.haltReason).toBe(`run max tokens 50 reached: 0 spent, next summarize call needs ~${need}`);
      expect((caught as Error).message).toBe(ledger.haltReason);
      expect(ledger.spent()).toEqual({ tokens: 0, usd: "0.000000000000" });
      await ledger.flush();
      const [node] = await nodeRunRows(db, runId);
      expect(node).toMatchObject({ node: "summarize", status: "error" });
      expect(node!.error).toContain("BudgetExceededError");
    });

    it("lets calls through while they fit, refuses the first that would not, and stays halted", async () => {
      const { runId, ledger } = await openRun(db, { budget: { maxTokens: 150 } });
      const model = chatModel(server, { maxTokens: 64 });
      const graph = new StateGraph(State)
        .addNode("summarize", async () => {
          await model.invoke(PROMPT);
          await model.invoke(PROMPT);
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await expect(graph.invoke({ text: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(/run max tokens 150 reached/);
      const need = estimateMessagesTokens(PROMPT, "gpt-4o-mini") + 64;
      expect(need).toBeLessThanOrEqual(150);
      expect(ledger.haltReason).toBe(`run max tokens 150 reached: 110 spent, next summarize call needs ~${need}`);
      expect(server.hits()).toBe(1);
      expect(server.requests[0]!.body.max_tokens).toBe(64);
      await ledger.flush();
      const rows = await callRows(db, runId);
      // The first call was billed; its node attempt then failed, so its tokens count as wasted.
      expect(rows.map((r) => [r.status, r.totalTokens])).toEqual([["node_error", 110]]);
      expect((await runCosts(db, runId)).retry_tokens).toBe(110);
      // A halted run refuses every later call, even a small one.
      await expect(summarizeGraph(chatModel(server, { maxTokens: 1 })).invoke({ text: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(ledger.haltReason!);
      expect(server.hits()).toBe(1);
    });

    it("reserves an unknown model at the highest known rate, never 0 (max USD)", async () => {
      const { ledger } = await openRun(db, { budget: { maxUsd: 0.001 }, defaultMaxOutputTokens: 256 });
      const estimate = estimateMessagesTokens(PROMPT, "mystery-model");
      const conservative = costUnits({ inputTokens: estimate, outputTokens: 256 }, conservativeRate(ledger.book));
      // The same call to a known cheap model fits: gpt-4o-mini's own rates.
      const cheap = costUnits({ inputTokens: estimateMessagesTokens(PROMPT, "gpt-4o-mini"), outputTokens: 256 }, ratesForEstimate(ledger.book, "gpt-4o-mini", new Date()).rates);
      expect(cheap).toBeLessThan(1_000_000_000n);
      expect(conservative).toBeGreaterThan(1_000_000_000n);

      await summarizeGraph(chatModel(server)).invoke({ text: "" }, { callbacks: [ledger.handler] });
      expect(server.hits()).toBe(1);
      const spent = ledger.spent();
      await expect(summarizeGraph(chatModel(server, { model: "mystery-model" })).invoke({ text: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(
        `run max USD 0.001 reached: $${formatUsd(spent.usd)} spent, next summarize call needs ~$${formatUsd(conservative)} (${estimate + 256} tokens)`,
      );
      expect(server.hits()).toBe(1);
      await ledger.flush();
    });

    it("charges an unknown model's real usage at the conservative rate and records its cost as NULL", async () => {
      const { runId, ledger } = await openRun(db);
      await summarizeGraph(chatModel(server, { model: "mystery-model" })).invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      const [row] = await callRows(db, runId);
      expect(row).toMatchObject({ model: "mystery-model", priceStatus: "unknown_model", costUsd: null, priceId: null, inputTokens: 100, outputTokens: 10 });
      expect(ledger.unpricedModels()).toEqual(["mystery-model"]);
      expect(ledger.alerts().filter((a) => a.kind === "unknown_model").map((a) => a.model)).toEqual(["mystery-model"]);
      // The dearest rates of the book (shipped + fixture): o1 at 15.00 in / 60.00 out per 1M.
      expect(conservativeRate(ledger.book)).toEqual({ input: 1_500_000_000n, cachedInput: null, output: 6_000_000_000n });
      expect(ledger.spent().usd).toBe("0.002100000000"); // 100 × 15.00 + 10 × 60.00 per 1M
      const run = await runCosts(db, runId);
      expect([run.unpriced_calls, run.cost_usd]).toEqual([1, null]);
    });

    it("refuses an embeddings call before it is sent, as a BudgetExceededError the client does not retry", async () => {
      const { runId, ledger } = await openRun(db, { budget: { maxTokens: 10 } });
      // The client would retry a connection error twice, 1-4 s apart; a refusal must not be retried.
      const embeddings = embeddingsModel(server, { maxRetries: 2 });
      const text = "The harbour reopened after the storm; ferries run again from Tuesday.";
      const graph = new StateGraph(State)
        .addNode("embed", async () => {
          await embeddings.embedDocuments([text]);
          return {};
        })
        .addEdge(START, "embed")
        .addEdge("embed", END)
        .compile();
      const started = Date.now();
      let caught: unknown;
      try {
        await graph.invoke({ text: "" }, { callbacks: [ledger.handler] });
      } catch (err) {
        caught = err;
      }
      // Not retried with the client's backoff (seconds): refused once and done. A wide bound, for a loaded machine.
      expect(Date.now() - started).toBeLessThan(5000);
      expect(isBudgetExceeded(caught)).toBe(true);
      expect((caught as Error).message).toBe(`run max tokens 10 reached: 0 spent, next embed embedding call needs ~${countTextTokens(text, "text-embedding-3-small")}`);
      expect(server.hits()).toBe(0);
      await ledger.flush();
      expect(await callRows(db, runId)).toEqual([]);
    });
  });

  describe("buffering", () => {
    it("keeps rows when the database refuses them and writes them at a later flush; never twice", async () => {
      const { runId, ledger } = await openRun(db);
      // Make every write fail from now on, like a database that went away (rows are written in a transaction).
      let failing = true;
      const realTransaction = db.transaction.bind(db);
      (db as { transaction: unknown }).transaction = (...args: Parameters<typeof db.transaction>) => {
        if (failing) return Promise.reject(new Error("connection refused (simulated)"));
        return realTransaction(...args);
      };
      try {
        await summarizeGraph(chatModel(server)).invoke({ text: "" }, { callbacks: [ledger.handler] });
        expect(server.hits()).toBe(1);
        await expect(ledger.flush()).rejects.toThrow(LedgerWriteError);
        await expect(ledger.flush()).rejects.toThrow(/2 ledger row\(s\) for run .* could not be written after 3 attempt\(s\): Error: connection refused \(simulated\)/);
        expect(ledger.alerts().map((a) => a.kind)).toEqual(["write_failed"]);
        failing = false;
        await ledger.flush();
      } finally {
        (db as { transaction: unknown }).transaction = realTransaction;
      }
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.node, r.totalTokens, r.status])).toEqual([["summarize", 110, "ok"]]);
      expect((await nodeRunRows(db, runId)).map((n) => n.status)).toEqual(["ok"]);
    });
  });

  describe("concurrency", () => {
    it("parallel branches: each call belongs to its own node attempt", async () => {
      const { runId, ledger } = await openRun(db);
      server.respondWith("chat", (body) => chatCompletion({ usage: { prompt: JSON.stringify(body).includes("alpha") ? 111 : 222, completion: 1 } }));
      const model = chatModel(server);
      const graph = new StateGraph(State)
        .addNode("a", async () => {
          await model.invoke([new HumanMessage("alpha")]);
          return {};
        })
        .addNode("b", async () => {
          await model.invoke([new HumanMessage("beta")]);
          return {};
        })
        .addEdge(START, "a")
        .addEdge(START, "b")
        .addEdge("a", END)
        .addEdge("b", END)
        .compile();
      await graph.invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      const rows = await callRows(db, runId);
      const nodes = await nodeRunRows(db, runId);
      const byNode = Object.fromEntries(rows.map((r) => [r.node, r]));
      expect(Object.keys(byNode).sort()).toEqual(["a", "b"]);
      expect(byNode.a!.inputTokens).toBe(111);
      expect(byNode.b!.inputTokens).toBe(222);
      expect(byNode.a!.nodeRunId).toBe(nodes.find((n) => n.node === "a")!.id);
      expect(byNode.b!.nodeRunId).toBe(nodes.find((n) => n.node === "b")!.id);
    });

    it("two calls in flight in one node, one retried by the client: the hidden attempt is matched to its own call", async () => {
      const { runId, ledger } = await openRun(db);
      let alphaFailures = 1;
      server.respondWith("chat", (body) => {
        const alpha = JSON.stringify(body).includes("alpha");
        if (alpha && alphaFailures-- > 0) return { status: 503, json: { error: { message: "overloaded", type: "server_error", code: null } } };
        return chatCompletion({ usage: { prompt: alpha ? 111 : 222, completion: 1 }, content: alpha ? "A" : "B" });
      });
      const model = chatModel(server, { maxRetries: 1 });
      const graph = new StateGraph(State)
        .addNode("summarize", async () => {
          await Promise.all([model.invoke([new HumanMessage("alpha")]), model.invoke([new HumanMessage("beta")])]);
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await graph.invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.length).toBe(3);
      const hidden = rows.find((r) => r.status === "http_503")!;
      expect(hidden).toMatchObject({ attempt: 1, httpStatus: 503, totalTokens: 0, usageSource: "none" });
      const sameCall = rows.filter((r) => r.callId === hidden.callId);
      expect(sameCall.map((r) => [r.attempt, r.status, r.inputTokens])).toEqual([
        [1, "http_503", 0],
        [2, "ok", 111],
      ]);
      const other = rows.filter((r) => r.callId !== hidden.callId);
      expect(other.map((r) => [r.attempt, r.status, r.inputTokens])).toEqual([[1, "ok", 222]]);
    }, 15_000);

    function twoParallelCalls(model: ReturnType<typeof chatModel>) {
      return new StateGraph(State)
        .addNode("a", async () => {
          await model.invoke([new HumanMessage("alpha")]);
          return {};
        })
        .addNode("b", async () => {
          await model.invoke([new HumanMessage("alpha")]);
          return {};
        })
        .addEdge(START, "a")
        .addEdge(START, "b")
        .addEdge("a", END)
        .addEdge("b", END)
        .compile();
    }

    it("makes a call that fits only after a call in flight settles wait for it, then runs it", async () => {
      const { runId, ledger } = await openRun(db, { budget: { maxTokens: 80 } });
      server.respondWith("chat", () => chatCompletion({ usage: { prompt: 20, completion: 5 } }));
      const model = chatModel(server, { maxTokens: 40 });
      const need = estimateMessagesTokens([new HumanMessage("alpha")], "gpt-4o-mini") + 40;
      expect(need).toBeLessThanOrEqual(80);
      expect(2 * need).toBeGreaterThan(80);
      await twoParallelCalls(model).invoke({ text: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      // Both reservations did not fit at once; the second waited for the first (25 tokens) and then fit.
      expect(server.hits()).toBe(2);
      expect((await callRows(db, runId)).map((r) => [r.status, r.totalTokens])).toEqual([
        ["ok", 25],
        ["ok", 25],
      ]);
      expect(ledger.spent().tokens).toBe(50);
      expect(ledger.haltReason).toBeNull();
    });

    it("refuses the waiting call once what was spent leaves no room for it", async () => {
      const { runId, ledger } = await openRun(db, { budget: { maxTokens: 80 } });
      const model = chatModel(server, { maxTokens: 40 });
      const need = estimateMessagesTokens([new HumanMessage("alpha")], "gpt-4o-mini") + 40;
      // The server bills 110 for the first call, more than its estimate: the second is never sent.
      await expect(twoParallelCalls(model).invoke({ text: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(
        new RegExp(`^run max tokens 80 reached: 110 spent, next [ab] call needs ~${need}$`),
      );
      await ledger.flush();
      expect(server.hits()).toBe(1);
      const rows = await callRows(db, runId);
      expect(rows.map((r) => r.totalTokens)).toEqual([110]);
      expect(["ok", "node_error"]).toContain(rows[0]!.status);
    });
  });

  describe("sums and attribution", () => {
    it("the rows add up to exactly what the server billed (random usage with cached and reasoning detail, JSON and SSE)", async () => {
      const random = await startOpenAIServer({ usage: "random", seed: 7 });
      try {
        const { runId, ledger } = await openRun(db);
        const model = chatModel(random);
        const graph = new StateGraph(State)
          .addNode("summarize", async () => {
            for (let i = 0; i < 3; i++) await model.invoke([new HumanMessage(`article ${i}`)]);
            return {};
          })
          .addNode("social", async () => {
            for (let i = 0; i < 2; i++) {
              for await (const _chunk of await model.stream([new HumanMessage(`post ${i}`)])) {
                /* consume */
              }
            }
            return {};
          })
          .addEdge(START, "summarize")
          .addEdge("summarize", "social")
          .addEdge("social", END)
          .compile();
        await graph.invoke({ text: "" }, { callbacks: [ledger.handler] });
        await ledger.flush();
        const billed = random.billed("chat");
        expect(random.hits("chat")).toBe(5);
        expect(billed.cached).toBeGreaterThan(0);
        expect(billed.reasoning).toBeGreaterThan(0);
        const rows = await callRows(db, runId);
        const sum = (k: "inputTokens" | "cachedInputTokens" | "outputTokens" | "reasoningTokens" | "totalTokens") => rows.reduce((n, r) => n + (r[k] ?? 0), 0);
        expect({ input: sum("inputTokens"), cached: sum("cachedInputTokens"), output: sum("outputTokens"), reasoning: sum("reasoningTokens"), total: sum("totalTokens") }).toEqual(billed);
        expect(rows.map((r) => [r.node, r.streamed])).toEqual([
          ["summarize", false],
          ["summarize", false],
          ["summarize", false],
          ["social", true],
          ["social", true],
        ]);
        const run = await runCosts(db, runId);
        expect([run.input_tokens, run.cached_input_tokens, run.output_tokens, run.reasoning_tokens, run.total_tokens]).toEqual([
          billed.input,
          billed.cached,
          billed.output,
          billed.reasoning,
          billed.total,
        ]);
        expect(ledger.spent().tokens).toBe(billed.total);
      } finally {
        await random.close();
      }
    });

    it("a model inside prompt.pipe(model) is attributed to the node attempt, not to the sequence", async () => {
      const { ChatPromptTemplate } = await import("@langchain/core/prompts");
      const { runId, ledger } = await openRun(db);
      const chain = ChatPromptTemplate.fromMessages([["human", "Summarise: {text}"]]).pipe(chatModel(server));
      const graph = new StateGraph(State)
        .addNode("summarize", async (state) => {
          await chain.invoke({ text: state.text });
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await graph.invoke({ text: "harbour" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      const [row] = await callRows(db, runId);
      const [node] = await nodeRunRows(db, runId);
      expect(row).toMatchObject({ node: "summarize", nodeRunId: node!.id, attempt: 1, httpStatus: 200, totalTokens: 110 });
      expect(server.requests[0]!.body.messages).toEqual([{ role: "user", content: "Summarise: harbour" }]);
    });
  });

  describe("trackEmbeddingCall (offline providers and other direct callers)", () => {
    it("records a batch made without HTTP, priced from the table (the offline model at 0)", async () => {
      const { runId, ledger } = await openRun(db);
      const graph = new StateGraph(State)
        .addNode("embed", async () => {
          const value = await trackEmbeddingCall({ model: "offline-hash-embed-1", provider: "offline", estimatedInputTokens: 7 }, async () => ({
            value: [[0.1, 0.2]],
            inputTokens: 7,
            responseModel: "offline-hash-embed-1",
          }));
          return { text: String(value.length) };
        })
        .addEdge(START, "embed")
        .addEdge("embed", END)
        .compile();
      expect((await graph.invoke({ text: "" }, { callbacks: [ledger.handler] })).text).toBe("1");
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.kind, r.node, r.provider, r.model, r.inputTokens, r.outputTokens, r.status, r.priceStatus, r.costUsd])).toEqual([
        ["embedding", "embed", "offline", "offline-hash-embed-1", 7, 0, "ok", "ok", "0.000000000000"],
      ]);
    });

    it("records a failed batch with its class and status, and rethrows the error", async () => {
      const { runId, ledger } = await openRun(db);
      const graph = new StateGraph(State)
        .addNode("embed", async () => {
          await trackEmbeddingCall({ model: "text-embedding-3-small", provider: "openai", estimatedInputTokens: 5 }, async () => {
            throw Object.assign(new Error("Service Unavailable"), { status: 503 });
          });
          return {};
        })
        .addEdge(START, "embed")
        .addEdge("embed", END)
        .compile();
      await expect(graph.invoke({ text: "" }, { callbacks: [ledger.handler] })).rejects.toThrow("Service Unavailable");
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.status, r.httpStatus, r.inputTokens, r.usageSource])).toEqual([["http_503", 503, 0, "none"]]);
    });

    it("outside any run it just makes the call", async () => {
      await expect(trackEmbeddingCall({ model: "m", provider: "p", estimatedInputTokens: 1 }, async () => ({ value: 42, inputTokens: 1 }))).resolves.toBe(42);
    });
  });

  describe("the handler's settings", () => {
    it("awaits its handlers and raises (for the gate) even when the environment asks for background callbacks", async () => {
      const previous = process.env.LANGCHAIN_CALLBACKS_BACKGROUND;
      process.env.LANGCHAIN_CALLBACKS_BACKGROUND = "true";
      try {
        const { ledger } = await openRun(db);
        expect(ledger.handler.awaitHandlers).toBe(true);
        expect(ledger.handler.raiseError).toBe(true);
        const copy = ledger.handler.copy();
        expect(copy.recorder).toBe(ledger.handler.recorder);
        expect(copy.awaitHandlers).toBe(true);
      } finally {
        process.env.LANGCHAIN_CALLBACKS_BACKGROUND = previous;
      }
    });

    it("refuses to open on a run that does not exist, and on a bad price file", async () => {
      await expect(Ledger.open({ db, runId: "no-such-run", defaultMaxOutputTokens: 10 })).rejects.toThrow("Ledger.open: no run no-such-run; call startRun first");
      await expect(openRun(db, { pricesFile: "/nonexistent.json" })).rejects.toThrow(/NEWSLEDGER_PRICES \/nonexistent.json: cannot read it/);
    });
  });
});
