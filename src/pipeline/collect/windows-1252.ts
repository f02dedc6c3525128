/**
 * windows-1252, by hand for the 32 bytes where it differs from ISO-8859-1. Node 20's
 * TextDecoder("windows-1252") (and every label WHATWG maps to it: latin1, iso-8859-1, us-ascii)
 * takes a Latin-1 fast path and turns 0x80-0x9F into C1 control characters instead of € ‚ … – — ’.
 */
const BYTES_80_TO_9F = [
  0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
  0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
];

/** The character a windows-1252 byte stands for. */
export function windows1252Char(byte: number): string {
  return String.fromCharCode(byte >= 0x80 && byte <= 0x9f ? BYTES_80_TO_9F[byte - 0x80] : byte);
}

export function decodeWindows1252(bytes: Uint8Array): string {
  return new TextDecoder("latin1").decode(bytes).replace(/[\u0080-\u009f]/g, (c) => windows1252Char(c.charCodeAt(0)));
}
