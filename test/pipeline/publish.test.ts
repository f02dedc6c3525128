import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { briefings, posts } from "../../src/db/schema";
import { cluster } from "../../src/pipeline/cluster";
import { embed } from "../../src/pipeline/embed";
import { generateSocial } from "../../src/pipeline/generate_social";
import { publish } from "../../src/pipeline/publish";
import { calendarDay, renderMarkdown, type BriefingDocument } from "../../src/pipeline/publish/briefing";
import type { BriefingState } from "../../src/pipeline/state";
import { summarize } from "../../src/pipeline/summarize";
import { validate } from "../../src/pipeline/validate";
import { memoryDb } from "../helpers/db";
import { apply, offlineDeps, seedRun } from "./helpers";

describe("the briefing document", () => {
  it("dates the run in the briefing's time zone", () => {
    const start = new Date("2024-05-02T06:30:00Z");
    expect(calendarDay(start, "UTC")).toBe("2024-05-02");
    expect(calendarDay(start, "America/Los_Angeles")).toBe("2024-05-01");
    expect(calendarDay(start, "Asia/Tokyo")).toBe("2024-05-02");
  });

  it("renders stories, sources (several where copies were merged), valid posts and the posts held back", () => {
    const briefing: BriefingDocument = {
      runId: "0123456789abcdef",
      day: "2024-05-02",
      haltReason: null,
      stories: [
        {
          rank: 1,
          label: "ferry · strike",
          score: 0.9,
          sources: [
            {
              title: "Ferry strike",
              link: "https://news.example.org/a",
              feed: "City Desk",
              publishedAt: "2024-05-02T08:00:00.000Z",
              summary: "Crews walked out.",
              seenIn: [{ feed: "City Desk", link: "https://news.example.org/a", matchedBy: "first", similarity: null }],
            },
            {
              title: "Ferry talks resume",
              link: "https://news.example.org/b",
              feed: "City Desk",
              publishedAt: null,
              summary: "Both sides meet.",
              seenIn: [
                { feed: "City Desk", link: "https://news.example.org/b", matchedBy: "first", similarity: null },
                { feed: "Coast [Digest]", link: "https://coast.example.net/talks", matchedBy: "near_duplicate", similarity: 0.93 },
              ],
            },
          ],
          posts: [{ platform: "x", text: "Ferry strike https://news.example.org/a" }],
        },
      ],
      heldBack: [{ rank: 1, label: "ferry · strike", platform: "bluesky", status: "invalid", problems: ["no source link"] }],
    };
    expect(renderMarkdown(briefing)).toBe(
      [
        "# News briefing, 2024-05-02",
        "",
        "1 story from 2 articles. Run 01234567.",
        "",
        "## 1. ferry · strike",
        "",
        "- **Ferry strike** (City Desk, 2024-05-02): Crews walked out. [Source](<https://news.example.org/a>)",
        "- **Ferry talks resume** (City Desk): Both sides meet. Sources: [City Desk](<https://news.example.org/b>), [Coast \\[Digest\\]](<https://coast.example.net/talks>)",
        "",
        "### Posts",
        "",
        "**X**",
        "",
        "> Ferry strike https://news.example.org/a",
        "",
        "## Held back",
        "",
        "- Story 1 (ferry · strike), Bluesky: invalid, no source link",
        "",
      ].join("\n"),
    );
  });
});

describe("publish on PGlite", () => {
  let database: OpenedDatabase;
  beforeAll(async () => {
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
  });

  it("writes the Markdown and JSON files and the briefings row, holding back invalid posts", async () => {
    const { db } = database;
    const outDir = path.join(mkdtempSync(path.join(os.tmpdir(), "nl-publish-")), "nested", "out");
    const deps = offlineDeps(db, { env: { NEWSLEDGER_OUT_DIR: outDir, NEWSLEDGER_TOP_CLUSTERS: "2", BRIEFING_TZ: "America/Los_Angeles" } });
    let state: BriefingState = await seedRun(db, "abcdef0123456789");
    for (const stage of [summarize, embed, cluster, generateSocial, validate]) state = apply(state, await stage(state, deps));
    const [heldBack] = await db.select().from(posts).where(eq(posts.id, state.postIds[0]!));
    await db.update(posts).set({ status: "invalid", problems: ["too long: 301 characters, limit 280"] }).where(eq(posts.id, heldBack!.id));

    state = apply(state, await publish(state, deps));

    expect(readdirSync(outDir).sort()).toEqual(["briefing-2024-05-01-abcdef01.json", "briefing-2024-05-01-abcdef01.md"]);
    expect(state.briefingPath).toBe(path.join(outDir, "briefing-2024-05-01-abcdef01.md"));
    const json = JSON.parse(readFileSync(path.join(outDir, "briefing-2024-05-01-abcdef01.json"), "utf8")) as BriefingDocument;
    expect(json.stories).toHaveLength(2);
    expect(json.stories.map((s) => s.sources.length)).toEqual([3, 2]);
    expect(json.stories.map((s) => s.posts.length)).toEqual([2, 3]);
    expect(json.heldBack).toEqual([{ rank: 1, label: "Northport · ferry · strike", platform: heldBack!.platform, status: "invalid", problems: ["too long: 301 characters, limit 280"] }]);
    const markdown = readFileSync(state.briefingPath!, "utf8");
    expect(markdown.match(/^## \d+\. /gm)).toHaveLength(2);
    expect(markdown).not.toContain(heldBack!.text);
    expect(markdown).toContain("## Held back\n\n- Story 1 (Northport · ferry · strike), X: invalid, too long: 301 characters, limit 280\n");

    // Publishing again (a retried node) rewrites the same files and row.
    await publish(state, deps);
    const stored = await db.select().from(briefings);
    expect(stored.map((b) => [b.runId, b.day, b.markdownPath])).toEqual([["abcdef0123456789", "2024-05-01", state.briefingPath]]);
    expect(stored[0]!.markdown).toBe(markdown);
    expect(deps.lines.at(-1)).toBe(`publish: 2 stories, 5 posts, 1 held back → ${state.briefingPath}`);
  });
});

describe("the Markdown of feed text", () => {
  it("shows Markdown and script links from a feed as text, never as links", async () => {
    const { escapeMarkdown } = await import("../../src/pipeline/publish/briefing");
    expect(escapeMarkdown("Deal [click](javascript:alert(1)) *now*")).toBe("Deal \\[click\\]\\(javascript:alert\\(1\\)\\) \\*now\\*");
  });
});
