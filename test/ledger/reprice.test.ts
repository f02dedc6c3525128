import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { llmCalls, type NewLlmCall } from "../../src/db/schema";
import { loadPriceBook } from "../../src/ledger/price-book";
import { costAsModel, repriceCalls, UnknownModelError } from "../../src/ledger/reprice";
import { startRun } from "../../src/ledger/runs";
import { memoryDb } from "../helpers/db";

const JUNE = new Date("2026-06-01T10:00:00Z");
const LAST_YEAR = new Date("2025-06-01T10:00:00Z");

function call(id: string, runId: string, patch: Partial<NewLlmCall>): NewLlmCall {
  return {
    id,
    runId,
    callId: id,
    node: "summarize",
    kind: "chat",
    provider: "openai-compatible",
    requestModel: "gpt-4o-mini",
    model: "gpt-4o-mini-2024-07-18",
    inputTokens: 0,
    cachedInputTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    usageSource: "provider",
    status: "ok",
    priceStatus: "unknown_model",
    costUsd: null,
    startedAt: JUNE,
    finishedAt: JUNE,
    ...patch,
  };
}

describe("reprice", () => {
  let opened: OpenedDatabase;
  let runId: string;
  beforeAll(async () => {
    opened = await memoryDb();
    runId = await startRun(opened.db, { workflow: "w", trigger: "test", provider: "openai-compatible" });
    await opened.db.insert(llmCalls).values([
      call("a", runId, { inputTokens: 1000, cachedInputTokens: 200, outputTokens: 100 }),
      call("b", runId, { inputTokens: 2000, outputTokens: 300, node: "validate" }),
      call("c", runId, { inputTokens: 500, cachedInputTokens: 500, outputTokens: 50 }),
      call("e", runId, { kind: "embedding", node: "embed", requestModel: "text-embedding-3-small", model: "text-embedding-3-small", inputTokens: 823 }),
      call("m", runId, { requestModel: "mystery-1", model: "mystery-1", inputTokens: 100, outputTokens: 10 }),
      call("old", runId, { inputTokens: 1000, startedAt: LAST_YEAR, finishedAt: LAST_YEAR }),
    ]);
  });
  afterAll(() => opened.close());

  it("prices stored calls with the shipped table, then changes nothing on a second run", async () => {
    const book = await loadPriceBook(opened.db);
    const first = await repriceCalls(opened.db, book);
    expect(first).toEqual({
      examined: 6,
      changed: 5,
      oldTotalUsd: "0.000000000000",
      newTotalUsd: "0.000908960000",
      unpricedBefore: 6,
      unpricedAfter: 1,
    });
    const again = await repriceCalls(opened.db, book);
    expect(again.changed).toBe(0);
    expect(again.oldTotalUsd).toBe("0.000908960000");
    expect(again.newTotalUsd).toBe("0.000908960000");
  });

  it("moves the totals by exactly the price change, only for calls after it, and is idempotent", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "nl-prices-"));
    const file = path.join(dir, "prices.json");
    writeFileSync(
      file,
      JSON.stringify([
        { model: "gpt-4o-mini-2024-07-18", input: 0.3, cached_input: 0.15, output: 1.2, valid_from: "2026-01-01" },
        { model: "mystery-1", input: 1, cached_input: null, output: 2 },
      ]),
    );
    const book = await loadPriceBook(opened.db, file);
    const since = await repriceCalls(opened.db, book, { since: new Date("2026-01-01T00:00:00Z") });
    // a, b, c double (0.000742500 -> 0.001485), mystery-1 gets a price (0.00012), embed unchanged.
    expect(since).toEqual({
      examined: 5,
      changed: 4,
      oldTotalUsd: "0.000758960000",
      newTotalUsd: "0.001621460000",
      unpricedBefore: 1,
      unpricedAfter: 0,
    });
    const all = await repriceCalls(opened.db, book);
    expect(all.changed).toBe(0);
    expect(all.newTotalUsd).toBe("0.001771460000");
  });

  it("shows what the run would have cost on another model, chat calls only", async () => {
    const book = await loadPriceBook(opened.db);
    const whatIf = await costAsModel(opened.db, book, runId, "gpt-4o");
    expect(whatIf.model).toBe("gpt-4o-2024-08-06");
    const byNode = Object.fromEntries(whatIf.nodes.map((n) => [n.node, n]));
    expect(byNode.embed.asModelUsd).toBe("0.000016460000");
    expect(byNode.embed.asModelUsd).toBe(byNode.embed.actualUsd);
    expect(byNode.validate.calls).toBe(1);
    // 2000 in, 300 out at gpt-4o's shipped 2.50 / 10.00 per 1M.
    expect(byNode.validate.asModelUsd).toBe("0.008000000000");
    await expect(costAsModel(opened.db, book, runId, "gpt-9")).rejects.toBeInstanceOf(UnknownModelError);
  });
});
