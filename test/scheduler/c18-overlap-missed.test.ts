/**
 * C18 (node-cron#461, #498, #424, #485): overlapping and missed runs, on the timeline in
 * ../shared/cases/inputs/C18-timeline.json (its numbers are inlined here, and checked against
 * the file when ../shared is present). t is seconds from the first tick.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import cron from "node-cron";
import { afterEach, describe, expect, it, vi } from "vitest";
import { memoryLock, startSchedule } from "../../src/scheduler";
import { SHARED_DIR } from "../helpers/db";
import { concurrency, recorder } from "./helpers/record";
import { VirtualClock } from "./helpers/virtual-clock";

const EVERY_10_S = "*/10 * * * * *";
const DURATIONS_S = [15, 1, 1, 1, 1, 1];
// The first tick: a whole minute, so every-10-seconds lands on it.
const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);

describe("C18 inputs", () => {
  const file = path.join(SHARED_DIR, "cases/inputs/C18-timeline.json");
  it.skipIf(!existsSync(file))("match the numbers these tests use", () => {
    const spec = JSON.parse(readFileSync(file, "utf8"));
    expect(spec.job_durations_s).toEqual(DURATIONS_S);
    expect(spec.overlap_expect.starts_at_t).toEqual([0, 20, 30, 40, 50]);
    expect(spec.overlap_expect.overlap_skips_at_t).toEqual([10]);
    expect(spec.missed_scenario.block_event_loop).toEqual({ from_t: 5, duration_s: 27 });
    expect(spec.missed_scenario.ticks_inside_block).toEqual([10, 20, 30]);
  });
});

describe("C18 overlap: every 10 s, first job 15 s then 1 s", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("starts at t = 0, 20, 30, 40, 50 with one overlap skip at t = 10 (injected clock)", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    const runs = concurrency();
    let i = 0;
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      clock,
      lock: memoryLock(),
      onEvent: rec.onEvent,
      job: async () => {
        runs.enter();
        try {
          await clock.sleep(DURATIONS_S[i++] * 1000);
        } finally {
          runs.leave();
        }
      },
    });
    await clock.advanceTo(T0 + 59_000);
    await schedule.stop();

    expect(rec.at("started")).toEqual([0, 20, 30, 40, 50]);
    expect(rec.slots("started")).toEqual([0, 20, 30, 40, 50]);
    expect(rec.slots("skipped-overlap")).toEqual([10]);
    expect(rec.at("finished")).toEqual([15, 21, 31, 41, 51]);
    expect(rec.events.filter((e) => e.type === "missed" || e.type === "failed" || e.type === "skipped-locked")).toEqual([]);
    expect(runs.max).toBe(1);
    expect(rec.events.map((e) => `${e.type}@${(e.at.getTime() - T0) / 1000}`)).toEqual([
      "started@0",
      "skipped-overlap@10",
      "finished@15",
      "started@20",
      "finished@21",
      "started@30",
      "finished@31",
      "started@40",
      "finished@41",
      "started@50",
      "finished@51",
    ]);
  });

  it("gives the same timeline on the system clock under vi.useFakeTimers", async () => {
    vi.useFakeTimers({ now: T0 - 500 });
    const rec = recorder(T0);
    let i = 0;
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      onEvent: rec.onEvent,
      job: () => new Promise<void>((resolve) => setTimeout(resolve, DURATIONS_S[i++] * 1000)),
    });
    await vi.advanceTimersByTimeAsync(59_500);
    await schedule.stop();
    expect(rec.at("started")).toEqual([0, 20, 30, 40, 50]);
    expect(rec.slots("skipped-overlap")).toEqual([10]);
    expect(rec.at("finished")).toEqual([15, 21, 31, 41, 51]);
  });

  it("is what node-cron 4.6.0's own noOverlap does too (#461/#498 are fixed in this version)", async () => {
    vi.useFakeTimers({ now: T0 - 500 });
    const starts: number[] = [];
    const overlaps: number[] = [];
    const warnings: string[] = [];
    const silent = { info() {}, warn: (m: string) => warnings.push(m), error() {}, debug() {} };
    let i = 0;
    const task = cron.schedule(
      EVERY_10_S,
      async () => {
        starts.push((Date.now() - T0) / 1000);
        await new Promise((resolve) => setTimeout(resolve, DURATIONS_S[i++] * 1000));
      },
      { timezone: "UTC", noOverlap: true, logger: silent },
    );
    task.on("execution:overlap", (ctx) => {
      overlaps.push((ctx.date.getTime() - T0) / 1000);
    });
    await vi.advanceTimersByTimeAsync(59_500);
    await task.destroy();
    expect(starts).toEqual([0, 20, 30, 40, 50]);
    expect(overlaps).toEqual([10]);
    // The skip goes to the logger we passed (silenced), not to the console.
    expect(warnings).toEqual(["task still running, new execution blocked by overlap prevention!"]);
  });

  it("a failing job is reported and the schedule goes on", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    const lines: string[] = [];
    let n = 0;
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      clock,
      onEvent: rec.onEvent,
      logger: (line) => lines.push(line),
      job: async () => {
        n++;
        if (n % 2 === 1) throw new Error(`boom ${n}`);
      },
    });
    await clock.advanceTo(T0 + 39_000);
    await schedule.stop();
    expect(rec.at("started")).toEqual([0, 10, 20, 30]);
    expect(rec.at("failed")).toEqual([0, 20]);
    expect(rec.at("finished")).toEqual([10, 30]);
    expect(lines.filter((l) => l.includes("failed"))).toEqual([
      "schedule: run for 2024-01-01T00:00:00+00:00 failed after 0.0 s: boom 1",
      "schedule: run for 2024-01-01T00:00:20+00:00 failed after 0.0 s: boom 3",
    ]);
  });
});

describe("C18 missed: the event loop is blocked from t = 5 s for 27 s", () => {
  /** Every 10 s, 1 s jobs (or the durations given), a synchronous 27 s block starting at t = 5. */
  async function blockedRun(durations: number[] = []) {
    let i = 0;
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    const lines: string[] = [];
    const runs = concurrency();
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      clock,
      onEvent: rec.onEvent,
      logger: (line) => lines.push(line),
      job: async () => {
        runs.enter();
        try {
          await clock.sleep((durations[i++] ?? 1) * 1000);
        } finally {
          runs.leave();
        }
      },
    });
    clock.setTimer(() => clock.block(27_000), T0 + 5_000 - clock.now());
    await clock.advanceTo(T0 + 59_000);
    await schedule.stop();
    return { rec, lines, runs };
  }

  it("records 3 missed ticks, starts exactly one catch-up right after the block, then runs on schedule from t = 40", async () => {
    const { rec, lines, runs } = await blockedRun();
    expect(rec.slots("missed")).toEqual([10, 20, 30]);
    expect(rec.at("missed")).toEqual([32, 32, 32]);
    expect(rec.at("started")).toEqual([0, 32, 40, 50]);
    expect(rec.reasons("started")).toEqual(["scheduled", "catch-up", "scheduled", "scheduled"]);
    expect(rec.slots("started")).toEqual([0, 30, 40, 50]); // the catch-up stands for the latest missed slot
    expect(rec.events.filter((e) => e.type === "started" && e.reason === "catch-up")).toHaveLength(1);
    expect(rec.at("skipped-overlap")).toEqual([]);
    expect(runs.max).toBe(1);
    expect(lines.filter((l) => l.startsWith("schedule: missed"))).toEqual([
      "schedule: missed the tick at 2024-01-01T00:00:10+00:00: the event loop was blocked (22.0 s late)",
      "schedule: missed the tick at 2024-01-01T00:00:20+00:00: the event loop was blocked (12.0 s late)",
      "schedule: missed the tick at 2024-01-01T00:00:30+00:00: the event loop was blocked (2.0 s late)",
    ]);
  });

  it("starts no catch-up when the blocked run is still going afterwards (never two at once)", async () => {
    const { rec, runs } = await blockedRun(DURATIONS_S); // the t = 0 job (15 s) is due to end inside the block
    expect(rec.slots("missed")).toEqual([10, 20, 30]);
    expect(rec.slots("skipped-overlap")).toEqual([30]);
    expect(rec.reasons("skipped-overlap")).toEqual(["catch-up"]);
    expect(rec.at("started")).toEqual([0, 40, 50]);
    expect(runs.max).toBe(1);
  });

  it("a tick that is late by less than the tolerance still runs on time, with nothing missed", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    const schedule = startSchedule({ cron: EVERY_10_S, timezone: "UTC", clock, onEvent: rec.onEvent, job: async () => {} });
    clock.setTimer(() => clock.block(5_600), T0 + 5_000 - clock.now()); // loop free again at 10.6 s
    await clock.advanceTo(T0 + 29_000);
    await schedule.stop();
    expect(rec.at("started")).toEqual([0, 10.6, 20]);
    expect(rec.slots("started")).toEqual([0, 10, 20]);
    expect(rec.at("missed")).toEqual([]);
  });
});

/**
 * The same block on the real timer code paths, under vi.useFakeTimers: the fake clock's jump()
 * moves time on and fires each overdue timer once, late, as a blocked event loop does. (vitest
 * does not expose jump; the installed fake Date carries the clock.)
 */
function fakeClockJump(ms: number): void {
  const clock = (Date as unknown as { clock?: { jump(ms: number): void } }).clock;
  if (!clock) throw new Error("fake timers are not installed");
  clock.jump(ms);
}

describe("C18 missed, on the system clock under fake timers", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("our scheduler: 3 missed, one catch-up at t = 32, then t = 40, 50", async () => {
    vi.useFakeTimers({ now: T0 - 500 });
    const rec = recorder(T0);
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      onEvent: rec.onEvent,
      job: () => new Promise<void>((resolve) => setTimeout(resolve, 1000)),
    });
    await vi.advanceTimersByTimeAsync(5_500); // t = 5
    fakeClockJump(27_000); // blocked until t = 32
    await vi.advanceTimersByTimeAsync(27_000); // to t = 59
    await schedule.stop();
    expect(rec.slots("missed")).toEqual([10, 20, 30]);
    expect(rec.at("started")).toEqual([0, 32, 40, 50]);
    expect(rec.reasons("started")).toEqual(["scheduled", "catch-up", "scheduled", "scheduled"]);
  });

  it("node-cron 4.6.0 alone: 3 missed and no run at all until t = 40 (the missed runs are dropped, #485)", async () => {
    vi.useFakeTimers({ now: T0 - 500 });
    const starts: number[] = [];
    const missed: number[] = [];
    const silent = { info() {}, warn() {}, error() {}, debug() {} };
    const task = cron.schedule(
      EVERY_10_S,
      async () => {
        starts.push((Date.now() - T0) / 1000);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      },
      { timezone: "UTC", noOverlap: true, logger: silent },
    );
    task.on("execution:missed", (ctx) => {
      missed.push((ctx.date.getTime() - T0) / 1000);
    });
    await vi.advanceTimersByTimeAsync(5_500);
    fakeClockJump(27_000);
    await vi.advanceTimersByTimeAsync(27_000);
    await task.destroy();
    expect(missed).toEqual([10, 20, 30]);
    expect(starts).toEqual([0, 40, 50]);
  });
});

describe("stop()", () => {
  it("stops ticking, waits for the running job, and reports nothing afterwards", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    let finished = false;
    const schedule = startSchedule({
      cron: EVERY_10_S,
      timezone: "UTC",
      clock,
      onEvent: rec.onEvent,
      job: async () => {
        await clock.sleep(15_000);
        finished = true;
      },
    });
    await clock.advanceTo(T0 + 5_000);
    expect(schedule.isRunning()).toBe(true);
    let stopped = false;
    const stopping = schedule.stop().then(() => {
      stopped = true;
    });
    expect(schedule.stop()).toBe(schedule.stop()); // idempotent
    await clock.advanceTo(T0 + 14_000);
    expect(stopped).toBe(false);
    await clock.advanceTo(T0 + 60_000);
    await stopping;
    expect(stopped).toBe(true);
    expect(finished).toBe(true);
    expect(schedule.isRunning()).toBe(false);
    expect(schedule.nextRuns(3)).toEqual([]);
    expect(rec.events.map((e) => e.type)).toEqual(["started", "finished"]); // no tick at 10, 20, ...
    expect(clock.pendingTimers()).toBe(0);
  });

  it("nextRuns lists the coming slots", async () => {
    const clock = new VirtualClock(T0 - 500);
    const schedule = startSchedule({ cron: "0 7 * * *", timezone: "Europe/Berlin", clock, job: async () => {} });
    expect(schedule.nextRuns(2).map((d) => d.toISOString())).toEqual(["2024-01-01T06:00:00.000Z", "2024-01-02T06:00:00.000Z"]);
    await schedule.stop();
  });
});
