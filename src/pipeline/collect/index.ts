/**
 * The collect stage. Every feed source is fetched (or read), decoded and parsed, a few at a time;
 * a broken feed is recorded in feed_errors and the run goes on. New articles are deduplicated by
 * canonical link and by content hash, within the run and against the database, and stored.
 */
import { inArray, or, sql } from "drizzle-orm";
import type { Config } from "../../config";
import type { Database } from "../../db/client";
import { rows } from "../../db/migrate";
import { articles, feedErrors } from "../../db/schema";
import { forEachLimited } from "../concurrency";
import type { Deps } from "../deps";
import type { BriefingState, BriefingUpdate } from "../state";
import { canonicalUrl, contentHash } from "./canonical";
import type { DateFlag } from "./dates";
import { decodeFeed } from "./decode";
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
    ...problems.map((problem) => ({ feed: problem.name, candidates: [], warnings: [], error: problem.error })),
    ...fetched,
  ];
  const failed = outcomes.filter((outcome) => outcome.error !== null);
  const offline = failed.length > 0 && failed.length === outcomes.length && failed.every((o) => o.error!.code === "network");
  await recordFeedProblems(db, state.runId, outcomes, offline);

  const distinct = dropDuplicates(newestFirst(outcomes.flatMap((outcome) => outcome.candidates)));
  const unseen = await dropAlreadyStored(db, distinct);
  const chosen = unseen.slice(0, config.collect.maxArticlesPerRun);
  const newIds = await insertArticles(db, state.runId, chosen);
  // Articles of runs that failed or halted before publishing are never lost: this run takes them over.
  const backlog = await claimBacklog(db, state.runId, config.collect.maxArticlesPerRun - newIds.length);
  const articleIds = [...newIds, ...backlog];

  // Rows a concurrent run stored between our check and our insert were "already seen" too.
  const alreadySeen = distinct.length - unseen.length + (chosen.length - newIds.length);
  const overCap = unseen.length - chosen.length;
  let line =
    `collect: ${outcomes.length} feeds, ${failed.length} failed, ${newIds.length} new articles ` +
    `(${alreadySeen} already seen${overCap > 0 ? `, ${overCap} over the per-run cap of ${config.collect.maxArticlesPerRun}` : ""})` +
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
    return {
      feed: source.name,
      candidates: dropDuplicates(newestFirst(candidates)).slice(0, limits.maxItemsPerFeed),
      warnings,
      error: null,
    };
  } catch (error) {
    return { feed: source.name, candidates: [], warnings: [], error: asFeedError(error) };
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

/** Keeps the first of each canonical link and of each content hash. */
function dropDuplicates(candidates: Candidate[]): Candidate[] {
  const urls = new Set<string>();
  const hashes = new Set<string>();
  return candidates.filter((candidate) => {
    if (urls.has(candidate.canonicalUrl) || hashes.has(candidate.contentHash)) return false;
    urls.add(candidate.canonicalUrl);
    hashes.add(candidate.contentHash);
    return true;
  });
}

async function dropAlreadyStored(db: Database, candidates: Candidate[]): Promise<Candidate[]> {
  const storedUrls = new Set<string>();
  const storedHashes = new Set<string>();
  for (const batch of chunks(candidates, BATCH)) {
    const rows = await db
      .select({ canonicalUrl: articles.canonicalUrl, contentHash: articles.contentHash })
      .from(articles)
      .where(
        or(
          inArray(articles.canonicalUrl, batch.map((c) => c.canonicalUrl)),
          inArray(articles.contentHash, batch.map((c) => c.contentHash)),
        ),
      );
    for (const row of rows) {
      storedUrls.add(row.canonicalUrl);
      storedHashes.add(row.contentHash);
    }
  }
  return candidates.filter((c) => !storedUrls.has(c.canonicalUrl) && !storedHashes.has(c.contentHash));
}

/** Inserts with ON CONFLICT DO NOTHING (safe when runs overlap); returns the new ids in candidate order. */
async function insertArticles(db: Database, runId: string, candidates: Candidate[]): Promise<number[]> {
  const idByUrl = new Map<string, number>();
  for (const batch of chunks(candidates, BATCH)) {
    const rows = await db
      .insert(articles)
      .values(batch.map((c) => ({ ...c, firstRunId: runId, runId })))
      .onConflictDoNothing()
      .returning({ id: articles.id, canonicalUrl: articles.canonicalUrl });
    for (const row of rows) idByUrl.set(row.canonicalUrl, row.id);
  }
  return candidates.flatMap((c) => {
    const id = idByUrl.get(c.canonicalUrl);
    return id === undefined ? [] : [id];
  });
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
