/**
 * Applies drizzle/ to a database and proves it did. drizzle's migrator skips every journal entry
 * whose `when` is not newer than the newest applied one and still reports success (case C16), so
 * the journal is checked first and the applied hashes are compared with the files afterwards.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import type { Database } from "./client";

export const MIGRATIONS_FOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle");

export class MigrationError extends Error {
  override name = "MigrationError";
}

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

export function readJournal(folder: string): JournalEntry[] {
  const file = path.join(folder, "meta", "_journal.json");
  let parsed: { entries?: JournalEntry[] };
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new MigrationError(`cannot read the migration journal ${file}: ${(cause as Error).message}`, { cause });
  }
  if (!Array.isArray(parsed.entries)) throw new MigrationError(`${file} has no "entries" array`);
  return parsed.entries;
}

/** The pre-deploy check: `when` must increase strictly and never lie in the future. */
export function checkJournal(entries: JournalEntry[], now: number = Date.now()): string[] {
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    if (entry.when > now) {
      problems.push(`${entry.tag}: its "when" ${new Date(entry.when).toISOString()} lies in the future`);
    }
    const previous = entries[i - 1];
    if (previous && entry.when <= previous.when) {
      problems.push(
        `${entry.tag}: its "when" ${new Date(entry.when).toISOString()} is not after ${previous.tag} (${new Date(previous.when).toISOString()}), so drizzle would skip it`,
      );
    }
  });
  return problems;
}

async function appliedHashes(db: Database): Promise<Set<string>> {
  const exists = await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`);
  const present = rows(exists)[0]?.present;
  if (!present) return new Set();
  const result = await db.execute(sql`select hash from drizzle.__drizzle_migrations`);
  return new Set(rows(result).map((r) => String(r.hash)));
}

/** db.execute returns rows on postgres.js and { rows } on PGlite. */
export function rows(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  return ((result as { rows?: Record<string, unknown>[] }).rows ?? []) as Record<string, unknown>[];
}

/**
 * Migrate, then verify that every migration in the folder is applied; throws MigrationError
 * naming each one that is not. `apply` is the driver's own migrator.
 */
export async function migrateAndVerify(
  db: Database,
  apply: (folder: string) => Promise<void>,
  folder: string = MIGRATIONS_FOLDER,
): Promise<void> {
  const entries = readJournal(folder);
  const files = readMigrationFiles({ migrationsFolder: folder });
  const problems = checkJournal(entries);
  const unapplied = async () => {
    const applied = await appliedHashes(db);
    return entries.filter((_, i) => !applied.has(files[i].hash)).map((e) => e.tag);
  };
  if (problems.length > 0) {
    const pending = await unapplied();
    throw new MigrationError(
      `the migration journal in ${folder} is unsafe: ${problems.join("; ")}` +
        (pending.length ? `. Unapplied: ${pending.join(", ")} (journal ${entries.length} vs applied ${entries.length - pending.length})` : ""),
    );
  }
  await apply(folder);
  const pending = await unapplied();
  if (pending.length > 0) {
    throw new MigrationError(
      `migrations not applied: ${pending.join(", ")} (journal ${entries.length} vs applied ${entries.length - pending.length}). ` +
        `A migration was edited after it ran, or the database holds another project's migrations. ` +
        `Point DATABASE_URL at a database of newsledger's own (createdb newsledger), or, if this one is a scratch copy, ` +
        `drop its schema "drizzle" and newsledger's tables and run again.`,
    );
  }
}
