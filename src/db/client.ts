/**
 * Opens the database on request (nothing connects at import): embedded PGlite in a data folder
 * when no DATABASE_URL is given, a real Postgres through postgres.js when it is. Both get the
 * same schema, migrations and views.
 */
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { ConfigError, type Config } from "../config";
import { fileLock, runLivenessKey } from "./locks";
import { migrateAndVerify, MIGRATIONS_FOLDER, rows } from "./migrate";
import * as schema from "./schema";

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface OpenedDatabase {
  db: Database;
  /** "pglite" or "postgres" */
  kind: "pglite" | "postgres";
  /** Where the data lives, for messages: the folder or the URL without its password. */
  location: string;
  /** The PGlite instance, when embedded (the checkpointer shares it). */
  pglite?: PGlite;
  /** The postgres.js URL, when a server is used. */
  url?: string;
  close(): Promise<void>;
  /** Runs `fn` when the database closes, before the connection ends (for what shares it). */
  onClose(fn: () => Promise<void>): void;
}

/** Adds onClose to an opened database: the hooks run once, newest first, then the connection ends. */
function withCloseHooks(opened: Omit<OpenedDatabase, "onClose">): OpenedDatabase {
  const hooks: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  return {
    ...opened,
    onClose: (fn) => {
      hooks.push(fn);
    },
    close: () =>
      (closing ??= (async () => {
        for (const hook of hooks.reverse()) await hook().catch(() => {});
        await opened.close();
      })()),
  };
}

export interface OpenOptions {
  databaseUrl?: string;
  /** A folder for PGlite, or "memory://" for a throwaway in-memory database. */
  dataDir: string;
  /** The zone the cost views use for calendar days. */
  timezone?: string;
  migrate?: boolean;
  migrationsFolder?: string;
  /** postgres.js pool size. */
  maxConnections?: number;
}

export class DatabaseError extends Error {
  override name = "DatabaseError";
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/** A stable 64-bit key for pg_advisory_lock: concurrent processes migrate one at a time. */
const MIGRATION_LOCK = 7_321_004_417n;

export async function openDatabase(options: OpenOptions): Promise<OpenedDatabase> {
  const folder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
  const tz = options.timezone ?? "UTC";
  if (options.databaseUrl) {
    const url = options.databaseUrl;
    const location = redact(url);
    if (options.migrate !== false) {
      // A dedicated connection holds the lock and runs the migration.
      const admin = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        await admin`select pg_advisory_lock(${MIGRATION_LOCK.toString()}::bigint)`;
        const adminDb = drizzlePostgres({ client: admin, schema }) as unknown as Database;
        await migrateAndVerify(adminDb, (f) => migratePostgres(drizzlePostgres({ client: admin }), { migrationsFolder: f }), folder);
      } catch (cause) {
        await admin.end({ timeout: 1 }).catch(() => {});
        throw wrapConnectError(cause, location);
      }
      await admin.end({ timeout: 5 });
    }
    const client = postgres(url, {
      max: options.maxConnections ?? 10,
      onnotice: () => {},
      connect_timeout: 10,
      connection: { "newsledger.tz": tz, TimeZone: "UTC" },
    });
    const db = drizzlePostgres({ client, schema }) as unknown as Database;
    return withCloseHooks({
      db,
      kind: "postgres",
      location,
      url,
      close: async () => {
        await client.end({ timeout: 5 });
      },
    });
  }

  const memory = options.dataDir === "memory://" || options.dataDir.startsWith("memory://");
  const location = memory ? "memory://" : path.resolve(options.dataDir);
  // PGlite is one process's database: a second process on the same folder corrupts it.
  const lock = memory ? null : fileLock(location, { name: "newsledger.lock" });
  if (lock) {
    try {
      mkdirSync(location, { recursive: true });
    } catch (cause) {
      throw new ConfigError(
        `bad setting: NEWSLEDGER_DATA_DIR: cannot create the folder ${location} (${(cause as NodeJS.ErrnoException).code}); point it at a folder you can write`,
      );
    }
    if (!statSync(location).isDirectory()) {
      throw new ConfigError(`bad setting: NEWSLEDGER_DATA_DIR: ${location} is a file, not a folder`);
    }
    if (!(await lock.tryAcquire())) {
      throw new DatabaseError(
        `another newsledger process is using the embedded database in ${location} (see ${lock.file}); ` +
          `wait for it to finish, or set NEWSLEDGER_DATA_DIR to another folder, or use DATABASE_URL for several processes`,
      );
    }
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(memory ? undefined : location);
  } catch (cause) {
    await lock?.release();
    throw new DatabaseError(
      `cannot open the embedded database in ${location}: ${(cause as Error).message}. ` +
        `Is another newsledger process using it? Point NEWSLEDGER_DATA_DIR elsewhere or set DATABASE_URL.`,
      { cause },
    );
  }
  await pglite.exec(`SET TIME ZONE 'UTC'; SET newsledger.tz = '${tz.replace(/'/g, "''")}'`);
  const db = drizzlePglite({ client: pglite, schema }) as unknown as Database;
  try {
    if (options.migrate !== false) {
      await migrateAndVerify(db, (f) => migratePglite(drizzlePglite({ client: pglite }), { migrationsFolder: f }), folder);
    }
    // Holding the folder's lock, this process is the only one: a run still "running" is one
    // whose process died (killed, crashed) before it could finish.
    if (lock) await markAbandonedRuns(db);
  } catch (cause) {
    await pglite.close().catch(() => {});
    await lock?.release();
    throw cause;
  }
  return withCloseHooks({
    db,
    kind: "pglite",
    location,
    pglite,
    close: async () => {
      await pglite.close();
      await lock?.release();
    },
  });
}

/** Runs left "running" by a process that is gone (all of them, or the ones named) become "failed", saying so. */
export async function markAbandonedRuns(db: Database, ids?: readonly string[]): Promise<number> {
  if (ids && ids.length === 0) return 0;
  const which = ids ? sql` and id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})` : sql``;
  const result = await db.execute(
    sql`update runs set status = 'failed', finished_at = now(),
        error = 'the process ended before the run finished (killed or crashed); its recorded calls are kept'
        where status = 'running'${which} returning id`,
  );
  return Array.isArray(result) ? result.length : ((result as { rows?: unknown[] }).rows?.length ?? 0);
}

/**
 * Postgres, shared by many processes: a run still "running" whose liveness lock (runLivenessKey)
 * nobody holds has lost its process; it is marked failed, so that its reservations are released
 * and its articles taken over. Returns the ids marked.
 */
export async function markDeadRuns(database: OpenedDatabase): Promise<string[]> {
  if (database.kind !== "postgres" || !database.url) return [];
  const running = rows(await database.db.execute(sql`select id from runs where status = 'running'`)).map((r) => String(r.id));
  if (running.length === 0) return [];
  const probe = postgres(database.url, { max: 1, onnotice: () => {}, connection: { application_name: "newsledger-liveness-probe" } });
  const dead: string[] = [];
  try {
    for (const id of running) {
      const key = runLivenessKey(id).toString();
      const [row] = await probe<{ free: boolean }[]>`select pg_try_advisory_lock(${key}::bigint) as free`;
      if (row?.free) {
        dead.push(id);
        await probe`select pg_advisory_unlock(${key}::bigint)`;
      }
    }
  } finally {
    await probe.end({ timeout: 5 });
  }
  await markAbandonedRuns(database.db, dead);
  return dead;
}

/** The database the settings name: Postgres when DATABASE_URL is set, else PGlite in the data folder. */
export function openConfiguredDatabase(config: Pick<Config, "databaseUrl" | "dataDir" | "schedule">): Promise<OpenedDatabase> {
  return openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, timezone: config.schedule.timezone });
}

function wrapConnectError(cause: unknown, location: string): Error {
  if (cause instanceof Error && cause.name === "MigrationError") return cause;
  const err = cause as { code?: string; message?: string };
  if (err?.code === "ECONNREFUSED" || err?.code === "ENOTFOUND" || err?.code === "CONNECT_TIMEOUT") {
    return new DatabaseError(
      `cannot connect to Postgres at ${location} (${err.code}). Is the server running? Unset DATABASE_URL to use the embedded database.`,
      { cause },
    );
  }
  return new DatabaseError(`database error at ${location}: ${err?.message ?? String(cause)}`, { cause });
}

/** Aggregates arrive as numbers on PGlite and strings on postgres.js: always map explicitly. */
export function toInt(value: unknown): number {
  if (value === null || value === undefined) return 0;
  const n = typeof value === "bigint" ? Number(value) : Number(value);
  if (!Number.isFinite(n)) throw new DatabaseError(`expected a number from the database, got ${String(value)}`);
  return n;
}

export { sql };
