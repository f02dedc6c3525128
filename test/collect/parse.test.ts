/** parseFeed: Atom link choice, date fallbacks (case C12), relative links, bodies, titles, broken XML. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeFeed } from "../../src/pipeline/collect/decode";
import { FeedError } from "../../src/pipeline/collect/errors";
import { parseFeed } from "../../src/pipeline/collect/parse";
import { describeShared, SHARED_DIR } from "../helpers/db";

const FEED_URL = "https://news.example.org/feeds/city.atom";

async function parseCase(name: string) {
  const { text } = decodeFeed(readFileSync(path.join(SHARED_DIR, "cases", "inputs", name)), "application/atom+xml");
  return parseFeed(text, FEED_URL);
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

describeShared("case C12: Atom links and date fallbacks", () => {
  it("Atom: the feed link and each entry's alternate link; published, else updated, else NULL", async () => {
    const feed = await parseCase("C12-atom.xml");
    expect(feed.link).toBe("https://news.example.org/city/");
    expect(feed.items.map((item) => item.link)).toEqual([
      "https://news.example.org/2024/05/budget-vote",
      "https://news.example.org/2024/05/harbour-reopens",
      "https://news.example.org/podcast/week-18",
    ]);
    expect(feed.items.map((item) => iso(item.publishedAt))).toEqual(["2024-05-02T08:00:00.000Z", "2024-05-02T12:40:00.000Z", null]);
    expect(feed.items.map((item) => item.dateFlag)).toEqual([null, null, "missing"]);
    expect(feed.items[2].title).toBe("Podcast: the week in review");
    expect(feed.warnings).toEqual([]);
  });

  it("RSS: pubDate with an offset, dc:date, and the unparseable, missing and empty dates", async () => {
    const feed = await parseCase("C12-rss-dates.xml");
    expect(feed.items.map((item) => [item.title[0], iso(item.publishedAt), item.dateFlag])).toEqual([
      ["A", "2024-05-02T06:00:00.000Z", null],
      ["B", "2024-05-02T07:30:00.000Z", null],
      ["C", null, "unparseable"],
      ["D", null, "missing"],
      ["E", null, "missing"],
    ]);
    expect(feed.warnings.map((w) => w.code)).toEqual(["dates_unparseable"]);
    expect(feed.warnings[0].message).toContain('"yesterday morning"');
  });

  it("a bad <published> gives NULL even with a good <updated>; the other entries are unaffected", async () => {
    const feed = await parseCase("C12-atom-bad-published.xml");
    expect(feed.items).toHaveLength(3);
    expect(feed.items.map((item) => [iso(item.publishedAt), item.dateFlag])).toEqual([
      [null, "unparseable"],
      ["2024-05-02T12:40:00.000Z", null],
      [null, "missing"],
    ]);
    expect(feed.items[0].link).toBe("https://news.example.org/2024/05/budget-vote");
    expect(feed.items[0].body).toBe("The council approved the budget after a late session.");
  });
});

describe("parseFeed", () => {
  it("resolves relative links against xml:base, then the feed URL; never picks replies/self/edit/enclosure", async () => {
    const xml = `<?xml version="1.0"?>
      <feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.example.org/city/">
        <title>Base test</title>
        <link rel="self" href="/feeds/city.atom"/>
        <entry xml:base="stories/">
          <title>Relative to two bases</title>
          <link rel="edit" href="https://cms.example.org/api/1"/>
          <link rel="enclosure" href="https://media.example.org/1.mp3"/>
          <link rel="alternate" type="application/json" href="one.json"/>
          <link rel="alternate" type="text/html" href="one.html"/>
          <updated>2024-05-02T10:00:00+02:00</updated>
        </entry>
        <entry>
          <title>Root-relative</title>
          <link href="/2024/05/two"/>
        </entry>
        <entry>
          <title>Only a replies link</title>
          <link rel="replies" href="/2024/05/three/comments"/>
          <summary>No alternate link at all.</summary>
        </entry>
      </feed>`;
    const feed = await parseFeed(xml, "https://feeds.example.org/city.atom");
    expect(feed.items.map((item) => item.link)).toEqual([
      "https://news.example.org/city/stories/one.html",
      "https://news.example.org/2024/05/two",
      null,
    ]);
    expect(feed.link).toBeNull();
  });

  it("uses the feed's site link as the base when read from a file", async () => {
    const xml = `<rss version="2.0"><channel><title>T</title><link>https://news.example.org/section/</link>
      <item><title>A</title><link>/2024/05/a</link></item>
      <item><title>B</title><link>b.html</link></item></channel></rss>`;
    const feed = await parseFeed(xml, "test/fixtures/feeds/t.xml");
    expect(feed.items.map((item) => item.link)).toEqual(["https://news.example.org/2024/05/a", "https://news.example.org/section/b.html"]);
  });

  it("keeps an unresolvable relative link as given (collect skips it)", async () => {
    const xml = `<rss version="2.0"><channel><title>T</title><link>/news</link><item><title>A</title><link>/news/a</link></item></channel></rss>`;
    const feed = await parseFeed(xml, "feeds/t.xml");
    expect(feed.items[0].link).toBe("/news/a");
  });

  it("prefers feedburner:origLink, and a permalink guid over a link to the home page", async () => {
    const xml = `<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel>
      <title>T</title><link>https://podcast.example.org/</link>
      <item><title>Proxied</title><link>https://feedproxy.example.com/~r/x/1</link>
        <feedburner:origLink>https://news.example.org/2024/05/original</feedburner:origLink></item>
      <item><title>Episode 62</title><link>https://podcast.example.org</link><guid>https://podcast.example.org/shows/62.mp3</guid></item>
      <item><title>Episode 61</title><link>https://podcast.example.org/</link><guid isPermaLink="false">ep-61</guid></item>
      </channel></rss>`;
    const feed = await parseFeed(xml, "https://podcast.example.org/feed.xml");
    expect(feed.items.map((item) => item.link)).toEqual([
      "https://news.example.org/2024/05/original",
      "https://podcast.example.org/shows/62.mp3",
      "https://podcast.example.org/",
    ]);
    expect(feed.items[2].guid).toBe("ep-61");
  });

  it("bodies are plain text from content:encoded first, tags and entities removed, whitespace folded", async () => {
    const xml = `<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>
      <item><title>Caf&amp;eacute; &lt;b&gt;opens&lt;/b&gt;</title><link>https://news.example.org/a</link>
        <description>Short version.</description>
        <content:encoded><![CDATA[<p>The caf&eacute; on <a href="/x">Quay&nbsp;Street</a> opens&hellip;</p>
          <script>track()</script><p>H<sub>2</sub>O &amp;amp; more &#8211; &#150; news</p>]]></content:encoded></item>
      </channel></rss>`;
    const [item] = (await parseFeed(xml, "https://news.example.org/feed")).items;
    expect(item.title).toBe("Café opens");
    expect(item.body).toBe("The café on Quay Street opens… H2O & more – – news");
  });

  it("gives an item without a title one from the first words of its body", async () => {
    const body = "Good morning. The harbour reopened at dawn after three days of storm, and the first ferry left on time.";
    const xml = `<rss version="2.0"><channel><title>T</title><item><link>https://news.example.org/a</link><description>${body}</description></item></channel></rss>`;
    const [item] = (await parseFeed(xml, "https://news.example.org/feed")).items;
    expect(item.title).toBe("Good morning. The harbour reopened at dawn after three days of storm, and the first ferry…");
    expect(item.body).toBe(body);
  });

  it("does not turn an empty nested <item/> into an item (pcmag)", async () => {
    const xml = `<rss version="2.0"><channel><title>T</title>
      <item><title>Real one</title><link>https://news.example.org/1</link><item /></item>
      <item><title>Real two</title><link>https://news.example.org/2</link><item /></item>
      <item/></channel></rss>`;
    const feed = await parseFeed(xml, "https://news.example.org/feed");
    expect(feed.items.map((item) => item.title)).toEqual(["Real one", "Real two"]);
  });

  it("reads an <rss> without a version as RSS 2.0, and RSS 1.0 (RDF) with dc:date", async () => {
    const rss = await parseFeed(`<rss><channel><title>T</title><item><title>A</title><link>https://news.example.org/a</link></item></channel></rss>`, "x");
    expect(rss.items.map((item) => item.title)).toEqual(["A"]);
    const rdf = await parseFeed(
      `<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
        <channel rdf:about="https://wire.example.com/rss"><title>W</title><link>https://wire.example.com/</link></channel>
        <item rdf:about="https://wire.example.com/a"><title>A</title><dc:date>2019-08-24</dc:date></item></rdf:RDF>`,
      "x",
    );
    expect(rdf.items.map((item) => [item.title, item.link, iso(item.publishedAt)])).toEqual([
      ["A", "https://wire.example.com/a", "2019-08-24T00:00:00.000Z"],
    ]);
  });

  it("repairs HTML entities and bare ampersands outside CDATA, with a warning", async () => {
    const xml = `<rss version="2.0"><channel><title>Fish &amp; Chips</title><item><title>Salt&nbsp;&amp; vinegar & more</title><link>https://news.example.org/a?x=1&y=2</link></item></channel></rss>`;
    const feed = await parseFeed(xml, "https://news.example.org/feed");
    expect(feed.items[0].title).toBe("Salt & vinegar & more");
    expect(feed.items[0].link).toBe("https://news.example.org/a?x=1&y=2");
    expect(feed.warnings.map((w) => w.code)).toEqual(["xml_repaired"]);
  });

  it("fails with not_a_feed for an HTML page and parse_error for broken XML", async () => {
    await expect(parseFeed("<!DOCTYPE html><html><body><p>Sign in</p></body></html>", "x")).rejects.toMatchObject({ code: "not_a_feed" });
    await expect(parseFeed("<opml><body/></opml>", "x")).rejects.toMatchObject({ code: "not_a_feed" });
    const broken = parseFeed("<rss version=\"2.0\"><channel><title>T</title><item><title>A</item></channel></rss>", "x");
    await expect(broken).rejects.toBeInstanceOf(FeedError);
    await expect(broken).rejects.toMatchObject({ code: "parse_error" });
  });
});
