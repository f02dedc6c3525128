/** A call's row reaches the database as the call ends, not when its node ends: a process killed mid-node loses no paid call. */
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { llmCalls } from "../../src/db/schema";
import { memoryDb } from "../helpers/db";
import { startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";
import { chatModel, openRun } from "./_harness";

describe("write-through", () => {
  let server: FakeOpenAI;
  let opened: OpenedDatabase;
  beforeAll(async () => {
    server = await startOpenAIServer({ fixed: { prompt: 30, completion: 4 } });
    opened = await memoryDb();
  });
  afterAll(async () => {
    await opened.close();
    await server.close();
  });

  it("has each call's row in the database while its node is still running", async () => {
    const { runId, ledger } = await openRun(opened.db);
    const model = chatModel(server);
    const seenMidNode: number[] = [];
    const graph = new StateGraph(Annotation.Root({ n: Annotation<number> }))
      .addNode("summarize", async () => {
        for (let i = 0; i < 3; i++) {
          await model.invoke(`article ${i}`);
          // The row's write starts within moments of the call's end (calls ending together share
          // one); the node, still running, looks until it is there.
          const count = async () => (await opened.db.select().from(llmCalls).where(eq(llmCalls.runId, runId))).length;
          for (let tries = 0; tries < 100 && (await count()) < i + 1; tries++) await new Promise((r) => setTimeout(r, 10));
          seenMidNode.push(await count());
        }
        return { n: 3 };
      })
      .addEdge(START, "summarize")
      .addEdge("summarize", END)
      .compile();
    await graph.invoke({ n: 0 }, { callbacks: [ledger.handler] });
    expect(seenMidNode).toEqual([1, 2, 3]);
    const rows = await opened.db.select().from(llmCalls).where(eq(llmCalls.runId, runId));
    expect(rows.map((r) => r.totalTokens)).toEqual([34, 34, 34]);
  });
});
