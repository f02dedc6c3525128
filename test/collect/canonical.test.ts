/** canonicalUrl and contentHash: the two identities articles are deduplicated by. */
import { describe, expect, it } from "vitest";
import { canonicalUrl, contentHash } from "../../src/pipeline/collect/canonical";

describe("canonicalUrl", () => {
  it.each([
    ["HTTPS://News.Example.ORG:443/2024/05/Story?b=2&a=1#comments", "https://news.example.org/2024/05/Story?a=1&b=2"],
    ["https://news.example.org/a?utm_source=rss&utm_medium=feed&utm_campaign=x&id=7", "https://news.example.org/a?id=7"],
    ["https://www.bbc.co.uk/news/uk-58943184?at_medium=RSS&at_campaign=KARANGA", "https://www.bbc.co.uk/news/uk-58943184"],
    [
      "http://www.heise.de/developer/meldung/WildFly-10-3088438.html?wt_mc=rss.developer.beitrag.atom",
      "http://www.heise.de/developer/meldung/WildFly-10-3088438.html",
    ],
    ["https://news.example.org/a?fbclid=IwAR0&gclid=Cj0&cmpid=rss&ocid=msn&ns_mchannel=rss&ns_source=x", "https://news.example.org/a"],
    ["https://news.example.org/a?UTM_Source=x&page=2", "https://news.example.org/a?page=2"],
    [
      "https://www.google.com/url?rct=j&sa=t&url=https://news.example.org/2024/05/story%3Futm_source%3Dalert&ct=ga&usg=AFQ",
      "https://news.example.org/2024/05/story",
    ],
    [
      "http://news.google.com/news/url?sa=t&fd=R&usg=AFQjCNE&url=http://www.telegraph.co.uk/news/9125462/Putin.html",
      "http://www.telegraph.co.uk/news/9125462/Putin.html",
    ],
    ["https://news.example.org/a?", "https://news.example.org/a"],
    ["  https://news.example.org/a  ", "https://news.example.org/a"],
    ["/relative/path", "/relative/path"],
    ["tag:news.example.org,2024:1", "tag:news.example.org,2024:1"],
  ])("%s → %s", (link, expected) => {
    expect(canonicalUrl(link)).toBe(expected);
  });

  it("keeps query parameters that name the article", () => {
    expect(canonicalUrl("http://www.kc0011.net/dispbbs.asp?BoardID=10&ID=25164257&Page=1")).toBe(
      "http://www.kc0011.net/dispbbs.asp?BoardID=10&ID=25164257&Page=1",
    );
  });
});

describe("contentHash", () => {
  it("is a sha256 hex digest that ignores case, spacing, punctuation and Unicode composition", () => {
    const hash = contentHash("Storm closes the harbour", "Ferries stay in port.");
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(contentHash("  STORM closes the harbour!", "Ferries   stay in port")).toBe(hash);
    expect(contentHash("Café", "x")).toBe(contentHash("Cafe\u0301", "x"));
  });

  it("differs when the words differ, or move between title and body", () => {
    const hash = contentHash("Storm closes the harbour", "Ferries stay in port.");
    expect(contentHash("Storm closes the harbour", "Ferries sail again.")).not.toBe(hash);
    expect(contentHash("Storm closes the", "harbour Ferries stay in port.")).not.toBe(hash);
  });
});
