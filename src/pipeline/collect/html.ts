/** HTML fragments from feeds (titles, descriptions, content) to plain text. */
import { HTML_ENTITIES } from "./html-entities";
import { windows1252Char } from "./windows-1252";

const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g;

/** Decodes numeric and HTML 4 named references; unknown names are left as they are. */
export function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(ENTITY, (whole, decimal: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) {
      const code = HTML_ENTITIES.get(name);
      return code === undefined ? whole : String.fromCodePoint(code);
    }
    return fromCodePoint(decimal !== undefined ? Number.parseInt(decimal, 10) : Number.parseInt(hex!, 16));
  });
}

function fromCodePoint(code: number): string {
  // &#150; and friends mean windows-1252 characters in practice (as browsers read them).
  if (code >= 0x80 && code <= 0x9f) return windows1252Char(code);
  if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\uFFFD";
  return String.fromCodePoint(code);
}

/** Tags whose removal must not glue the words on either side together. */
const INLINE_TAGS = new Set([
  "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark",
  "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
]);

function stripTags(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1")
    .replace(/<(script|style|noscript)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<\/?([A-Za-z][A-Za-z0-9:-]*)\b[^>]*>/g, (_tag, name: string) => (INLINE_TAGS.has(name.toLowerCase()) ? "" : " "));
}

const LEFTOVER_MARKUP = /<\/?[A-Za-z][^>]*>|&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);/;

/** Plain text: tags and comments removed, entities decoded, whitespace folded to single spaces. */
export function htmlToText(html: string): string {
  let text = decodeEntities(stripTags(html));
  // Double-escaped markup (`&amp;lt;b&amp;gt;`, googlenews) only shows its tags after one decode.
  if (LEFTOVER_MARKUP.test(text)) text = decodeEntities(stripTags(text));
  return foldWhitespace(text);
}

export function foldWhitespace(text: string): string {
  return text.replace(/[\s\u200B\uFEFF]+/g, " ").trim();
}

/** The first words of a text, for items that have no title. */
export function firstWords(text: string, maxChars = 90): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars + 1);
  const lastSpace = cut.lastIndexOf(" ");
  return `${(lastSpace > maxChars / 2 ? cut.slice(0, lastSpace) : cut.slice(0, maxChars)).replace(/[\s,;:.-]+$/, "")}…`;
}
