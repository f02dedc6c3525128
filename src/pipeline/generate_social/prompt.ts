/** The generate_social prompt: one story (a cluster's summaries and links) in, one post per platform out. */
import { HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import { z } from "zod";
import { field, section, taskLine } from "../../llm/markup";
import { replyFormat } from "../../llm/reply";
import { truncateToTokens } from "../../llm/tokens";
import type { Story } from "../cluster/stories";
import { PLATFORM_LIMITS, PLATFORMS, type Platform } from "./platforms";

const post = (platform: string) =>
  z.string().describe(`The ${platform} post: plain text within its character limit, with at least one source link written out in full.`);

export const socialPostsReplySchema = z.object({
  x: post("X"),
  bluesky: post("Bluesky"),
  linkedin: post("LinkedIn"),
});
export type SocialPostsReply = z.infer<typeof socialPostsReplySchema>;

/** A long cluster is represented by its most central articles; more would only add prompt tokens. */
export const MAX_SOURCES_IN_PROMPT = 6;

export interface StorySource {
  title: string;
  feed: string;
  link: string;
  summary: string;
}

/** A story's articles as prompt sources, most central first; each summary cut to `summaryMaxTokens` (never the article body). */
export function sourcesOf(story: Story, summaryMaxTokens: number): StorySource[] {
  return story.articles.map((a) => ({
    title: a.title,
    feed: a.feedTitle ?? a.feed,
    link: a.link,
    summary: truncateToTokens(a.summary ?? "", summaryMaxTokens),
  }));
}

const INSTRUCTIONS = [
  "You write social media posts about one news story for a daily briefing.",
  "Use only the facts in the sources. Link only the sources' links, written out in full, and link at least one.",
  "Each post must fit its platform's limit in the <limits> section, counting every character, each URL at its full length.",
  "X and Bluesky: one or two sentences and a link. LinkedIn: a short paragraph per source and the links.",
  "When a <problems> section is present, the earlier posts were rejected for those reasons: fix them.",
];

export function buildSocialPrompt({
  label,
  sources,
  problems = {},
}: {
  label: string;
  sources: StorySource[];
  /** Why the previous posts were rejected, per platform (revision rounds only). */
  problems?: Partial<Record<Platform, string[]>>;
}): BaseMessage[] {
  const data = [
    section("story", [
      field("label", label),
      ...sources
        .slice(0, MAX_SOURCES_IN_PROMPT)
        .map((s) => section("source", [field("title", s.title), field("feed", s.feed), field("link", s.link), field("summary", s.summary)])),
    ]),
    section(
      "limits",
      PLATFORMS.map((platform) => field("limit", String(PLATFORM_LIMITS[platform]), { platform })),
    ),
  ];
  const rejected = PLATFORMS.flatMap((platform) => (problems[platform] ?? []).map((problem) => field("problem", problem, { platform })));
  if (rejected.length > 0) data.push(section("problems", rejected));
  return [
    new SystemMessage([taskLine("generate_social"), ...INSTRUCTIONS, replyFormat(socialPostsReplySchema)].join("\n")),
    new HumanMessage(data.join("\n")),
  ];
}
