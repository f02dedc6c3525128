/** The identities articles are deduplicated by: a canonical link and a hash of the text. */
import { createHash } from "node:crypto";

/** Query parameters that only track the click; matched case-insensitively. */
const TRACKING_PARAMS = new Set([
  "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
  "wt_mc", "wt.mc_id", "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
  "cmpid", "cmp", "ocid", "smid", "xtor", "spm", "__twitter_impression", "mbid", "rss_source",
]);
const TRACKING_PREFIXES = ["utm_", "ns_", "pk_", "hsa_"];

/**
 * Redirect wrappers: a link is unwrapped when it looks like a redirector AND one of the usual
 * redirect parameters holds an absolute http(s) URL. Both are needed, so that an ordinary page
 * that merely takes a URL (a login page's `redirect=`, a share page's `u=`, a viewer's `url=`)
 * stays itself. It looks like a redirector when its last path segment (without extension) is a
 * redirect word (google /url, news.google /news/url, facebook /l.php, /redirect.aspx, /out,
 * /click, ...) or its host is one (click.*, out.*, l.*, feedproxy.google.com, ...).
 */
const REDIRECT_PATH_WORDS = new Set([
  "redirect", "redir", "r", "out", "outbound", "click", "clk", "l", "link", "links", "url", "away",
  "track", "tracking", "trk", "go", "goto", "exit", "external", "leave", "jump", "forward",
]);
const REDIRECT_HOST_LABELS = new Set(["click", "clicks", "link", "links", "redirect", "redir", "r", "out", "track", "tracking", "trk", "go", "l"]);
const REDIRECT_HOSTS = new Set(["feedproxy.google.com", "feeds.feedburner.com", "feeds.feedblitz.com"]);
/** In order of preference, matched case-insensitively. */
const REDIRECT_PARAMS = [
  "url", "u", "q", "target", "dest", "destination", "redirect", "redirect_url", "redirect_to", "redirecturl",
  "redir", "link", "to", "r", "out", "goto", "href",
];
const MAX_UNWRAP = 3;

/**
 * The link articles are deduplicated by: scheme and host lowercased, default port dropped,
 * redirect wrappers unwrapped, tracking parameters dropped, the other parameters sorted. The
 * fragment is dropped when it only points into a page (#comments, #top) or tracks (#xtor=RSS-1),
 * and kept when it names the item: some sites give each post of a day's page its own anchor
 * (scripting.com/2017/06/26.html#a080605), and those are different stories.
 * A link that is not an absolute http(s) URL is returned trimmed, unchanged.
 */
export function canonicalUrl(link: string): string {
  let url = parseHttpUrl(link.trim());
  if (!url) return link.trim();
  for (let depth = 0; depth < MAX_UNWRAP; depth++) {
    const inner = unwrapRedirect(url);
    if (!inner) break;
    url = inner;
  }
  if (!namesTheItem(url.hash)) url.hash = "";
  const kept = [...url.searchParams].filter(([name]) => !isTrackingParam(name));
  kept.sort(([a, av], [b, bv]) => (a === b ? compare(av, bv) : compare(a, b)));
  url.search = new URLSearchParams(kept).toString();
  return url.href;
}

function parseHttpUrl(text: string): URL | null {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function unwrapRedirect(url: URL): URL | null {
  if (!looksLikeRedirector(url)) return null;
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    const lower = name.toLowerCase();
    if (!params.has(lower)) params.set(lower, value);
  }
  for (const name of REDIRECT_PARAMS) {
    const value = params.get(name);
    if (!value) continue;
    // Some redirectors encode the target twice.
    const inner = parseHttpUrl(/^https?%3A/i.test(value) ? safeDecode(value) : value);
    if (inner) return inner;
  }
  return null;
}

function looksLikeRedirector(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  if (REDIRECT_HOSTS.has(host) || REDIRECT_HOST_LABELS.has(host.split(".")[0])) return true;
  const lastSegment = url.pathname.split("/").filter(Boolean).at(-1) ?? "";
  return REDIRECT_PATH_WORDS.has(lastSegment.toLowerCase().replace(/\.[a-z0-9]+$/, ""));
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Fragments that point somewhere within the same story's page, never at another story. */
const PAGE_FRAGMENTS = /^#(top|comments?|respond|reply|replies|content|main|more(-\d+)?|disqus_thread|share|footnotes?|fn\d*|section-?\d*|article|story|video|gallery|read-?more)?$/i;

function namesTheItem(hash: string): boolean {
  if (hash === "" || PAGE_FRAGMENTS.test(hash)) return false;
  // #xtor=RSS-1, #utm_source=..., #ref=rss: tracking, not an anchor.
  if (hash.includes("=") || hash.includes("&")) return false;
  return true;
}

function isTrackingParam(name: string): boolean {
  const lower = name.toLowerCase();
  return TRACKING_PARAMS.has(lower) || TRACKING_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Text as compared for duplicates: case, Unicode composition, punctuation and spacing do not count. */
export function normaliseForHash(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** sha256 (hex) of the normalised title and body. */
export function contentHash(title: string, body: string): string {
  return createHash("sha256").update(`${normaliseForHash(title)}\n${normaliseForHash(body)}`).digest("hex");
}
