/** A cluster with its articles, as generate_social, validate and publish read it. */
import { asc, inArray } from "drizzle-orm";
import type { Database } from "../../db/client";
import { articles, articleSources, clusters, type ArticleSource } from "../../db/schema";

/** A feed item the article was made from or merged with. */
export interface StorySource {
  /** The feed's title, or the feed as configured. */
  feed: string;
  /** The canonical URL: no tracking parameters, no redirect wrappers. */
  link: string;
  matchedBy: ArticleSource["matchedBy"];
  similarity: number | null;
}

export interface StoryArticle {
  id: number;
  title: string;
  /** The link to show: the canonical URL. */
  link: string;
  /** The link as the feed gave it. */
  originalLink: string;
  canonicalUrl: string;
  feed: string;
  feedTitle: string | null;
  publishedAt: Date | null;
  summary: string | null;
  /** Where the article was seen, its first source first; empty for articles stored before sources were. */
  sources: StorySource[];
}

export interface Story {
  clusterId: number;
  rank: number;
  label: string;
  score: number;
  /** In the cluster's order: most central first. */
  articles: StoryArticle[];
}

/** The stories for `clusterIds`, in that order. */
export async function loadStories(db: Database, clusterIds: readonly number[]): Promise<Story[]> {
  if (clusterIds.length === 0) return [];
  const clusterRows = await db.select().from(clusters).where(inArray(clusters.id, [...clusterIds]));
  const articleIds = [...new Set(clusterRows.flatMap((c) => c.articleIds))];
  const articleRows = articleIds.length
    ? await db
        .select({
          id: articles.id,
          title: articles.title,
          // Posts and the briefing link the canonical URL: no tracking parameters, no redirect wrappers.
          link: articles.canonicalUrl,
          originalLink: articles.link,
          canonicalUrl: articles.canonicalUrl,
          feed: articles.feed,
          feedTitle: articles.feedTitle,
          publishedAt: articles.publishedAt,
          summary: articles.summary,
        })
        .from(articles)
        .where(inArray(articles.id, articleIds))
    : [];
  const sourcesOf = await loadSources(db, articleIds);
  const articleById = new Map(articleRows.map((a) => [a.id, { ...a, sources: sourcesOf.get(a.id) ?? [] }]));
  const clusterById = new Map(clusterRows.map((c) => [c.id, c]));
  return clusterIds.flatMap((id) => {
    const cluster = clusterById.get(id);
    if (!cluster) return [];
    return [
      {
        clusterId: cluster.id,
        rank: cluster.rank,
        label: cluster.label,
        score: cluster.score,
        articles: cluster.articleIds.flatMap((articleId) => articleById.get(articleId) ?? []),
      },
    ];
  });
}

async function loadSources(db: Database, articleIds: number[]): Promise<Map<number, StorySource[]>> {
  const sourcesOf = new Map<number, StorySource[]>();
  if (articleIds.length === 0) return sourcesOf;
  const rows = await db
    .select()
    .from(articleSources)
    .where(inArray(articleSources.articleId, articleIds))
    .orderBy(asc(articleSources.articleId), asc(articleSources.id));
  for (const row of rows) {
    const list = sourcesOf.get(row.articleId) ?? [];
    // "first" sorts first whatever the insert order (a concurrent run may have added a source before it).
    const source = { feed: row.feedTitle ?? row.feed, link: row.canonicalUrl, matchedBy: row.matchedBy, similarity: row.similarity };
    if (row.matchedBy === "first") list.unshift(source);
    else list.push(source);
    sourcesOf.set(row.articleId, list);
  }
  return sourcesOf;
}

/** The links a post about this story may carry: each article's link and canonical URL. */
export function storyLinks(story: Story): Set<string> {
  return new Set(story.articles.flatMap((a) => [a.link, a.originalLink, a.canonicalUrl]));
}
