/**
 * When a cron expression fires, in a named IANA time zone, computed from Intl.DateTimeFormat
 * offsets only: the host's own zone (process.env.TZ) never enters the arithmetic.
 *
 * Why not node-cron's own computation: node-cron 4.6.0 maps an ambiguous local time (the hour
 * repeated when clocks go back) to its *second* occurrence, so on 2024-10-27 in Europe/London an
 * hourly job fires 24 times instead of 25 and "30 1 * * *" fires at 01:30Z instead of 00:30Z
 * (case C19; test/scheduler/dst.test.ts shows it). node-cron is still used to validate and parse
 * the expression, so the accepted syntax is exactly node-cron's.
 *
 * DST rules (those of Vixie/ISC cron, which the C19 expectations follow):
 * - A job whose second, minute and hour fields are all fixed (no field starting with "*") is a
 *   "fixed-time" job. When its local time occurs twice it fires once, at the first occurrence;
 *   when its local time does not exist (clocks go forward) it fires once, at the instant the
 *   clocks change, so a daily 02:30 job still runs on the spring-forward day.
 * - Any other job (a "*" in the hour, minute or second field, "@hourly") follows the wall clock:
 *   a repeated hour fires twice, a skipped hour does not fire.
 * - Day of month and day of week: when both are restricted (neither starts with "*"), a day
 *   matches if either matches (POSIX cron). node-cron itself requires both.
 */
import cron from "node-cron";
import { ConfigError } from "../config";

/** A bad cron expression or time zone. A ConfigError, so the CLIs exit 2 with its message. */
export class ScheduleConfigError extends ConfigError {
  override name = "ScheduleConfigError";
}

/** How a value is named in messages: the env variables by default. */
export interface ScheduleLabels {
  cron?: string;
  timezone?: string;
}

const DEFAULT_LABELS = { cron: "BRIEFING_CRON", timezone: "BRIEFING_TZ" };

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

type DayToken = number | string;

export interface CronSpec {
  expression: string;
  timezone: string;
  seconds: number[];
  minutes: number[];
  hours: number[];
  daysOfMonth: DayToken[];
  months: number[];
  daysOfWeek: DayToken[];
  /** The day-of-month / day-of-week field is "*" (or "?"): unrestricted. */
  domStar: boolean;
  dowStar: boolean;
  /** No "*" in the second, minute or hour field (see the DST rules above). */
  fixedTime: boolean;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Zone offsets stay within [-12 h, +14 h]; a margin for pruning candidate wall times. */
const MAX_OFFSET_SPAN = 15 * HOUR;
/** How far ahead to look before giving up ("0 0 29 2 *" fires every 4 years, rarely 8). */
const SEARCH_DAYS = 366 * 9;

export function validateTimeZone(timezone: string, labels: ScheduleLabels = {}): void {
  const label = labels.timezone ?? DEFAULT_LABELS.timezone;
  if (typeof timezone !== "string" || timezone.trim() === "") {
    throw new ScheduleConfigError(`${label} is empty: give an IANA time zone such as Europe/Berlin or UTC`);
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch (err) {
    throw new ScheduleConfigError(
      `${label} "${timezone}" is not a valid IANA time zone: ${(err as Error).message} (for example Europe/Berlin or UTC)`,
    );
  }
}

function cronError(label: string, expression: string, reason: string): ScheduleConfigError {
  return new ScheduleConfigError(
    `${label} "${expression}" is not a valid cron expression: ${reason} ` +
      `(expected 5 fields "minute hour day-of-month month day-of-week", or 6 with seconds first, e.g. "0 7 * * *")`,
  );
}

/** Validates and parses; throws ScheduleConfigError naming the setting. */
export function compileCron(expression: string, timezone: string, labels: ScheduleLabels = {}): CronSpec {
  const label = labels.cron ?? DEFAULT_LABELS.cron;
  if (typeof expression !== "string" || expression.trim() === "") {
    throw cronError(label, String(expression ?? ""), "it is empty");
  }
  let result: ReturnType<typeof cron.validateDetailed>;
  try {
    result = cron.validateDetailed(expression);
  } catch (err) {
    throw cronError(label, expression, (err as Error).message);
  }
  if (!result.valid || !result.fields) {
    throw cronError(label, expression, result.errors.map((e) => e.message).join("; ") || "not understood");
  }
  validateTimeZone(timezone, labels);
  const resolved = NICKNAMES[expression.trim().toLowerCase()] ?? expression;
  const raw = resolved.replace(/\s+/g, " ").trim().split(" ");
  const rawFields = raw.length === 5 ? ["0", ...raw] : raw;
  const star = (i: number) => rawFields[i].startsWith("*") || rawFields[i] === "?";
  const f = result.fields;
  const numbers = (values: DayToken[], name: string): number[] => {
    const out = values.map((v) => (typeof v === "number" ? v : Number.NaN));
    if (out.some((n) => !Number.isInteger(n))) throw cronError(label, expression, `unsupported token in the ${name} field`);
    return [...new Set(out)].sort((a, b) => a - b);
  };
  return {
    expression,
    timezone,
    seconds: numbers(f.second, "second"),
    minutes: numbers(f.minute, "minute"),
    hours: numbers(f.hour, "hour"),
    daysOfMonth: f.dayOfMonth,
    months: numbers(f.month, "month"),
    daysOfWeek: f.dayOfWeek.map((d) => (d === 7 ? 0 : d)),
    domStar: star(3),
    dowStar: star(5),
    fixedTime: !star(0) && !star(1) && !star(2),
  };
}

// ---------------------------------------------------------------------------------------------
// Zone offsets

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timezone, f);
  }
  return f;
}

interface WallParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallParts(instant: number, timezone: string): WallParts {
  const out: Record<string, number> = {};
  for (const part of formatterFor(timezone).formatToParts(new Date(instant))) {
    if (part.type !== "literal") out[part.type] = Number(part.value);
  }
  return {
    year: out.year,
    month: out.month,
    day: out.day,
    hour: out.hour === 24 ? 0 : out.hour,
    minute: out.minute,
    second: out.second,
  };
}

/** Local wall time as if it were UTC, in ms. */
function wallMs(p: WallParts): number {
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
}

/**
 * The zone's offset (local minus UTC, ms) at an instant. Cached per whole minute: modern tzdb
 * transitions fall on whole minutes (pre-1900 local-mean-time offsets with seconds are not
 * worth the cost).
 */
const offsetCache = new Map<string, Map<number, number>>();
function offsetAt(instant: number, timezone: string): number {
  let cache = offsetCache.get(timezone);
  if (!cache) {
    cache = new Map();
    offsetCache.set(timezone, cache);
  }
  const bucket = Math.floor(instant / MINUTE);
  let offset = cache.get(bucket);
  if (offset === undefined) {
    const at = bucket * MINUTE;
    offset = wallMs(wallParts(at, timezone)) - at;
    if (cache.size > 50_000) cache.clear();
    cache.set(bucket, offset);
  }
  return offset;
}

type Resolved = { kind: "single"; at: number } | { kind: "repeated"; at: number[] } | { kind: "gap"; after: number };

/** The UTC instants at which a local wall time (given as wall ms) occurs in the zone. */
function resolveWall(wall: number, timezone: string): Resolved {
  const offsets = new Set([offsetAt(wall - DAY, timezone), offsetAt(wall, timezone), offsetAt(wall + DAY, timezone)]);
  const valid = [...offsets]
    .map((o) => wall - o)
    .filter((t) => offsetAt(t, timezone) === wall - t)
    .sort((a, b) => a - b);
  const distinct = [...new Set(valid)];
  if (distinct.length === 1) return { kind: "single", at: distinct[0] };
  if (distinct.length > 1) return { kind: "repeated", at: distinct };
  // Not a local time at all: the clocks jumped over it. Find the jump between the candidates.
  const candidates = [...offsets].map((o) => wall - o).sort((a, b) => a - b);
  let lo = Math.floor(candidates[0] / MINUTE);
  let hi = Math.ceil(candidates[candidates.length - 1] / MINUTE);
  const before = offsetAt(lo * MINUTE, timezone);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid * MINUTE, timezone) === before) lo = mid;
    else hi = mid;
  }
  return { kind: "gap", after: hi * MINUTE };
}

// ---------------------------------------------------------------------------------------------
// Day matching (node-cron's tokens: L, L-n, nW, LW in day of month; d#n, dL in day of week)

function lastDayOfMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

function nearestWeekday(year: number, month: number, target: number): number {
  const last = lastDayOfMonth(year, month);
  if (target < 1 || target > last) return -1;
  const wd = weekdayOf(year, month, target);
  if (wd === 6) return target === 1 ? target + 2 : target - 1;
  if (wd === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function matchesDayOfMonth(tokens: DayToken[], year: number, month: number, day: number): boolean {
  const last = lastDayOfMonth(year, month);
  for (const token of tokens) {
    if (token === day) return true;
    if (typeof token !== "string") continue;
    if (token === "L" && day === last) return true;
    const w = /^(\d{1,2}|L)W$/.exec(token);
    if (w && nearestWeekday(year, month, w[1] === "L" ? last : Number(w[1])) === day) return true;
    const off = /^L-(\d{1,2})$/.exec(token);
    if (off && last - Number(off[1]) === day) return true;
  }
  return false;
}

function matchesDayOfWeek(tokens: DayToken[], year: number, month: number, day: number): boolean {
  const wd = weekdayOf(year, month, day);
  for (const token of tokens) {
    if (token === wd) return true;
    if (typeof token !== "string") continue;
    const nth = /^([0-7])#([1-5])$/.exec(token);
    if (nth && Number(nth[1]) % 7 === wd && Math.floor((day - 1) / 7) + 1 === Number(nth[2])) return true;
    const lastOf = /^([0-7])L$/i.exec(token);
    if (lastOf && Number(lastOf[1]) % 7 === wd && day + 7 > lastDayOfMonth(year, month)) return true;
  }
  return false;
}

function dayMatches(spec: CronSpec, year: number, month: number, day: number): boolean {
  if (!spec.months.includes(month)) return false;
  const dom = matchesDayOfMonth(spec.daysOfMonth, year, month, day);
  const dow = matchesDayOfWeek(spec.daysOfWeek, year, month, day);
  if (!spec.domStar && !spec.dowStar) return dom || dow;
  return dom && dow;
}

// ---------------------------------------------------------------------------------------------
// Fire times

const specCache = new Map<string, CronSpec>();
function specFor(expression: string, timezone: string): CronSpec {
  const key = `${timezone}\u0000${expression}`;
  let spec = specCache.get(key);
  if (!spec) {
    spec = compileCron(expression, timezone);
    if (specCache.size > 200) specCache.clear();
    specCache.set(key, spec);
  }
  return spec;
}

/** Adds the instants one local day contributes (in local wall order) through `add`. */
function firesOnDay(spec: CronSpec, year: number, month: number, day: number, after: number, add: (t: number) => void, bound: () => number): void {
  for (const hour of spec.hours) {
    for (const minute of spec.minutes) {
      for (const second of spec.seconds) {
        const wall = Date.UTC(year, month - 1, day, hour, minute, second);
        if (wall + MAX_OFFSET_SPAN <= after) continue; // every instant of it is in the past
        if (wall - MAX_OFFSET_SPAN > bound()) return; // nothing from here on can come earlier
        const r = resolveWall(wall, spec.timezone);
        if (r.kind === "single") add(r.at);
        else if (r.kind === "repeated") {
          if (spec.fixedTime) add(r.at[0]);
          else for (const t of r.at) add(t);
        } else if (spec.fixedTime) add(r.after);
      }
    }
  }
}

/**
 * The next `count` instants strictly after `fromUtc` at which `cron` fires in `timezone`,
 * ascending and distinct. Pure: depends on neither the host zone nor the current time.
 */
export function nextFireTimes(cronExpression: string, timezone: string, fromUtc: Date | number, count: number): Date[] {
  const spec = specFor(cronExpression, timezone);
  return nextFireTimesFor(spec, typeof fromUtc === "number" ? fromUtc : fromUtc.getTime(), count).map((t) => new Date(t));
}

export function nextFireTimesFor(spec: CronSpec, from: number, count: number): number[] {
  if (!(count > 0)) return [];
  if (!Number.isFinite(from)) throw new RangeError(`nextFireTimes: bad start instant ${from}`);
  // The `count` smallest instants > from seen so far, ascending and distinct.
  const best: number[] = [];
  const bound = () => (best.length >= count ? best[count - 1] : Number.POSITIVE_INFINITY);
  const add = (t: number) => {
    if (t <= from || t >= bound()) return;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (best[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    if (best[lo] === t) return;
    best.splice(lo, 0, t);
    if (best.length > count) best.pop();
  };
  const start = wallParts(from, spec.timezone);
  // Start a day early: when clocks go back across midnight a later instant can carry the
  // previous local date.
  let cursor = Date.UTC(start.year, start.month - 1, start.day) - DAY;
  for (let i = 0; i < SEARCH_DAYS; i++) {
    if (cursor - MAX_OFFSET_SPAN > bound()) break; // nothing on this day can come earlier
    const d = new Date(cursor);
    const year = d.getUTCFullYear();
    const month = d.getUTCMonth() + 1;
    const day = d.getUTCDate();
    if (dayMatches(spec, year, month, day)) firesOnDay(spec, year, month, day, from, add, bound);
    cursor += DAY;
  }
  if (best.length === 0) {
    throw new ScheduleConfigError(`cron "${spec.expression}" in ${spec.timezone} never fires in the next ${Math.round(SEARCH_DAYS / 365)} years`);
  }
  return best;
}

/**
 * nextFireTimesFor with a look-ahead buffer, for a scheduler asking "what comes after t" again
 * and again with t moving forward.
 */
export function fireCursor(spec: CronSpec, batch = 64): (after: number) => number {
  let bufFrom = Number.NaN;
  let buf: number[] = [];
  return (after: number) => {
    if (buf.length > 0 && after >= bufFrom && after < buf[buf.length - 1]) {
      let lo = 0;
      let hi = buf.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (buf[mid] <= after) lo = mid + 1;
        else hi = mid;
      }
      return buf[lo];
    }
    bufFrom = after;
    buf = nextFireTimesFor(spec, after, batch);
    return buf[0];
  };
}

/** Every fire instant in [startUtc, endUtc), ascending. */
export function fireTimesBetween(cronExpression: string, timezone: string, startUtc: Date | number, endUtc: Date | number): Date[] {
  const spec = specFor(cronExpression, timezone);
  const start = typeof startUtc === "number" ? startUtc : startUtc.getTime();
  const end = typeof endUtc === "number" ? endUtc : endUtc.getTime();
  const out: Date[] = [];
  let from = start - 1;
  for (;;) {
    const batch = nextFireTimesFor(spec, from, 64);
    for (const t of batch) {
      if (t >= end) return out;
      out.push(new Date(t));
    }
    from = batch[batch.length - 1];
  }
}

/** "2026-12-04T07:00:00+01:00": the instant as local time in the zone, with its offset. */
export function formatInZone(instant: Date | number, timezone: string): string {
  const t = typeof instant === "number" ? instant : instant.getTime();
  const seconds = Math.floor(t / 1000) * 1000;
  const p = wallParts(seconds, timezone);
  const offsetMin = Math.round((wallMs(p) - seconds) / MINUTE);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const sign = offsetMin < 0 ? "-" : "+";
  const abs = Math.abs(offsetMin);
  return (
    `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}
