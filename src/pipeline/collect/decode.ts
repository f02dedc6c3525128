/**
 * Bytes to text. XML parsers work on strings, so the charset must be settled first: a byte-order
 * mark wins, then the declarations (Content-Type charset, XML prolog encoding); bytes that are not
 * valid UTF-8 and declare nothing else are read as windows-1252 (case C10, and uol-noticias in the
 * shared corpus). Node ships full ICU, so TextDecoder covers windows-125x, GBK, KOI8 and the rest.
 */
import type { FeedWarning } from "./errors";
import { decodeWindows1252 } from "./windows-1252";

export interface DecodedFeed {
  text: string;
  /** The WHATWG name of the encoding used, e.g. "utf-8", "windows-1252", "gbk". */
  encoding: string;
  warnings: FeedWarning[];
}

const FALLBACK_ENCODING = "windows-1252";
/** How far into the document an XML prolog may start (leading junk can push it back). */
const PROLOG_WINDOW = 1024;

export function decodeFeed(bytes: Uint8Array, contentType?: string | null): DecodedFeed {
  const warnings: FeedWarning[] = [];
  const { encoding, skip } = chooseEncoding(bytes, contentType ?? null, warnings);
  const body = bytes.subarray(skip);
  const decoded = encoding === "windows-1252" ? decodeWindows1252(body) : new TextDecoder(encoding, { ignoreBOM: true }).decode(body);
  return { text: trimBeforeRoot(decoded, warnings), encoding, warnings };
}

function chooseEncoding(
  bytes: Uint8Array,
  contentType: string | null,
  warnings: FeedWarning[],
): { encoding: string; skip: number } {
  const bom = sniffByteOrderMark(bytes);
  if (bom) return bom;
  const utf16 = sniffUtf16WithoutBom(bytes);
  if (utf16) return { encoding: utf16, skip: 0 };

  const declared = [charsetFromContentType(contentType), encodingFromProlog(bytes)]
    .filter((label): label is string => label !== null)
    .map((label) => normaliseLabel(label, warnings))
    // A UTF-16 label read through an ASCII-compatible view is wrong: real UTF-16 was caught above.
    .filter((encoding): encoding is string => encoding !== null && !encoding.startsWith("utf-16"));

  const validUtf8 = isValidUtf8(bytes);
  if (validUtf8 && (declared.length === 0 || declared.includes("utf-8"))) return { encoding: "utf-8", skip: 0 };
  const other = declared.find((encoding) => encoding !== "utf-8");
  if (other) return { encoding: other, skip: 0 };
  if (validUtf8) return { encoding: "utf-8", skip: 0 };

  warnings.push({
    code: "encoding_guessed",
    message:
      declared.length === 0
        ? `the feed declares no encoding and is not valid UTF-8; read as ${FALLBACK_ENCODING}`
        : `the feed declares UTF-8 but is not valid UTF-8; read as ${FALLBACK_ENCODING}`,
  });
  return { encoding: FALLBACK_ENCODING, skip: 0 };
}

function sniffByteOrderMark(bytes: Uint8Array): { encoding: string; skip: number } | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: "utf-8", skip: 3 };
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: "utf-16le", skip: 2 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: "utf-16be", skip: 2 };
  return null;
}

/** `<?` in UTF-16 without a BOM (XML spec, appendix F). */
function sniffUtf16WithoutBom(bytes: Uint8Array): string | null {
  if (bytes[0] === 0x3c && bytes[1] === 0x00 && bytes[2] === 0x3f && bytes[3] === 0x00) return "utf-16le";
  if (bytes[0] === 0x00 && bytes[1] === 0x3c && bytes[2] === 0x00 && bytes[3] === 0x3f) return "utf-16be";
  return null;
}

function charsetFromContentType(contentType: string | null): string | null {
  const match = contentType?.match(/;\s*charset\s*=\s*"?([^";\s]+)"?/i);
  return match ? match[1] : null;
}

function encodingFromProlog(bytes: Uint8Array): string | null {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, PROLOG_WINDOW));
  const match = head.match(/<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/);
  return match ? match[1] : null;
}

/** The WHATWG encoding for a label, or null (with a warning) when TextDecoder does not know it. */
function normaliseLabel(label: string, warnings: FeedWarning[]): string | null {
  // GB2312 feeds routinely use GBK characters beyond it; GBK is the superset (WHATWG agrees).
  const wanted = /^gb[_-]?2312/i.test(label) ? "gbk" : label;
  try {
    return new TextDecoder(wanted).encoding;
  } catch {
    warnings.push({ code: "unknown_encoding", message: `the feed declares the unknown encoding "${label}"; ignored` });
    return null;
  }
}

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * XML allows nothing before `<?xml`, and parsers fail on a stray BOM, whitespace or a notice a
 * CMS printed before the feed. Drop everything before the first `<`; warn when it was not blank.
 */
function trimBeforeRoot(text: string, warnings: FeedWarning[]): string {
  const start = text.indexOf("<");
  if (start <= 0) return start === 0 ? text : text.replace(/^[\s\uFEFF]+/, "");
  const dropped = text.slice(0, start);
  if (dropped.replace(/[\s\uFEFF]+/g, "") !== "") {
    const preview = dropped.trim().replace(/\s+/g, " ").slice(0, 80);
    warnings.push({ code: "leading_garbage", message: `dropped ${dropped.length} characters before the first tag: "${preview}"` });
  }
  return text.slice(start);
}
