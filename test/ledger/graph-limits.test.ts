/**
 * Cases C20 (recursion limit) and C22 (checkpointer without a thread id), through the real
 * ChatOpenAI client against the local server, with the ledger attached.
 */
import { Annotation, END, GraphRecursionError, MemorySaver, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outcomeOfError } from "../../src/app/outcome";
import { runThread, ThreadIdRequiredError } from "../../src/app/thread";
import type { OpenedDatabase } from "../../src/db/client";
import { openCheckpointer } from "../../src/db/checkpointer";
import { finishRun } from "../../src/ledger/runs";
import { memoryDb } from "../helpers/db";
import { startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";
import { callRows, chatModel, openRun, runCosts } from "./_harness";

const LoopState = Annotation.Root({ turns: Annotation<number> });

describe("C20: the recursion limit", () => {
  let server: FakeOpenAI;
  let opened: OpenedDatabase;
  beforeAll(async () => {
    server = await startOpenAIServer({ fixed: { prompt: 100, completion: 10 } });
    opened = await memoryDb();
  });
  afterAll(async () => {
    await opened.close();
    await server.close();
  });

  it("stops the loop with GraphRecursionError; every node saw the same limit; every call is recorded and charged", async () => {
    const { runId, ledger } = await openRun(opened.db, { budget: { maxTokens: 100_000 } });
    const model = chatModel(server);
    const seen: number[] = [];
    let published = false;
    const graph = new StateGraph(LoopState)
      .addNode("summarize", async (s, config) => {
        seen.push((config as unknown as { recursionLimit: number }).recursionLimit);
        await model.invoke("summarize the harbour story");
        return { turns: s.turns + 1 };
      })
      .addNode("judge", async (_s, config) => {
        seen.push((config as unknown as { recursionLimit: number }).recursionLimit);
        return {};
      })
      .addNode("publish", async () => {
        published = true;
        return {};
      })
      .addEdge(START, "summarize")
      .addEdge("summarize", "judge")
      .addConditionalEdges("judge", () => "summarize" as const, ["summarize", "publish"])
      .addEdge("publish", END)
      .compile();

    const error = await graph.invoke({ turns: 0 }, { callbacks: [ledger.handler], recursionLimit: 8 }).catch((e: unknown) => e);
    await ledger.flush();
    expect(error).toBeInstanceOf(GraphRecursionError);
    expect((error as { lc_error_code?: string }).lc_error_code).toBe("GRAPH_RECURSION_LIMIT");
    expect(new Set(seen)).toEqual(new Set([8]));
    expect(published).toBe(false);

    const outcome = outcomeOfError(error);
    expect(outcome.status).toBe("halted");
    expect(outcome.haltReason).toMatch(/^recursion_limit: /);
    await finishRun(opened.db, runId, outcome);

    const calls = await callRows(opened.db, runId);
    expect(server.hits()).toBe(4);
    expect(calls).toHaveLength(4);
    expect(ledger.spent().tokens).toBe(440);
    const run = await runCosts(opened.db, runId);
    expect(run.status).toBe("halted");
    expect(Number(run.total_tokens)).toBe(440);
  });
});

const OneCall = Annotation.Root({ summary: Annotation<string> });

describe("C22: a checkpointed graph needs a thread id", () => {
  let server: FakeOpenAI;
  let opened: OpenedDatabase;
  beforeAll(async () => {
    server = await startOpenAIServer({ fixed: { prompt: 20, completion: 5 } });
    opened = await memoryDb();
  });
  afterAll(async () => {
    await opened.close();
    await server.close();
  });

  function graphWith(checkpointer: BaseCheckpointSaver) {
    const model = chatModel(server);
    return new StateGraph(OneCall)
      .addNode("summarize", async () => ({ summary: String((await model.invoke("summarize")).content) }))
      .addEdge(START, "summarize")
      .addEdge("summarize", END)
      .compile({ checkpointer });
  }

  async function check(checkpointer: BaseCheckpointSaver) {
    server.reset();
    const { ledger } = await openRun(opened.db);
    const graph = graphWith(checkpointer);
    await expect(runThread(graph, { summary: "" }, { callbacks: [ledger.handler] })).rejects.toBeInstanceOf(ThreadIdRequiredError);
    await expect(runThread(graph, { summary: "" }, { configurable: {} })).rejects.toThrow(/^thread_id required/);
    expect(server.hits()).toBe(0);

    const config = { callbacks: [ledger.handler], configurable: { thread_id: "news:feed-7:2026-12-03" } };
    const first = await runThread(graph, { summary: "" }, config);
    expect(first.outcome).toBe("started");
    expect(first.state.summary).toBe("Summary: the harbour reopened.");
    expect(server.hits()).toBe(1);
    const checkpoints = [];
    for await (const c of checkpointer.list({ configurable: { thread_id: "news:feed-7:2026-12-03" } })) checkpoints.push(c);
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);

    const second = await runThread(graph, { summary: "" }, config);
    expect(second.outcome).toBe("already_finished");
    expect(second.state.summary).toBe("Summary: the harbour reopened.");
    expect(server.hits()).toBe(1);
    await ledger.flush();
  }

  it("with MemorySaver", async () => {
    await check(new MemorySaver());
  });

  it("with PostgresSaver in the same (embedded) database", async () => {
    const cp = await openCheckpointer(opened);
    try {
      await check(cp.saver);
    } finally {
      await cp.close();
    }
  });
});
