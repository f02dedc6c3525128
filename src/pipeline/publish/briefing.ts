/** The briefing document (its JSON form) and its Markdown rendering. Pure: no I/O. */
import type { Post } from "../../db/schema";
import type { Story } from "../cluster/stories";
import { isPlatform, PLATFORM_NAMES } from "../generate_social/platforms";
import { count } from "../progress";

export interface BriefingDocument {
  runId: string;
  /** The run's calendar day in the briefing's time zone, YYYY-MM-DD. */
  day: string;
  /** Set when a budget stopped the run before every story was finished. */
  haltReason: string | null;
  stories: {
    rank: number;
    label: string;
    score: number;
    sources: {
      title: string;
      link: string;
      feed: string;
      publishedAt: string | null;
      summary: string | null;
      /** Every feed item that carried this article (merged copies included), first source first. */
      seenIn: { feed: string; link: string; matchedBy: string; similarity: number | null }[];
    }[];
    /** Valid posts only. */
    posts: { platform: string; text: string }[];
  }[];
  /** Posts that are not valid (rejected, or never checked), with why. They are not published. */
  heldBack: { rank: number; label: string; platform: string; status: string; problems: string[] }[];
}

/** YYYY-MM-DD of `instant` in `timeZone`. */
export function calendarDay(instant: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(instant);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("year")}-${part("month")}-${part("day")}`;
}

/** `briefing-YYYY-MM-DD-<first 8 of the run id>`, without extension. */
export function briefingBaseName(day: string, runId: string): string {
  return `briefing-${day}-${runId.slice(0, 8)}`;
}

export function buildBriefing({
  runId,
  day,
  haltReason,
  stories,
  posts,
}: {
  runId: string;
  day: string;
  haltReason: string | null;
  stories: Story[];
  posts: Pick<Post, "clusterId" | "platform" | "text" | "status" | "problems">[];
}): BriefingDocument {
  return {
    runId,
    day,
    haltReason,
    stories: stories.map((story) => ({
      rank: story.rank,
      label: story.label,
      score: story.score,
      sources: story.articles.map((a) => ({
        title: a.title,
        link: a.link,
        feed: a.feedTitle ?? a.feed,
        publishedAt: a.publishedAt?.toISOString() ?? null,
        summary: a.summary,
        seenIn: a.sources.map((source) => ({ ...source })),
      })),
      posts: posts.filter((p) => p.clusterId === story.clusterId && p.status === "valid").map((p) => ({ platform: p.platform, text: p.text })),
    })),
    heldBack: stories.flatMap((story) =>
      posts
        .filter((p) => p.clusterId === story.clusterId && p.status !== "valid")
        .map((p) => ({ rank: story.rank, label: story.label, platform: p.platform, status: p.status, problems: p.problems })),
    ),
  };
}

function platformName(platform: string): string {
  return isPlatform(platform) ? PLATFORM_NAMES[platform] : platform;
}

function quote(text: string): string {
  return text
    .split("\n")
    .map((line) => `> ${line}`.trimEnd())
    .join("\n");
}

/** Feed text is others' text: Markdown in it must show as text, never become a link or markup. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]()<>#!|~]/g, (c) => `\\${c}`);
}

/** Only http(s) links become links; anything else (javascript:, data:) is shown as text. */
function safeLink(url: string, text = "Source"): string {
  return /^https?:\/\//i.test(url) ? `[${text}](<${url.replace(/[<>\s]/g, encodeURIComponent)}>)` : escapeMarkdown(url);
}

/** One link, or "Sources: A, B" when copies of the article came from several places. */
function sourceLinks(source: BriefingDocument["stories"][number]["sources"][number]): string {
  if (source.seenIn.length < 2) return safeLink(source.link);
  return `Sources: ${source.seenIn.map((seen) => safeLink(seen.link, escapeMarkdown(seen.feed))).join(", ")}`;
}

export function renderMarkdown(briefing: BriefingDocument): string {
  const articleCount = briefing.stories.reduce((sum, s) => sum + s.sources.length, 0);
  const lines = [
    `# News briefing, ${briefing.day}`,
    "",
    `${count(briefing.stories.length, "story", "stories")} from ${count(articleCount, "article")}. Run ${briefing.runId.slice(0, 8)}.`,
  ];
  if (briefing.haltReason) lines.push("", `**Incomplete:** the run was halted (${briefing.haltReason}).`);
  for (const story of briefing.stories) {
    lines.push("", `## ${story.rank}. ${escapeMarkdown(story.label)}`, "");
    for (const source of story.sources) {
      const date = source.publishedAt ? `, ${source.publishedAt.slice(0, 10)}` : "";
      lines.push(
        `- **${escapeMarkdown(source.title)}** (${escapeMarkdown(source.feed)}${date}): ${escapeMarkdown(source.summary ?? "no summary")} ${sourceLinks(source)}`,
      );
    }
    if (story.posts.length > 0) {
      lines.push("", "### Posts");
      for (const post of story.posts) lines.push("", `**${platformName(post.platform)}**`, "", quote(escapeMarkdown(post.text)));
    }
  }
  if (briefing.heldBack.length > 0) {
    lines.push("", "## Held back", "");
    for (const held of briefing.heldBack) {
      const why = held.problems.length > 0 ? held.problems.join("; ") : "not validated";
      lines.push(`- Story ${held.rank} (${escapeMarkdown(held.label)}), ${platformName(held.platform)}: ${held.status}, ${escapeMarkdown(why)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
