/**
 * `npm run schedule`: in-process with fakes (virtual clock, fake database and briefing), and
 * as a real process (spawned, stopped with SIGTERM).
 */
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { OpenedDatabase } from "../../src/db/client";
import { runScheduleCli, type ScheduleCliDeps, type ScheduledRunResult } from "../../src/scheduler/cli";
import { VirtualClock } from "./helpers/virtual-clock";

const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const ROOT = path.resolve(__dirname, "../..");

function harness(env: Record<string, string>, briefing: (n: number) => Promise<ScheduledRunResult>) {
  const clock = new VirtualClock(T0 - 500);
  const out: string[] = [];
  const err: string[] = [];
  const signals = new EventEmitter();
  const exits: number[] = [];
  const close = vi.fn(async () => {});
  const database = { kind: "pglite", location: "memory://", db: {}, close } as unknown as OpenedDatabase;
  const openDatabase = vi.fn(async () => database);
  let n = 0;
  const runBriefing = vi.fn(async (deps: { log: (line: string) => void }, options: { trigger: "schedule" }) => {
    expect(options).toEqual({ trigger: "schedule" });
    deps.log(`briefing ${n + 1} log line`);
    return briefing(++n);
  });
  const deps: ScheduleCliDeps = {
    env: { NEWSLEDGER_DATA_DIR: "memory://", ...env },
    openDatabase,
    runBriefing,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    signals: signals as unknown as ScheduleCliDeps["signals"],
    exit: (c) => exits.push(c),
    clock,
  };
  let code: number | undefined;
  const done = runScheduleCli(deps).then((c) => {
    code = c;
    return c;
  });
  return { clock, out, err, signals, exits, close, openDatabase, runBriefing, done, code: () => code };
}

describe("schedule CLI (in-process)", () => {
  it("prints the next run, one line per run, survives failing runs, and on SIGTERM waits for the running one, closes the database, exits 0", async () => {
    const h = harness({ BRIEFING_CRON: "*/10 * * * * *", BRIEFING_TZ: "Europe/Berlin" }, async (n) => {
      if (n === 1) throw new Error("feeds unreachable");
      if (n === 2) return { runId: "run-2", status: "failed", exitCode: 1 };
      await h.clock.sleep(15_000);
      return { runId: `run-${n}`, status: "succeeded", exitCode: 0 };
    });
    await h.clock.advanceTo(T0 - 400);
    expect(h.out).toEqual(['newsledger schedule: cron "*/10 * * * * *" in Europe/Berlin; next run 2024-01-01T01:00:00+01:00']);
    expect(h.openDatabase).toHaveBeenCalledWith({ databaseUrl: undefined, dataDir: "memory://", timezone: "Europe/Berlin" });

    await h.clock.advanceTo(T0 + 25_000); // runs at 0 (throws), 10 (failed), 20 (15 s, still going)
    h.signals.emit("SIGTERM", "SIGTERM");
    await h.clock.advanceTo(T0 + 30_000);
    expect(h.code()).toBeUndefined(); // still waiting for the run that started at 20
    await h.clock.advanceTo(T0 + 60_000);
    expect(await h.done).toBe(0);

    expect(h.out).toEqual([
      'newsledger schedule: cron "*/10 * * * * *" in Europe/Berlin; next run 2024-01-01T01:00:00+01:00',
      "newsledger schedule: run for 2024-01-01T01:00:00+01:00 failed: feeds unreachable; next run 2024-01-01T01:00:10+01:00",
      "newsledger schedule: run run-2 failed (exit code 1); next run 2024-01-01T01:00:20+01:00",
      "newsledger schedule: SIGTERM received, stopping; waiting for the running briefing to finish (send the signal again to abort)",
      "newsledger schedule: run run-3 succeeded (exit code 0); next run none (stopping)",
      "newsledger schedule: stopped",
    ]);
    expect(h.err).toEqual(["briefing 1 log line", "briefing 2 log line", "briefing 3 log line"]);
    expect(h.runBriefing).toHaveBeenCalledTimes(3);
    expect(h.close).toHaveBeenCalledTimes(1);
    expect(h.exits).toEqual([]);
    expect(h.signals.listenerCount("SIGTERM") + h.signals.listenerCount("SIGINT")).toBe(0);
  });

  it("a second signal aborts at once", async () => {
    const h = harness({ BRIEFING_CRON: "*/10 * * * * *" }, async () => {
      await h.clock.sleep(60_000);
      return { runId: "r", status: "succeeded", exitCode: 0 };
    });
    await h.clock.advanceTo(T0 + 5_000);
    h.signals.emit("SIGTERM", "SIGTERM");
    await h.clock.advanceTo(T0 + 7_000);
    h.signals.emit("SIGINT", "SIGINT");
    expect(h.exits).toEqual([130]);
    expect(h.err.at(-1)).toBe("newsledger schedule: second SIGINT: aborting without waiting for the running briefing");
    await h.clock.advanceTo(T0 + 70_000); // let the fake run end so the test leaves nothing behind
    expect(await h.done).toBe(0);
  });

  it("takes one Ctrl-C delivered several times at once (terminal group, npm, tsx) as one signal", async () => {
    const h = harness({ BRIEFING_CRON: "*/10 * * * * *" }, async () => {
      await h.clock.sleep(20_000);
      return { runId: "r", status: "succeeded", exitCode: 0 };
    });
    await h.clock.advanceTo(T0 + 5_000);
    h.signals.emit("SIGINT", "SIGINT");
    h.signals.emit("SIGINT", "SIGINT");
    h.signals.emit("SIGINT", "SIGINT");
    expect(h.exits).toEqual([]);
    await h.clock.advanceTo(T0 + 30_000);
    expect(await h.done).toBe(0);
    expect(h.out.at(-1)).toBe("newsledger schedule: stopped");
    expect(h.runBriefing).toHaveBeenCalledTimes(1);
  });

  it("SIGINT when idle stops at once with exit 0", async () => {
    const h = harness({ BRIEFING_CRON: "0 7 * * *", BRIEFING_TZ: "UTC" }, async () => ({ runId: "r", status: "succeeded", exitCode: 0 }));
    await h.clock.advanceTo(T0);
    h.signals.emit("SIGINT", "SIGINT");
    expect(await h.done).toBe(0);
    expect(h.out).toEqual([
      'newsledger schedule: cron "0 7 * * *" in UTC; next run 2024-01-01T07:00:00+00:00',
      "newsledger schedule: SIGINT received, stopping",
      "newsledger schedule: stopped",
    ]);
    expect(h.runBriefing).not.toHaveBeenCalled();
    expect(h.close).toHaveBeenCalledTimes(1);
  });

  it.each([
    [{ BRIEFING_CRON: "61 * * * *" }, 'newsledger schedule: BRIEFING_CRON "61 * * * *" is not a valid cron expression: 61 is a invalid expression for minute'],
    [{ BRIEFING_TZ: "Mars/Olympus" }, 'newsledger schedule: bad setting: BRIEFING_TZ: "Mars/Olympus" is not an IANA time zone'],
    [{ NEWSLEDGER_PROVIDER: "nope" }, "newsledger schedule: bad setting: NEWSLEDGER_PROVIDER"],
  ])("bad settings %j exit 2 before opening the database", async (env, message) => {
    const h = harness(env as Record<string, string>, async () => ({ runId: "r", status: "succeeded", exitCode: 0 }));
    expect(await h.done).toBe(2);
    expect(h.err).toHaveLength(1);
    expect(h.err[0].startsWith(message)).toBe(true);
    expect(h.openDatabase).not.toHaveBeenCalled();
    expect(h.out).toEqual([]);
  });
});

describe("schedule CLI (a real process)", () => {
  let dataDir: string | undefined;
  afterEach(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  });

  function spawnCli(env: Record<string, string>) {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, NEWSLEDGER_PROVIDER: "offline" };
    delete childEnv.DATABASE_URL;
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/schedule.ts"], { cwd: ROOT, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    const waitFor = (re: RegExp, ms: number) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; stdout: ${stdout}; stderr: ${stderr}`)), ms);
        const check = () => {
          const m = re.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(m[0]);
          }
        };
        child.stdout.on("data", check);
        exited.then(() => {
          check();
          clearTimeout(timer);
          reject(new Error(`exited before ${re}; stdout: ${stdout}; stderr: ${stderr}`));
        });
      });
    const within = <T>(p: Promise<T>, ms: number, what: string) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms))]);
    return { child, exited, waitFor, within, out: () => stdout, err: () => stderr };
  }

  it("starts, prints the next run, and on SIGTERM exits 0 within a few seconds", async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "nl-schedule-"));
    const cli = spawnCli({ BRIEFING_CRON: "0 0 29 2 *", BRIEFING_TZ: "Europe/Berlin", NEWSLEDGER_DATA_DIR: dataDir });
    try {
      const line = await cli.waitFor(/newsledger schedule: cron "0 0 29 2 \*" in Europe\/Berlin; next run \d{4}-02-29T00:00:00\+01:00\n/, 50_000);
      expect(line).toMatch(/next run/);
      cli.child.kill("SIGTERM");
      const result = await cli.within(cli.exited, 10_000, "exit after SIGTERM");
      expect(result).toEqual({ code: 0, signal: null });
      expect(cli.out().trim().split("\n").slice(-2)).toEqual(["newsledger schedule: SIGTERM received, stopping", "newsledger schedule: stopped"]);
    } finally {
      cli.child.kill("SIGKILL");
    }
  });

  it("exits 2 with the setting named for a bad cron expression", async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), "nl-schedule-"));
    const cli = spawnCli({ BRIEFING_CRON: "61 * * * *", NEWSLEDGER_DATA_DIR: dataDir });
    const result = await cli.within(cli.exited, 50_000, "exit on a bad cron");
    expect(result).toEqual({ code: 2, signal: null });
    expect(cli.err()).toContain('newsledger schedule: BRIEFING_CRON "61 * * * *" is not a valid cron expression: 61 is a invalid expression for minute');
    expect(cli.out()).toBe("");
  });
});
