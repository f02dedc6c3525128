/**
 * Twenty briefings at once in one process, one database, one model server: each run's ledger
 * totals must equal what the server billed for that run. Each run has its own feed of 14
 * stories no other run shares (so dedupe keeps its articles apart) and its own model names (so the server's
 * records tell the runs apart), priced by a user price file.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { memoryDb } from "../helpers/db";
import { writeTownFeed } from "../helpers/feeds";
import { startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";

const RUNS = 20;

describe("twenty concurrent runs in one process", () => {
  let server: FakeOpenAI;
  let database: OpenedDatabase;
  const root = mkdtempSync(path.join(os.tmpdir(), "nl-concurrent-"));
  beforeAll(async () => {
    server = await startOpenAIServer({
      usage: "random",
      seed: 11,
      content: (body) => answerPrompt(body.messages.map((m: { role: string; content: string }) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content)))),
    });
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
    await server.close();
  });

  it("keeps each run's totals equal to what the server billed for it", async () => {
    const prices = Array.from({ length: RUNS }, (_, i) => [
      { model: `chat-run-${i}`, input: 0.15, cached_input: 0.075, output: 0.6 },
      { model: `embed-run-${i}`, input: 0.02, cached_input: null, output: 0 },
    ]).flat();
    const pricesFile = path.join(root, "prices.json");
    writeFileSync(pricesFile, JSON.stringify(prices));

    const results = await Promise.all(
      Array.from({ length: RUNS }, (_, i) => {
        const config = loadConfig(
          {
            OPENAI_BASE_URL: `${server.url}/v1`,
            NEWSLEDGER_CHAT_MODEL: `chat-run-${i}`,
            NEWSLEDGER_EMBEDDING_MODEL: `embed-run-${i}`,
            NEWSLEDGER_PRICES: pricesFile,
            NEWSLEDGER_OUT_DIR: path.join(root, `out-${i}`),
            NEWSLEDGER_MAX_ITEMS_PER_FEED: "50",
          },
          { feeds: [writeTownFeed(mkdtempSync(path.join(root, `edition-${i}-`)), i, 14)] },
        );
        return runBriefing({ config, database, log: () => {} }, { trigger: "test" });
      }),
    );

    for (const [i, result] of results.entries()) {
      expect(result.error, `run ${i}`).toBeNull();
      expect(result.status, `run ${i}`).toBe("succeeded");
      expect(result.articles, `run ${i}`).toBe(14);
      const mine = server.requests.filter((r) => r.body?.model === `chat-run-${i}` || r.body?.model === `embed-run-${i}`);
      const billed = mine.reduce((s, r) => s + r.billed.total, 0);
      expect(result.calls, `run ${i}`).toBe(mine.length);
      expect(result.total_tokens, `run ${i}`).toBe(billed);
      expect(result.unpriced_calls, `run ${i}`).toBe(0);
    }
    expect(server.hits()).toBe(results.reduce((s, r) => s + r.calls, 0));
  });
});
