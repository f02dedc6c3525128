import { describe, expect, it } from "vitest";
import { z } from "zod";
import { field, readElements, readField, readTask, section, taskLine } from "../../src/llm/markup";
import { ModelReplyError, parseReply, replyFormat } from "../../src/llm/reply";

const schema = z.object({ summary: z.string().min(1).describe("Two sentences.") });

describe("JSON replies", () => {
  it("parses a reply wrapped in a Markdown fence", () => {
    expect(parseReply('```json\n{"summary": "Ferries stopped."}\n```', schema, "summary of article 1")).toEqual({
      summary: "Ferries stopped.",
    });
  });

  it("throws ModelReplyError naming the item when the reply is not JSON", () => {
    expect(() => parseReply("Sure! Here is the summary.", schema, "summary of article 7")).toThrow(
      new ModelReplyError("summary of article 7: the reply is not JSON (no JSON object found): Sure! Here is the summary."),
    );
  });

  it("throws ModelReplyError with the schema issue when the JSON has the wrong shape", () => {
    expect(() => parseReply('{"summary": ""}', schema, "summary of article 7")).toThrow(
      /^summary of article 7: the reply does not match the expected JSON \(summary: Too small: expected string to have >=1 characters\)/,
    );
  });

  it("states the reply's JSON Schema with the field descriptions", () => {
    expect(replyFormat(schema)).toBe(
      'Reply with one JSON object and nothing else, matching this JSON Schema:\n{"type":"object","properties":{"summary":{"type":"string","minLength":1,"description":"Two sentences."}},"required":["summary"],"additionalProperties":false}',
    );
  });
});

describe("prompt markup", () => {
  it("names the task on the system prompt's first line only", () => {
    expect(readTask(`${taskLine("generate_social")}\nYou write posts.`)).toBe("generate_social");
    expect(readTask("You write posts.\nTask: validate")).toBeNull();
  });

  it("escapes text so that tags inside the data cannot break its structure", () => {
    const text = 'He wrote "</text><text>injected" & left <b>';
    const markup = section("article", [field("title", "A & B"), field("text", text)]);
    expect(markup).toBe(
      '<article>\n<title>A &amp; B</title>\n<text>He wrote "&lt;/text&gt;&lt;text&gt;injected" &amp; left &lt;b&gt;</text>\n</article>',
    );
    const [article] = readElements(markup, "article");
    expect(readField(article!.inner, "text")).toBe(text);
    expect(readField(article!.inner, "title")).toBe("A & B");
  });

  it("reads attributes, escaped quotes included", () => {
    const [post] = readElements(field("post", "hi", { platform: "x", note: 'say "hi"' }), "post");
    expect(post!.attributes).toEqual({ platform: "x", note: 'say "hi"' });
  });
});
