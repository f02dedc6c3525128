/**
 * The naive pipeline the benchmark compares against: every article, as the feed gives it (the
 * whole body, markup and all, no token cap), goes to every stage: a summary each, an embedding
 * each of the whole body, a social post each written from the whole body, and a review each with
 * the whole body. No dedupe, no cache, no clusters. It speaks to the same server with plain
 * HTTP and adds up the usage each response reports.
 */
import type { BaseMessage } from "@langchain/core/messages";
import Parser from "rss-parser";
import type { Config } from "../config";
import { decodeFeed } from "../pipeline/collect/decode";
import { fetchFeed } from "../pipeline/collect/fetch";
import { listFeedSources, readFeedFile } from "../pipeline/collect/sources";
import { forEachLimited } from "../pipeline/concurrency";
import { PLATFORMS } from "../pipeline/generate_social/platforms";
import { buildSocialPrompt } from "../pipeline/generate_social/prompt";
import { buildSummarizePrompt } from "../pipeline/summarize/prompt";
import { buildReviewPrompt } from "../pipeline/validate/prompt";

export interface RawArticle {
  feed: string;
  title: string;
  link: string;
  /** The item's body exactly as the feed has it (HTML included). */
  body: string;
}

export interface NaiveResult {
  articles: number;
  feedsSkipped: number;
  calls: number;
  tokens: number;
  tokensByStage: Record<string, number>;
}

type RawItem = { title?: string; link?: string; content?: string; summary?: string; "content:encoded"?: string; contentSnippet?: string };

/** The first `maxItemsPerFeed` items of every feed, bodies untouched. Feeds rss-parser cannot read are skipped. */
export async function rawArticles(feeds: string[], config: Config): Promise<{ articles: RawArticle[]; skipped: number }> {
  const { sources } = await listFeedSources(feeds);
  const parser = new Parser<Record<string, unknown>, RawItem>({ defaultRSS: 2, customFields: { item: ["content:encoded"] } });
  const articles: RawArticle[] = [];
  let skipped = 0;
  for (const source of sources) {
    try {
      const bytes =
        source.kind === "file"
          ? await readFeedFile(source.path, config.collect.fetchMaxBytes)
          : (await fetchFeed(source.name, { timeoutMs: config.collect.fetchTimeoutMs, maxBytes: config.collect.fetchMaxBytes, maxRedirects: config.collect.maxRedirects }))
              .bytes;
      const feed = await parser.parseString(decodeFeed(bytes, null).text.trimStart());
      for (const item of feed.items.slice(0, config.collect.maxItemsPerFeed)) {
        const body = item["content:encoded"] ?? item.content ?? item.summary ?? item.contentSnippet ?? "";
        articles.push({ feed: source.name, title: item.title ?? "", link: item.link ?? "", body });
      }
    } catch {
      skipped += 1;
    }
  }
  return { articles, skipped };
}

const asJson = (messages: BaseMessage[]) => messages.map((m) => ({ role: m.type === "system" ? "system" : "user", content: m.text }));

export async function runNaive(options: { baseUrl: string; config: Config; feeds: string[]; concurrency?: number }): Promise<NaiveResult> {
  const { baseUrl, config } = options;
  const { articles, skipped } = await rawArticles(options.feeds, config);
  const result: NaiveResult = { articles: articles.length, feedsSkipped: skipped, calls: 0, tokens: 0, tokensByStage: {} };
  const count = (stage: string, usage: { total_tokens?: number } | undefined) => {
    const tokens = Number(usage?.total_tokens ?? 0);
    result.calls += 1;
    result.tokens += tokens;
    result.tokensByStage[stage] = (result.tokensByStage[stage] ?? 0) + tokens;
  };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`naive: ${path} answered ${res.status}`);
    return (await res.json()) as { usage?: { total_tokens?: number }; choices?: { message: { content: string } }[] };
  };
  const chat = async (stage: string, model: string, messages: BaseMessage[]) => {
    const reply = await post("/chat/completions", { model, messages: asJson(messages), max_tokens: config.maxOutputTokens });
    count(stage, reply.usage);
    return reply.choices?.[0]?.message.content ?? "";
  };

  // Its wall time is not measured, so it may run wider than the pipeline.
  await forEachLimited(articles, options.concurrency ?? 16, async (article) => {
    const source = { title: article.title, feed: article.feed, link: article.link, summary: article.body };
    await chat("summarize", config.models.summarize, buildSummarizePrompt({ title: article.title, feed: article.feed, text: article.body }));
    const embedded = await post("/embeddings", { model: config.models.embedding, input: [`${article.title}\n\n${article.body}`] });
    count("embedding", embedded.usage);
    const posts = JSON.parse(await chat("generate_social", config.models.generate_social, buildSocialPrompt({ label: article.title, sources: [source] })));
    await chat(
      "validate",
      config.models.validate,
      buildReviewPrompt({ label: article.title, sources: [source], posts: PLATFORMS.map((platform) => ({ platform, text: String(posts[platform] ?? "") })) }),
    );
  });
  return result;
}
