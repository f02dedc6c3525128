/**
 * Never two runs at once across processes: two schedulers sharing one lock resource (memory,
 * lock file, Postgres advisory lock) never run concurrently; and the locks themselves.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fileLock, memoryLock, pgAdvisoryLock, startSchedule, type RunLock } from "../../src/scheduler";
import { TEST_DATABASE_URL, describePg } from "../helpers/db";
import { concurrency, recorder } from "./helpers/record";
import { flushMicrotasks, VirtualClock } from "./helpers/virtual-clock";

const T0 = Date.UTC(2024, 0, 1, 0, 0, 0);
const ROOT = path.resolve(__dirname, "../..");

/** Counts lock calls under way, so the virtual clock can wait for real I/O (Postgres). */
function tracked(lock: RunLock, inflight: { n: number }): RunLock {
  const wrap =
    <T>(fn: () => Promise<T>) =>
    async () => {
      inflight.n++;
      try {
        return await fn();
      } finally {
        inflight.n--;
      }
    };
  return { description: lock.description, tryAcquire: wrap(() => lock.tryAcquire()), release: wrap(() => lock.release()) };
}

function settleFor(inflight: { n: number }) {
  return async () => {
    for (;;) {
      await flushMicrotasks();
      if (inflight.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
}

interface PairResult {
  a: ReturnType<typeof recorder>;
  b: ReturnType<typeof recorder>;
  maxConcurrent: number;
}

/** Two schedulers, A made first (so at equal instants A's tick comes first), one lock resource. */
async function runPair(
  lockA: RunLock,
  lockB: RunLock,
  a: { cron: string; jobSeconds: number },
  b: { cron: string; jobSeconds: number },
): Promise<PairResult> {
  const inflight = { n: 0 };
  const clock = new VirtualClock(T0 - 500, { settle: settleFor(inflight) });
  const runs = concurrency();
  const recA = recorder(T0);
  const recB = recorder(T0);
  const make = (lock: RunLock, rec: ReturnType<typeof recorder>, o: { cron: string; jobSeconds: number }) =>
    startSchedule({
      cron: o.cron,
      timezone: "UTC",
      clock,
      lock: tracked(lock, inflight),
      onEvent: rec.onEvent,
      job: async () => {
        runs.enter();
        try {
          await clock.sleep(o.jobSeconds * 1000);
        } finally {
          runs.leave();
        }
      },
    });
  const sa = make(lockA, recA, a);
  const sb = make(lockB, recB, b);
  await clock.advanceTo(T0 + 59_000);
  await Promise.all([sa.stop(), sb.stop()]);
  return { a: recA, b: recB, maxConcurrent: runs.max };
}

/** The same two scenarios for every kind of lock. */
function pairScenarios(makeLocks: () => Promise<[RunLock, RunLock]> | [RunLock, RunLock]) {
  it("take turns: A every 20 s and B every 10 s, 5 s jobs: A at 0, 20, 40; B at 10, 30, 50", async () => {
    const [la, lb] = await makeLocks();
    const r = await runPair(la, lb, { cron: "*/20 * * * * *", jobSeconds: 5 }, { cron: "*/10 * * * * *", jobSeconds: 5 });
    expect(r.a.at("started")).toEqual([0, 20, 40]);
    expect(r.b.at("started")).toEqual([10, 30, 50]);
    expect(r.b.slots("skipped-locked")).toEqual([0, 20, 40]);
    expect(r.a.slots("skipped-locked")).toEqual([]);
    expect(r.maxConcurrent).toBe(1);
  });

  it("long jobs: both every 10 s, 15 s jobs: only A runs (0, 20, 40), B is locked out at every tick", async () => {
    const [la, lb] = await makeLocks();
    const r = await runPair(la, lb, { cron: "*/10 * * * * *", jobSeconds: 15 }, { cron: "*/10 * * * * *", jobSeconds: 15 });
    expect(r.a.at("started")).toEqual([0, 20, 40]);
    expect(r.a.slots("skipped-overlap")).toEqual([10, 30, 50]);
    expect(r.b.at("started")).toEqual([]);
    expect(r.b.slots("skipped-locked")).toEqual([0, 10, 20, 30, 40, 50]);
    expect(r.maxConcurrent).toBe(1);
  });
}

describe("two schedulers sharing a memory lock", () => {
  pairScenarios(() => {
    const shared = memoryLock();
    return [shared, shared];
  });
});

describe("lock failures", () => {
  it("a lock that cannot be checked skips the run (fail closed) and the schedule goes on; a failed release is logged", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    const lines: string[] = [];
    let calls = 0;
    const flaky: RunLock = {
      description: "flaky lock",
      tryAcquire: async () => {
        calls++;
        if (calls === 1) throw new Error("connection refused");
        return true;
      },
      release: async () => {
        throw new Error("connection reset");
      },
    };
    const schedule = startSchedule({
      cron: "*/10 * * * * *",
      timezone: "UTC",
      clock,
      lock: flaky,
      onEvent: rec.onEvent,
      logger: (l) => lines.push(l),
      job: async () => {},
    });
    await clock.advanceTo(T0 + 19_000);
    await schedule.stop();
    expect(rec.events.map((e) => `${e.type}@${(e.at.getTime() - T0) / 1000}`)).toEqual(["skipped-locked@0", "started@10", "finished@10"]);
    expect(lines).toEqual([
      "schedule: run for 2024-01-01T00:00:00+00:00 skipped: could not check the flaky lock: connection refused",
      "schedule: run for 2024-01-01T00:00:10+00:00 started",
      "schedule: run for 2024-01-01T00:00:10+00:00 finished after 0.0 s",
      "schedule: could not release the flaky lock: connection reset",
    ]);
  });

  it("stop() during the lock wait starts no run and gives the lock back", async () => {
    const clock = new VirtualClock(T0 - 500);
    const rec = recorder(T0);
    let releases = 0;
    let grant: ((ok: boolean) => void) | undefined;
    const slow: RunLock = {
      description: "slow lock",
      tryAcquire: () => new Promise<boolean>((resolve) => (grant = resolve)),
      release: async () => {
        releases++;
      },
    };
    const job = vi.fn(async () => {});
    const schedule = startSchedule({ cron: "*/10 * * * * *", timezone: "UTC", clock, lock: slow, onEvent: rec.onEvent, job });
    await clock.advanceTo(T0);
    expect(schedule.isRunning()).toBe(true);
    const stopping = schedule.stop();
    grant!(true);
    await stopping;
    expect(job).not.toHaveBeenCalled();
    expect(releases).toBe(1);
    expect(rec.events).toEqual([]);
  });
});

describe("file lock", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "nl-lock-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe("two schedulers, each with its own lock object on one folder (as two processes)", () => {
    pairScenarios(() => [fileLock(dir), fileLock(dir)]);
  });

  it("holds an exclusive file with the holder's pid; a second holder is refused until release", async () => {
    const a = fileLock(dir);
    const b = fileLock(dir);
    expect(await a.tryAcquire()).toBe(true);
    const content = JSON.parse(readFileSync(a.file, "utf8"));
    expect(content).toMatchObject({ pid: process.pid, host: hostname() });
    expect(await a.tryAcquire()).toBe(false); // not re-entrant
    expect(await b.tryAcquire()).toBe(false);
    await b.release(); // not held by b: leaves a's lock alone
    expect(existsSync(a.file)).toBe(true);
    await a.release();
    expect(existsSync(a.file)).toBe(false);
    expect(await b.tryAcquire()).toBe(true);
    await b.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes over a stale lock whose pid is dead, and leaves nothing aside", async () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    writeFileSync(path.join(dir, "schedule.lock"), JSON.stringify({ pid: dead, host: hostname(), token: "old", acquiredAt: "2024-01-01T00:00:00Z" }));
    const lock = fileLock(dir);
    expect(await lock.tryAcquire()).toBe(true);
    expect(JSON.parse(readFileSync(lock.file, "utf8")).pid).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(["schedule.lock"]);
    await lock.release();
  });

  it("does not take over a lock of a live process, of another host, or one it cannot read", async () => {
    const file = path.join(dir, "schedule.lock");
    const lock = fileLock(dir);
    writeFileSync(file, JSON.stringify({ pid: process.ppid, host: hostname(), token: "x", acquiredAt: "" }));
    expect(await lock.tryAcquire()).toBe(false);
    writeFileSync(file, JSON.stringify({ pid: 999_999_999, host: `not-${hostname()}`, token: "x", acquiredAt: "" }));
    expect(await lock.tryAcquire()).toBe(false);
    writeFileSync(file, "{ half-writ");
    expect(await lock.tryAcquire()).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("{ half-writ");
  });

  it("uses the injected liveness check", async () => {
    writeFileSync(path.join(dir, "schedule.lock"), JSON.stringify({ pid: process.ppid, host: hostname(), token: "x", acquiredAt: "" }));
    expect(await fileLock(dir, { isAlive: () => true }).tryAcquire()).toBe(false);
    expect(await fileLock(dir, { isAlive: () => false }).tryAcquire()).toBe(true);
  });

  describe("against a real second process", () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      child?.kill("SIGKILL");
      child = undefined;
    });

    it("is refused while the other process holds it and taken over once that process is killed", async () => {
      child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "test/scheduler/fixtures/hold-file-lock.ts"), dir], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      const said = await new Promise<string>((resolve, reject) => {
        let out = "";
        child!.stdout!.on("data", (chunk) => {
          out += chunk;
          if (out.includes("\n")) resolve(out.trim());
        });
        child!.on("exit", (code) => reject(new Error(`holder exited with ${code}`)));
      });
      expect(said).toBe("held");
      const lock = fileLock(dir);
      expect(JSON.parse(readFileSync(lock.file, "utf8")).pid).toBe(child.pid);
      expect(await lock.tryAcquire()).toBe(false);
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGKILL"); // dies holding the lock: it never releases
      await exited;
      expect(await lock.tryAcquire()).toBe(true);
      expect(JSON.parse(readFileSync(lock.file, "utf8")).pid).toBe(process.pid);
      await lock.release();
    });
  });
});

describePg("Postgres advisory lock (TEST_DATABASE_URL)", () => {
  const opened: { close(): Promise<void> }[] = [];
  const key = () => BigInt(randomInt(1, 2 ** 47)) + 9_000_000_000_000n; // away from the app's keys
  const make = (k: bigint) => {
    const lock = pgAdvisoryLock(TEST_DATABASE_URL!, k);
    opened.push(lock);
    return lock;
  };
  afterAll(async () => {
    await Promise.all(opened.map((l) => l.close()));
  });

  it("two connections exclude each other; the holder's second try is refused too", async () => {
    const k = key();
    const a = make(k);
    const b = make(k);
    expect(await a.tryAcquire()).toBe(true);
    expect(await b.tryAcquire()).toBe(false);
    expect(await a.tryAcquire()).toBe(false); // no silent re-entry on the same session
    await a.release();
    expect(await b.tryAcquire()).toBe(true);
    expect(await a.tryAcquire()).toBe(false);
    await b.close(); // close releases
    expect(await a.tryAcquire()).toBe(true);
    await a.release();
  });

  describe("two schedulers, each with its own advisory-lock connection (as two processes)", () => {
    pairScenarios(() => {
      const k = key();
      return [make(k), make(k)];
    });
  });
});
