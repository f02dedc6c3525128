/** decodeFeed: byte-order marks, declared charsets, the windows-1252 fallback, junk before the root (case C10). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeFeed } from "../../src/pipeline/collect/decode";
import { parseFeed } from "../../src/pipeline/collect/parse";
import { describeShared, SHARED_DIR } from "../helpers/db";

const caseInput = (name: string) => readFileSync(path.join(SHARED_DIR, "cases", "inputs", name));

describeShared("case C10: bytes before the root element", () => {
  it("bom-utf8: the UTF-8 BOM is dropped and both items parse", async () => {
    const decoded = decodeFeed(caseInput("C10-bom-utf8.xml"), "text/xml");
    expect(decoded.encoding).toBe("utf-8");
    expect(decoded.text.startsWith("<?xml")).toBe(true);
    expect(decoded.warnings).toEqual([]);
    const feed = await parseFeed(decoded.text, "https://news.example.org/feed.xml");
    expect(feed.items.map((item) => item.title)).toEqual(["Ferry timetable changes", "Library extends opening hours"]);
  });

  it("utf16le-bom served as text/xml with no charset: read as UTF-16LE, 2 items with the right titles", async () => {
    const decoded = decodeFeed(caseInput("C10-utf16le-bom.xml"), "text/xml");
    expect(decoded.encoding).toBe("utf-16le");
    expect(decoded.text.startsWith('<?xml version="1.0" encoding="UTF-16"?>')).toBe(true);
    const feed = await parseFeed(decoded.text, "https://news.example.org/feed.xml");
    expect(feed.items).toHaveLength(2);
    expect(feed.items.map((item) => item.title)).toEqual(["Ferry timetable changes", "Library extends opening hours"]);
    expect(feed.items[0].link).toBe("https://news.example.org/2024/05/item-1");
    expect(feed.items[1].body).toBe("Open until 21:00 on weekdays.");
  });

  it("leading-junk: the PHP notice is dropped with a leading_garbage warning, 2 items parse", async () => {
    const decoded = decodeFeed(caseInput("C10-leading-junk.xml"), null);
    expect(decoded.text.startsWith("<?xml")).toBe(true);
    expect(decoded.warnings).toHaveLength(1);
    expect(decoded.warnings[0].code).toBe("leading_garbage");
    expect(decoded.warnings[0].message).toContain("Notice: Undefined index: lang in feed.php on line 12");
    const feed = await parseFeed(decoded.text, "https://news.example.org/feed.xml");
    expect(feed.items.map((item) => item.title)).toEqual(["Ferry timetable changes", "Library extends opening hours"]);
  });
});

const rss = (title: string, prolog = '<?xml version="1.0"?>') =>
  `${prolog}<rss version="2.0"><channel><title>${title}</title><item><title>${title}</title><link>https://news.example.org/a</link></item></channel></rss>`;

describe("decodeFeed", () => {
  it("reads UTF-16BE from its BOM", () => {
    const text = rss("Grüße");
    const bytes = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, "utf16le").swap16()]);
    const decoded = decodeFeed(bytes, null);
    expect(decoded.encoding).toBe("utf-16be");
    expect(decoded.text).toBe(text);
  });

  it("reads UTF-16LE without a BOM from the shape of `<?`", () => {
    const text = rss("Grüße");
    expect(decodeFeed(Buffer.from(text, "utf16le"), null).text).toBe(text);
  });

  it("uses the Content-Type charset", () => {
    // "Привет" in windows-1251
    const bytes = Buffer.concat([Buffer.from("<t>"), Buffer.from([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2]), Buffer.from("</t>")]);
    const decoded = decodeFeed(bytes, 'application/rss+xml; charset="windows-1251"');
    expect(decoded.encoding).toBe("windows-1251");
    expect(decoded.text).toBe("<t>Привет</t>");
  });

  it("uses the XML prolog's encoding when the header has none", () => {
    const bytes = Buffer.concat([
      Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><t>'),
      Buffer.from([0x4e, 0x6f, 0x74, 0xed, 0x63, 0x69, 0x61, 0x73]),
      Buffer.from("</t>"),
    ]);
    const decoded = decodeFeed(bytes, "text/xml");
    expect(decoded.encoding).toBe("windows-1252");
    expect(decoded.text).toContain("<t>Notícias</t>");
    expect(decoded.warnings).toEqual([]);
  });

  it("prefers UTF-8 when the bytes are valid UTF-8 and one declaration says so", () => {
    const bytes = Buffer.from('<?xml version="1.0" encoding="utf-8"?><t>Notícias</t>');
    expect(decodeFeed(bytes, "text/xml; charset=ISO-8859-1").text).toContain("<t>Notícias</t>");
  });

  it("reads GB2312 as GBK", () => {
    // 建国 in GBK, and 镕, which is in GBK but not in GB2312.
    const bytes = Buffer.concat([
      Buffer.from('<?xml version="1.0" encoding="gb2312"?><t>'),
      Buffer.from([0xbd, 0xa8, 0xb9, 0xfa, 0xe9, 0x46]),
      Buffer.from("</t>"),
    ]);
    const decoded = decodeFeed(bytes, null);
    expect(decoded.encoding).toBe("gbk");
    expect(decoded.text).toContain("<t>建国镕</t>");
  });

  it("falls back to windows-1252 for undeclared bytes that are not UTF-8, with a warning", () => {
    // "São Paulo – café" in windows-1252: ã e3, – 96, é e9
    const bytes = Buffer.from("<t>S\xe3o Paulo \x96 caf\xe9</t>", "latin1");
    const decoded = decodeFeed(bytes, null);
    expect(decoded.encoding).toBe("windows-1252");
    expect(decoded.text).toBe("<t>São Paulo – café</t>");
    expect(decoded.warnings.map((w) => w.code)).toEqual(["encoding_guessed"]);
  });

  it("ignores an unknown declared encoding with a warning and still decodes", () => {
    const decoded = decodeFeed(Buffer.from('<?xml version="1.0" encoding="x-klingon"?><t>ok</t>'), null);
    expect(decoded.encoding).toBe("utf-8");
    expect(decoded.warnings.map((w) => w.code)).toEqual(["unknown_encoding"]);
  });

  it("drops whitespace before <?xml silently (taverncast)", () => {
    const decoded = decodeFeed(Buffer.from("\n  \r\n<?xml version=\"1.0\"?><rss/>"), null);
    expect(decoded.text).toBe('<?xml version="1.0"?><rss/>');
    expect(decoded.warnings).toEqual([]);
  });
});
