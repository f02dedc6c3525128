/**
 * validate: the rule checks (rules.ts) on every draft post, then one model review per story
 * whose drafts passed them; posts become valid or invalid with their problems. Invalid posts
 * go back to generate_social while revision rounds are left (shouldRevise).
 */
import { and, eq, inArray } from "drizzle-orm";
import { posts, type Post } from "../../db/schema";
import { completeJson } from "../../llm/reply";
import { loadStories, storyLinks } from "../cluster/stories";
import { countedCall, forEachLimited, haltOnBudget } from "../concurrency";
import type { Deps } from "../deps";
import { count, progressLine } from "../progress";
import { isPlatform, PLATFORM_LIMITS, type Platform } from "../generate_social/platforms";
import { sourcesOf } from "../generate_social/prompt";
import type { BriefingState, BriefingUpdate } from "../state";
import { buildReviewPrompt, reviewReplySchema, type ReviewReply } from "./prompt";
import { checkPost } from "./rules";

/**
 * Whether validate sends posts back to generate_social: some are invalid, the run is not
 * halted, and the rounds so far (revisionRound, counted by validate) are at most maxRevisions.
 */
export function shouldRevise(
  state: Pick<BriefingState, "invalidPostIds" | "revisionRound" | "haltReason">,
  maxRevisions: number,
): boolean {
  return state.invalidPostIds.length > 0 && !state.haltReason && state.revisionRound <= maxRevisions;
}

type PlatformPost = Post & { platform: Platform };

export async function validate(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config } = deps;
  const runPosts = (await db.select().from(posts).where(inArray(posts.id, state.postIds))).filter((p): p is PlatformPost =>
    isPlatform(p.platform),
  );
  const clusterIds = [...new Set(runPosts.filter((p) => p.status === "draft").map((p) => p.clusterId))].sort((a, b) => a - b);
  const stories = new Map((await loadStories(db, clusterIds)).map((s) => [s.clusterId, s]));
  // Asked per call: after a soft budget limit the models switch to the fallback mid-stage.
  const model = () => deps.models.chat("validate");
  let calls = 0;
  let checked = 0;

  const haltReason = await haltOnBudget(
    forEachLimited(clusterIds, config.concurrency, async (clusterId) => {
      const story = stories.get(clusterId);
      if (!story) throw new Error(`validate: cluster ${clusterId} does not exist`);
      const clusterPosts = runPosts.filter((p) => p.clusterId === clusterId);
      const drafts = clusterPosts.filter((p) => p.status === "draft");
      const links = storyLinks(story);
      const ruleProblems = new Map(drafts.map((p) => [p.id, checkPost(p.text, PLATFORM_LIMITS[p.platform], links)]));

      // A review cannot rescue a post the rules rejected, so it is only paid for when one passed.
      let review: ReviewReply | null = null;
      if (drafts.some((p) => ruleProblems.get(p.id)!.length === 0)) {
        const messages = buildReviewPrompt({ label: story.label, sources: sourcesOf(story, config.summaryMaxTokens), posts: clusterPosts });
        review = await countedCall(
          () => completeJson(model(), messages, reviewReplySchema, `review of cluster ${clusterId}`, { stream: config.stream }),
          () => (calls += 1),
        );
      }

      for (const post of drafts) {
        const verdict = review?.[post.platform];
        const problems = [...ruleProblems.get(post.id)!, ...(verdict && !verdict.ok ? [`review: ${verdict.reason}`] : [])];
        await db
          .update(posts)
          .set({ status: problems.length ? "invalid" : "valid", problems })
          .where(eq(posts.id, post.id));
        checked += 1;
      }
    }),
  );

  const invalidPostIds = (
    await db
      .select({ id: posts.id })
      .from(posts)
      .where(and(inArray(posts.id, state.postIds), eq(posts.status, "invalid")))
      .orderBy(posts.id)
  ).map((p) => p.id);
  deps.log(
    progressLine("validate", [`${count(checked, "post")} checked`, count(calls, "review call"), `${invalidPostIds.length} invalid`], haltReason),
  );
  const update: BriefingUpdate = { invalidPostIds, revisionRound: state.revisionRound + (invalidPostIds.length ? 1 : 0) };
  return haltReason ? { ...update, haltReason } : update;
}
