/**
 * Cross-process run locks: at most one briefing runs at a time across every scheduler process
 * that shares a database. The scheduler takes the lock for each run and gives it back after.
 *
 * - pgAdvisoryLock: pg_try_advisory_lock on one dedicated postgres.js connection (max 1, never
 *   recycled: postgres.js closes a pooled connection after 30-60 min by default, which would
 *   silently drop a session lock in the middle of a run).
 * - fileLock: for the embedded database, an exclusive lock file in the data folder holding the
 *   holder's pid; a lock whose pid is dead (on this host) is stale and is taken over.
 * - memoryLock: one process only (tests, memory:// databases).
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import postgres from "postgres";

export interface RunLock {
  /** True when this caller now holds the lock; false when someone else does. Never waits. */
  tryAcquire(): Promise<boolean>;
  /** Gives the lock back (a no-op when not held). */
  release(): Promise<void>;
  /** Frees resources (the database connection); releases first when held. */
  close?(): Promise<void>;
  /** For messages. */
  readonly description: string;
}

/** The advisory-lock key for briefing runs (next to the migration lock in src/db/client.ts). */
export const BRIEFING_RUN_LOCK_KEY = 7_321_004_418n;

/**
 * The advisory-lock key a run holds on Postgres for as long as its process lives: a run that is
 * "running" while nobody holds its key is one whose process died (see markDeadRuns).
 */
export function runLivenessKey(runId: string): bigint {
  return BigInt(`0x${createHash("sha256").update(`newsledger_run:${runId}`).digest("hex").slice(0, 15)}`);
}

/** Serialises calls on one lock object, so two callers sharing it cannot both win. */
function serial() {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };
}

// ---------------------------------------------------------------------------------------------

export function memoryLock(): RunLock {
  let held = false;
  return {
    description: "in-process lock",
    async tryAcquire() {
      if (held) return false;
      held = true;
      return true;
    },
    async release() {
      held = false;
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface PgAdvisoryLock extends RunLock {
  close(): Promise<void>;
}

/**
 * A session-level advisory lock on a connection of its own. Each scheduler process makes one;
 * two of them on the same database and key exclude each other. (Advisory locks are re-entrant
 * within a session, so the object also remembers that it holds the lock: a second tryAcquire on
 * the same object answers false instead of stacking the lock.)
 */
export function pgAdvisoryLock(url: string, key: bigint | number = BRIEFING_RUN_LOCK_KEY): PgAdvisoryLock {
  const keyText = BigInt(key).toString();
  const sql = postgres(url, {
    max: 1,
    max_lifetime: null,
    idle_timeout: 0,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "newsledger-scheduler-lock" },
  });
  const run = serial();
  let held = false;
  let backendPid: number | undefined;
  let closed = false;
  const release = () =>
    run(async () => {
      if (!held) return;
      held = false;
      const rows = await sql<{ ok: boolean; pid: number }[]>`
        select pg_advisory_unlock(${keyText}::bigint) as ok, pg_backend_pid() as pid`;
      const row = rows[0];
      if (!row?.ok || row.pid !== backendPid) {
        // The connection was replaced while the lock was held: the server dropped the lock then.
        throw new Error(
          `advisory lock ${keyText} was not held at release (connection ${backendPid} replaced by ${row?.pid}); ` +
            `another scheduler may have run at the same time`,
        );
      }
    });
  return {
    description: `Postgres advisory lock ${keyText}`,
    tryAcquire: () =>
      run(async () => {
        if (closed) throw new Error("the advisory lock connection is closed");
        if (held) return false;
        const rows = await sql<{ ok: boolean; pid: number }[]>`
          select pg_try_advisory_lock(${keyText}::bigint) as ok, pg_backend_pid() as pid`;
        held = rows[0]?.ok === true;
        backendPid = held ? rows[0].pid : undefined;
        return held;
      }),
    release,
    async close() {
      if (closed) return;
      try {
        await release();
      } finally {
        closed = true;
        await sql.end({ timeout: 5 });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface FileLockOptions {
  /** File name inside the folder; default "schedule.lock". */
  name?: string;
  /** Is this pid alive? Injected by tests; default process.kill(pid, 0). */
  isAlive?: (pid: number) => boolean;
}

interface LockFileContent {
  pid: number;
  host: string;
  token: string;
  acquiredAt: string;
}

export function pidIsAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readLock(file: string): { text: string; content?: LockFileContent } | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const content = JSON.parse(text) as LockFileContent;
    return { text, content };
  } catch {
    return { text };
  }
}

/**
 * An exclusive lock file (created with O_EXCL) in `dir`. Holds {pid, host, token, acquiredAt}.
 * A lock file from this host whose pid is dead is stale: it is moved aside atomically (rename)
 * and checked to be the very file judged stale before it is deleted, and a fresh lock moved by
 * mistake is put back; this narrows, but (without kernel locks) cannot fully close, the window
 * in which two processes breaking the same stale lock at the same instant both win. A lock file
 * from another host is never judged stale.
 * A half-written or unreadable lock file counts as held unless its writer's pid is known dead.
 */
export function fileLock(dir: string, options: FileLockOptions = {}): RunLock & { readonly file: string } {
  const file = path.join(dir, options.name ?? "schedule.lock");
  const isAlive = options.isAlive ?? pidIsAlive;
  const host = hostname();
  const run = serial();
  let token: string | undefined;

  function tryCreate(): boolean {
    mkdirSync(dir, { recursive: true });
    const mine: LockFileContent = {
      pid: process.pid,
      host,
      token: randomBytes(8).toString("hex"),
      acquiredAt: new Date().toISOString(),
    };
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    try {
      writeSync(fd, `${JSON.stringify(mine)}\n`);
    } finally {
      closeSync(fd);
    }
    token = mine.token;
    return true;
  }

  function isStale(seen: { content?: LockFileContent }): boolean {
    const c = seen.content;
    if (!c || typeof c.pid !== "number") return false;
    if (c.host !== host) return false;
    return !isAlive(c.pid);
  }

  /** Moves a stale lock aside; true when the file we judged stale is the one removed. */
  function breakStale(seenText: string): boolean {
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return true; // someone removed it
      throw err;
    }
    let movedText: string | undefined;
    try {
      movedText = readFileSync(aside, "utf8");
    } catch {
      movedText = undefined;
    }
    if (movedText === seenText) {
      unlinkSync(aside);
      return true;
    }
    // We moved a fresh lock someone else had just taken: put it back, unless yet another
    // process holds the name by now (then theirs stands and the moved one is dropped).
    try {
      linkSync(aside, file);
    } catch {
      /* the name is taken again */
    }
    try {
      unlinkSync(aside);
    } catch {
      /* gone */
    }
    return false;
  }

  return {
    file,
    description: `lock file ${file}`,
    tryAcquire: () =>
      run(async () => {
        if (token) return false; // held by this object already
        if (tryCreate()) return true;
        const seen = readLock(file);
        if (!seen) return tryCreate(); // released between our attempts
        if (!isStale(seen)) return false;
        if (!breakStale(seen.text)) return false;
        return tryCreate();
      }),
    release: () =>
      run(async () => {
        if (!token) return;
        const mine = token;
        token = undefined;
        const seen = readLock(file);
        if (seen?.content?.token === mine) {
          try {
            unlinkSync(file);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
          }
        }
      }),
  };
}
