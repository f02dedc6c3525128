import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { Serialized } from "@langchain/core/load/serializable";
import type { BaseMessage } from "@langchain/core/messages";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { posts } from "../../src/db/schema";
import { OFFLINE_MODEL_NAMES, OfflineChatModel, createOfflineModels } from "../../src/llm/offline";
import { cluster } from "../../src/pipeline/cluster";
import { embed } from "../../src/pipeline/embed";
import { generateSocial } from "../../src/pipeline/generate_social";
import type { BriefingState } from "../../src/pipeline/state";
import { summarize } from "../../src/pipeline/summarize";
import { shouldRevise, validate } from "../../src/pipeline/validate";
import { checkPost } from "../../src/pipeline/validate/rules";
import { memoryDb } from "../helpers/db";
import { apply, FIXTURE_ARTICLES, offlineDeps, seedRun } from "./helpers";

const SOURCE = "https://news.example.org/2024/05/ferry-strike";
const FOREIGN = "https://elsewhere.example.com/2024/05/unrelated-story";

describe("checkPost", () => {
  const links = new Set([SOURCE]);

  it("flags a post over 280 characters and a link that is not the story's, with exact problems", () => {
    const text = `${"Ferry crews walked out. ".repeat(11)}${FOREIGN}`;
    expect(text.length).toBe(11 * 24 + FOREIGN.length);
    expect(checkPost(text, 280, links)).toEqual([
      "too long: 317 characters, limit 280",
      `link not from this story: ${FOREIGN}`,
      "no source link",
    ]);
  });

  it("counts each URL at its full length", () => {
    const text = `${"x".repeat(280 - SOURCE.length - 1)} ${SOURCE}`;
    expect(checkPost(text, 280, links)).toEqual([]);
    expect(checkPost(`x${text}`, 280, links)).toEqual(["too long: 281 characters, limit 280"]);
  });

  it("flags an empty post and a post without a link", () => {
    expect(checkPost("  \n", 280, links)).toEqual(["empty post"]);
    expect(checkPost("Ferry crews walked out.", 280, links)).toEqual(["no source link"]);
  });
});

describe("shouldRevise", () => {
  const state = (invalid: number, revisionRound: number, haltReason: string | null = null) => ({
    invalidPostIds: Array.from({ length: invalid }, (_, i) => i + 1),
    revisionRound,
    haltReason,
  });

  it.each([
    { invalid: 2, round: 1, max: 2, halt: null, revise: true },
    { invalid: 2, round: 2, max: 2, halt: null, revise: true },
    { invalid: 2, round: 3, max: 2, halt: null, revise: false },
    { invalid: 0, round: 0, max: 2, halt: null, revise: false },
    { invalid: 1, round: 1, max: 0, halt: null, revise: false },
    { invalid: 1, round: 1, max: 2, halt: "run exceeded max tokens 900", revise: false },
  ])("$invalid invalid, round $round, max $max, halted $halt → $revise", ({ invalid, round, max, halt, revise }) => {
    expect(shouldRevise(state(invalid, round, halt), max)).toBe(revise);
  });
});

/** Records the prompts a model receives. */
class PromptRecorder extends BaseCallbackHandler {
  name = "prompt_recorder";
  prompts: BaseMessage[][] = [];
  override async handleChatModelStart(_llm: Serialized, messages: BaseMessage[][]): Promise<void> {
    this.prompts.push(...messages);
  }
}

describe("validate and the revision round, on PGlite", () => {
  let database: OpenedDatabase;
  beforeAll(async () => {
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
  });

  it("marks broken posts invalid with their problems, and a revision rewrites only their cluster", async () => {
    const { db } = database;
    const recorder = new PromptRecorder();
    const offline = createOfflineModels();
    const social = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.generate_social, callbacks: [recorder] });
    const deps = offlineDeps(db, {
      env: { NEWSLEDGER_TOP_CLUSTERS: "2" },
      models: { ...offline, chat: (stage) => (stage === "generate_social" ? social : offline.chat(stage)) },
    });
    let state: BriefingState = await seedRun(db, "run-validate-1");
    for (const stage of [summarize, embed, cluster, generateSocial]) state = apply(state, await stage(state, deps));

    const [firstCluster] = state.clusterIds;
    const clusterPosts = await db.select().from(posts).where(eq(posts.clusterId, firstCluster!)).orderBy(posts.id);
    const byPlatform = Object.fromEntries(clusterPosts.map((p) => [p.platform, p]));
    const tooLong = `${"Ferry crews walked out. ".repeat(11)}${FOREIGN}`;
    await db.update(posts).set({ text: tooLong }).where(eq(posts.id, byPlatform.x!.id));
    await db.update(posts).set({ text: `Ferry strike in Northport. ${FOREIGN}` }).where(eq(posts.id, byPlatform.bluesky!.id));

    deps.lines.length = 0;
    state = apply(state, await validate(state, deps));
    expect(state.invalidPostIds).toEqual([byPlatform.x!.id, byPlatform.bluesky!.id]);
    expect(state.revisionRound).toBe(1);
    const rejected = await db.select({ platform: posts.platform, status: posts.status, problems: posts.problems }).from(posts).where(eq(posts.clusterId, firstCluster!)).orderBy(posts.id);
    expect(rejected).toEqual([
      {
        platform: "x",
        status: "invalid",
        problems: [
          "too long: 317 characters, limit 280",
          `link not from this story: ${FOREIGN}`,
          "no source link",
          "review: the post has 317 characters, over its limit of 280",
        ],
      },
      {
        platform: "bluesky",
        status: "invalid",
        problems: [`link not from this story: ${FOREIGN}`, "no source link", "review: the post links none of the story's sources"],
      },
      { platform: "linkedin", status: "valid", problems: [] },
    ]);
    expect(deps.lines).toEqual(["validate: 6 posts checked, 2 review calls, 2 invalid"]);
    expect(shouldRevise(state, deps.config.maxRevisions)).toBe(true);

    recorder.prompts.length = 0;
    state = apply(state, await generateSocial(state, deps));
    expect(recorder.prompts).toHaveLength(1);
    expect(recorder.prompts[0]![1]!.text).toContain(
      '<problems>\n<problem platform="x">too long: 317 characters, limit 280</problem>\n' +
        `<problem platform="x">link not from this story: ${FOREIGN}</problem>`,
    );
    const revised = await db.select({ clusterId: posts.clusterId, platform: posts.platform, status: posts.status, revisions: posts.revisions, text: posts.text }).from(posts).orderBy(posts.id);
    expect(revised.map((p) => [p.clusterId === firstCluster, p.platform, p.status, p.revisions])).toEqual([
      [true, "x", "draft", 2],
      [true, "bluesky", "draft", 2],
      [true, "linkedin", "draft", 2],
      [false, "x", "valid", 1],
      [false, "bluesky", "valid", 1],
      [false, "linkedin", "valid", 1],
    ]);
    // The platforms that had problems get the plainest post: headline and link.
    const lead = FIXTURE_ARTICLES.find((a) => revised[0]!.text.startsWith(a.title))!;
    expect(revised[0]!.text).toBe(`${lead.title} ${lead.link}`);

    deps.lines.length = 0;
    state = apply(state, await validate(state, deps));
    expect(state.invalidPostIds).toEqual([]);
    expect(state.revisionRound).toBe(1);
    expect(shouldRevise(state, deps.config.maxRevisions)).toBe(false);
    expect(deps.lines).toEqual(["validate: 3 posts checked, 1 review call, 0 invalid"]);
  });
});
