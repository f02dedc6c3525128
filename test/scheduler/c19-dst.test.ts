/**
 * C19 (node-cron#174): fire times across DST, with the process zone set to Europe/London.
 * The six cases of ../shared/cases/inputs/C19-dst-expectations.json are inlined (and checked
 * against the file when ../shared is present).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import cron from "node-cron";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fireTimesBetween, formatInZone, nextFireTimes, startSchedule } from "../../src/scheduler";
import { SHARED_DIR } from "../helpers/db";
import { recorder } from "./helpers/record";
import { VirtualClock } from "./helpers/virtual-clock";

interface Case {
  id: string;
  cron: string;
  timezone: string;
  window_utc: [string, string];
  expect_utc?: string[];
  expect_count?: number;
}

const CASES: Case[] = [
  { id: "C19-a", cron: "30 0 * * *", timezone: "Etc/UTC", window_utc: ["2024-10-26T12:00:00Z", "2024-10-28T12:00:00Z"], expect_utc: ["2024-10-27T00:30:00Z", "2024-10-28T00:30:00Z"] },
  { id: "C19-b", cron: "30 0 * * *", timezone: "Etc/UTC", window_utc: ["2024-03-30T12:00:00Z", "2024-04-01T12:00:00Z"], expect_utc: ["2024-03-31T00:30:00Z", "2024-04-01T00:30:00Z"] },
  { id: "C19-c", cron: "30 9 * * *", timezone: "Asia/Tokyo", window_utc: ["2024-10-26T12:00:00Z", "2024-10-28T12:00:00Z"], expect_utc: ["2024-10-27T00:30:00Z", "2024-10-28T00:30:00Z"] },
  { id: "C19-d", cron: "0 * * * *", timezone: "Europe/London", window_utc: ["2024-10-26T23:00:00Z", "2024-10-28T00:00:00Z"], expect_count: 25 },
  { id: "C19-e", cron: "0 * * * *", timezone: "Europe/London", window_utc: ["2024-03-31T00:00:00Z", "2024-03-31T23:00:00Z"], expect_count: 23 },
  { id: "C19-f", cron: "30 1 * * *", timezone: "Europe/London", window_utc: ["2024-10-26T12:00:00Z", "2024-10-28T12:00:00Z"], expect_utc: ["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"] },
];
const byId = (id: string) => CASES.find((c) => c.id === id)!;
const iso = (dates: Date[]) => dates.map((d) => d.toISOString().replace(".000Z", "Z"));
const ms = (s: string) => new Date(s).getTime();

/** Every hour on the hour from start (inclusive) to end (exclusive). */
function hourly(start: string, end: string): string[] {
  const out: string[] = [];
  for (let t = ms(start); t < ms(end); t += 3_600_000) out.push(new Date(t).toISOString().replace(".000Z", "Z"));
  return out;
}

let savedTz: string | undefined;
beforeAll(() => {
  savedTz = process.env.TZ;
  process.env.TZ = "Europe/London"; // Node re-reads TZ on assignment
});
afterAll(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

describe("C19 inputs", () => {
  const file = path.join(SHARED_DIR, "cases/inputs/C19-dst-expectations.json");
  it.skipIf(!existsSync(file))("match the cases these tests use", () => {
    const spec = JSON.parse(readFileSync(file, "utf8")) as { cases: Case[] };
    expect(spec.cases.map(({ id, cron: c, timezone, window_utc, expect_utc, expect_count }) => ({ id, cron: c, timezone, window_utc, expect_utc, expect_count }))).toEqual(
      CASES.map((c) => ({ ...c, expect_utc: c.expect_utc, expect_count: c.expect_count })),
    );
  });
});

describe("C19 nextFireTimes, process TZ = Europe/London", () => {
  it("the process zone really is Europe/London (BST in July, GMT in January)", () => {
    expect(new Date("2024-07-01T12:00:00Z").getTimezoneOffset()).toBe(-60);
    expect(new Date("2024-01-01T12:00:00Z").getTimezoneOffset()).toBe(0);
    expect(Intl.DateTimeFormat().resolvedOptions().timeZone).toBe("Europe/London");
  });

  for (const id of ["C19-a", "C19-b", "C19-c", "C19-f"]) {
    it(`${id}: ${byId(id).cron} in ${byId(id).timezone} fires exactly at ${byId(id).expect_utc!.join(", ")}`, () => {
      const c = byId(id);
      expect(iso(fireTimesBetween(c.cron, c.timezone, new Date(c.window_utc[0]), new Date(c.window_utc[1])))).toEqual(c.expect_utc);
    });
  }

  it("C19-d: hourly London on 2024-10-27 fires 25 times, 3600 s apart, 01:00 local twice", () => {
    const c = byId("C19-d");
    const got = fireTimesBetween(c.cron, c.timezone, new Date(c.window_utc[0]), new Date(c.window_utc[1]));
    expect(got).toHaveLength(25);
    expect(iso(got)).toEqual(hourly("2024-10-26T23:00:00Z", "2024-10-28T00:00:00Z"));
    expect(got.slice(1).map((d, i) => (d.getTime() - got[i].getTime()) / 1000)).toEqual(Array(24).fill(3600));
    expect(got.slice(1, 3).map((d) => formatInZone(d, "Europe/London"))).toEqual(["2024-10-27T01:00:00+01:00", "2024-10-27T01:00:00+00:00"]);
  });

  it("C19-e: hourly London on 2024-03-31 fires 23 times, 3600 s apart, no 01:00 local", () => {
    const c = byId("C19-e");
    const got = fireTimesBetween(c.cron, c.timezone, new Date(c.window_utc[0]), new Date(c.window_utc[1]));
    expect(got).toHaveLength(23);
    expect(iso(got)).toEqual(hourly("2024-03-31T00:00:00Z", "2024-03-31T23:00:00Z"));
    expect(got.slice(1).map((d, i) => (d.getTime() - got[i].getTime()) / 1000)).toEqual(Array(22).fill(3600));
    expect(got.slice(0, 2).map((d) => formatInZone(d, "Europe/London"))).toEqual(["2024-03-31T00:00:00+00:00", "2024-03-31T02:00:00+01:00"]);
  });

  it("does not depend on the process zone", () => {
    const all = () => CASES.map((c) => iso(fireTimesBetween(c.cron, c.timezone, new Date(c.window_utc[0]), new Date(c.window_utc[1]))));
    const london = all();
    try {
      process.env.TZ = "America/New_York";
      expect(all()).toEqual(london);
      process.env.TZ = "Asia/Tokyo";
      expect(all()).toEqual(london);
    } finally {
      process.env.TZ = "Europe/London";
    }
  });

  it("nextFireTimes is strictly after its start", () => {
    expect(iso(nextFireTimes("30 1 * * *", "Europe/London", new Date("2024-10-27T00:30:00Z"), 2))).toEqual(["2024-10-28T01:30:00Z", "2024-10-29T01:30:00Z"]);
    expect(iso(nextFireTimes("30 1 * * *", "Europe/London", new Date("2024-10-27T00:29:59.999Z"), 1))).toEqual(["2024-10-27T00:30:00Z"]);
  });

  it("a fixed-time job in the spring-forward gap runs once, when the clocks change (Vixie cron); a wildcard one skips it", () => {
    expect(iso(nextFireTimes("30 1 * * *", "Europe/London", new Date("2024-03-30T12:00:00Z"), 2))).toEqual(["2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"]);
    expect(iso(nextFireTimes("30 2 * * *", "America/New_York", new Date("2024-03-09T12:00:00Z"), 2))).toEqual(["2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"]);
    expect(iso(fireTimesBetween("*/30 * * * *", "Europe/London", new Date("2024-03-31T00:00:00Z"), new Date("2024-03-31T02:00:00Z")))).toEqual([
      "2024-03-31T00:00:00Z",
      "2024-03-31T00:30:00Z",
      "2024-03-31T01:00:00Z",
      "2024-03-31T01:30:00Z",
    ]);
  });
});

describe("C19 the scheduler fires at those instants (injected clock)", () => {
  for (const id of ["C19-d", "C19-e", "C19-f"]) {
    it(`${id}: runs start exactly at the computed instants`, async () => {
      const c = byId(id);
      const clock = new VirtualClock(ms(c.window_utc[0]) - 1000);
      const rec = recorder(0);
      const schedule = startSchedule({ cron: c.cron, timezone: c.timezone, clock, onEvent: rec.onEvent, job: async () => {} });
      await clock.advanceTo(ms(c.window_utc[1]) - 1);
      await schedule.stop();
      const expected = c.expect_utc ?? iso(fireTimesBetween(c.cron, c.timezone, new Date(c.window_utc[0]), new Date(c.window_utc[1])));
      const started = rec.events.filter((e) => e.type === "started");
      expect(iso(started.map((e) => e.at))).toEqual(expected);
      expect(iso(started.map((e) => e.scheduledAt))).toEqual(expected);
      if (c.expect_count) expect(started).toHaveLength(c.expect_count);
      expect(rec.events.filter((e) => e.type === "missed")).toEqual([]);
    });
  }
});

describe("C19 node-cron 4.6.0 on the same cases (why we compute fire times ourselves)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** node-cron's getNextRuns counts from "now": fake Date only, one second before the window. */
  function nodeCronFires(c: Case): string[] {
    vi.useFakeTimers({ toFake: ["Date"], now: ms(c.window_utc[0]) - 1000 });
    const silent = { info() {}, warn() {}, error() {}, debug() {} };
    const task = cron.createTask(c.cron, () => {}, { timezone: c.timezone, logger: silent });
    try {
      return iso(task.getNextRuns(40).filter((d) => d.getTime() < ms(c.window_utc[1])));
    } finally {
      void task.destroy();
      vi.useRealTimers();
    }
  }

  it("gets C19-a, b, c and e right", () => {
    for (const id of ["C19-a", "C19-b", "C19-c"]) expect(nodeCronFires(byId(id))).toEqual(byId(id).expect_utc);
    expect(nodeCronFires(byId("C19-e"))).toEqual(hourly("2024-03-31T00:00:00Z", "2024-03-31T23:00:00Z"));
  });

  it("gets C19-d wrong: 24 fires, the first 01:00 local (00:00Z) is skipped", () => {
    const got = nodeCronFires(byId("C19-d"));
    expect(got).toHaveLength(24);
    expect(got).not.toContain("2024-10-27T00:00:00Z");
    expect(got.slice(0, 3)).toEqual(["2024-10-26T23:00:00Z", "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z"]);
  });

  it("gets C19-f wrong: 01:30 London on 27 Oct fires at the second occurrence, 01:30Z, not 00:30Z", () => {
    expect(nodeCronFires(byId("C19-f"))).toEqual(["2024-10-27T01:30:00Z", "2024-10-28T01:30:00Z"]);
  });
});
