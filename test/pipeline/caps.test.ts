/**
 * Prompt size per stage: summarize reads the article text cut to NEWSLEDGER_ARTICLE_MAX_TOKENS;
 * embed, generate_social and validate read summaries (never bodies) cut to
 * NEWSLEDGER_SUMMARY_MAX_TOKENS. Counts are js-tiktoken's o200k_base, the ledger's tokenizer.
 */
import type { BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { eq } from "drizzle-orm";
import { getEncoding } from "js-tiktoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { articles } from "../../src/db/schema";
import { readField } from "../../src/llm/markup";
import { OFFLINE_MODEL_NAMES, OfflineChatModel, createOfflineModels } from "../../src/llm/offline";
import { countTokens } from "../../src/llm/tokens";
import { embeddingText } from "../../src/pipeline/embed";
import { sourcesOf } from "../../src/pipeline/generate_social/prompt";
import { summarize } from "../../src/pipeline/summarize";
import { memoryDb } from "../helpers/db";
import { FIXTURE_ARTICLES, offlineDeps, seedRun } from "./helpers";

const encoding = getEncoding("o200k_base");

/** The offline summarizer, keeping the <text> each prompt carried. */
class RecordingSummarizer extends OfflineChatModel {
  readonly texts: string[] = [];
  constructor() {
    super({ model: OFFLINE_MODEL_NAMES.summarize });
  }
  override async _generate(messages: BaseMessage[], options: this["ParsedCallOptions"]): Promise<ChatResult> {
    this.texts.push(readField(messages.map((m) => m.text).join("\n"), "text"));
    return super._generate(messages, options);
  }
}

describe("token caps per stage", () => {
  let database: OpenedDatabase;
  beforeAll(async () => {
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
  });

  // Eight copies of the first fixture body: 569 tokens, over a cap of 100.
  const long = { ...FIXTURE_ARTICLES[0]!, link: "https://example.org/long", body: Array(8).fill(FIXTURE_ARTICLES[0]!.body).join(" ") };
  const short = FIXTURE_ARTICLES[1]!;

  it("an article over the cap is cut to the cap, counted by the tokenizer; one under it goes whole", async () => {
    const { db } = database;
    expect(encoding.encode(long.body).length).toBe(569);
    expect(encoding.encode(short.body).length).toBe(56);
    const model = new RecordingSummarizer();
    const offline = createOfflineModels();
    const deps = offlineDeps(db, {
      env: { NEWSLEDGER_ARTICLE_MAX_TOKENS: "100", NEWSLEDGER_CONCURRENCY: "1" },
      models: { ...offline, chat: (stage) => (stage === "summarize" ? model : offline.chat(stage)) },
    });
    const state = await seedRun(db, "run-caps-0001", [long, short]);
    await summarize(state, deps);

    const [cut, whole] = model.texts;
    expect(countTokens(cut!)).toBe(100);
    expect(encoding.encode(cut!).length).toBe(100);
    expect(cut).toBe(encoding.decode(encoding.encode(long.body).slice(0, 100)));
    expect(long.body.startsWith(cut!)).toBe(true);
    expect(whole).toBe(short.body);
    const stored = await db.select({ body: articles.body }).from(articles).where(eq(articles.id, state.articleIds[0]!));
    // The stored article keeps its whole text; only the prompt is cut.
    expect(stored[0]!.body).toBe(long.body);
  });

  it("embed, generate_social and validate read the summary cut to its cap, never the body", () => {
    const summary = long.body;
    const story = {
      clusterId: 1,
      rank: 1,
      label: "Northport ferry strike",
      score: 1,
      articles: [{ id: 1, title: long.title, link: long.link, originalLink: long.link, canonicalUrl: long.link, feed: long.feed, feedTitle: long.feedTitle, publishedAt: null, summary, sources: [] }],
    };
    const [source] = sourcesOf(story, 40);
    expect(countTokens(source!.summary)).toBe(40);
    expect(source!.summary).toBe(encoding.decode(encoding.encode(summary).slice(0, 40)));
    const text = embeddingText({ title: long.title, summary }, 40);
    expect(text).toBe(`${long.title}\n\n${source!.summary}`);
    expect(sourcesOf(story, 1000)[0]!.summary).toBe(summary);
  });
});
