/** canonicalUrl and contentHash: the two identities articles are deduplicated by. */
import { describe, expect, it } from "vitest";
import { canonicalUrl, contentHash } from "../../src/pipeline/collect/canonical";

describe("canonicalUrl", () => {
  it.each([
    ["HTTPS://News.Example.ORG:443/2024/05/Story?b=2&a=1#comments", "https://news.example.org/2024/05/Story?a=1&b=2"],
    // A fragment that names the post is kept (one page, one anchor per post); page anchors and tracking fragments are not.
    ["http://scripting.com/2017/06/26.html#a080605", "http://scripting.com/2017/06/26.html#a080605"],
    ["https://news.example.org/story#top", "https://news.example.org/story"],
    ["https://news.example.org/story#xtor=RSS-1", "https://news.example.org/story"],
    ["https://news.example.org/story#more-4521", "https://news.example.org/story"],
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

  it.each([
    ["https://click.example.com/?url=https%3A%2F%2Fnews.example.org%2Fa%3Futm_source%3Dmail", "https://news.example.org/a"],
    ["https://www.example.com/redirect.php?to=https://news.example.org/a&sig=9f", "https://news.example.org/a"],
    ["https://news.example.net/track/click?dest=https%3A%2F%2Fnews.example.org%2Fa%3Fid%3D7", "https://news.example.org/a?id=7"],
    ["https://out.reddit.com/t3_abc?url=https%3A%2F%2Fnews.example.org%2Fa&token=x", "https://news.example.org/a"],
    ["https://l.facebook.com/l.php?u=https%3A%2F%2Fnews.example.org%2Fa%3Ffbclid%3DIw&h=AT0", "https://news.example.org/a"],
    ["https://feeds.feedburner.com/~r/example/~3/x?Target=https://news.example.org/a", "https://news.example.org/a"],
    ["https://www.example.com/out/?URL=https%253A%252F%252Fnews.example.org%252Fa", "https://news.example.org/a"],
    // A wrapper inside a wrapper.
    ["https://www.google.com/url?q=https%3A%2F%2Fclick.example.com%2Fr%3Furl%3Dhttps%253A%252F%252Fnews.example.org%252Fa", "https://news.example.org/a"],
  ])("unwraps the redirect %s → %s", (link, expected) => {
    expect(canonicalUrl(link)).toBe(expected);
  });

  it.each([
    // A viewer and a proxy login page take a URL but are pages of their own (both in ../shared/feeds).
    ["http://xmlviewer.scripting.com/?url=http://scripting.com/rss.xml", "http://xmlviewer.scripting.com/?url=http%3A%2F%2Fscripting.com%2Frss.xml"],
    ["http://ezproxy.example.edu/login?qurl=http%3A%2F%2Fnews.example.org%2Fa", "http://ezproxy.example.edu/login?qurl=http%3A%2F%2Fnews.example.org%2Fa"],
    ["https://www.example.com/login?redirect=https%3A%2F%2Fnews.example.org%2Fa", "https://www.example.com/login?redirect=https%3A%2F%2Fnews.example.org%2Fa"],
    ["https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fnews.example.org%2Fa", "https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fnews.example.org%2Fa"],
    ["https://twitter.com/intent/tweet?url=https%3A%2F%2Fnews.example.org%2Fa&text=Hi", "https://twitter.com/intent/tweet?text=Hi&url=https%3A%2F%2Fnews.example.org%2Fa"],
    ["https://www.reddit.com/r/news/submit?url=https%3A%2F%2Fnews.example.org%2Fa", "https://www.reddit.com/r/news/submit?url=https%3A%2F%2Fnews.example.org%2Fa"],
    ["https://news.example.org/r?page=2", "https://news.example.org/r?page=2"],
    ["https://news.example.org/out?url=ftp%3A%2F%2Ffiles.example.org%2Fa", "https://news.example.org/out?url=ftp%3A%2F%2Ffiles.example.org%2Fa"],
  ])("leaves %s a page of its own", (link, expected) => {
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
