/** nextFireTimes beyond C19: the syntax node-cron accepts, day rules, and formatting. */
import { describe, expect, it } from "vitest";
import { compileCron, fireTimesBetween, formatInZone, nextFireTimes } from "../../src/scheduler";

const iso = (dates: Date[]) => dates.map((d) => d.toISOString().replace(".000Z", "Z"));
const days = (dates: Date[]) => dates.map((d) => d.toISOString().slice(0, 10));

describe("nextFireTimes", () => {
  it("daily 07:00 Berlin across its DST changes stays at 07:00 local", () => {
    expect(iso(nextFireTimes("0 7 * * *", "Europe/Berlin", new Date("2024-03-30T00:00:00Z"), 2))).toEqual(["2024-03-30T06:00:00Z", "2024-03-31T05:00:00Z"]);
    expect(iso(nextFireTimes("0 7 * * *", "Europe/Berlin", new Date("2024-10-26T00:00:00Z"), 2))).toEqual(["2024-10-26T05:00:00Z", "2024-10-27T06:00:00Z"]);
  });

  it("names, ranges, steps, nicknames and seconds", () => {
    expect(days(nextFireTimes("0 7 * * MON-FRI", "UTC", new Date("2024-01-05T08:00:00Z"), 3))).toEqual(["2024-01-08", "2024-01-09", "2024-01-10"]);
    expect(iso(nextFireTimes("@hourly", "UTC", new Date("2024-01-01T00:00:00Z"), 2))).toEqual(["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"]);
    expect(iso(nextFireTimes("*/20 * * * * *", "UTC", new Date("2024-01-01T00:00:05Z"), 3))).toEqual(["2024-01-01T00:00:20Z", "2024-01-01T00:00:40Z", "2024-01-01T00:01:00Z"]);
    expect(iso(nextFireTimes("0 0 1 jan,jul *", "UTC", new Date("2024-01-02T00:00:00Z"), 2))).toEqual(["2024-07-01T00:00:00Z", "2025-01-01T00:00:00Z"]);
  });

  it("day of month OR day of week when both are restricted (POSIX cron), AND otherwise", () => {
    expect(days(nextFireTimes("0 9 13 * 5", "UTC", new Date("2024-09-01T00:00:00Z"), 5))).toEqual(["2024-09-06", "2024-09-13", "2024-09-20", "2024-09-27", "2024-10-04"]);
    expect(days(nextFireTimes("0 9 13 * *", "UTC", new Date("2024-09-01T00:00:00Z"), 2))).toEqual(["2024-09-13", "2024-10-13"]);
  });

  it("node-cron's day tokens: L, L-2, 15W, 5#2 (second Friday), 1L (last Monday)", () => {
    expect(days(nextFireTimes("0 0 L * *", "UTC", new Date("2024-01-15T00:00:00Z"), 3))).toEqual(["2024-01-31", "2024-02-29", "2024-03-31"]);
    expect(days(nextFireTimes("0 0 L-2 * *", "UTC", new Date("2024-02-01T00:00:00Z"), 1))).toEqual(["2024-02-27"]);
    expect(days(nextFireTimes("0 0 15W * *", "UTC", new Date("2024-06-01T00:00:00Z"), 1))).toEqual(["2024-06-14"]); // 15 June 2024 is a Saturday
    expect(days(nextFireTimes("0 0 * * 5#2", "UTC", new Date("2024-01-01T00:00:00Z"), 2))).toEqual(["2024-01-12", "2024-02-09"]);
    expect(days(nextFireTimes("0 0 * * 1L", "UTC", new Date("2024-01-01T00:00:00Z"), 2))).toEqual(["2024-01-29", "2024-02-26"]);
  });

  it("rare dates are found (29 February)", () => {
    expect(iso(nextFireTimes("0 0 29 2 *", "UTC", new Date("2024-03-01T00:00:00Z"), 2))).toEqual(["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]);
  });

  it("a wildcard job runs through a repeated hour twice; a fixed-time one once", () => {
    const w = fireTimesBetween("*/30 * * * *", "Europe/London", new Date("2024-10-27T00:00:00Z"), new Date("2024-10-27T02:00:00Z"));
    expect(iso(w)).toEqual(["2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z", "2024-10-27T01:00:00Z", "2024-10-27T01:30:00Z"]);
    const f = fireTimesBetween("0,30 1 * * *", "Europe/London", new Date("2024-10-27T00:00:00Z"), new Date("2024-10-27T02:00:00Z"));
    expect(iso(f)).toEqual(["2024-10-27T00:00:00Z", "2024-10-27T00:30:00Z"]);
  });

  it("changes at midnight (America/Santiago 2024: back from 00:00 to 23:00 on 7 April, forward from 00:00 to 01:00 on 8 September)", () => {
    const local = (cron: string, a: string, b: string) =>
      fireTimesBetween(cron, "America/Santiago", new Date(a), new Date(b)).map((d) => formatInZone(d, "America/Santiago"));
    // 23:30 on 6 April happens twice; a fixed-time job runs at the first.
    expect(local("30 23 * * *", "2024-04-06T00:00:00Z", "2024-04-09T00:00:00Z")).toEqual([
      "2024-04-05T23:30:00-03:00",
      "2024-04-06T23:30:00-03:00",
      "2024-04-07T23:30:00-04:00",
    ]);
    // An hourly (wildcard) job runs at both.
    expect(local("30 * * * *", "2024-04-07T01:00:00Z", "2024-04-07T05:00:00Z")).toEqual([
      "2024-04-06T22:30:00-03:00",
      "2024-04-06T23:30:00-03:00",
      "2024-04-06T23:30:00-04:00",
      "2024-04-07T00:30:00-04:00",
    ]);
    // Midnight on 8 September does not exist; the daily midnight job runs when the clocks change.
    expect(local("0 0 * * *", "2024-09-06T00:00:00Z", "2024-09-10T00:00:00Z")).toEqual([
      "2024-09-06T00:00:00-04:00",
      "2024-09-07T00:00:00-04:00",
      "2024-09-08T01:00:00-03:00",
      "2024-09-09T00:00:00-03:00",
    ]);
  });

  it("compileCron tells fixed-time from wildcard jobs", () => {
    expect(compileCron("30 1 * * *", "UTC").fixedTime).toBe(true);
    expect(compileCron("0 * * * *", "UTC").fixedTime).toBe(false);
    expect(compileCron("@daily", "UTC").fixedTime).toBe(true);
    expect(compileCron("*/10 * * * * *", "UTC").fixedTime).toBe(false);
  });
});

describe("formatInZone", () => {
  it("prints local time with the offset", () => {
    expect(formatInZone(new Date("2026-12-04T06:00:00Z"), "Europe/Berlin")).toBe("2026-12-04T07:00:00+01:00");
    expect(formatInZone(new Date("2024-07-01T12:00:00Z"), "America/New_York")).toBe("2024-07-01T08:00:00-04:00");
    expect(formatInZone(new Date("2024-07-01T12:00:00Z"), "Asia/Kolkata")).toBe("2024-07-01T17:30:00+05:30");
    expect(formatInZone(new Date("2024-07-01T12:00:00Z"), "UTC")).toBe("2024-07-01T12:00:00+00:00");
  });
});
