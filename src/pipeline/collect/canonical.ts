/** The identities articles are deduplicated by: a canonical link and a hash of the text. */
import { createHash } from "node:crypto";

/** Query parameters that only track the click; matched case-insensitively. */
const TRACKING_PARAMS = new Set([
  "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl",
  "wt_mc", "wt.mc_id", "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
  "cmpid", "cmp", "ocid", "smid", "xtor", "spm", "__twitter_impression", "mbid", "rss_source",
]);
const TRACKING_PREFIXES = ["utm_", "ns_", "pk_", "hsa_"];

/** Redirect wrappers that carry the real article URL in a parameter. */
const REDIRECT_WRAPPERS: Array<{ host: RegExp; path: RegExp; params: string[] }> = [
  { host: /^news\.google\.[a-z.]+$/, path: /^\/news\/url$/, params: ["url"] },
  { host: /^(www\.)?google\.[a-z.]+$/, path: /^\/url$/, params: ["url", "q"] },
  { host: /^l\.facebook\.com$/, path: /^\/l\.php$/, params: ["u"] },
];
const MAX_UNWRAP = 3;

/**
 * The link articles are deduplicated by: scheme and host lowercased, default port and fragment
 * dropped, redirect wrappers unwrapped, tracking parameters dropped, the other parameters sorted.
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
  url.hash = "";
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
  const wrapper = REDIRECT_WRAPPERS.find((w) => w.host.test(url.hostname) && w.path.test(url.pathname));
  if (!wrapper) return null;
  for (const name of wrapper.params) {
    const value = url.searchParams.get(name);
    const inner = value ? parseHttpUrl(value) : null;
    if (inner) return inner;
  }
  return null;
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
