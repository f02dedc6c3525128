/**
 * Dedupe before any paid call (issue 5): copies of one story, by link (through a redirect with
 * tracking parameters), by text or as a near-duplicate, become one article with several sources
 * and are summarised once. Feeds come from the local feed server; once on PGlite, once on Postgres.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { articles, articleSources, llmCalls, runs } from "../../src/db/schema";
import type { Models } from "../../src/llm/types";
import { collect } from "../../src/pipeline/collect";
import { cosine, NearDuplicateIndex, similarityVector } from "../../src/pipeline/collect/duplicates";
import { initialState } from "../../src/pipeline/state";
import { describePg, freshPgDb, memoryDb } from "../helpers/db";
import { startFeedServer, type FeedServer } from "./feed-server";

const rss = (title: string, items: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>${title}</title><link>https://example.org/</link>${items}</channel></rss>`;
const item = (title: string, link: string, body: string, date: string) =>
  `<item><title>${title}</title><link>${link.replace(/&/g, "&amp;")}</link><pubDate>${date}</pubDate><description>${body}</description></item>`;

const REOPENS_URL = "https://news.example.org/2024/05/harbour-reopens";
const REOPENS_REDIRECT =
  "https://click.coastdigest.example/r?url=" +
  encodeURIComponent(`${REOPENS_URL}?utm_source=coastdigest&utm_medium=rss`) +
  "&utm_campaign=feed&sig=8f2c";
const REOPENS = {
  title: "Port Alder harbour reopens after storm repairs",
  body:
    "The harbour at Port Alder reopened on Thursday after crews finished repairing the breakwater damaged in last week's storm. " +
    "Ferries to the islands resume their normal timetable on Friday, the harbour master said.",
};
const REOPENS_COPY = {
  title: "Port Alder harbour reopens after storm repairs are finished",
  body:
    "The harbour at Port Alder reopened on Thursday after crews finished repairing the breakwater that was damaged in last week's storm. " +
    "Ferries to the islands resume their normal timetable from Friday, the harbour master said.",
};
const STORM = {
  title: "Storm closes Port Alder harbour as waves breach the breakwater",
  body:
    "The harbour at Port Alder was closed overnight after storm waves breached the old breakwater. " +
    "Ferries to the islands are cancelled until the harbour master has inspected the damage.",
};
const SAILINGS_URL = "https://news.example.org/2024/05/winter-sailings";
const SAILINGS = {
  title: "Ferry operator adds winter sailings to the islands",
  body:
    "Island Ferries will run two extra sailings a day between Port Alder and the outer islands from December, after a record summer season. " +
    "Tickets for the winter timetable go on sale next Monday.",
};
// Another site's rewrite: another link, the title and lead reworded.
const SAILINGS_REWORDED_URL = "https://coastdigest.example/2024/05/island-ferries-winter";
const SAILINGS_REWORDED = {
  title: "Ferry operator Island Ferries adds winter sailings",
  body:
    "Island Ferries is to run two extra sailings a day between Port Alder and the outer islands from December, after a record summer season. " +
    "Tickets for the winter timetable go on sale on Monday.",
};
const MAY_2 = "Thu, 02 May 2024 08:00:00 GMT";
const MAY_1 = "Wed, 01 May 2024 06:00:00 GMT";

const FEEDS: Record<string, string> = {
  "/gazette.xml": rss("Harbour Gazette", item(REOPENS.title, REOPENS_URL, REOPENS.body, MAY_2)),
  "/digest.xml": rss("Coastal Digest", item(REOPENS_COPY.title, REOPENS_REDIRECT, REOPENS_COPY.body, MAY_2)),
  // The original, published first (tracking parameters on its link), and a later redirect copy with a poorer text.
  "/early-original.xml": rss("Harbour Gazette", item(REOPENS.title, `${REOPENS_URL}?utm_source=rss`, REOPENS.body, MAY_1)),
  "/late-copy.xml": rss("Coastal Digest", item("Harbour reopens", REOPENS_REDIRECT, "Redirected copy.", MAY_2)),
  "/gazette-ferries.xml": rss(
    "Harbour Gazette",
    item(SAILINGS.title, SAILINGS_URL, SAILINGS.body, MAY_2) + item(STORM.title, "https://news.example.org/2024/05/storm", STORM.body, MAY_1),
  ),
  "/digest-ferries.xml": rss(
    "Coastal Digest",
    item(SAILINGS_REWORDED.title, SAILINGS_REWORDED_URL, SAILINGS_REWORDED.body, MAY_2) +
      item(REOPENS.title, "https://coastdigest.example/2024/05/harbour-reopens", `${REOPENS.body} Our reporter was there.`, MAY_2),
  ),
};

describe("near-duplicate similarity (title and lead, hashed words)", () => {
  const similarity = (a: { title: string; body: string }, b: { title: string; body: string }) =>
    Number(cosine(similarityVector(a.title, a.body)!, similarityVector(b.title, b.body)!).toFixed(6));

  it("scores a reworded copy above the 0.9 default and two stories of one event below it", () => {
    expect(similarity(REOPENS, REOPENS_COPY)).toBe(0.982199);
    expect(similarity(SAILINGS, SAILINGS_REWORDED)).toBe(0.92567);
    expect(similarity(STORM, REOPENS)).toBe(0.564211);
  });

  it("does not compare texts of fewer than 8 content words", () => {
    expect(similarityVector("v3.8.8", "")).toBeNull();
    expect(similarityVector("Giant Bomb at Nite", "Live from the show floor")).toBeNull();
    const index = new NearDuplicateIndex<string>(0.9);
    index.add("short", similarityVector("v3.8.3", ""));
    expect(index.closest(similarityVector("v3.8.3", ""))).toBeNull();
  });

  it("refuses a threshold outside (0, 1], naming it", () => {
    expect(() => new NearDuplicateIndex(0)).toThrow("near-duplicate threshold must be in (0, 1], got 0");
    expect(() => new NearDuplicateIndex(1.5)).toThrow("near-duplicate threshold must be in (0, 1], got 1.5");
  });
});

function suite(open: () => Promise<OpenedDatabase & { drop?: () => Promise<void> }>) {
  let database: OpenedDatabase & { drop?: () => Promise<void> };
  let server: FeedServer;
  const outDir = mkdtempSync(path.join(os.tmpdir(), "nl-dedupe-out-"));
  let lines: string[];

  beforeAll(async () => {
    database = await open();
    server = await startFeedServer(FEEDS);
  });
  afterAll(async () => {
    await server.close();
    if (database.drop) await database.drop();
    else await database.close();
    rmSync(outDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await database.db.execute(sql`TRUNCATE runs, articles, article_sources, feed_errors RESTART IDENTITY CASCADE`);
    lines = [];
  });

  const feeds = (...paths: string[]) => paths.map((p) => server.url(p));
  const briefing = (...paths: string[]) =>
    runBriefing(
      { config: loadConfig({ NEWSLEDGER_PROVIDER: "offline", NEWSLEDGER_OUT_DIR: outDir }), database, log: (line) => lines.push(line) },
      { trigger: "test", feeds: feeds(...paths) },
    );
  const collectOnly = (runId: string, ...paths: string[]) => collectWith({}, runId, ...paths);
  const collectWith = async (env: Record<string, string>, runId: string, ...paths: string[]) => {
    await database.db.insert(runs).values({ id: runId, workflow: "daily_briefing", trigger: "test", status: "running", provider: "offline" });
    return collect(initialState(runId, feeds(...paths)), {
      db: database.db,
      config: loadConfig({ NEWSLEDGER_PROVIDER: "offline", ...env }),
      models: {} as Models,
      log: (line) => lines.push(line),
    });
  };
  const storedArticles = () => database.db.select({ id: articles.id, link: articles.link, title: articles.title }).from(articles).orderBy(asc(articles.id));
  const storedSources = () =>
    database.db
      .select({
        articleId: articleSources.articleId,
        feed: articleSources.feed,
        canonicalUrl: articleSources.canonicalUrl,
        link: articleSources.link,
        matchedBy: articleSources.matchedBy,
        similarity: articleSources.similarity,
      })
      .from(articleSources)
      .orderBy(asc(articleSources.id));
  const summarizeCalls = async (runId: string) =>
    (await database.db.select({ id: llmCalls.id }).from(llmCalls).where(sql`${llmCalls.runId} = ${runId} and ${llmCalls.node} = 'summarize'`)).length;

  it("of two copies of one story the earlier is the article, whichever feed comes first", async () => {
    await collectOnly("run-early-1", "/late-copy.xml", "/early-original.xml");
    expect(await storedArticles()).toEqual([{ id: 1, link: `${REOPENS_URL}?utm_source=rss`, title: REOPENS.title }]);
    expect((await storedSources()).map((r) => [r.feed.endsWith("early-original.xml") ? "original" : "copy", r.matchedBy])).toEqual([
      ["original", "first"],
      ["copy", "canonical_url"],
    ]);
  });

  it("two copies of one story (one through a redirect link with tracking parameters) become one article with two sources, summarised once", async () => {
    const result = await briefing("/gazette.xml", "/digest.xml");
    expect(result.status).toBe("succeeded");
    expect(lines).toContain("collect: 2 feeds, 0 failed, 1 new articles, 1 merged into existing stories (0 already seen)");

    const [article] = await storedArticles();
    expect(await storedArticles()).toEqual([{ id: article!.id, link: REOPENS_URL, title: REOPENS.title }]);
    expect(await storedSources()).toEqual([
      { articleId: article!.id, feed: server.url("/gazette.xml"), canonicalUrl: REOPENS_URL, link: REOPENS_URL, matchedBy: "first", similarity: null },
      { articleId: article!.id, feed: server.url("/digest.xml"), canonicalUrl: REOPENS_URL, link: REOPENS_REDIRECT, matchedBy: "canonical_url", similarity: null },
    ]);
    expect(result.articles).toBe(1);
    expect(await summarizeCalls(result.runId)).toBe(1);

    const markdown = readFileSync(result.briefing_path!, "utf8");
    expect(markdown).toContain(`Sources: [Harbour Gazette](<${REOPENS_URL}>), [Coastal Digest](<${REOPENS_URL}>)`);
  });

  it("a reworded copy on another site, collected the next day, is merged with its similarity; a different story of the same event is not", async () => {
    const first = await briefing("/gazette-ferries.xml");
    expect(first.articles).toBe(2);
    const second = await briefing("/digest-ferries.xml");
    expect(lines.filter((line) => line.startsWith("collect:"))).toEqual([
      "collect: 1 feeds, 0 failed, 2 new articles, 0 merged into existing stories (0 already seen)",
      // The harbour reopening is another story than the storm: a new article.
      "collect: 1 feeds, 0 failed, 1 new articles, 1 merged into existing stories (0 already seen)",
    ]);
    expect(second.articles).toBe(1);
    expect(await summarizeCalls(second.runId)).toBe(1);

    const stored = await storedArticles();
    expect(stored.map((a) => a.link)).toEqual([SAILINGS_URL, "https://news.example.org/2024/05/storm", "https://coastdigest.example/2024/05/harbour-reopens"]);
    expect((await storedSources()).map(({ articleId, canonicalUrl, matchedBy, similarity }) => ({ articleId, canonicalUrl, matchedBy, similarity }))).toEqual([
      { articleId: stored[0]!.id, canonicalUrl: SAILINGS_URL, matchedBy: "first", similarity: null },
      { articleId: stored[1]!.id, canonicalUrl: "https://news.example.org/2024/05/storm", matchedBy: "first", similarity: null },
      { articleId: stored[2]!.id, canonicalUrl: "https://coastdigest.example/2024/05/harbour-reopens", matchedBy: "first", similarity: null },
      { articleId: stored[0]!.id, canonicalUrl: SAILINGS_REWORDED_URL, matchedBy: "near_duplicate", similarity: 0.92567 },
    ]);
  });

  it("merges within one collect batch, and a second collect of the same feeds adds nothing", async () => {
    await collectOnly("run-1", "/gazette.xml", "/gazette-ferries.xml", "/digest-ferries.xml", "/digest.xml");
    // Reopens (gazette), its copy via the redirect (digest), its copy with one more sentence on
    // another site (digest-ferries); sailings and its rewrite; the storm on its own.
    expect(lines).toEqual(["collect: 4 feeds, 0 failed, 3 new articles, 3 merged into existing stories (0 already seen)"]);
    const stored = await storedArticles();
    expect(stored.map((a) => a.title)).toEqual([REOPENS.title, SAILINGS.title, STORM.title]);
    const sources = await storedSources();
    expect(sources.map(({ articleId, feed, matchedBy, similarity }) => [articleId, path.basename(feed), matchedBy, similarity])).toEqual([
      [stored[0]!.id, "gazette.xml", "first", null],
      [stored[1]!.id, "gazette-ferries.xml", "first", null],
      [stored[2]!.id, "gazette-ferries.xml", "first", null],
      [stored[1]!.id, "digest-ferries.xml", "near_duplicate", 0.92567],
      [stored[0]!.id, "digest-ferries.xml", "near_duplicate", 0.986684],
      [stored[0]!.id, "digest.xml", "canonical_url", null],
    ]);

    const again = await collectOnly("run-2", "/gazette.xml", "/gazette-ferries.xml", "/digest-ferries.xml", "/digest.xml");
    expect(again.articleIds).toEqual([]);
    expect(lines[1]).toBe("collect: 4 feeds, 0 failed, 0 new articles, 0 merged into existing stories (6 already seen)");
    expect(await storedSources()).toEqual(sources);
  });

  it("compares with the articles of the window only: the last N days, at most M of the newest", async () => {
    const emptied = () => database.db.execute(sql`TRUNCATE runs, articles, article_sources RESTART IDENTITY CASCADE`);
    await collectOnly("run-1", "/gazette-ferries.xml");
    await database.db.execute(sql`update articles set collected_at = now() - interval '1 day' where link = ${SAILINGS_URL}`);
    await collectWith({ NEWSLEDGER_DUPLICATE_MAX_CANDIDATES: "1" }, "run-2", "/digest-ferries.xml");
    for (const windowDays of ["3", "5"]) {
      await emptied();
      await collectOnly("run-3", "/gazette-ferries.xml");
      await database.db.execute(sql`update articles set collected_at = now() - interval '4 days'`);
      await collectWith({ NEWSLEDGER_DUPLICATE_WINDOW_DAYS: windowDays }, "run-4", "/digest-ferries.xml");
    }
    expect(lines.filter((_, i) => i % 2 === 1)).toEqual([
      // Only the storm, the newest, is compared: the rewrite is a new article.
      "collect: 1 feeds, 0 failed, 2 new articles, 0 merged into existing stories (0 already seen)",
      // The original is 4 days old: outside a 3-day window, inside a 5-day one.
      "collect: 1 feeds, 0 failed, 2 new articles, 0 merged into existing stories (0 already seen)",
      "collect: 1 feeds, 0 failed, 1 new articles, 1 merged into existing stories (0 already seen)",
    ]);
  });

  it("two runs collecting the same feeds at once store one article and each source once", async () => {
    const [a, b] = await Promise.all([collectOnly("run-a", "/gazette.xml", "/digest.xml"), collectOnly("run-b", "/gazette.xml", "/digest.xml")]);
    expect([...a.articleIds!, ...b.articleIds!]).toHaveLength(1);
    const [article] = await storedArticles();
    expect((await storedSources()).map(({ articleId, feed, matchedBy }) => [articleId, path.basename(feed), matchedBy])).toEqual([
      [article!.id, "gazette.xml", "first"],
      [article!.id, "digest.xml", "canonical_url"],
    ]);
    const merged = lines.map((line) => Number(/(\d+) merged/.exec(line)![1]));
    expect(merged.reduce((x, y) => x + y, 0)).toBe(1);
    expect(await database.db.select({ id: articles.id }).from(articles).where(eq(articles.canonicalUrl, REOPENS_URL))).toHaveLength(1);
  });
}

describe("dedupe on PGlite", () => suite(() => memoryDb()));
describePg("dedupe on Postgres", () => suite(() => freshPgDb()));
