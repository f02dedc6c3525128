/**
 * The stages on an in-memory PGlite with the offline models, without the graph: each reads its
 * input from the database by id and writes its results there.
 */
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import { Embeddings } from "@langchain/core/embeddings";
import type { BaseMessage } from "@langchain/core/messages";
import { AIMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, eq, inArray, isNotNull } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { articles, briefings, clusters, posts, runs } from "../../src/db/schema";
import { BudgetExceededError } from "../../src/ledger/budget";
import { OFFLINE_MODEL_NAMES, OfflineChatModel, createOfflineModels } from "../../src/llm/offline";
import { ModelReplyError } from "../../src/llm/reply";
import type { ChatStage, Models } from "../../src/llm/types";
import { cluster } from "../../src/pipeline/cluster";
import { embed } from "../../src/pipeline/embed";
import { generateSocial } from "../../src/pipeline/generate_social";
import { publish } from "../../src/pipeline/publish";
import { summarize } from "../../src/pipeline/summarize";
import { validate } from "../../src/pipeline/validate";
import { memoryDb } from "../helpers/db";
import { apply, FIXTURE_ARTICLES, offlineDeps, seedRun } from "./helpers";

/** Refuses every chat call after the first `allowed`, the way the ledger's budget gate does (before the call). */
class RefuseAfter extends BaseCallbackHandler {
  name = "refuse_after";
  override raiseError = true;
  override awaitHandlers = true;
  started = 0;
  constructor(private readonly allowed: number) {
    super();
  }
  override async handleChatModelStart(): Promise<void> {
    this.started += 1;
    if (this.started > this.allowed) throw new BudgetExceededError(`run exceeded max tokens 900 (call ${this.started} refused)`);
  }
}

/** The offline models, with one stage's chat model replaced. */
function withChat(stage: ChatStage, model: OfflineChatModel): Models {
  const offline = createOfflineModels();
  return { ...offline, chat: (s) => (s === stage ? model : offline.chat(s)) };
}

/** Answers one article's summary with prose instead of JSON, once. */
class ProseOnceForTitle extends OfflineChatModel {
  failed = false;
  calls = 0;
  constructor(private readonly title: string) {
    super({ model: OFFLINE_MODEL_NAMES.summarize });
  }
  override async _generate(messages: BaseMessage[], options: this["ParsedCallOptions"]): Promise<ChatResult> {
    this.calls += 1;
    if (!this.failed && messages.some((m) => m.text.includes(this.title))) {
      this.failed = true;
      return { generations: [{ text: "Here is a summary of the article.", message: new AIMessage("Here is a summary of the article.") }] };
    }
    return super._generate(messages, options);
  }
}

let database: OpenedDatabase;
beforeAll(async () => {
  database = await memoryDb();
});
afterAll(async () => {
  await database.close();
});
beforeEach(async () => {
  // Deleting the runs cascades to their articles, clusters, posts and briefings.
  await database.db.delete(runs);
});

describe("the stages in order, offline", () => {
  it("writes summaries, vectors, clusters, posts and a briefing with exact counts", async () => {
    const { db } = database;
    const outDir = mkdtempSync(path.join(os.tmpdir(), "nl-stages-"));
    const deps = offlineDeps(db, { env: { NEWSLEDGER_OUT_DIR: outDir, NEWSLEDGER_TOP_CLUSTERS: "2" } });
    let state = await seedRun(db, "run-stages-0001");

    state = apply(state, await summarize(state, deps));
    state = apply(state, await embed(state, deps));
    state = apply(state, await cluster(state, deps));
    state = apply(state, await generateSocial(state, deps));
    state = apply(state, await validate(state, deps));
    state = apply(state, await publish(state, deps));

    const stored = await db.select().from(articles).where(inArray(articles.id, state.articleIds));
    expect(stored.filter((a) => a.summary).length).toBe(6);
    expect(stored.filter((a) => a.embedding?.length === 256).length).toBe(6);
    const clusterRows = await db.select().from(clusters).where(eq(clusters.runId, state.runId)).orderBy(clusters.rank);
    // Three ferry-strike articles, two library articles, one on cycle lanes.
    expect(clusterRows.map((c) => [c.rank, c.label, c.articleIds.length])).toEqual([
      [1, "Northport · ferry · strike", 3],
      [2, "Library · opening · hours", 2],
      [3, "Council approves budget for new cycle lanes", 1],
    ]);
    expect(state.clusterIds).toEqual(clusterRows.map((c) => c.id));
    const postRows = await db.select().from(posts).where(eq(posts.runId, state.runId));
    expect(postRows).toHaveLength(6);
    expect(postRows.filter((p) => p.status === "valid")).toHaveLength(6);
    expect(state.postIds.sort()).toEqual(postRows.map((p) => p.id).sort());
    expect(state.invalidPostIds).toEqual([]);
    expect(state.revisionRound).toBe(0);
    expect(state.haltReason).toBeNull();
    expect(state.briefingPath).toBe(path.join(outDir, "briefing-2024-05-02-run-stag.md"));
    expect(existsSync(state.briefingPath!)).toBe(true);
    expect(await db.select({ runId: briefings.runId }).from(briefings)).toEqual([{ runId: state.runId }]);
    expect(deps.lines).toEqual([
      "summarize: 6 articles, 6 calls",
      "embed: 6 articles, 1 call",
      "cluster: 6 articles, 3 clusters (largest 3), no model calls",
      "generate_social: 2 clusters, 2 calls, 6 posts",
      "validate: 6 posts checked, 2 review calls, 0 invalid",
      `publish: 2 stories, 6 posts, 0 held back → ${state.briefingPath}`,
    ]);
  });

  it("caps the article text at articleMaxTokens before summarising", async () => {
    const { db } = database;
    const deps = offlineDeps(db, { env: { NEWSLEDGER_ARTICLE_MAX_TOKENS: "50" } });
    const state = await seedRun(db, "run-stages-0002", [FIXTURE_ARTICLES[0]!]);
    await summarize(state, deps);
    const [row] = await db.select({ summary: articles.summary }).from(articles).where(eq(articles.id, state.articleIds[0]!));
    // 50 tokens hold the first two sentences and part of the third; the cut third is too short to be picked.
    expect(row!.summary).toBe(
      "Ferry crews in Northport walked out on Thursday, closing the harbour to passenger traffic. The ferry strike was called by the Harbour Workers Union after pay talks broke down.",
    );
  });
});

describe("retries and budgets", () => {
  it("throws on a reply that is not JSON, keeps the other summaries, and a retry redoes only the missing one", async () => {
    const { db } = database;
    const flaky = new ProseOnceForTitle(FIXTURE_ARTICLES[1]!.title);
    const deps = offlineDeps(db, { env: { NEWSLEDGER_CONCURRENCY: "1" }, models: withChat("summarize", flaky) });
    const state = await seedRun(db, "run-retry-0001");

    await expect(summarize(state, deps)).rejects.toThrow(ModelReplyError);
    // With one lane, the failure on the second article stops the run of new items at once.
    const afterFailure = await db.select({ id: articles.id }).from(articles).where(isNotNull(articles.summary));
    expect(afterFailure.map((a) => a.id)).toEqual([state.articleIds[0]]);

    flaky.calls = 0;
    await summarize(state, deps);
    expect(flaky.calls).toBe(5);
    expect(await db.select({ id: articles.id }).from(articles).where(isNotNull(articles.summary))).toHaveLength(6);
    expect(deps.lines).toEqual(["summarize: 5 articles, 5 calls, 1 already summarised"]);
  });

  it("stops summarising cleanly when the ledger refuses a call, keeping what was written", async () => {
    const { db } = database;
    const gate = new RefuseAfter(2);
    const model = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.summarize, callbacks: [gate] });
    const deps = offlineDeps(db, { env: { NEWSLEDGER_CONCURRENCY: "1" }, models: withChat("summarize", model) });
    const state = await seedRun(db, "run-budget-0001");

    const update = await summarize(state, deps);
    expect(update).toEqual({ haltReason: "run exceeded max tokens 900 (call 3 refused)" });
    expect(gate.started).toBe(3);
    expect(await db.select({ id: articles.id }).from(articles).where(isNotNull(articles.summary))).toHaveLength(2);
    // The refused call was never made: 2 calls, as the ledger records.
    expect(deps.lines).toEqual(["summarize: 2 of 6 articles, 2 calls; halted: run exceeded max tokens 900 (call 3 refused)"]);
  });

  it("stops embedding cleanly when the ledger refuses the call, writing no vector", async () => {
    const { db } = database;
    class RefusedEmbeddings extends Embeddings {
      async embedDocuments(): Promise<number[][]> {
        throw new BudgetExceededError("run exceeded max tokens 900 (embeddings need ~120)");
      }
      async embedQuery(): Promise<number[]> {
        throw new BudgetExceededError("run exceeded max tokens 900 (embeddings need ~120)");
      }
    }
    const deps = offlineDeps(db, { models: { ...createOfflineModels(), embeddings: new RefusedEmbeddings({}) } });
    let state = await seedRun(db, "run-budget-0002");
    state = apply(state, await summarize(state, deps));

    expect(await embed(state, deps)).toEqual({ haltReason: "run exceeded max tokens 900 (embeddings need ~120)" });
    expect(await db.select({ id: articles.id }).from(articles).where(and(inArray(articles.id, state.articleIds), isNotNull(articles.embedding)))).toEqual([]);
  });

  it("stops generating posts when refused, keeping the clusters already written", async () => {
    const { db } = database;
    const gate = new RefuseAfter(1);
    const model = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.generate_social, callbacks: [gate] });
    const deps = offlineDeps(db, { env: { NEWSLEDGER_CONCURRENCY: "1" }, models: withChat("generate_social", model) });
    let state = await seedRun(db, "run-budget-0003");
    for (const stage of [summarize, embed, cluster]) state = apply(state, await stage(state, deps));

    const update = await generateSocial(state, deps);
    expect(update.haltReason).toBe("run exceeded max tokens 900 (call 2 refused)");
    expect(update.postIds).toHaveLength(3);
    const written = await db.selectDistinct({ clusterId: posts.clusterId }).from(posts).where(eq(posts.runId, state.runId));
    expect(written).toEqual([{ clusterId: state.clusterIds[0] }]);
  });
});
