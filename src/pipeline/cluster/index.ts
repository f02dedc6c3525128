/**
 * cluster: no model call. Groups this run's article vectors (see algorithm.ts), replaces the
 * run's clusters rows (so a re-run of the node is idempotent) and returns their ids, best first.
 */
import { and, eq, inArray, isNotNull } from "drizzle-orm";
import { articles, clusters } from "../../db/schema";
import type { Deps } from "../deps";
import { count, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";
import { buildClusters } from "./algorithm";

export async function cluster(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db } = deps;
  const rows = await db
    .select({
      id: articles.id,
      title: articles.title,
      feed: articles.feed,
      publishedAt: articles.publishedAt,
      collectedAt: articles.collectedAt,
      embedding: articles.embedding,
    })
    .from(articles)
    .where(and(inArray(articles.id, state.articleIds), isNotNull(articles.embedding)));
  const ranked = buildClusters(
    rows.map((r) => ({ id: r.id, title: r.title, feed: r.feed, at: r.publishedAt ?? r.collectedAt, vector: r.embedding ?? [] })),
    deps.config.cluster.similarity,
  );

  const clusterIds = await db.transaction(async (tx) => {
    await tx.delete(clusters).where(eq(clusters.runId, state.runId));
    if (ranked.length === 0) return [];
    const inserted = await tx
      .insert(clusters)
      .values(ranked.map((c, i) => ({ runId: state.runId, rank: i + 1, label: c.label, articleIds: c.articleIds, score: c.score })))
      .returning({ id: clusters.id, rank: clusters.rank });
    return inserted.sort((a, b) => a.rank - b.rank).map((c) => c.id);
  });

  const largest = ranked[0]?.articleIds.length ?? 0;
  deps.log(progressLine("cluster", [count(rows.length, "article"), `${count(ranked.length, "cluster")} (largest ${largest})`, "no model calls"]));
  return { clusterIds };
}
