/**
 * The collect stage. Every feed source is fetched (or read), decoded and parsed, a few at a time;
 * a broken feed is recorded in feed_errors and the run goes on. An item that repeats a story (same
 * canonical link, same text, or title and lead near-duplicate of an article of the window,
 * measured locally) becomes another source of that article in article_sources, never a new
 * article, so nothing is paid for it; within the run and against the database.
 */
import { desc, eq, gte, inArray, or, sql } from "drizzle-orm";
import type { Config } from "../../config";
import type { Database } from "../../db/client";
import { rows } from "../../db/migrate";
import { articles, articleSources, feedErrors } from "../../db/schema";
import { forEachLimited } from "../concurrency";
import type { Deps } from "../deps";
import type { BriefingState, BriefingUpdate } from "../state";
import { canonicalUrl, contentHash } from "./canonical";
import type { DateFlag } from "./dates";
import { decodeFeed } from "./decode";
import { LEAD_CHARS, NearDuplicateIndex, roundSimilarity, similarityVector } from "./duplicates";
import { FeedError, OFFLINE_HINT, type FeedWarning } from "./errors";
import { fetchFeed } from "./fetch";
import { firstWords } from "./html";
import { parseFeed, type ParsedFeed } from "./parse";
import { listFeedSources, readFeedFile, type FeedSource } from "./sources";

export { canonicalUrl, contentHash } from "./canonical";
export { decodeFeed } from "./decode";
export { FeedError } from "./errors";
export { fetchFeed } from "./fetch";
export { parseFeed } from "./parse";
export { listFeedSources } from "./sources";

/** Stored body size: enough for clustering and summaries (which trim to their own token budget). */
export const MAX_BODY_CHARS = 16_000;
const MAX_TITLE_CHARS = 300;
/** Rows per INSERT and values per IN (...) list. */
const BATCH = 200;
export const SAMPLE_FEEDS_HINT = "To run on the bundled sample feeds, pass --feeds test/fixtures/feeds";

interface Candidate {
  feed: string;
  feedTitle: string | null;
  link: string;
  canonicalUrl: string;
  contentHash: string;
  title: string;
  body: string;
  publishedAt: Date | null;
  dateFlag: DateFlag | null;
}

interface FeedOutcome {
  feed: string;
  /** The feed's newest distinct items, at most maxItemsPerFeed, newest first. */
  candidates: Candidate[];
  /** Items that repeat an earlier item of the same feed (same link or text), dropped before anything else. */
  repeated: number;
  warnings: FeedWarning[];
  error: FeedError | null;
}

export async function collect(state: BriefingState, deps: Deps): Promise<BriefingUpdate> {
  const { db, config, log } = deps;
  const { sources, problems } = await listFeedSources(state.feeds);
  const fetched = new Array<FeedOutcome>(sources.length);
  // collectFeed never throws: a broken feed becomes an outcome with an error.
  await forEachLimited([...sources.keys()], config.concurrency, async (index) => {
    fetched[index] = await collectFeed(sources[index], config.collect);
  });
  const outcomes: FeedOutcome[] = [
    ...problems.map((problem) => ({ feed: problem.name, candidates: [], repeated: 0, warnings: [], error: problem.error })),
    ...fetched,
  ];
  const failed = outcomes.filter((outcome) => outcome.error !== null);
  const offline = failed.length > 0 && failed.length === outcomes.length && failed.every((o) => o.error!.code === "network");
  await recordFeedProblems(db, state.runId, outcomes, offline);

  const items = newestFirst(outcomes.flatMap((outcome) => outcome.candidates));
  const repeated = outcomes.reduce((n, outcome) => n + outcome.repeated, 0);
  const plan = planArticles(items, await loadKnownStories(db, items, config.collect.duplicates), config.collect);
  const stored = await storeArticles(db, state.runId, plan);
  // Articles of runs that failed or halted before publishing are never lost: this run takes them over.
  const backlog = await claimBacklog(db, state.runId, config.collect.maxArticlesPerRun - stored.newIds.length);
  const articleIds = [...stored.newIds, ...backlog];

  let line =
    `collect: ${outcomes.length} feeds, ${failed.length} failed, ${stored.newIds.length} new articles, ` +
    `${stored.merged} merged into existing stories ` +
    `(${stored.alreadySeen} already seen${repeated > 0 ? `, ${repeated} repeated within their feed` : ""}${plan.overCap > 0 ? `, ${plan.overCap} over the per-run cap of ${config.collect.maxArticlesPerRun}` : ""})` +
    (backlog.length > 0 ? `, ${backlog.length} taken over from runs that did not finish` : "");
  if (offline) line += `. Every feed failed with a network error: ${OFFLINE_HINT}. ${SAMPLE_FEEDS_HINT}`;
  log(line);

  return { articleIds, feedsAttempted: outcomes.length, feedsFailed: failed.length };
}

async function collectFeed(source: FeedSource, limits: Config["collect"]): Promise<FeedOutcome> {
  try {
    const { bytes, contentType, baseUrl } = await loadSource(source, limits);
    const decoded = decodeFeed(bytes, contentType);
    const parsed = await parseFeed(decoded.text, baseUrl);
    const warnings = [...decoded.warnings, ...parsed.warnings];
    const candidates = toCandidates(source.name, parsed, warnings);
    const { kept, repeated } = newestDistinct(candidates, limits.maxItemsPerFeed);
    return {
      feed: source.name,
      candidates: kept,
      repeated,
      warnings,
      error: null,
    };
  } catch (error) {
    return { feed: source.name, candidates: [], repeated: 0, warnings: [], error: asFeedError(error) };
  }
}

async function loadSource(
  source: FeedSource,
  limits: Config["collect"],
): Promise<{ bytes: Buffer; contentType: string | null; baseUrl: string }> {
  if (source.kind === "file") {
    return { bytes: await readFeedFile(source.path, limits.fetchMaxBytes), contentType: null, baseUrl: source.name };
  }
  const fetched = await fetchFeed(source.name, {
    timeoutMs: limits.fetchTimeoutMs,
    maxBytes: limits.fetchMaxBytes,
    maxRedirects: limits.maxRedirects,
  });
  // Relative links resolve against where the body really came from.
  return { bytes: fetched.bytes, contentType: fetched.contentType, baseUrl: fetched.finalUrl };
}

function asFeedError(error: unknown): FeedError {
  if (error instanceof FeedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FeedError("unexpected_error", `unexpected error: ${message}`, { cause: error });
}

function toCandidates(feed: string, parsed: ParsedFeed, warnings: FeedWarning[]): Candidate[] {
  const candidates: Candidate[] = [];
  let withoutLink = 0;
  for (const item of parsed.items) {
    if (!item.link || !/^https?:\/\//i.test(item.link)) {
      withoutLink++;
      continue;
    }
    const title = truncateAtWord(item.title, MAX_TITLE_CHARS);
    const body = truncateAtWord(item.body, MAX_BODY_CHARS);
    candidates.push({
      feed,
      feedTitle: parsed.title,
      link: item.link,
      canonicalUrl: canonicalUrl(item.link),
      contentHash: contentHash(title, body),
      title,
      body,
      publishedAt: item.publishedAt,
      dateFlag: item.dateFlag,
    });
  }
  if (withoutLink > 0) {
    warnings.push({
      code: "items_without_link",
      message: `${withoutLink} of ${parsed.items.length} items have no absolute link (none given, or relative with no base to resolve it); skipped`,
    });
  }
  return candidates;
}

function truncateAtWord(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : firstWords(text, maxChars - 1);
}

/** Newest first, undated last; stable, so ties keep feed order. */
function newestFirst(candidates: Candidate[]): Candidate[] {
  return [...candidates].sort((a, b) => (b.publishedAt?.getTime() ?? -Infinity) - (a.publishedAt?.getTime() ?? -Infinity) || 0);
}

/**
 * The newest `max` items with distinct canonical links and content hashes, and how many items
 * among them repeated an earlier (newer) one: those are dropped, and counted.
 */
function newestDistinct(candidates: Candidate[], max: number): { kept: Candidate[]; repeated: number } {
  const urls = new Set<string>();
  const hashes = new Set<string>();
  const kept: Candidate[] = [];
  let repeated = 0;
  for (const candidate of newestFirst(candidates)) {
    if (kept.length >= max) break;
    if (urls.has(candidate.canonicalUrl) || hashes.has(candidate.contentHash)) {
      repeated++;
      continue;
    }
    urls.add(candidate.canonicalUrl);
    hashes.add(candidate.contentHash);
    kept.push(candidate);
  }
  return { kept, repeated };
}

type MatchedBy = "canonical_url" | "content_hash" | "near_duplicate";
/** An article stored before this run, or the index of one this run creates (in plan.fresh). */
type StoryRef = { stored: number } | { fresh: number };

interface StoredStory {
  id: number;
  /** The article's own link and feed: an item with both is the article's first source. */
  canonicalUrl: string;
  feed: string;
}

interface KnownStories {
  /** Canonical link → article, from articles and from the links of their other sources. */
  byUrl: Map<string, StoredStory>;
  byHash: Map<string, StoredStory>;
  /** Title-and-lead vectors of the articles of the window. */
  recent: { story: StoredStory; vector: number[] | null }[];
}

interface SourceMatch {
  item: Candidate;
  story: StoryRef;
  matchedBy: MatchedBy;
  similarity: number | null;
}

interface ArticlePlan {
  /** New articles, newest first. */
  fresh: Candidate[];
  /** Items that repeat a story: another source of its article. */
  matches: SourceMatch[];
  /** The stored articles matched, to tell an article's own first item from another source. */
  storedStories: Map<number, StoredStory>;
  overCap: number;
}

const NO_WINDOW: Config["collect"]["duplicates"] = { similarity: 1, windowDays: 0, maxCandidates: 0 };

/** The stored stories the items may repeat: by link and text hash, and the window's articles for similarity. */
async function loadKnownStories(db: Database, items: Candidate[], window: Config["collect"]["duplicates"]): Promise<KnownStories> {
  const byUrl = new Map<string, StoredStory>();
  const byHash = new Map<string, StoredStory>();
  const story = (row: StoredStory): StoredStory => ({ id: row.id, canonicalUrl: row.canonicalUrl, feed: row.feed });
  for (const batch of chunks(items, BATCH)) {
    const urls = batch.map((item) => item.canonicalUrl);
    const rows = await db
      .select({ id: articles.id, canonicalUrl: articles.canonicalUrl, contentHash: articles.contentHash, feed: articles.feed })
      .from(articles)
      .where(or(inArray(articles.canonicalUrl, urls), inArray(articles.contentHash, batch.map((item) => item.contentHash))));
    for (const row of rows) {
      byUrl.set(row.canonicalUrl, story(row));
      byHash.set(row.contentHash, story(row));
    }
    const sourceRows = await db
      .select({ url: articleSources.canonicalUrl, id: articles.id, canonicalUrl: articles.canonicalUrl, feed: articles.feed })
      .from(articleSources)
      .innerJoin(articles, eq(articles.id, articleSources.articleId))
      .where(inArray(articleSources.canonicalUrl, urls));
    for (const row of sourceRows) if (!byUrl.has(row.url)) byUrl.set(row.url, story(row));
  }
  const recent =
    items.length > 0 && window.windowDays > 0 && window.maxCandidates > 0
      ? await db
          .select({
            id: articles.id,
            canonicalUrl: articles.canonicalUrl,
            feed: articles.feed,
            title: articles.title,
            lead: sql<string>`left(${articles.body}, ${LEAD_CHARS})`,
          })
          .from(articles)
          .where(gte(articles.collectedAt, sql`now() - make_interval(days => ${window.windowDays})`))
          .orderBy(desc(articles.collectedAt), desc(articles.id))
          .limit(window.maxCandidates)
      : [];
  return { byUrl, byHash, recent: recent.map((row) => ({ story: story(row), vector: similarityVector(row.title, row.lead) })) };
}

/**
 * Walks the items newest first: each repeats a stored story or one found earlier in the run (by
 * canonical link, then text hash, then similarity), or is a new article while the cap allows.
 */
function planArticles(items: Candidate[], known: KnownStories, limits: Config["collect"]): ArticlePlan {
  const byUrl = new Map<string, StoryRef>([...known.byUrl].map(([url, s]) => [url, { stored: s.id }]));
  const byHash = new Map<string, StoryRef>([...known.byHash].map(([hash, s]) => [hash, { stored: s.id }]));
  const similar = new NearDuplicateIndex<StoryRef>(limits.duplicates.similarity);
  const storedStories = new Map<number, StoredStory>();
  for (const s of [...known.byUrl.values(), ...known.byHash.values()]) storedStories.set(s.id, s);
  for (const { story, vector } of known.recent) {
    similar.add({ stored: story.id }, vector);
    storedStories.set(story.id, story);
  }

  const plan: ArticlePlan = { fresh: [], matches: [], storedStories, overCap: 0 };
  for (const item of items) {
    const vector = similarityVector(item.title, item.body);
    const match = matchStory(item, vector, byUrl, byHash, similar);
    const fresh = match && "fresh" in match.story ? plan.fresh[match.story.fresh]! : null;
    if (match && fresh && isEarlier(item, fresh)) {
      // The earlier copy of a story found twice in this run is the original: it becomes the
      // article (its title and text), and the later one another source of it.
      plan.fresh[(match.story as { fresh: number }).fresh] = item;
      plan.matches.push({ ...match, item: fresh });
      byUrl.set(item.canonicalUrl, match.story);
      byHash.set(item.contentHash, match.story);
    } else if (match) {
      plan.matches.push(match);
      // A later copy of this link repeats the same story.
      if (!byUrl.has(item.canonicalUrl)) byUrl.set(item.canonicalUrl, match.story);
    } else if (plan.fresh.length >= limits.maxArticlesPerRun) {
      plan.overCap++;
    } else {
      const story: StoryRef = { fresh: plan.fresh.length };
      plan.fresh.push(item);
      byUrl.set(item.canonicalUrl, story);
      byHash.set(item.contentHash, story);
      similar.add(story, vector);
    }
  }
  return plan;
}

/** Whether `a` was published before `b` (both dated). */
function isEarlier(a: Candidate, b: Candidate): boolean {
  return a.publishedAt !== null && b.publishedAt !== null && a.publishedAt.getTime() < b.publishedAt.getTime();
}

function matchStory(
  item: Candidate,
  vector: number[] | null,
  byUrl: Map<string, StoryRef>,
  byHash: Map<string, StoryRef>,
  similar: NearDuplicateIndex<StoryRef>,
): SourceMatch | null {
  const byLink = byUrl.get(item.canonicalUrl);
  if (byLink) return { item, story: byLink, matchedBy: "canonical_url", similarity: null };
  const byText = byHash.get(item.contentHash);
  if (byText) return { item, story: byText, matchedBy: "content_hash", similarity: null };
  const near = similar.closest(vector);
  return near ? { item, story: near.key, matchedBy: "near_duplicate", similarity: roundSimilarity(near.similarity) } : null;
}

type SourceRow = typeof articleSources.$inferInsert;

/**
 * Inserts the new articles and every item's source row, both with ON CONFLICT DO NOTHING (safe
 * when runs overlap). A new article that a concurrent run stored first becomes a source of that one.
 */
async function storeArticles(db: Database, runId: string, plan: ArticlePlan): Promise<{ newIds: number[]; merged: number; alreadySeen: number }> {
  const idByUrl = new Map<string, number>();
  for (const batch of chunks(plan.fresh, BATCH)) {
    const rows = await db
      .insert(articles)
      .values(batch.map((c) => ({ ...c, firstRunId: runId, runId })))
      .onConflictDoNothing()
      .returning({ id: articles.id, canonicalUrl: articles.canonicalUrl });
    for (const row of rows) idByUrl.set(row.canonicalUrl, row.id);
  }
  const newIds = plan.fresh.flatMap((c) => idByUrl.get(c.canonicalUrl) ?? []);
  const winners = await loadKnownStories(db, plan.fresh.filter((c) => !idByUrl.has(c.canonicalUrl)), NO_WINDOW);
  const freshStories: (StoredStory | undefined)[] = plan.fresh.map((item) => {
    const id = idByUrl.get(item.canonicalUrl);
    if (id !== undefined) return { id, canonicalUrl: item.canonicalUrl, feed: item.feed };
    return winners.byUrl.get(item.canonicalUrl) ?? winners.byHash.get(item.contentHash);
  });

  const rows: SourceRow[] = [];
  const addRow = (item: Candidate, story: StoredStory | undefined, matchedBy: MatchedBy, similarity: number | null) => {
    if (!story) return;
    // The article's own link from its own feed is its first source (also when a concurrent run
    // stored the article, or it was stored before sources were).
    const isOwn = story.canonicalUrl === item.canonicalUrl && story.feed === item.feed;
    rows.push(sourceRow(runId, item, story.id, isOwn ? "first" : matchedBy, similarity));
  };
  plan.fresh.forEach((item, i) => {
    const story = freshStories[i];
    addRow(item, story, story?.canonicalUrl === item.canonicalUrl ? "canonical_url" : "content_hash", null);
  });
  for (const match of plan.matches) {
    const story = "stored" in match.story ? plan.storedStories.get(match.story.stored) : freshStories[match.story.fresh];
    addRow(match.item, story, match.matchedBy, match.similarity);
  }
  let merged = 0;
  for (const batch of chunks(rows, BATCH)) {
    const inserted = await db.insert(articleSources).values(batch).onConflictDoNothing().returning({ matchedBy: articleSources.matchedBy });
    merged += inserted.filter((r) => r.matchedBy !== "first").length;
  }
  // Neither a new article nor a new source: this feed gave this link before.
  const alreadySeen = plan.fresh.length + plan.matches.length - newIds.length - merged;
  return { newIds, merged, alreadySeen };
}

function sourceRow(runId: string, item: Candidate, articleId: number, matchedBy: SourceRow["matchedBy"], similarity: number | null): SourceRow {
  return {
    articleId,
    canonicalUrl: item.canonicalUrl,
    link: item.link,
    title: item.title,
    feed: item.feed,
    feedTitle: item.feedTitle,
    publishedAt: item.publishedAt,
    matchedBy,
    similarity,
    runId,
  };
}

/**
 * Takes over, newest first, up to `limit` articles whose run failed or halted. One UPDATE, so
 * two runs starting at once never both take the same article.
 */
async function claimBacklog(db: Database, runId: string, limit: number): Promise<number[]> {
  if (limit <= 0) return [];
  const result = await db.execute(sql`
    update articles set run_id = ${runId}
    where id in (
      select a.id from articles a join runs r on r.id = a.run_id
      where r.status in ('failed', 'halted') and r.id <> ${runId}
      order by a.published_at desc nulls last, a.id desc
      limit ${limit}
      for update of a skip locked
    )
    returning id, published_at`);
  return rows(result)
    .sort((x, y) => String(y.published_at ?? "").localeCompare(String(x.published_at ?? "")) || Number(y.id) - Number(x.id))
    .map((r) => Number(r.id));
}

async function recordFeedProblems(db: Database, runId: string, outcomes: FeedOutcome[], offline: boolean): Promise<void> {
  const rows = outcomes.flatMap((outcome) => [
    ...(outcome.error
      ? [
          {
            runId,
            feed: outcome.feed,
            severity: "error" as const,
            code: outcome.error.code,
            message: offline ? `${outcome.error.message}. Every feed failed this way. ${SAMPLE_FEEDS_HINT}` : outcome.error.message,
          },
        ]
      : []),
    ...outcome.warnings.map((warning) => ({ runId, feed: outcome.feed, severity: "warning" as const, ...warning })),
  ]);
  for (const batch of chunks(rows, BATCH)) await db.insert(feedErrors).values(batch);
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
