/**
 * Feed dates, parsed explicitly rather than with `new Date(string)`: V8 reads zone-less strings in
 * the host's zone, accepts odd strings and rejects others real feeds use. Handled: RFC 822/2822
 * (with or without weekday, 2-digit years, numeric offsets and zone abbreviations such as PST or
 * CEST, month names in English and the main European languages), ISO 8601 (date-only, space
 * separator, fractions), and `2020/1/10 14:33:00`. A string without a zone is read as UTC.
 */

export type DateFlag = "missing" | "unparseable";

/** Minutes east of UTC. North American and common European abbreviations; ambiguous ones (IST) left out. */
const ZONES: Record<string, number> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0, WET: 0,
  EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
  AKST: -540, AKDT: -480, HST: -600,
  BST: 60, CET: 60, CEST: 120, MET: 60, MEST: 120, WEST: 60, EET: 120, EEST: 180, MSK: 180,
  JST: 540, KST: 540, AEST: 600, AEDT: 660, NZST: 720, NZDT: 780,
};

/** The first three letters (accents removed) of month names: en, de, fr, es, pt, it, nl. */
const MONTHS: Record<string, number> = {
  jan: 1, ene: 1, gen: 1,
  feb: 2, fev: 2,
  mar: 3, mrz: 3, mrt: 3,
  apr: 4, abr: 4, avr: 4,
  may: 5, mai: 5, mag: 5, mei: 5,
  jun: 6, giu: 6,
  jul: 7, lug: 7,
  aug: 8, ago: 8, aou: 8,
  sep: 9, set: 9,
  oct: 10, okt: 10, out: 10, ott: 10,
  nov: 11,
  dec: 12, dez: 12, dic: 12,
};

const RFC822 =
  /^(?:[\p{L}.]+,?\s+)?(\d{1,2})[\s-]+([\p{L}]+)\.?[\s-]+(\d{4}|\d{2}),?(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?(?:\s*(.*))?$/u;
const ISO8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;
const SLASHED = /^(\d{4})\/(\d{1,2})\/(\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

/** The instant a feed date names, or null when it does not parse. */
export function parseFeedDate(raw: string): Date | null {
  const text = raw.trim().replace(/\s+/g, " ");
  if (text === "") return null;

  const iso = ISO8601.exec(text);
  if (iso) {
    const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone] = iso;
    const offset = zone === undefined ? 0 : parseOffset(zone);
    const ms = Number(fraction.slice(0, 3).padEnd(3, "0"));
    return offset === null ? null : build(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s), ms, offset);
  }

  const rfc = RFC822.exec(text);
  if (rfc) {
    const [, d, monthName, y, h = "0", mi = "0", s = "0", zone = ""] = rfc;
    const month = MONTHS[monthName.normalize("NFD").replace(/\p{M}/gu, "").slice(0, 3).toLowerCase()];
    const offset = parseZone(zone);
    if (month === undefined || offset === null) return null;
    return build(fullYear(y), month, Number(d), Number(h), Number(mi), Number(s), 0, offset);
  }

  const slashed = SLASHED.exec(text);
  if (slashed) {
    const [, y, mo, d, h = "0", mi = "0", s = "0"] = slashed;
    return build(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s), 0, 0);
  }
  return null;
}

/** RFC 2822 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999. */
function fullYear(year: string): number {
  const n = Number(year);
  if (year.length === 4) return n;
  return n < 50 ? 2000 + n : 1900 + n;
}

/** The zone part of an RFC 822 date: empty, an offset, GMT+0100, an abbreviation, an optional "(comment)". */
function parseZone(zone: string): number | null {
  const text = zone.replace(/\(.*\)$/, "").trim();
  if (text === "") return 0;
  const named = ZONES[text.toUpperCase()];
  if (named !== undefined) return named;
  const prefixed = /^(?:GMT|UTC|UT)?([+-]\d{2}:?\d{2})$/i.exec(text);
  return prefixed ? parseOffset(prefixed[1]) : null;
}

/** Z, +hh, +hhmm or +hh:mm to minutes east of UTC. */
function parseOffset(offset: string): number | null {
  if (offset === "Z" || offset === "z") return 0;
  const match = /^([+-])(\d{2}):?(\d{2})?$/.exec(offset);
  if (!match) return null;
  const hours = Number(match[2]);
  const minutes = Number(match[3] ?? "0");
  if (hours > 14 || minutes > 59) return null;
  return (match[1] === "-" ? -1 : 1) * (hours * 60 + minutes);
}

function build(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, offsetMinutes: number): Date | null {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return null;
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d > daysInMonth) return null;
  // A leap second (:60) is read as the last second of the minute.
  const utc = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59), ms) - offsetMinutes * 60_000;
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? null : date;
}
