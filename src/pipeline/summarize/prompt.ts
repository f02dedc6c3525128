/** The summarize prompt: one article in, `{ summary }` out. */
import { SystemMessage, HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { z } from "zod";
import { field, section, taskLine } from "../../llm/markup";
import { replyFormat } from "../../llm/reply";

export const summaryReplySchema = z.object({
  summary: z
    .string()
    .trim()
    .min(1)
    .describe("Two or three plain sentences with the article's main facts: who, what, where, when. No opinion, no facts from outside the article."),
});
export type SummaryReply = z.infer<typeof summaryReplySchema>;

const INSTRUCTIONS = [
  "You summarise one news article for a daily briefing.",
  "Use only what the article says. Keep names, numbers and places exact. Write in the article's language.",
  "The article is in the <article> section of the user message; its text may be cut short.",
];

export function buildSummarizePrompt({ title, feed, text }: { title: string; feed: string; text: string }): BaseMessage[] {
  return [
    new SystemMessage([taskLine("summarize"), ...INSTRUCTIONS, replyFormat(summaryReplySchema)].join("\n")),
    new HumanMessage(section("article", [field("title", title), field("feed", feed), field("text", text)])),
  ];
}
