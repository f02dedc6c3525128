/**
 * embed: one embedDocuments call for every summarised article of this run without a vector
 * (the client splits it into HTTP batches; the ledger sees each). The text is title + summary.
 */
import { and, eq, inArray, isNotNull, isNull } from "drizzle-orm";
import { articles } from "../../db/schema";
import { haltOnBudget } from "../concurrency";
import type { Deps } from "../deps";
import { count, countOf, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";

export function embeddingText({ title, summary }: { title: string; summary: string }): string {
  return `${title}\n\n${summary}`;
}

export async function embed(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db } = deps;
  const pending = await db
    .select({ id: articles.id, title: articles.title, summary: articles.summary })
    .from(articles)
    .where(and(inArray(articles.id, state.articleIds), isNotNull(articles.summary), isNull(articles.embedding)))
    .orderBy(articles.id);
  if (pending.length === 0) {
    deps.log(progressLine("embed", [count(0, "article"), count(0, "call")]));
    return {};
  }

  const embedding = deps.models.embeddings.embedDocuments(pending.map((a) => embeddingText({ title: a.title, summary: a.summary ?? "" })));
  const haltReason = await haltOnBudget(embedding);
  if (haltReason) {
    deps.log(progressLine("embed", [countOf(0, pending.length, "article"), count(1, "call")], haltReason));
    return { haltReason };
  }
  const vectors = await embedding;
  if (vectors.length !== pending.length) {
    throw new Error(`embed: the embeddings model returned ${vectors.length} vectors for ${pending.length} texts`);
  }
  await db.transaction(async (tx) => {
    for (const [i, article] of pending.entries()) {
      await tx.update(articles).set({ embedding: vectors[i] }).where(eq(articles.id, article.id));
    }
  });
  deps.log(progressLine("embed", [count(pending.length, "article"), count(1, "call")]));
  return {};
}
