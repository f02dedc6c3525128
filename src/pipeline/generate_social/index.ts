/**
 * generate_social: one chat call per story, giving a post for each platform. The first round
 * covers the top config.cluster.top clusters that have no posts yet (so a retried attempt skips
 * the ones already written); a revision round rewrites the clusters of the posts validate
 * rejected, with its problems in the prompt.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { posts } from "../../db/schema";
import { completeJson } from "../../llm/reply";
import { loadStories } from "../cluster/stories";
import { countedCall, forEachLimited, haltOnBudget } from "../concurrency";
import type { Deps } from "../deps";
import { count, countOf, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";
import { isPlatform, PLATFORMS, type Platform } from "./platforms";
import { buildSocialPrompt, socialPostsReplySchema, sourcesOf, type SocialPostsReply } from "./prompt";

interface Assignment {
  clusterId: number;
  problems: Partial<Record<Platform, string[]>>;
}

/** Top clusters without posts. */
async function firstRound(db: Database, clusterIds: number[]): Promise<Assignment[]> {
  const done = await db.selectDistinct({ clusterId: posts.clusterId }).from(posts).where(inArray(posts.clusterId, clusterIds));
  const withPosts = new Set(done.map((p) => p.clusterId));
  return clusterIds.filter((id) => !withPosts.has(id)).map((clusterId) => ({ clusterId, problems: {} }));
}

/** Clusters whose rejected posts are still invalid (a retried attempt skips those already rewritten). */
async function revisionRound(db: Database, invalidPostIds: number[]): Promise<Assignment[]> {
  const rejected = await db
    .select({ clusterId: posts.clusterId, platform: posts.platform, problems: posts.problems })
    .from(posts)
    .where(and(inArray(posts.id, invalidPostIds), eq(posts.status, "invalid")))
    .orderBy(posts.clusterId, posts.id);
  const byCluster = new Map<number, Assignment>();
  for (const post of rejected) {
    const assignment = byCluster.get(post.clusterId) ?? { clusterId: post.clusterId, problems: {} };
    if (isPlatform(post.platform)) assignment.problems[post.platform] = post.problems;
    byCluster.set(post.clusterId, assignment);
  }
  return [...byCluster.values()];
}

/** Writes the cluster's three posts as drafts; a rewrite counts one more revision and clears the problems. */
async function savePosts(db: Database, runId: string, clusterId: number, reply: SocialPostsReply): Promise<void> {
  await db
    .insert(posts)
    .values(PLATFORMS.map((platform) => ({ runId, clusterId, platform, text: reply[platform], status: "draft" as const })))
    .onConflictDoUpdate({
      target: [posts.clusterId, posts.platform],
      set: { text: sql`excluded.text`, status: "draft", problems: [], revisions: sql`${posts.revisions} + 1` },
    });
}

export async function generateSocial(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config } = deps;
  const topClusterIds = state.clusterIds.slice(0, config.cluster.top);
  const revising = state.invalidPostIds.length > 0;
  const assignments = revising ? await revisionRound(db, state.invalidPostIds) : await firstRound(db, topClusterIds);
  const stories = new Map((await loadStories(db, assignments.map((a) => a.clusterId))).map((s) => [s.clusterId, s]));
  // Asked per call: after a soft budget limit the models switch to the fallback mid-stage.
  const model = () => deps.models.chat("generate_social");
  let calls = 0;
  let written = 0;

  const haltReason = await haltOnBudget(
    forEachLimited(assignments, config.concurrency, async ({ clusterId, problems }) => {
      const story = stories.get(clusterId);
      if (!story) throw new Error(`generate_social: cluster ${clusterId} does not exist`);
      const messages = buildSocialPrompt({ label: story.label, sources: sourcesOf(story, config.summaryMaxTokens), problems });
      const reply = await countedCall(
        () => completeJson(model(), messages, socialPostsReplySchema, `posts for cluster ${clusterId}`, { stream: config.stream }),
        () => (calls += 1),
      );
      await savePosts(db, state.runId, clusterId, reply);
      written += 1;
    }),
  );

  const postIds = (
    await db.select({ id: posts.id }).from(posts).where(inArray(posts.clusterId, topClusterIds)).orderBy(posts.clusterId, posts.id)
  ).map((p) => p.id);
  deps.log(
    progressLine(
      "generate_social",
      [`${countOf(written, assignments.length, "cluster")}${revising ? " revised" : ""}`, count(calls, "call"), count(postIds.length, "post")],
      haltReason,
    ),
  );
  return haltReason ? { postIds, haltReason } : { postIds };
}
