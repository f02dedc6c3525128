/**
 * The body of `npm run schedule` (src/cli/schedule.ts is the thin entry point), with its
 * dependencies passed in so tests can drive it without a process, a network or real time.
 */
import path from "node:path";
import { ConfigError, loadConfig, type Config } from "../config";
import type { OpenedDatabase, OpenOptions } from "../db/client";
import {
  fileLock,
  formatInZone,
  memoryLock,
  pgAdvisoryLock,
  startSchedule,
  systemClock,
  validateSchedule,
  type Clock,
  type RunLock,
  type Schedule,
} from "./index";

export type StopSignal = "SIGINT" | "SIGTERM";

export interface SignalSource {
  on(event: StopSignal, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: StopSignal, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface ScheduledRunResult {
  runId: string;
  status: string;
  exitCode: number;
}

export interface ScheduleCliDeps {
  env: Record<string, string | undefined>;
  openDatabase: (options: OpenOptions) => Promise<OpenedDatabase>;
  runBriefing: (
    deps: { config: Config; database: OpenedDatabase; log: (line: string) => void },
    options: { trigger: "schedule" },
  ) => Promise<ScheduledRunResult>;
  /** Status lines (stdout). */
  out: (line: string) => void;
  /** Errors and the pipeline's own log (stderr). */
  err: (line: string) => void;
  signals: SignalSource;
  /** Ends the process at once (the second signal). */
  exit: (code: number) => void;
  clock?: Clock;
  /** Default: advisory lock with DATABASE_URL, else a lock file in the data folder. */
  makeLock?: (config: Config) => RunLock;
}

const PREFIX = "newsledger schedule";
/** Signals closer together than this are one Ctrl-C delivered several times. */
export const DUPLICATE_SIGNAL_MS = 1500;
const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export function defaultRunLock(config: Config): RunLock {
  if (config.databaseUrl) return pgAdvisoryLock(config.databaseUrl);
  if (config.dataDir.startsWith("memory://")) return memoryLock();
  return fileLock(path.resolve(config.dataDir));
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs until SIGINT/SIGTERM; resolves to the exit code. */
export async function runScheduleCli(deps: ScheduleCliDeps): Promise<number> {
  const { out, err } = deps;
  let config: Config;
  try {
    config = loadConfig(deps.env);
    validateSchedule(config.schedule.cron, config.schedule.timezone);
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`${PREFIX}: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const { cron, timezone } = config.schedule;

  // Signals from here on: the first stops, a second aborts.
  let signalled: StopSignal | undefined;
  let signalledAt = 0;
  const now = () => (deps.clock ?? systemClock).now();
  let onStop: (() => void) | undefined;
  const stopRequested = new Promise<void>((resolve) => (onStop = resolve));
  let schedule: Schedule | undefined;
  const handler = (signal: NodeJS.Signals) => {
    const sig = signal as StopSignal;
    // Ctrl-C reaches every process of the terminal's group, and npm and tsx pass it on as well:
    // the same keypress arrives two or three times within a moment. Only a later one aborts.
    if (signalled && now() - signalledAt < DUPLICATE_SIGNAL_MS) return;
    if (signalled) {
      err(`${PREFIX}: second ${sig}: aborting without waiting for the running briefing`);
      deps.exit(SIGNAL_EXIT[sig] ?? 1);
      return;
    }
    signalled = sig;
    signalledAt = now();
    const busy = schedule?.isRunning() ?? false;
    out(
      `${PREFIX}: ${sig} received, stopping` +
        (busy ? "; waiting for the running briefing to finish (send the signal again to abort)" : ""),
    );
    onStop?.();
  };
  const signals: StopSignal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) deps.signals.on(s, handler);

  let database: OpenedDatabase | undefined;
  let lock: RunLock | undefined;
  try {
    try {
      database = await deps.openDatabase({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        timezone,
      });
    } catch (e) {
      err(`${PREFIX}: ${text(e)}`);
      return 1;
    }
    if (signalled) return await closeAll(database, undefined);
    lock = (deps.makeLock ?? defaultRunLock)(config);
    const db = database;
    const nextRunText = () => {
      const next = schedule?.nextRuns(1)[0];
      return next ? formatInZone(next, timezone) : "none (stopping)";
    };
    schedule = startSchedule({
      cron,
      timezone,
      lock,
      clock: deps.clock,
      job: async () => {
        const result = await deps.runBriefing({ config, database: db, log: err }, { trigger: "schedule" });
        out(`${PREFIX}: run ${result.runId} ${result.status} (exit code ${result.exitCode}); next run ${nextRunText()}`);
      },
      onEvent: (event) => {
        const when = formatInZone(event.scheduledAt, timezone);
        switch (event.type) {
          case "failed":
            out(`${PREFIX}: run for ${when} failed: ${text(event.error)}; next run ${nextRunText()}`);
            break;
          case "skipped-overlap":
            out(`${PREFIX}: tick ${when} skipped: the previous briefing is still running`);
            break;
          case "skipped-locked":
            out(
              `${PREFIX}: tick ${when} skipped: ` +
                (event.error === undefined
                  ? `another scheduler holds the ${lock?.description}`
                  : `could not check the ${lock?.description}: ${text(event.error)}`),
            );
            break;
          case "missed":
            out(`${PREFIX}: missed the tick at ${when} (the process was blocked); one catch-up run follows`);
            break;
          case "started":
            if (event.reason === "catch-up") out(`${PREFIX}: catch-up run for ${when} started`);
            break;
          case "finished":
            break;
        }
      },
    });
    out(`${PREFIX}: cron "${cron}" in ${timezone}; next run ${nextRunText()}`);
    await stopRequested;
    await schedule.stop();
    return await closeAll(database, lock);
  } finally {
    for (const s of signals) deps.signals.off(s, handler);
  }

  async function closeAll(db: OpenedDatabase, runLock: RunLock | undefined): Promise<number> {
    let code = 0;
    try {
      await runLock?.close?.();
    } catch (e) {
      err(`${PREFIX}: could not close the ${runLock?.description}: ${text(e)}`);
      code = 1;
    }
    try {
      await db.close();
    } catch (e) {
      err(`${PREFIX}: could not close the database: ${text(e)}`);
      code = 1;
    }
    out(`${PREFIX}: stopped`);
    return code;
  }
}
