/**
 * publish: the dated briefing of the run's top stories and their valid posts, written as
 * Markdown and JSON to config.outDir and stored in `briefings` (one row per run, rewritten if
 * the node runs again). Invalid or unchecked posts are listed as held back, never published.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { eq, inArray } from "drizzle-orm";
import { briefings, posts, runs } from "../../db/schema";
import { loadStories } from "../cluster/stories";
import type { Deps } from "../deps";
import { count, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";
import { briefingBaseName, buildBriefing, calendarDay, renderMarkdown } from "./briefing";

export async function publish(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config } = deps;
  const [run] = await db.select({ startedAt: runs.startedAt }).from(runs).where(eq(runs.id, state.runId));
  if (!run) throw new Error(`publish: run ${state.runId} does not exist`);
  // The run's start fixes the day, so a retried or late publish names the same file.
  const day = calendarDay(run.startedAt, config.schedule.timezone);
  const stories = await loadStories(db, state.clusterIds.slice(0, config.cluster.top));
  const runPosts = await db.select().from(posts).where(inArray(posts.id, state.postIds)).orderBy(posts.clusterId, posts.id);
  const briefing = buildBriefing({ runId: state.runId, day, haltReason: state.haltReason, stories, posts: runPosts });
  const markdown = renderMarkdown(briefing);

  await mkdir(config.outDir, { recursive: true });
  const base = path.join(config.outDir, briefingBaseName(day, state.runId));
  const markdownPath = `${base}.md`;
  const jsonPath = `${base}.json`;
  await writeFile(markdownPath, markdown, "utf8");
  await writeFile(jsonPath, `${JSON.stringify(briefing, null, 2)}\n`, "utf8");

  const row = { day, markdown, json: briefing as unknown as Record<string, unknown>, markdownPath, jsonPath, publishedAt: new Date() };
  await db.insert(briefings).values({ runId: state.runId, ...row }).onConflictDoUpdate({ target: briefings.runId, set: row });

  const published = briefing.stories.reduce((sum, s) => sum + s.posts.length, 0);
  deps.log(
    progressLine("publish", [count(briefing.stories.length, "story", "stories"), count(published, "post"), `${briefing.heldBack.length} held back → ${markdownPath}`]),
  );
  return { briefingPath: markdownPath };
}
