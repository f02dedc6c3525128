/**
 * Feed text to items, with rss-parser's parseString (RSS 2.0, RSS 1.0/RDF, Atom) doing the XML and
 * the format, and the raw elements kept (customFields) so that we choose links, dates and bodies
 * ourselves: rss-parser takes the first Atom link when none says rel="alternate" (a self or
 * replies link, case C12), leaves relative links relative, and turns one bad Atom date into an
 * exception that fails the whole feed.
 */
import Parser from "rss-parser";
import { parseFeedDate, type DateFlag } from "./dates";
import { FeedError, type FeedWarning } from "./errors";
import { HTML_ENTITIES } from "./html-entities";
import { firstWords, foldWhitespace, htmlToText } from "./html";

export interface FeedItem {
  title: string;
  /** Absolute when the feed (or its URL) gave a base to resolve it against; null when there is none. */
  link: string | null;
  guid: string | null;
  /** null when the item has no date (dateFlag "missing") or one that does not parse ("unparseable"). */
  publishedAt: Date | null;
  dateFlag: DateFlag | null;
  /** Plain text, whitespace folded; "" when the item has none. */
  body: string;
}

export interface ParsedFeed {
  title: string | null;
  /** The site the feed belongs to (its alternate link). */
  link: string | null;
  items: FeedItem[];
  warnings: FeedWarning[];
}

/** An element as xml2js gives it: attributes in `$`, text in `_`, children as arrays. */
interface XmlElement {
  $?: Record<string, string>;
  _?: string;
  [child: string]: unknown;
}
type XmlValue = string | XmlElement;

interface RawItem {
  title?: unknown;
  content?: unknown;
  summary?: unknown;
  "content:encoded"?: unknown;
  itunes?: { summary?: unknown };
  id?: unknown;
  "rdf:about"?: string;
  rawLinks?: XmlValue[];
  rawGuid?: XmlValue[];
  rawPubDate?: XmlValue[];
  rawDcDate?: XmlValue[];
  rawPublished?: XmlValue[];
  rawUpdated?: XmlValue[];
  origLink?: unknown;
  mediaGroup?: XmlElement[];
  mediaDescription?: unknown;
  attributes?: Record<string, string>;
}

interface RawFeed {
  title?: unknown;
  rawLinks?: XmlValue[];
  attributes?: Record<string, string>;
}

const keep = { keepArray: true };
const ITEM_FIELDS = [
  ["link", "rawLinks", keep],
  ["guid", "rawGuid", keep],
  ["pubDate", "rawPubDate", keep],
  ["dc:date", "rawDcDate", keep],
  ["feedburner:origLink", "origLink"],
  ["media:group", "mediaGroup", keep],
  ["media:description", "mediaDescription"],
  ["$", "attributes", keep],
];
// rss-parser's types allow only plain names for feed fields, but it reads [from, to, options]
// for both (lib/utils.js copyFromXML).
const FEED_FIELDS = [
  ["link", "rawLinks", keep],
  ["$", "attributes", keep],
] as unknown as Array<keyof RawFeed>;

type AtomEntry = Record<string, unknown>;
const buildAtomItem = (Parser.prototype as unknown as { parseItemAtom(entry: AtomEntry): RawItem }).parseItemAtom;

class TolerantFeedParser extends Parser<RawFeed, RawItem> {
  constructor() {
    // defaultRSS: an <rss> without a version attribute (uol-noticias) is read as RSS 2.0.
    super({ defaultRSS: 2, customFields: { feed: FEED_FIELDS, item: ITEM_FIELDS } });
  }

  /** rss-parser runs `new Date(published).toISOString()`, which throws on a bad date; we parse the raw strings. */
  parseItemAtom(entry: AtomEntry): RawItem {
    const { published, updated, ...rest } = entry;
    return {
      ...buildAtomItem.call(this, rest),
      rawPublished: published as XmlValue[] | undefined,
      rawUpdated: updated as XmlValue[] | undefined,
    };
  }
}

export async function parseFeed(text: string, feedUrl: string): Promise<ParsedFeed> {
  const warnings: FeedWarning[] = [];
  const raw = await parseXml(text, warnings);

  const documentBase = asHttpUrl(feedUrl);
  const feedBase = resolveUrl(raw.attributes?.["xml:base"], documentBase) ?? documentBase;
  const feedLink = pickAlternate(raw.rawLinks, feedBase);
  // A feed read from a file has no URL of its own; its site link is the next best base.
  const itemBase = feedBase ?? asHttpUrl(feedLink);

  const items: FeedItem[] = [];
  const unparseableDates: string[] = [];
  for (const rawItem of raw.items) {
    const item = toFeedItem(rawItem, itemBase, feedLink, unparseableDates);
    if (item) items.push(item);
  }
  if (unparseableDates.length > 0) {
    warnings.push({
      code: "dates_unparseable",
      message: `${unparseableDates.length} of ${items.length} items have a date that does not parse (e.g. "${unparseableDates[0]}"); they are kept without a date`,
    });
  }
  const title = htmlToText(textOf(raw.title) ?? "");
  return { title: title || null, link: feedLink, items, warnings };
}

async function parseXml(text: string, warnings: FeedWarning[]): Promise<RawFeed & { items: RawItem[] }> {
  try {
    return await new TolerantFeedParser().parseString(text);
  } catch (error) {
    const message = firstLine(error);
    if (/^\s*(<!doctype html|<html)/i.test(text)) {
      throw new FeedError("not_a_feed", "the address returned an HTML page, not a feed", { cause: error });
    }
    if (/not recognized/i.test(message)) {
      throw new FeedError("not_a_feed", `the document is XML but not RSS or Atom (${message})`, { cause: error });
    }
    const repaired = repairXml(text);
    if (repaired !== text) {
      try {
        const feed = await new TolerantFeedParser().parseString(repaired);
        warnings.push({
          code: "xml_repaired",
          message: `the feed is not well-formed XML (${message}); parsed after escaping stray "&" and HTML entities`,
        });
        return feed;
      } catch {
        // Report the original error below: it names what is really wrong.
      }
    }
    throw new FeedError("parse_error", `the feed is not well-formed XML: ${message}`, { cause: error });
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0].trim();
}

const XML_ENTITY_NAMES = new Set(["amp", "lt", "gt", "quot", "apos"]);

/** The most common breakage in real feeds: HTML entities (&nbsp;) and bare "&" outside CDATA. */
function repairXml(text: string): string {
  return text.replace(/&(?!#\d+;|#x[0-9a-fA-F]+;)(?:([A-Za-z][A-Za-z0-9]*);)?/g, (whole, name: string | undefined) => {
    if (name === undefined) return "&amp;";
    if (XML_ENTITY_NAMES.has(name)) return whole;
    const code = HTML_ENTITIES.get(name);
    return code === undefined ? `&amp;${name};` : `&#${code};`;
  });
}

function toFeedItem(raw: RawItem, inheritedBase: string | null, feedLink: string | null, unparseableDates: string[]): FeedItem | null {
  const base = resolveUrl(raw.attributes?.["xml:base"], inheritedBase) ?? inheritedBase;
  const body = pickBody(raw);
  const title = htmlToText(textOf(raw.title) ?? "");
  const link = pickItemLink(raw, base, feedLink);
  // Nothing to show: an empty <item/> or similar debris.
  if (!title && !body && !link) return null;

  const date = pickDate(raw);
  if (date.dateFlag === "unparseable") unparseableDates.push(date.raw);
  return {
    title: title || firstWords(body) || "(untitled)",
    link,
    guid: foldWhitespace(textOf(raw.rawGuid) ?? textOf(raw.id) ?? "") || null,
    publishedAt: date.publishedAt,
    dateFlag: date.dateFlag,
    body,
  };
}

/**
 * The first date element present decides, in the order published, updated, dc:date, pubDate. A
 * present but bad date gives null ("unparseable") rather than falling back to a later element,
 * which would pass an edit time off as the publication time (case C12). Empty elements count as absent.
 */
function pickDate(raw: RawItem): { publishedAt: Date | null; dateFlag: DateFlag | null; raw: string } {
  for (const values of [raw.rawPublished, raw.rawUpdated, raw.rawDcDate, raw.rawPubDate]) {
    const value = foldWhitespace(textOf(values) ?? "");
    if (value === "") continue;
    const date = parseFeedDate(value);
    return { publishedAt: date, dateFlag: date ? null : "unparseable", raw: value };
  }
  return { publishedAt: null, dateFlag: "missing", raw: "" };
}

/** content:encoded, then Atom content or RSS description, then summaries. */
function pickBody(raw: RawItem): string {
  const mediaDescription = raw.mediaDescription ?? raw.mediaGroup?.[0]?.["media:description"];
  for (const candidate of [raw["content:encoded"], raw.content, raw.summary, mediaDescription, raw.itunes?.summary]) {
    const text = htmlToText(textOf(candidate) ?? "");
    if (text) return text;
  }
  return "";
}

function pickItemLink(raw: RawItem, base: string | null, feedLink: string | null): string | null {
  // FeedBurner keeps the publisher's own URL in origLink; <link> is a feedproxy hop.
  const original = asHttpUrl(resolveUrl(textOf(raw.origLink), base));
  if (original) return original;

  const alternate = pickAlternate(raw.rawLinks, base);
  if (alternate && !isSiteRoot(alternate, feedLink)) return alternate;
  // Podcasts often link every episode to the home page (taverncast); a permalink guid names the item.
  const permalink = permalinkGuid(raw, base);
  if (permalink) return permalink;
  return alternate ?? resolveUrl(raw["rdf:about"], base) ?? null;
}

function permalinkGuid(raw: RawItem, base: string | null): string | null {
  const guid = raw.rawGuid?.[0];
  if (guid !== undefined) {
    const isPermaLink = typeof guid === "string" || guid.$?.isPermaLink?.toLowerCase() !== "false";
    if (isPermaLink) return asHttpUrl(resolveUrl(textOf(guid), base));
    return null;
  }
  return asHttpUrl(textOf(raw.id));
}

/** A link to the site's front page (or to the feed's own site link) does not identify an item. */
function isSiteRoot(link: string, feedLink: string | null): boolean {
  const url = tryUrl(link);
  if (!url) return false;
  if ((url.pathname === "/" || url.pathname === "") && url.search === "") return true;
  const site = feedLink ? tryUrl(feedLink) : null;
  return site !== null && site.host === url.host && site.pathname === url.pathname && site.search === url.search;
}

/**
 * The alternate link among Atom <link> elements (one without rel counts as alternate; replies,
 * self, edit, enclosure and the like never do), preferring an HTML one; or the RSS <link> text.
 */
function pickAlternate(links: XmlValue[] | undefined, base: string | null): string | null {
  const candidates: Array<{ href: string; type?: string; base: string | null }> = [];
  // An empty <item/> reaches rss-parser as the string "", and its field copy then picks up
  // String.prototype.link: only an array is a list of link elements.
  for (const link of Array.isArray(links) ? links : []) {
    if (typeof link === "string") {
      if (link.trim()) candidates.push({ href: link.trim(), base });
      continue;
    }
    const attrs = link.$ ?? {};
    const rel = attrs.rel?.trim().toLowerCase();
    const href = (attrs.href ?? link._ ?? "").trim();
    if (!href || (rel !== undefined && rel !== "alternate")) continue;
    candidates.push({ href, type: attrs.type, base: resolveUrl(attrs["xml:base"], base) ?? base });
  }
  const chosen = candidates.find((c) => !c.type || /html/i.test(c.type)) ?? candidates[0];
  return chosen ? (resolveUrl(chosen.href, chosen.base) ?? chosen.href) : null;
}

/** `ref` made absolute against `base`; null when `ref` is empty or cannot be made absolute. */
function resolveUrl(ref: string | null | undefined, base: string | null): string | null {
  const text = ref?.trim();
  if (!text) return null;
  try {
    return new URL(text, base ?? undefined).href;
  } catch {
    return null;
  }
}

function asHttpUrl(value: string | null | undefined): string | null {
  const url = value ? tryUrl(value) : null;
  return url && (url.protocol === "http:" || url.protocol === "https:") ? url.href : null;
}

function tryUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** The text of an xml2js value: a string, an element's `_`, or the first of an array. */
function textOf(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return textOf(value[0]);
  if (value && typeof value === "object" && typeof (value as XmlElement)._ === "string") return (value as XmlElement)._!;
  return null;
}
