/**
 * Nodes that keep their results (node metadata keepsResults()): a failed attempt leaves the calls
 * whose results the node kept ok, and only the replies it rejected (rejectReply) are wasted.
 * Nodes that do not declare it keep the C07 behaviour (see retries.test.ts). Also: HTTP attempts
 * of streamed calls, which run with no runnable config in scope, still become one row each.
 */
import { HumanMessage, type AIMessage, type AIMessageChunk } from "@langchain/core/messages";
import { Annotation, END, START, StateGraph, type RetryPolicy } from "@langchain/langgraph";
import type { ChatOpenAI } from "@langchain/openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/client";
import { KEEPS_RESULTS_METADATA, keepsResults, rejectReply } from "../../src/ledger/index";
import { retryOn } from "../../src/ledger/retry";
import { completeJson, ModelReplyError } from "../../src/llm/reply";
import { z } from "zod";
import { useOpenAIServer, type FakeOpenAI, type ScriptedReply } from "../helpers/openai-server";
import { callRows, chatModel, nodeCosts, nodeRunRows, openRun, runCosts, describeBackends, useTestDb } from "./_harness";

const State = Annotation.Root({ done: Annotation<string[]> });
const policy: RetryPolicy = { maxAttempts: 3, initialInterval: 20, backoffFactor: 2, jitter: false, retryOn, logWarning: false };

/** Tokens per item: distinct, so each sum names the calls it contains. */
const USAGE: Record<string, { prompt: number; completion: number }> = {
  alpha: { prompt: 100, completion: 10 },
  beta: { prompt: 200, completion: 20 },
  gamma: { prompt: 300, completion: 30 },
};

const itemOf = (body: any): string => {
  const last = body?.messages?.at(-1)?.content;
  return typeof last === "string" ? last.replace(/^item /, "") : "?";
};

/** A reply in the request's mode (JSON, or SSE with a usage chunk), with the given id. */
function reply(body: any, content: string, usage: { prompt: number; completion: number }, id: string): ScriptedReply {
  const u = { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion };
  const model = "gpt-4o-mini-2024-07-18";
  if (!body?.stream) {
    return {
      json: {
        id,
        object: "chat.completion",
        created: 1730000000,
        model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage: u,
      },
    };
  }
  const chunk = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 1730000000, model, choices, usage: null, ...extra })}\n\n`;
  return {
    sse:
      chunk([{ index: 0, delta: { role: "assistant", content }, finish_reason: null }]) +
      chunk([{ index: 0, delta: {}, finish_reason: "stop" }]) +
      chunk([], { usage: u }) +
      "data: [DONE]\n\n",
  };
}

async function ask(model: ChatOpenAI, item: string, stream: boolean): Promise<AIMessage | AIMessageChunk> {
  const messages = [new HumanMessage(`item ${item}`)];
  if (!stream) return model.invoke(messages);
  let acc: AIMessageChunk | undefined;
  for await (const c of await model.stream(messages)) acc = acc ? acc.concat(c) : c;
  return acc!;
}

/**
 * Node `summarize` asks for every item not done yet, concurrently, keeps each parsed reply at
 * once (in `store`, standing for the database), and fails after the others finished if one
 * failed — as the app's stages do. A reply that does not parse is reported with rejectReply.
 */
function itemsGraph(model: ChatOpenAI, options: { keeps: boolean; stream: boolean; store: Map<string, unknown> }) {
  const items = ["alpha", "beta", "gamma"];
  const node = async () => {
    const results = await Promise.allSettled(
      items
        .filter((item) => !options.store.has(item))
        .map(async (item) => {
          const message = await ask(model, item, options.stream);
          try {
            options.store.set(item, JSON.parse(message.text));
          } catch (err) {
            await rejectReply(message, err);
            throw err;
          }
        }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return { done: [...options.store.keys()] };
  };
  return new StateGraph(State)
    .addNode("summarize", node, options.keeps ? { retryPolicy: policy, metadata: keepsResults() } : { retryPolicy: policy })
    .addEdge(START, "summarize")
    .addEdge("summarize", END)
    .compile();
}

const server = useOpenAIServer();

/** Rows as [node attempt, attempt, status, total tokens, item (named by its tokens)], in a stable order. */
async function summary(db: Database, runId: string) {
  const itemByTokens: Record<number, string> = { 110: "alpha", 220: "beta", 330: "gamma" };
  return (await callRows(db, runId))
    .map((r) => [r.nodeAttempt, r.attempt, r.status, r.totalTokens, itemByTokens[r.totalTokens ?? -1] ?? "-"] as const)
    .sort((a, b) => a[0] - b[0] || a[4].localeCompare(b[4]) || a[1] - b[1]);
}

describeBackends("nodes that keep their results", (open) => {
  let db: Database;
  useTestDb(open, (opened) => (db = opened));

  it("exports the node-metadata declaration", () => {
    expect(keepsResults()).toEqual({ [KEEPS_RESULTS_METADATA]: true });
  });

  describe.each([
    ["invoke", false],
    ["stream", true],
  ])("a reply that does not parse (%s)", (_mode, stream) => {
    it("3 calls, the 3rd rejected: the retry redoes only the 3rd; 4 rows, two ok, the rejected one parse_error, retry tokens exactly its tokens", async () => {
      const { runId, ledger } = await openRun(db);
      let gammaReplies = 0;
      // The provider repeats one response id for every reply: the call is still found by the node attempt and the text.
      server.respondWith("chat", (body) => {
        const item = itemOf(body);
        const bad = item === "gamma" && gammaReplies++ === 0;
        return reply(body, bad ? "Sure! Here is your summary." : JSON.stringify({ summary: item }), USAGE[item]!, "chatcmpl-same-id");
      });
      const store = new Map<string, unknown>();
      const result = await itemsGraph(chatModel(server), { keeps: true, stream, store }).invoke({ done: [] }, { callbacks: [ledger.handler] });
      await ledger.flush();

      expect(result.done.sort()).toEqual(["alpha", "beta", "gamma"]);
      expect(server.hits("chat")).toBe(4);
      expect(await summary(db, runId)).toEqual([
        [1, 1, "ok", 110, "alpha"],
        [1, 1, "ok", 220, "beta"],
        [1, 1, "parse_error", 330, "gamma"],
        [2, 1, "ok", 330, "gamma"],
      ]);
      const rejected = (await callRows(db, runId)).find((r) => r.status === "parse_error")!;
      expect(rejected.error).toMatch(/^reply rejected: SyntaxError/);
      const nodes = await nodeRunRows(db, runId);
      expect(nodes.map((n) => [n.attempt, n.status, n.keepsResults])).toEqual([
        [1, "error", true],
        [2, "ok", true],
      ]);
      const [node] = await nodeCosts(db, runId);
      expect(node).toMatchObject({ node: "summarize", node_attempts: 2, node_failed_attempts: 1, calls: 4, total_tokens: 990, retry_tokens: 330 });
      const run = await runCosts(db, runId);
      expect([run.calls, run.total_tokens, run.retry_tokens]).toEqual([4, 990, 330]);
      // 300 × 0.15 + 30 × 0.60 per 1M were paid for nothing.
      expect(run.retry_cost_usd).toBe("0.000063000000");
      expect(ledger.problems()).toEqual([]);
    });
  });

  it("an undeclared node keeps the C07 behaviour: the failed attempt's ok calls are wasted too (parse_error, as its error was a SyntaxError)", async () => {
    const { runId, ledger } = await openRun(db);
    let gammaReplies = 0;
    server.respondWith("chat", (body) => {
      const item = itemOf(body);
      const bad = item === "gamma" && gammaReplies++ === 0;
      return reply(body, bad ? "not JSON" : JSON.stringify({ summary: item }), USAGE[item]!, `chatcmpl-${item}-${gammaReplies}`);
    });
    await itemsGraph(chatModel(server), { keeps: false, stream: false, store: new Map() }).invoke({ done: [] }, { callbacks: [ledger.handler] });
    await ledger.flush();
    expect(await summary(db, runId)).toEqual([
      [1, 1, "parse_error", 110, "alpha"],
      [1, 1, "parse_error", 220, "beta"],
      [1, 1, "parse_error", 330, "gamma"],
      [2, 1, "ok", 330, "gamma"],
    ]);
    expect((await nodeRunRows(db, runId)).map((n) => n.keepsResults)).toEqual([false, false]);
    expect((await runCosts(db, runId)).retry_tokens).toBe(660);
  });

  describe.each([
    ["invoke", false],
    ["stream", true],
  ])("a 429 inside the node (%s)", (_mode, stream) => {
    it("leaves the calls that finished before it ok: the 429 row costs 0, retry tokens 0", async () => {
      const { runId, ledger } = await openRun(db);
      let gammaRequests = 0;
      server.respondWith("chat", (body) => {
        const item = itemOf(body);
        // A 429 without Retry-After: the client does not retry it, the node's RetryPolicy does.
        if (item === "gamma" && gammaRequests++ === 0) {
          return { status: 429, delayMs: 50, json: { error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" } } };
        }
        return reply(body, JSON.stringify({ summary: item }), USAGE[item]!, `chatcmpl-${item}`);
      });
      const store = new Map<string, unknown>();
      await itemsGraph(chatModel(server), { keeps: true, stream, store }).invoke({ done: [] }, { callbacks: [ledger.handler] });
      await ledger.flush();

      expect(server.requests.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);
      expect(await summary(db, runId)).toEqual([
        [1, 1, "http_429", 0, "-"],
        [1, 1, "ok", 110, "alpha"],
        [1, 1, "ok", 220, "beta"],
        [2, 1, "ok", 330, "gamma"],
      ]);
      const run = await runCosts(db, runId);
      expect([run.calls, run.total_tokens, run.retry_tokens, run.retry_cost_usd]).toEqual([4, 660, 0, "0.000000000000"]);
      const [node] = await nodeCosts(db, runId);
      expect(node).toMatchObject({ node_attempts: 2, node_failed_attempts: 1, retry_tokens: 0 });
    });
  });

  it.each([false, true])("completeJson (stream %s) reports the reply it could not parse, then throws ModelReplyError", async (stream) => {
    const { runId, ledger } = await openRun(db);
    let replies = 0;
    server.respondWith("chat", (body) => reply(body, replies++ === 0 ? "{\"summary\": \"\"}" : JSON.stringify({ summary: "ok" }), USAGE.alpha!, `chatcmpl-${replies}`));
    const schema = z.object({ summary: z.string().min(1) });
    const model = chatModel(server);
    const graph = new StateGraph(State)
      .addNode(
        "summarize",
        async () => {
          await completeJson(model, [new HumanMessage("item alpha")], schema, "summary of alpha", { stream });
          return {};
        },
        { metadata: keepsResults() },
      )
      .addEdge(START, "summarize")
      .addEdge("summarize", END)
      .compile();
    await expect(graph.invoke({ done: [] }, { callbacks: [ledger.handler] })).rejects.toThrow(ModelReplyError);
    await ledger.flush();
    const rows = await callRows(db, runId);
    expect(rows.map((r) => [r.status, r.totalTokens, r.streamed])).toEqual([["parse_error", 110, stream]]);
    expect(rows[0]!.error).toMatch(/^reply rejected: ModelReplyError: summary of alpha: the reply does not match/);
    expect(ledger.problems()).toEqual([]);
  });

  describe("streamed calls retried inside the client", () => {
    it("two streams in flight in one node, one retried after a 500: the hidden attempt is its own row on its own call", async () => {
      const { runId, ledger } = await openRun(db);
      let alphaFailures = 1;
      server.respondWith("chat", (body) => {
        const item = itemOf(body);
        if (item === "alpha" && alphaFailures-- > 0) return { status: 500, json: { error: { message: "upstream broke", type: "server_error", code: null } } };
        return reply(body, JSON.stringify({ summary: item }), USAGE[item]!, `chatcmpl-${item}`);
      });
      const model = chatModel(server, { maxRetries: 1 });
      const graph = new StateGraph(State)
        .addNode("summarize", async () => {
          await Promise.all([ask(model, "alpha", true), ask(model, "beta", true)]);
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await graph.invoke({ done: [] }, { callbacks: [ledger.handler] });
      await ledger.flush();

      expect(server.requests.map((r) => [itemOf(r.body), r.status, r.body.stream]).sort()).toEqual([
        ["alpha", 200, true],
        ["alpha", 500, true],
        ["beta", 200, true],
      ]);
      const rows = await callRows(db, runId);
      expect(rows.length).toBe(3);
      const hidden = rows.find((r) => r.status === "http_500")!;
      expect(hidden).toMatchObject({ attempt: 1, httpStatus: 500, totalTokens: 0, usageSource: "none", streamed: true });
      expect(rows.filter((r) => r.callId === hidden.callId).map((r) => [r.attempt, r.status, r.totalTokens])).toEqual([
        [1, "http_500", 0],
        [2, "ok", 110],
      ]);
      expect(rows.filter((r) => r.callId !== hidden.callId).map((r) => [r.attempt, r.status, r.totalTokens])).toEqual([[1, "ok", 220]]);
      expect(ledger.problems()).toEqual([]);
    }, 15_000);

    it("two runs streaming at once: each run's client retries land in its own ledger", async () => {
      const a = await openRun(db);
      const b = await openRun(db);
      const failOnce = new Set(["alpha", "beta"]);
      server.respondWith("chat", (body) => {
        const item = itemOf(body);
        if (failOnce.delete(item)) return { status: 503, json: { error: { message: "overloaded", type: "server_error", code: null } } };
        return reply(body, JSON.stringify({ summary: item }), USAGE[item]!, `chatcmpl-${item}`);
      });
      const graphFor = (item: string) =>
        new StateGraph(State)
          .addNode("summarize", async () => {
            await ask(chatModel(server, { maxRetries: 1 }), item, true);
            return {};
          })
          .addEdge(START, "summarize")
          .addEdge("summarize", END)
          .compile();
      await Promise.all([
        graphFor("alpha").invoke({ done: [] }, { callbacks: [a.ledger.handler] }),
        graphFor("beta").invoke({ done: [] }, { callbacks: [b.ledger.handler] }),
      ]);
      await a.ledger.flush();
      await b.ledger.flush();
      expect(server.hits("chat")).toBe(4);
      for (const [{ runId }, tokens] of [
        [a, 110],
        [b, 220],
      ] as const) {
        const rows = await callRows(db, runId);
        expect(rows.map((r) => [r.attempt, r.status, r.totalTokens])).toEqual([
          [1, "http_503", 0],
          [2, "ok", tokens],
        ]);
      }
    }, 15_000);
  });
});
