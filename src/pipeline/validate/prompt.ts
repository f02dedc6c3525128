/** The validate prompt: a story and its posts in, a verdict per platform out. */
import { HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import { z } from "zod";
import { field, section, taskLine } from "../../llm/markup";
import { replyFormat } from "../../llm/reply";
import { PLATFORM_LIMITS, PLATFORMS, type Platform } from "../generate_social/platforms";
import { MAX_SOURCES_IN_PROMPT, type StorySource } from "../generate_social/prompt";

const verdict = (platform: string) =>
  z
    .object({
      ok: z.boolean().describe("true when the post can be published as it is"),
      reason: z.string().describe("One short sentence: why the post passes, or what is wrong with it"),
    })
    .describe(`The verdict on the ${platform} post`);

export const reviewReplySchema = z.object({
  x: verdict("X"),
  bluesky: verdict("Bluesky"),
  linkedin: verdict("LinkedIn"),
});
export type ReviewReply = z.infer<typeof reviewReplySchema>;

const INSTRUCTIONS = [
  "You check social media posts about one news story before they are published.",
  "A post passes when it is accurate to the sources, on topic, finished (no placeholders or notes to the editor),",
  "links at least one source, and fits the limit given on its <post> tag (every character counts, each URL at its full length).",
];

export function buildReviewPrompt({
  label,
  sources,
  posts,
}: {
  label: string;
  sources: StorySource[];
  posts: { platform: Platform; text: string }[];
}): BaseMessage[] {
  const byPlatform = new Map(posts.map((p) => [p.platform, p.text]));
  const data = [
    section("story", [
      field("label", label),
      ...sources.slice(0, MAX_SOURCES_IN_PROMPT).map((s) => section("source", [field("title", s.title), field("link", s.link), field("summary", s.summary)])),
    ]),
    ...PLATFORMS.map((platform) => field("post", byPlatform.get(platform) ?? "", { platform, limit: PLATFORM_LIMITS[platform] })),
  ];
  return [
    new SystemMessage([taskLine("validate"), ...INSTRUCTIONS, replyFormat(reviewReplySchema)].join("\n")),
    new HumanMessage(data.join("\n")),
  ];
}
