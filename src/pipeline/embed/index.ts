/**
 * embed: every summarised article of this run without a vector, in batches of the embeddings
 * client's batch size (one HTTP call each; the ledger sees each). Each batch's vectors are
 * written as it returns, so a retried attempt only embeds what is still missing (the node keeps
 * its results). The text is title + summary.
 */
import { and, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Embeddings } from "@langchain/core/embeddings";
import { articles } from "../../db/schema";
import { truncateToTokens } from "../../llm/tokens";
import { countedCall, forEachLimited, haltOnBudget } from "../concurrency";
import type { Deps } from "../deps";
import { count, countOf, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";

/** What is embedded: the title and the summary cut to `summaryMaxTokens` (never the article body). */
export function embeddingText({ title, summary }: { title: string; summary: string }, summaryMaxTokens: number): string {
  return `${title}\n\n${truncateToTokens(summary, summaryMaxTokens)}`;
}

/** The client's own batch size (OpenAIEmbeddings.batchSize), so one batch here is one request; else everything at once. */
function batchSizeOf(embeddings: Embeddings): number {
  const size = (embeddings as { batchSize?: unknown }).batchSize;
  return typeof size === "number" && Number.isInteger(size) && size > 0 ? size : Number.POSITIVE_INFINITY;
}

function batches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isFinite(size) || items.length <= size) return [items.slice()];
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function embed(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config } = deps;
  const pending = await db
    .select({ id: articles.id, title: articles.title, summary: articles.summary })
    .from(articles)
    .where(and(inArray(articles.id, state.articleIds), isNotNull(articles.summary), isNull(articles.embedding)))
    .orderBy(articles.id);
  if (pending.length === 0) {
    deps.log(progressLine("embed", [count(0, "article"), count(0, "call")]));
    return {};
  }

  const groups = batches(pending, batchSizeOf(deps.models.embeddings));
  let calls = 0;
  let written = 0;
  const haltReason = await haltOnBudget(
    forEachLimited(groups, config.concurrency, async (group) => {
      const vectors = await countedCall(
        () => deps.models.embeddings.embedDocuments(group.map((a) => embeddingText({ title: a.title, summary: a.summary ?? "" }, config.summaryMaxTokens))),
        () => (calls += 1),
      );
      if (vectors.length !== group.length) {
        throw new Error(`embed: the embeddings model returned ${vectors.length} vectors for ${group.length} texts`);
      }
      // One statement per batch: an UPDATE per article cost more than the embeddings call itself.
      const rows = JSON.stringify(group.map((a, i) => ({ id: a.id, embedding: vectors[i] })));
      await db.execute(
        sql`update ${articles} set embedding = v.embedding from jsonb_to_recordset(${rows}::jsonb) as v(id int, embedding jsonb) where ${articles.id} = v.id`,
      );
      written += group.length;
    }),
  );
  if (haltReason) {
    deps.log(progressLine("embed", [countOf(written, pending.length, "article"), count(calls, "call")], haltReason));
    return { haltReason };
  }
  deps.log(progressLine("embed", [count(pending.length, "article"), count(calls, "call")]));
  return {};
}
