/**
 * summarize: one chat call per article of this run that has no summary yet. Summaries are
 * written as each call returns, so a retried attempt only redoes the articles still missing one.
 */
import { and, eq, inArray, isNull } from "drizzle-orm";
import { articles } from "../../db/schema";
import { completeJson } from "../../llm/reply";
import { truncateToTokens } from "../../llm/tokens";
import { countedCall, forEachLimited, haltOnBudget } from "../concurrency";
import type { Deps } from "../deps";
import { count, countOf, progressLine } from "../progress";
import type { BriefingState, BriefingUpdate } from "../state";
import { buildSummarizePrompt, summaryReplySchema } from "./prompt";

export async function summarize(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config } = deps;
  const pending = await db
    .select({ id: articles.id, title: articles.title, feed: articles.feed, feedTitle: articles.feedTitle, body: articles.body })
    .from(articles)
    .where(and(inArray(articles.id, state.articleIds), isNull(articles.summary)))
    .orderBy(articles.id);
  // Asked per call: after a soft budget limit the models switch to the fallback mid-stage.
  const model = () => deps.models.chat("summarize");
  let calls = 0;
  let written = 0;
  // Each summary's write starts as its reply arrives, but the lane goes on to its next call; the
  // stage waits for every write before it ends (a failed write fails the stage, whose retry redoes
  // only the articles without a summary).
  const writes: Promise<unknown>[] = [];

  const work = haltOnBudget(
    forEachLimited(pending, config.concurrency, async (article) => {
      const messages = buildSummarizePrompt({
        title: article.title,
        feed: article.feedTitle ?? article.feed,
        text: truncateToTokens(article.body, config.articleMaxTokens),
      });
      // A reply that does not parse is reported to the ledger as wasted; the summaries written stay.
      const { summary } = await countedCall(
        () => completeJson(model(), messages, summaryReplySchema, `summary of article ${article.id}`, { stream: config.stream }),
        () => (calls += 1),
      );
      const write = db
        .update(articles)
        .set({ summary })
        .where(eq(articles.id, article.id))
        .then(() => (written += 1));
      write.catch(() => {}); // seen below, by allSettled; not an unhandled rejection meanwhile
      writes.push(write);
    }),
  );
  const [outcome] = await Promise.allSettled([work]);
  const stored = await Promise.allSettled(writes);
  if (outcome.status === "rejected") throw outcome.reason;
  const failedWrite = stored.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failedWrite) throw failedWrite.reason;
  const haltReason = outcome.value;

  const already = state.articleIds.length - pending.length;
  deps.log(
    progressLine(
      "summarize",
      [countOf(written, pending.length, "article"), count(calls, "call"), ...(already > 0 ? [`${already} already summarised`] : [])],
      haltReason,
    ),
  );
  return haltReason ? { haltReason } : {};
}
