/**
 * The briefing scheduler: fires a job on a cron expression in an IANA time zone.
 *
 * - Fire times come from our own nextFireTimes (./cron-time), not node-cron's, which gets the
 *   repeated hour wrong when clocks go back (C19). node-cron validates and parses the expression.
 * - Never two runs at once: an in-process flag (a tick while a run is going is skipped and
 *   reported as `skipped-overlap`) and, when given, a cross-process RunLock taken for each run
 *   (a tick while another process holds it is `skipped-locked`).
 * - A blocked event loop: every tick that went by while the loop was blocked is reported as
 *   `missed`, and at most one catch-up run starts when the loop is free again (C18).
 * - A failing job is reported (`failed`) and the schedule goes on.
 */
import {
  compileCron,
  fireCursor,
  formatInZone,
  nextFireTimesFor,
  type CronSpec,
  type ScheduleLabels,
} from "./cron-time";
import type { RunLock } from "../db/locks";

export {
  compileCron,
  fireTimesBetween,
  formatInZone,
  nextFireTimes,
  ScheduleConfigError,
  validateTimeZone,
  type CronSpec,
  type ScheduleLabels,
} from "./cron-time";
export {
  BRIEFING_RUN_LOCK_KEY,
  fileLock,
  memoryLock,
  pgAdvisoryLock,
  pidIsAlive,
  type FileLockOptions,
  type PgAdvisoryLock,
  type RunLock,
} from "../db/locks";

/** Time and timers; injected by tests. Delays are in ms. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Date.now and setTimeout, looked up at call time (so vi.useFakeTimers applies). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, delayMs) => setTimeout(fn, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type TickReason = "scheduled" | "catch-up";

export interface ScheduleTick {
  /** The cron slot this run is for (for a catch-up run: the latest missed slot). */
  scheduledAt: Date;
  reason: TickReason;
}

export type ScheduleEvent =
  | { type: "started"; scheduledAt: Date; reason: TickReason; at: Date }
  | { type: "finished"; scheduledAt: Date; reason: TickReason; at: Date; durationMs: number }
  | { type: "failed"; scheduledAt: Date; reason: TickReason; at: Date; durationMs: number; error: unknown }
  /** A tick came while this scheduler's previous run was still going. */
  | { type: "skipped-overlap"; scheduledAt: Date; reason: TickReason; at: Date }
  /** Another holder (another process) had the run lock, or the lock could not be checked (error). */
  | { type: "skipped-locked"; scheduledAt: Date; reason: TickReason; at: Date; error?: unknown }
  /** A tick went by while the event loop was blocked. */
  | { type: "missed"; scheduledAt: Date; at: Date; lateMs: number };

export type ScheduleEventType = ScheduleEvent["type"];

export interface StartScheduleOptions {
  cron: string;
  timezone: string;
  job: (tick: ScheduleTick) => Promise<void>;
  lock?: RunLock;
  /** One line per event, without a trailing newline. Default: none. */
  logger?: (line: string) => void;
  /** Every event, as data. */
  onEvent?: (event: ScheduleEvent) => void;
  /** Default: the system clock. */
  clock?: Clock;
  /** A tick that runs this late (ms) still counts as on time; later is `missed`. Default 1000. */
  missedToleranceMs?: number;
  /** Names for error messages; default BRIEFING_CRON / BRIEFING_TZ. */
  labels?: ScheduleLabels;
  /** Prefix of log lines; default "schedule". */
  name?: string;
}

export interface Schedule {
  /** Stops ticking and resolves once a running job (and its lock release) has finished. */
  stop(): Promise<void>;
  /** The next n fire instants from now ([] once stopped). */
  nextRuns(n: number): Date[];
  /** True while a run is in progress (from taking the lock to giving it back). */
  isRunning(): boolean;
  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: ScheduleEvent) => void): () => void;
  readonly cron: string;
  readonly timezone: string;
}

/** Longest single timer: the clock is re-read at least this often (suspend, clock changes). */
const MAX_SLEEP_MS = 60_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Validates both settings; throws ScheduleConfigError (a ConfigError) naming them. */
export function validateSchedule(cron: string, timezone: string, labels?: ScheduleLabels): CronSpec {
  const spec = compileCron(cron, timezone, labels);
  nextFireTimesFor(spec, Date.now(), 1); // throws when it never fires
  return spec;
}

export function startSchedule(options: StartScheduleOptions): Schedule {
  const spec = compileCron(options.cron, options.timezone, options.labels);
  const clock = options.clock ?? systemClock;
  const tolerance = options.missedToleranceMs ?? 1000;
  const name = options.name ?? "schedule";
  const listeners = new Set<(event: ScheduleEvent) => void>();
  if (options.onEvent) listeners.add(options.onEvent);
  const local = (d: Date) => formatInZone(d, spec.timezone);
  const nextAfter = fireCursor(spec);

  let stopped = false;
  let running = false;
  let current: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let timer: unknown;
  let expected = nextAfter(clock.now());

  const log = (line: string) => {
    try {
      options.logger?.(`${name}: ${line}`);
    } catch {
      /* a broken logger must not stop the schedule */
    }
  };

  function emit(event: ScheduleEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        log(`event listener failed: ${message(err)}`);
      }
    }
    const what = "reason" in event && event.reason === "catch-up" ? "catch-up run" : "run";
    switch (event.type) {
      case "started":
        log(`${what} for ${local(event.scheduledAt)} started`);
        break;
      case "finished":
        log(`${what} for ${local(event.scheduledAt)} finished after ${(event.durationMs / 1000).toFixed(1)} s`);
        break;
      case "failed":
        log(`${what} for ${local(event.scheduledAt)} failed after ${(event.durationMs / 1000).toFixed(1)} s: ${message(event.error)}`);
        break;
      case "skipped-overlap":
        log(`${what} for ${local(event.scheduledAt)} skipped: the previous run is still going`);
        break;
      case "skipped-locked":
        log(
          event.error === undefined
            ? `${what} for ${local(event.scheduledAt)} skipped: another scheduler holds the ${options.lock?.description ?? "run lock"}`
            : `${what} for ${local(event.scheduledAt)} skipped: could not check the ${options.lock?.description ?? "run lock"}: ${message(event.error)}`,
        );
        break;
      case "missed":
        log(`missed the tick at ${local(event.scheduledAt)}: the event loop was blocked (${(event.lateMs / 1000).toFixed(1)} s late)`);
        break;
    }
  }

  async function runOnce(scheduledAt: Date, reason: TickReason): Promise<void> {
    const lock = options.lock;
    if (lock) {
      let acquired: boolean;
      try {
        acquired = await lock.tryAcquire();
      } catch (error) {
        emit({ type: "skipped-locked", scheduledAt, reason, at: new Date(clock.now()), error });
        return;
      }
      if (!acquired) {
        emit({ type: "skipped-locked", scheduledAt, reason, at: new Date(clock.now()) });
        return;
      }
    }
    try {
      if (stopped) return; // stop() came while the lock was being taken: no new runs
      const started = clock.now();
      emit({ type: "started", scheduledAt, reason, at: new Date(started) });
      try {
        await Promise.resolve().then(() => options.job({ scheduledAt, reason }));
        const at = clock.now();
        emit({ type: "finished", scheduledAt, reason, at: new Date(at), durationMs: at - started });
      } catch (error) {
        const at = clock.now();
        emit({ type: "failed", scheduledAt, reason, at: new Date(at), durationMs: at - started, error });
      }
    } finally {
      if (lock) {
        try {
          await lock.release();
        } catch (err) {
          log(`could not release the ${lock.description}: ${message(err)}`);
        }
      }
    }
  }

  function trigger(slot: number, reason: TickReason): void {
    const scheduledAt = new Date(slot);
    if (running) {
      emit({ type: "skipped-overlap", scheduledAt, reason, at: new Date(clock.now()) });
      return;
    }
    running = true; // set before the first await: no second run can slip in
    current = runOnce(scheduledAt, reason).finally(() => {
      running = false;
      current = undefined;
    });
  }

  function arm(): void {
    if (stopped) return;
    const delay = Math.min(MAX_SLEEP_MS, Math.max(0, expected - clock.now()));
    timer = clock.setTimer(wake, delay);
  }

  function wake(): void {
    timer = undefined;
    if (stopped) return;
    const now = clock.now();
    if (now < expected) {
      arm(); // a capped sleep, or a timer a little early
      return;
    }
    const missed: number[] = [];
    let due: number | undefined;
    let slot = expected;
    while (slot <= now) {
      const next = nextAfter(slot);
      if (now - slot <= tolerance && now < next) {
        due = slot;
        slot = next;
        break;
      }
      missed.push(slot);
      slot = next;
    }
    expected = slot;
    for (const m of missed) emit({ type: "missed", scheduledAt: new Date(m), at: new Date(now), lateMs: now - m });
    try {
      if (due !== undefined) trigger(due, "scheduled");
      else if (missed.length > 0) trigger(missed[missed.length - 1], "catch-up"); // one, not one per missed tick
    } finally {
      arm();
    }
  }

  arm();

  return {
    cron: spec.expression,
    timezone: spec.timezone,
    stop() {
      if (!stopping) {
        stopped = true;
        if (timer !== undefined) clock.clearTimer(timer);
        timer = undefined;
        stopping = (current ?? Promise.resolve()).then(() => {});
      }
      return stopping;
    },
    nextRuns(n: number) {
      if (stopped) return [];
      return nextFireTimesFor(spec, clock.now(), n).map((t) => new Date(t));
    },
    isRunning: () => running,
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
