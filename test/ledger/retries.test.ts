/**
 * C07: tokens billed by attempts that failed, RetryPolicy semantics, and the HTTP attempts the
 * client retries by itself (visible only through ledgerFetch).
 */
import { ContextOverflowError } from "@langchain/core/errors";
import { HumanMessage } from "@langchain/core/messages";
import { Annotation, END, START, StateGraph, type RetryPolicy } from "@langchain/langgraph";
import { ChatOpenAI } from "@langchain/openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/client";
import { BudgetExceededError } from "../../src/ledger/budget";
import { classifyError } from "../../src/ledger/errors";
import { retryOn } from "../../src/ledger/retry";
import { useOpenAIServer, type FakeOpenAI, type ScriptedReply } from "../helpers/openai-server";
import { callRows, chatModel, fixtureJson, nodeCosts, nodeRunRows, openRun, runCosts, describeBackends, useTestDb } from "./_harness";

const State = Annotation.Root({ summary: Annotation<string> });

const server = useOpenAIServer();

const attempts = fixtureJson("C07-attempts.json");
const replies = (sequence: any[]): ScriptedReply[] => sequence.map((s) => ({ status: s.status, headers: s.headers, json: s.body }));

/** Node `summarize` parses the reply with JSON.parse, as in the case. */
function parsingGraph(model: ChatOpenAI, retryPolicy: RetryPolicy) {
  return new StateGraph(State)
    .addNode(
      "summarize",
      async () => {
        const reply = await model.invoke([new HumanMessage("Summarise as JSON: the harbour reopened.")]);
        return { summary: JSON.parse(String(reply.content)).summary as string };
      },
      { retryPolicy },
    )
    .addEdge(START, "summarize")
    .addEdge("summarize", END)
    .compile();
}

const policy: RetryPolicy = { maxAttempts: 3, initialInterval: 100, backoffFactor: 2, jitter: false, retryOn, logWarning: false };

describeBackends("retries", (open) => {
  let db: Database;
  useTestDb(open, (opened) => (db = opened));

  describe("C07: retry tokens and RetryPolicy", () => {
    it("main: 200 non-JSON, 429, 200 JSON → 3 hits; parse_error 500/80, http_429 0/0, ok 500/60; retries 2, retry tokens 580", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", ...replies(attempts.sequence_main));
      const result = await parsingGraph(chatModel(server, { maxRetries: 0 }), policy).invoke({ summary: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();

      expect(result.summary).toBe("The harbour reopened after the storm.");
      expect(server.hits("chat")).toBe(3);
      const [t1, t2, t3] = server.requests.map((r) => r.at);
      // The policy's backoff, no jitter: at least 100 ms, then at least 200 ms (no upper bound: a loaded machine is slower, never faster).
      expect(t2! - t1!).toBeGreaterThanOrEqual(99);
      expect(t3! - t2!).toBeGreaterThanOrEqual(199);

      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.nodeAttempt, r.attempt, r.status, r.httpStatus, r.inputTokens, r.outputTokens, r.usageSource])).toEqual([
        [1, 1, "parse_error", 200, 500, 80, "provider"],
        [2, 1, "http_429", 429, 0, 0, "none"],
        [3, 1, "ok", 200, 500, 60, "provider"],
      ]);
      expect(rows[0]!.error).toMatch(/^node attempt failed: SyntaxError/);
      const nodes = await nodeRunRows(db, runId);
      expect(nodes.map((n) => [n.attempt, n.status])).toEqual([
        [1, "error"],
        [2, "error"],
        [3, "ok"],
      ]);
      expect(new Set(nodes.map((n) => n.taskNs)).size).toBe(1);
      expect(rows.map((r) => r.nodeRunId)).toEqual(nodes.map((n) => n.id));

      const [summarize] = await nodeCosts(db, runId);
      expect(summarize).toMatchObject({
        node: "summarize",
        node_attempts: 3,
        node_failed_attempts: 2,
        calls: 3,
        attempts: 3,
        retries: 2,
        input_tokens: 1000,
        output_tokens: 140,
        total_tokens: 1140,
        retry_tokens: 580,
      });
      const run = await runCosts(db, runId);
      expect([run.input_tokens, run.output_tokens, run.retry_tokens]).toEqual([1000, 140, 580]);
      // 500 × 0.15 + 80 × 0.60 per 1M were paid for nothing.
      expect(run.retry_cost_usd).toBe("0.000123000000");
      expect(ledger.spent().tokens).toBe(1140);
    });

    it("no_retry: 400 context_length_exceeded → 1 hit, the run ends context_overflow (retryOn refuses it)", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", ...replies(attempts.sequence_no_retry));
      let caught: unknown;
      try {
        await parsingGraph(chatModel(server), policy).invoke({ summary: "" }, { callbacks: [ledger.handler] });
      } catch (err) {
        caught = err;
      }
      await ledger.flush();
      expect(ContextOverflowError.isInstance(caught)).toBe(true);
      // The trap: LangChain's wrapper carries no status, so a status-based retryOn would retry it.
      expect((caught as { status?: unknown }).status).toBeUndefined();
      expect(classifyError(caught)).toMatchObject({ status: "context_overflow", httpStatus: 400 });
      expect(server.hits("chat")).toBe(1);
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.status, r.httpStatus, r.inputTokens, r.outputTokens, r.usageSource])).toEqual([["context_overflow", 400, 0, 0, "none"]]);
      expect((await nodeRunRows(db, runId)).map((n) => n.status)).toEqual(["error"]);
    });

    it("no_retry control: LangGraph's default retryOn retries the wrapped 400 (3 hits), which is why retryOn exists", async () => {
      const { ledger } = await openRun(db);
      const sequence = replies(attempts.sequence_no_retry);
      server.script("chat", ...sequence, ...sequence, ...sequence);
      const { retryOn: _ours, ...defaultPolicy } = policy;
      await expect(parsingGraph(chatModel(server), defaultPolicy).invoke({ summary: "" }, { callbacks: [ledger.handler] })).rejects.toThrow();
      await ledger.flush();
      expect(server.hits("chat")).toBe(3);
    });

    it("quota: 429 insufficient_quota → 1 hit, no retry, status quota, an alert", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", ...replies(attempts.sequence_quota));
      await expect(parsingGraph(chatModel(server), policy).invoke({ summary: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(/quota/);
      await ledger.flush();
      expect(server.hits("chat")).toBe(1);
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.status, r.httpStatus, r.totalTokens])).toEqual([["quota", 429, 0]]);
      expect(ledger.alerts().filter((a) => a.kind === "quota").length).toBe(1);
    });
  });

  it("timeout: a reply slower than the client's timeout is recorded as timeout, usage unknown (it may have been billed)", async () => {
    const { runId, ledger } = await openRun(db, { defaultMaxOutputTokens: 50 });
    server.script("chat", { delayMs: 1500, json: fixtureJson("C03-completion-cached-reasoning.json") });
    await expect(parsingGraph(chatModel(server, { timeout: 200 }), { ...policy, maxAttempts: 1 }).invoke({ summary: "" }, { callbacks: [ledger.handler] })).rejects.toThrow(
      /timed out/i,
    );
    await ledger.flush();
    const rows = await callRows(db, runId);
    expect(rows.map((r) => [r.status, r.httpStatus, r.usageSource, r.inputTokens])).toEqual([["timeout", null, "missing", null]]);
    expect(rows[0]!.estimatedInputTokens).toBeGreaterThan(0);
  });

  describe("HTTP attempts inside the client (maxRetries > 0)", () => {
    it("through ledgerFetch each hidden attempt is a row: 500 then 200 → attempt 1 http_500, attempt 2 ok", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", { status: 500, json: { error: { message: "upstream failed", type: "server_error", code: null } } });
      const graph = new StateGraph(State)
        .addNode("summarize", async () => {
          await chatModel(server, { maxRetries: 1 }).invoke([new HumanMessage("hi")]);
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await graph.invoke({ summary: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      expect(server.requests.map((r) => r.status)).toEqual([500, 200]);
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.attempt, r.nodeAttempt, r.status, r.httpStatus, r.totalTokens, r.usageSource])).toEqual([
        [1, 1, "http_500", 500, 0, "none"],
        [2, 1, "ok", 200, 110, "provider"],
      ]);
      expect(rows[0]!.id).toBe(`${rows[1]!.id}:1`);
      expect(rows[0]!.callId).toBe(rows[1]!.id);
      const [summarize] = await nodeCosts(db, runId);
      expect(summarize).toMatchObject({ node_attempts: 1, calls: 1, attempts: 2, retries: 1, total_tokens: 110, retry_tokens: 0 });
    }, 15_000);

    it("without ledgerFetch the client's retry is invisible: one row (why maxRetries stays low)", async () => {
      const { runId, ledger } = await openRun(db);
      server.script("chat", { status: 500, json: { error: { message: "upstream failed", type: "server_error", code: null } } });
      const plain = new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "sk-fake", maxRetries: 1, configuration: { baseURL: server.url } });
      const graph = new StateGraph(State)
        .addNode("summarize", async () => {
          await plain.invoke([new HumanMessage("hi")]);
          return {};
        })
        .addEdge(START, "summarize")
        .addEdge("summarize", END)
        .compile();
      await graph.invoke({ summary: "" }, { callbacks: [ledger.handler] });
      await ledger.flush();
      expect(server.hits("chat")).toBe(2);
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.attempt, r.status, r.httpStatus, r.totalTokens])).toEqual([[1, "ok", null, 110]]);
    }, 15_000);

    it("takes the response model from the first chunk when a duplicated finishing chunk doubles it (C08-f)", async () => {
      const { runId, ledger } = await openRun(db);
      const chunk = (choices: unknown[], extra: object = {}) =>
        `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "gpt-4o-mini-2024-07-18", choices, usage: null, ...extra })}\n\n`;
      const finish = chunk([{ index: 0, delta: {}, finish_reason: "stop" }]);
      const sse =
        chunk([{ index: 0, delta: { role: "assistant", content: "Ok" }, finish_reason: null }]) +
        finish +
        finish +
        chunk([], { usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 } }) +
        "data: [DONE]\n\n";
      let seenModelName: unknown;
      const run = async (model: ChatOpenAI) => {
        server.script("chat", { sse });
        const graph = new StateGraph(State)
          .addNode("summarize", async () => {
            const stream = await model.stream([new HumanMessage("hi")]);
            let last: any;
            for await (const c of stream) last = last ? last.concat(c) : c;
            seenModelName = last.response_metadata.model_name;
            return {};
          })
          .addEdge(START, "summarize")
          .addEdge("summarize", END)
          .compile();
        await graph.invoke({ summary: "" }, { callbacks: [ledger.handler] });
      };
      await run(chatModel(server));
      // LangChain concatenates the strings of both finishing chunks.
      expect(seenModelName).toBe("gpt-4o-mini-2024-07-18gpt-4o-mini-2024-07-18");
      // And without ledgerFetch the doubled name is cleaned before the lookup.
      await run(new ChatOpenAI({ model: "gpt-4o-mini", apiKey: "sk-fake", maxRetries: 0, configuration: { baseURL: server.url } }));
      await ledger.flush();
      const rows = await callRows(db, runId);
      expect(rows.map((r) => [r.model, r.priceStatus, r.costUsd, r.status])).toEqual([
        ["gpt-4o-mini-2024-07-18", "ok", "0.000021000000", "ok"],
        ["gpt-4o-mini-2024-07-18", "ok", "0.000021000000", "ok"],
      ]);
    });
  });
});

describe("retryOn", () => {
  const withStatus = (status: number, extra: object = {}) => Object.assign(new Error(`HTTP ${status}`), { status, ...extra });

  it("refuses permanent errors: 400–409, 413, 422, context overflow (even without a status), quota, budget, aborts", () => {
    for (const status of [400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 413, 422]) expect(retryOn(withStatus(status)), String(status)).toBe(false);
    expect(retryOn(ContextOverflowError.fromError(withStatus(400, { code: "context_length_exceeded" })))).toBe(false);
    expect(retryOn(new ContextOverflowError())).toBe(false);
    expect(retryOn(withStatus(429, { error: { code: "insufficient_quota", type: "insufficient_quota" } }))).toBe(false);
    expect(retryOn(Object.assign(new Error("You exceeded your current quota."), { name: "InsufficientQuotaError", status: 429 }))).toBe(false);
    expect(retryOn(new BudgetExceededError("run max tokens 10 reached"))).toBe(false);
    expect(retryOn(Object.assign(new Error("aborted"), { name: "AbortError" }))).toBe(false);
    expect(retryOn(Object.assign(new Error("x"), { name: "GraphValueError" }))).toBe(false);
  });

  it("retries what can succeed next time: 429 rate limits, 5xx, timeouts, connection errors, parse errors", () => {
    expect(retryOn(withStatus(429, { error: { code: "rate_limit_exceeded" } }))).toBe(true);
    expect(retryOn(Object.assign(withStatus(429), { name: "RateLimitCapacityError" }))).toBe(true);
    for (const status of [500, 502, 503, 504]) expect(retryOn(withStatus(status)), String(status)).toBe(true);
    expect(retryOn(Object.assign(new Error("Request timed out."), { name: "TimeoutError" }))).toBe(true);
    expect(retryOn(Object.assign(new Error("Connection error."), { name: "APIConnectionError" }))).toBe(true);
    expect(retryOn(new SyntaxError("Unexpected token S in JSON"))).toBe(true);
  });
});
