/** The collect stage on PGlite: dedupe within and across runs, caps, feed_errors, the offline message. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { asc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { articles, articleSources, feedErrors, runs } from "../../src/db/schema";
import type { Models } from "../../src/llm/types";
import { collect, MAX_BODY_CHARS } from "../../src/pipeline/collect";
import type { Deps } from "../../src/pipeline/deps";
import { initialState } from "../../src/pipeline/state";
import { memoryDb } from "../helpers/db";
import { closedPort, startFeedServer } from "./feed-server";

const SAMPLE_FEEDS = path.resolve(__dirname, "../fixtures/feeds");
const scratch = mkdtempSync(path.join(os.tmpdir(), "newsledger-collect-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scratchFeed(name: string, content: string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, content);
  return file;
}

const rss = (title: string, items: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>${title}</title><link>https://news.example.org/</link>${items}</channel></rss>`;
const item = (title: string, link: string, body: string, date = "Thu, 02 May 2024 08:00:00 GMT") =>
  `<item><title>${title}</title><link>${link}</link><pubDate>${date}</pubDate><description>${body}</description></item>`;

// One database for the file (PGlite start-up and migrations take seconds), emptied before each test.
let opened: OpenedDatabase;
let logs: string[];
beforeAll(async () => {
  opened = await memoryDb();
});
afterAll(async () => {
  await opened.close();
});
beforeEach(async () => {
  await opened.db.execute(sql`TRUNCATE runs, articles, feed_errors RESTART IDENTITY CASCADE`);
  logs = [];
});

async function run(runId: string, feeds: string[], collectLimits: Partial<Config["collect"]> = {}) {
  await opened.db.insert(runs).values({ id: runId, workflow: "daily_briefing", trigger: "test", status: "running", provider: "offline" });
  const base = loadConfig({});
  const deps: Deps = {
    db: opened.db,
    config: { ...base, collect: { ...base.collect, ...collectLimits } },
    models: {} as Models,
    log: (line) => logs.push(line),
  };
  return collect(initialState(runId, feeds), deps);
}

const storedArticles = () => opened.db.select().from(articles).orderBy(asc(articles.id));
const storedProblems = () =>
  opened.db
    .select({ feed: feedErrors.feed, severity: feedErrors.severity, code: feedErrors.code, message: feedErrors.message })
    .from(feedErrors)
    .orderBy(asc(feedErrors.id));

describe("collect", () => {
  it("collects the sample feeds: 14 new articles, newest first, with resolved links, dates and feed titles", async () => {
    const result = await run("run-1", [SAMPLE_FEEDS]);
    expect(result.feedsAttempted).toBe(4);
    expect(result.feedsFailed).toBe(0);
    expect(result.articleIds).toHaveLength(14);
    expect(logs).toEqual(["collect: 4 feeds, 0 failed, 14 new articles, 0 merged into existing stories (0 already seen)"]);
    expect(await storedProblems()).toEqual([]);

    const rows = await storedArticles();
    const byId = new Map(rows.map((row) => [row.id, row]));
    const dates = result.articleIds!.map((id) => byId.get(id)!.publishedAt!.getTime());
    expect(dates).toEqual([...dates].sort((a, b) => b - a));
    expect(byId.get(result.articleIds![0])!.title).toBe("Councillors pass 2025 budget by 31 votes to 19");

    const storm = rows.find((row) => row.feedTitle === "Harbour Gazette" && row.title.startsWith("Storm closes"))!;
    expect(storm).toMatchObject({
      link: "https://news.example.org/2024/05/storm-closes-harbour?utm_source=rss&utm_medium=feed",
      canonicalUrl: "https://news.example.org/2024/05/storm-closes-harbour",
      feed: path.join(SAMPLE_FEEDS, "harbour-gazette.xml"),
      firstRunId: "run-1",
      dateFlag: null,
    });
    expect(storm.publishedAt!.toISOString()).toBe("2024-05-02T05:40:00.000Z");
    expect(storm.body).toMatch(/^The harbour at Port Alder was closed overnight after storm waves breached the old breakwater/);
    expect(storm.contentHash).toMatch(/^[0-9a-f]{64}$/);
    const coastal = rows.filter((row) => row.feedTitle === "Coastal Times").map((row) => row.link);
    expect(coastal).toContain("https://coast.example.net/news/ferries-cancelled-storm");
  });

  it("a second run over the same feeds inserts nothing (dedupe against the database)", async () => {
    expect((await run("run-1", [SAMPLE_FEEDS])).articleIds).toHaveLength(14);
    const second = await run("run-2", [SAMPLE_FEEDS]);
    expect(second.articleIds).toEqual([]);
    expect(second.feedsFailed).toBe(0);
    expect(await storedArticles()).toHaveLength(14);
    expect(logs[1]).toBe("collect: 4 feeds, 0 failed, 0 new articles, 0 merged into existing stories (14 already seen)");
  });

  it("stores an article once when a tracking link or another feed repeats it, within a run and across runs, each copy a source", async () => {
    const first = scratchFeed(
      "first.xml",
      rss("First", item("Harbour reopens", "https://news.example.org/harbour", "Ferries sail again.") + item("Bridge shut", "https://news.example.org/bridge", "The bridge is closed for repairs.")),
    );
    const second = scratchFeed(
      "second.xml",
      rss(
        "Second",
        item("Harbour reopens at dawn", "https://NEWS.example.org/harbour?utm_source=second#top", "Ferries sail again at dawn.") +
          item("Bridge shut!", "https://mirror.example.net/bridge-copy", "The bridge is closed for repairs"),
      ),
    );
    const result = await run("run-1", [first, second]);
    expect(result.articleIds).toHaveLength(2);
    expect((await storedArticles()).map((row) => row.link).sort()).toEqual(["https://news.example.org/bridge", "https://news.example.org/harbour"]);
    expect(logs[0]).toBe("collect: 2 feeds, 0 failed, 2 new articles, 2 merged into existing stories (0 already seen)");
    const sources = () =>
      opened.db
        .select({ article: articles.link, link: articleSources.link, matchedBy: articleSources.matchedBy })
        .from(articleSources)
        .innerJoin(articles, eq(articles.id, articleSources.articleId))
        .orderBy(asc(articleSources.id));
    expect(await sources()).toEqual([
      { article: "https://news.example.org/harbour", link: "https://news.example.org/harbour", matchedBy: "first" },
      { article: "https://news.example.org/bridge", link: "https://news.example.org/bridge", matchedBy: "first" },
      { article: "https://news.example.org/harbour", link: "https://news.example.org/harbour?utm_source=second#top", matchedBy: "canonical_url" },
      { article: "https://news.example.org/bridge", link: "https://mirror.example.net/bridge-copy", matchedBy: "content_hash" },
    ]);

    const later = scratchFeed("later.xml", rss("Later", item("BRIDGE SHUT", "https://other.example.com/b", "the bridge is closed, for repairs.")));
    expect((await run("run-2", [later])).articleIds).toEqual([]);
    expect(logs[1]).toBe("collect: 1 feeds, 0 failed, 0 new articles, 1 merged into existing stories (0 already seen)");
    expect((await sources()).at(-1)).toEqual({ article: "https://news.example.org/bridge", link: "https://other.example.com/b", matchedBy: "content_hash" });
  });

  it("counts an item that repeats one of its own feed (same link, or same text) in the collect line", async () => {
    const feed = scratchFeed(
      "repeats.xml",
      rss(
        "Repeats",
        item("Harbour reopens", "https://news.example.org/harbour", "Ferries sail again.") +
          item("Harbour reopens (updated)", "https://news.example.org/harbour?utm_medium=rss", "Ferries sail again, the port says.") +
          item("Harbour reopens", "https://news.example.org/harbour-2", "Ferries sail again."),
      ),
    );
    const result = await run("run-repeats", [feed]);
    expect(result.articleIds).toHaveLength(1);
    expect(logs[0]).toBe("collect: 1 feeds, 0 failed, 1 new articles, 0 merged into existing stories (0 already seen, 2 repeated within their feed)");
  });

  it("caps items per feed and articles per run, keeping the newest", async () => {
    const result = await run("run-1", [SAMPLE_FEEDS], { maxItemsPerFeed: 2, maxArticlesPerRun: 5 });
    const rows = await storedArticles();
    const titleOf = new Map(rows.map((row) => [row.id, row.title]));
    expect(result.articleIds!.map((id) => titleOf.get(id))).toEqual([
      "Councillors pass 2025 budget by 31 votes to 19",
      "Port Alder harbour damage bill could reach two million",
      "Record field of 4,000 runners for the valley marathon",
      "Ferries cancelled as storm batters Port Alder",
      "Storm closes Port Alder harbour as waves breach the breakwater",
    ]);
    expect(logs).toEqual(["collect: 4 feeds, 0 failed, 5 new articles, 0 merged into existing stories (0 already seen, 3 over the per-run cap of 5)"]);
  });

  it("records broken, missing and odd feeds in feed_errors, and the other feeds still run", async () => {
    const broken = scratchFeed("broken.xml", '<rss version="2.0"><channel><title>Broken</title><item><title>Cut off');
    const html = scratchFeed("portal.xml", "<!DOCTYPE html><html><body>Please sign in</body></html>");
    const missing = path.join(scratch, "no-such-feed.xml");
    const junk = scratchFeed(
      "junk.xml",
      `Warning: feed cache is stale\n${rss("Junk", item("Rail strike called off", "https://news.example.org/rail", "Drivers accept the offer.", "last Tuesday"))}`,
    );
    const relative = scratchFeed(
      "relative.xml",
      `<rss version="2.0"><channel><title>Relative</title><link>/news</link>${item("Only relative", "/news/a", "No base to resolve this.")}</channel></rss>`,
    );
    const gazette = path.join(SAMPLE_FEEDS, "harbour-gazette.xml");

    const result = await run("run-1", [gazette, broken, html, missing, junk, relative]);
    expect(result.feedsAttempted).toBe(6);
    expect(result.feedsFailed).toBe(3);
    expect(result.articleIds).toHaveLength(5);
    expect(logs).toEqual(["collect: 6 feeds, 3 failed, 5 new articles, 0 merged into existing stories (0 already seen)"]);

    const problems = await storedProblems();
    expect(problems.map((p) => [p.feed, p.severity, p.code])).toEqual([
      [missing, "error", "not_found"],
      [broken, "error", "parse_error"],
      [html, "error", "not_a_feed"],
      [junk, "warning", "leading_garbage"],
      [junk, "warning", "dates_unparseable"],
      [relative, "warning", "items_without_link"],
    ]);
    expect(problems[0].message).toContain(missing);
    expect(problems[3].message).toContain("Warning: feed cache is stale");

    const [rail] = await opened.db.select().from(articles).where(eq(articles.link, "https://news.example.org/rail"));
    expect(rail.publishedAt).toBeNull();
    expect(rail.dateFlag).toBe("unparseable");
  });

  it("caps a long body", async () => {
    const words = Array.from({ length: 6000 }, (_, i) => `word${i}`).join(" ");
    const feed = scratchFeed("long.xml", rss("Long", item("A long read", "https://news.example.org/long", words)));
    await run("run-1", [feed]);
    const [row] = await storedArticles();
    expect(row.body.length).toBeLessThanOrEqual(MAX_BODY_CHARS);
    expect(row.body.length).toBeGreaterThan(MAX_BODY_CHARS - 20);
    expect(row.body.startsWith("word0 word1 word2")).toBe(true);
    expect(row.body.endsWith("…")).toBe(true);
  });

  it("when every feed fails with a network error, says the machine may be offline and suggests the sample feeds", async () => {
    const port = await closedPort();
    const feeds = [`http://127.0.0.1:${port}/world.xml`, `http://127.0.0.1:${port}/local.xml`];
    const result = await run("run-1", feeds);
    expect(result).toEqual({ articleIds: [], feedsAttempted: 2, feedsFailed: 2 });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain("collect: 2 feeds, 2 failed, 0 new articles");
    expect(logs[0]).toContain("Every feed failed with a network error: the machine may be offline");
    expect(logs[0]).toContain("--feeds test/fixtures/feeds");
    const problems = await storedProblems();
    expect(problems.map((p) => [p.feed, p.code])).toEqual(feeds.map((feed) => [feed, "network"]));
    for (const problem of problems) {
      expect(problem.message).toContain("the machine may be offline");
      expect(problem.message).toContain("--feeds test/fixtures/feeds");
    }
  });

  it("a hanging feed times out, a gone feed is http_410, and the other feed is still collected (case C13)", async () => {
    const server = await startFeedServer();
    try {
      const started = Date.now();
      const result = await run("run-1", [server.url("/hang"), server.url("/gone"), server.url("/r1")], { fetchTimeoutMs: 1500 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(result.feedsFailed).toBe(2);
      expect(result.articleIds).toHaveLength(2);
      expect((await storedProblems()).map((p) => [p.feed, p.code])).toEqual([
        [server.url("/hang"), "timeout"],
        [server.url("/gone"), "http_410"],
      ]);
      // The configured URL is what the articles are filed under, not the redirect target.
      expect(new Set((await storedArticles()).map((row) => row.feed))).toEqual(new Set([server.url("/r1")]));
      expect(server.hits.get("/gone")).toBe(1);
    } finally {
      await server.close();
    }
  });

  it("two overlapping runs store each article once (ON CONFLICT DO NOTHING)", async () => {
    const [a, b] = await Promise.all([run("run-a", [SAMPLE_FEEDS]), run("run-b", [SAMPLE_FEEDS])]);
    const rows = await storedArticles();
    expect(rows).toHaveLength(14);
    const ids = [...a.articleIds!, ...b.articleIds!];
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(14);
    const runOf = new Map(rows.map((row) => [row.id, row.firstRunId]));
    expect(a.articleIds!.every((id) => runOf.get(id) === "run-a")).toBe(true);
    expect(b.articleIds!.every((id) => runOf.get(id) === "run-b")).toBe(true);
  });
});
