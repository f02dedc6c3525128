/**
 * Databases for tests: a throwaway in-memory PGlite, or a fresh database on the real server
 * named by TEST_DATABASE_URL (set by .ci/run). Tests that need the server use `describePg`,
 * which skips with a message when TEST_DATABASE_URL is unset.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { describe } from "vitest";
import { openDatabase, type OpenedDatabase } from "../../src/db/client";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL?.trim() || undefined;

export function memoryDb(timezone = "UTC"): Promise<OpenedDatabase> {
  return openDatabase({ dataDir: "memory://", timezone });
}

/** describe() that runs only when a real Postgres is configured, and says why it skipped. */
export const describePg: typeof describe = ((name: string, ...rest: unknown[]) => {
  if (!TEST_DATABASE_URL) {
    const why = `${name} [skipped: set TEST_DATABASE_URL to a Postgres URL to run it; .ci/run does]`;
    console.warn(why);
    return (describe.skip as (...a: unknown[]) => unknown)(why, ...rest);
  }
  return (describe as (...a: unknown[]) => unknown)(name, ...rest);
}) as typeof describe;

/** Creates an empty database on the test server; returns its URL and a function that drops it. */
export async function createPgDatabase(prefix = "nl_test"): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error("TEST_DATABASE_URL is not set");
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** Opens a migrated database on a fresh server database. */
export async function freshPgDb(timezone = "UTC"): Promise<OpenedDatabase & { drop(): Promise<void> }> {
  const created = await createPgDatabase();
  const opened = await openDatabase({ databaseUrl: created.url, dataDir: "unused", timezone });
  return {
    ...opened,
    drop: async () => {
      await opened.close();
      await created.drop();
    },
  };
}

/** ../shared, when present (it holds the real feeds and the cases). */
import { existsSync } from "node:fs";
import path from "node:path";
export const SHARED_DIR = path.resolve(__dirname, "../../../shared");
export const HAS_SHARED = existsSync(path.join(SHARED_DIR, "feeds", "MANIFEST.md"));
export const describeShared: typeof describe = ((name: string, ...rest: unknown[]) => {
  if (!HAS_SHARED) {
    const why = `${name} [skipped: ../shared is absent; it holds the real feeds and cases]`;
    console.warn(why);
    return (describe.skip as (...a: unknown[]) => unknown)(why, ...rest);
  }
  return (describe as (...a: unknown[]) => unknown)(name, ...rest);
}) as typeof describe;
