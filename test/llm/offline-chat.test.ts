import { readFileSync } from "node:fs";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { getEncoding } from "js-tiktoken";
import { describe, expect, it } from "vitest";
import { OFFLINE_MODEL_NAMES, OfflineChatModel } from "../../src/llm/offline";
import { complete } from "../../src/llm/reply";
import { postLength } from "../../src/llm/text";
import { buildSocialPrompt, socialPostsReplySchema } from "../../src/pipeline/generate_social/prompt";
import { buildSummarizePrompt, summaryReplySchema } from "../../src/pipeline/summarize/prompt";
import { buildReviewPrompt, reviewReplySchema } from "../../src/pipeline/validate/prompt";

const article = JSON.parse(readFileSync(new URL("./fixtures/harbour-strike.json", import.meta.url), "utf8")) as {
  title: string;
  feed: string;
  link: string;
  text: string;
};
const encoding = getEncoding("o200k_base");
const tokens = (text: string) => encoding.encode(text).length;

const EXPECTED_SUMMARY =
  "Ferry crews in Northport walked out on Thursday, closing the harbour to passenger traffic for two days. " +
  "The strike was called by the Harbour Workers Union after talks on pay and rest breaks broke down on Wednesday night. " +
  "About 14,000 passengers use the Northport ferry on a normal weekday, the port authority said.";

describe("offline chat model: summarize", () => {
  const model = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.summarize });
  const messages = buildSummarizePrompt({ title: article.title, feed: article.feed, text: article.text });

  it("picks the three lead facts of the fixture article, in their original order, not the dateline or the asides", async () => {
    const reply = await model.invoke(messages);
    expect(summaryReplySchema.parse(JSON.parse(reply.text))).toEqual({ summary: EXPECTED_SUMMARY });
  });

  it("reports usage counted with js-tiktoken over the real prompt and the real reply", async () => {
    const reply = await model.invoke(messages);
    const input = messages.reduce((sum, m) => sum + tokens(m.text), 0);
    const output = tokens(reply.text);
    expect(input).toBeGreaterThan(200);
    expect(reply.usage_metadata).toEqual({
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
      input_token_details: { cache_read: 0 },
      output_token_details: { reasoning: 0 },
    });
    expect(reply.response_metadata.model_name).toBe("offline-extractive-1");
  });

  it("streams the same reply and usage as invoke", async () => {
    const streamed = await complete(model, messages, { stream: true });
    expect(streamed).toBe(JSON.stringify({ summary: EXPECTED_SUMMARY }));
    let usage: unknown;
    for await (const chunk of await model.stream(messages)) usage = chunk.usage_metadata ?? usage;
    expect(usage).toEqual((await model.invoke(messages)).usage_metadata);
  });

  it("respects an abort signal", async () => {
    await expect(model.invoke(messages, { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
  });

  it("refuses a prompt with an unknown task or no task line", async () => {
    await expect(model.invoke([new SystemMessage("Task: translate\nTranslate this."), new HumanMessage("hola")])).rejects.toThrow(
      'offline model: unknown task "translate"; it handles summarize, generate_social, validate',
    );
    await expect(model.invoke([new HumanMessage("Summarise this.")])).rejects.toThrow(
      'offline model: the system message must begin with a "Task: <name>" line (one of summarize, generate_social, validate)',
    );
  });
});

describe("offline chat model: generate_social and validate", () => {
  const social = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.generate_social });
  const review = new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.validate });
  const second = { title: "Port authority to meet union", feed: "Coast Courier", link: "https://media.example.org/port-talks", summary: "Talks resume on Monday." };
  const lead = { title: article.title, feed: article.feed, link: article.link, summary: EXPECTED_SUMMARY };
  const sources = [lead, second];

  it("writes each platform's post from the lead summary and links, within the platform's limit", async () => {
    const posts = socialPostsReplySchema.parse(JSON.parse((await social.invoke(buildSocialPrompt({ label: "ferry · strike", sources }))).text));
    // X: headline and the first summary sentence fit beside the link; Bluesky's two sentences are cut on a word.
    expect(posts.x).toBe(
      "Ferry strike closes Northport harbour for two days: Ferry crews in Northport walked out on Thursday, closing the harbour to passenger traffic for two days. https://news.example.org/2024/05/ferry-strike",
    );
    expect(postLength(posts.x)).toBeLessThanOrEqual(280);
    expect(posts.bluesky).toBe(
      "Ferry strike closes Northport harbour for two days\n\nFerry crews in Northport walked out on Thursday, closing the harbour to passenger traffic for two days. The strike was called by the Harbour Workers Union after talks on pay and rest breaks broke…\n\nhttps://news.example.org/2024/05/ferry-strike",
    );
    expect(postLength(posts.bluesky)).toBe(295);
    expect(posts.linkedin).toContain("Sources:\n- Ferry strike closes Northport harbour for two days (City Desk): https://news.example.org/2024/05/ferry-strike\n- Port authority to meet union (Coast Courier): https://media.example.org/port-talks");
    expect(postLength(posts.linkedin)).toBeLessThanOrEqual(3000);
  });

  it("answers a platform's problems with the plainest post: headline and link", async () => {
    const messages = buildSocialPrompt({ label: "ferry · strike", sources, problems: { x: ["too long: 312 characters, limit 280"] } });
    const posts = socialPostsReplySchema.parse(JSON.parse((await social.invoke(messages)).text));
    expect(posts.x).toBe("Ferry strike closes Northport harbour for two days https://news.example.org/2024/05/ferry-strike");
  });

  it("passes a good post and rejects an off-source link and an over-long post, with reasons", async () => {
    const messages = buildReviewPrompt({
      label: "ferry · strike",
      sources,
      posts: [
        { platform: "x", text: `Ferry strike in Northport: crews walked out. ${lead.link}` },
        { platform: "bluesky", text: "Ferry strike in Northport: crews walked out. https://elsewhere.example.com/story" },
        { platform: "linkedin", text: `${"Ferry strike. ".repeat(220)}${lead.link}` },
      ],
    });
    const reply = await review.invoke(messages);
    expect(reviewReplySchema.parse(JSON.parse(reply.text))).toEqual({
      x: { ok: true, reason: "on topic, within its limit and linked to a source" },
      bluesky: { ok: false, reason: "the post links none of the story's sources" },
      linkedin: { ok: false, reason: "the post has 3125 characters, over its limit of 3000" },
    });
    expect(reply.response_metadata.model_name).toBe("offline-rules-1");
  });

  it("rejects a post that does not mention the story or leaks template text", async () => {
    const messages = buildReviewPrompt({
      label: "ferry · strike",
      sources,
      posts: [
        { platform: "x", text: `Big weekend sale on garden chairs. ${lead.link}` },
        { platform: "bluesky", text: `Ferry strike: {summary} ${lead.link}` },
        { platform: "linkedin", text: "" },
      ],
    });
    expect(JSON.parse((await review.invoke(messages)).text)).toEqual({
      x: { ok: false, reason: "the post does not mention the story" },
      bluesky: { ok: false, reason: "the post contains unfilled template text" },
      linkedin: { ok: false, reason: "the post is empty" },
    });
  });
});
