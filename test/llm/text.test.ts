import { describe, expect, it } from "vitest";
import { findLinks, postLength, splitSentences } from "../../src/llm/text";
import { countTokens, truncateToTokens } from "../../src/llm/tokens";
import { getEncoding } from "js-tiktoken";

describe("text helpers", () => {
  it("splits sentences after . ! ? and closing quotes, not after abbreviations or initials", () => {
    expect(splitSentences('Dr. Ana Ruiz spoke first. "It is over!" she said. J. Smith agreed? Yes, on 2 May.')).toEqual([
      "Dr. Ana Ruiz spoke first.",
      '"It is over!" she said.',
      "J. Smith agreed?",
      "Yes, on 2 May.",
    ]);
  });

  it("finds links without the sentence punctuation after them", () => {
    expect(findLinks("Read https://news.example.org/a?x=1. Or (https://media.example.org/b), then stop.")).toEqual([
      "https://news.example.org/a?x=1",
      "https://media.example.org/b",
    ]);
  });

  it("counts post length in code points with a URL at its full length", () => {
    const url = "https://news.example.org/2024/05/ferry-strike";
    expect(postLength(`Strike 🚢 ${url}`)).toBe(9 + url.length);
  });
});

describe("token counting", () => {
  const encoding = getEncoding("o200k_base");
  const text = "Ferry crews in Northport walked out on Thursday, closing the harbour to passenger traffic for two days.";

  it("counts what js-tiktoken o200k_base counts", () => {
    expect(countTokens(text)).toBe(encoding.encode(text).length);
  });

  it("cuts a text to the token limit on a token boundary, as a prefix", () => {
    const cut = truncateToTokens(text, 5);
    expect(cut).toBe(encoding.decode(encoding.encode(text).slice(0, 5)));
    expect(countTokens(cut)).toBe(5);
    expect(text.startsWith(cut)).toBe(true);
  });

  it("cuts a long text exactly as encoding it whole would, though it encodes only a prefix window", () => {
    const long = Array.from({ length: 400 }, (_, i) => `${text} Day ${i}: crews of ${i * 7} boats, «dock ${i}».`).join(" ");
    const whole = encoding.encode(long);
    for (const n of [50, 600, 5000]) {
      const cut = truncateToTokens(long, n);
      expect(cut).toBe(encoding.decode(whole.slice(0, n)));
      expect(countTokens(cut)).toBe(n);
    }
  });

  it("leaves a text within the limit unchanged and never ends on half a character", () => {
    expect(truncateToTokens(text, 1000)).toBe(text);
    const emoji = "🚢🚢🚢🚢";
    for (let n = 1; n < countTokens(emoji); n++) expect(truncateToTokens(emoji, n)).not.toMatch(/\uFFFD/);
  });

  it("counts special-token text as plain text instead of refusing it", () => {
    expect(countTokens("end <|endoftext|> here")).toBe(encoding.encode("end <|endoftext|> here", [], []).length);
  });
});
