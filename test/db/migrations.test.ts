/**
 * Case C16 and the migrations themselves: one folder applies to an empty PGlite and to Postgres,
 * gives both the same tables and views, and a journal that drizzle would silently half-apply is
 * refused with the names of what is unapplied.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, OpenedDatabase } from "../../src/db/client";
import { checkJournal, MIGRATIONS_FOLDER, migrateAndVerify, readJournal, rows } from "../../src/db/migrate";
import { describePg, freshPgDb, memoryDb } from "../helpers/db";

/** The migrations of case C16: 0001 carries a 2030 timestamp, so drizzle skips 0002. */
function c16Folder(entries: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nl-c16-"));
  mkdirSync(path.join(dir, "meta"));
  writeFileSync(path.join(dir, "0000_init.sql"), `CREATE TABLE "runs" ("id" serial PRIMARY KEY, "started_at" timestamptz NOT NULL DEFAULT now());`);
  writeFileSync(
    path.join(dir, "0001_llm_calls.sql"),
    `CREATE TABLE "llm_calls" ("id" serial PRIMARY KEY, "run_id" integer NOT NULL REFERENCES "runs"("id"), "node" text NOT NULL, "input_tokens" integer, "output_tokens" integer, "cost_usd" numeric(14,8));`,
  );
  writeFileSync(path.join(dir, "0002_add_cached_tokens.sql"), `ALTER TABLE "llm_calls" ADD COLUMN "cached_input_tokens" integer;`);
  const all = [
    { idx: 0, version: "7", when: 1714000000000, tag: "0000_init", breakpoints: true },
    { idx: 1, version: "7", when: 1893456000000, tag: "0001_llm_calls", breakpoints: true },
    { idx: 2, version: "7", when: 1717200000000, tag: "0002_add_cached_tokens", breakpoints: true },
  ];
  writeFileSync(path.join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries: all.slice(0, entries) }));
  return dir;
}

describe("C16 migration journal", () => {
  it("refuses a journal whose timestamps drizzle would skip, naming what is unapplied", async () => {
    const client = await PGlite.create();
    const db = drizzlePglite({ client }) as unknown as Database;
    await migratePglite(drizzlePglite({ client }), { migrationsFolder: c16Folder(2) });
    const full = c16Folder(3);
    const apply = (f: string) => migratePglite(drizzlePglite({ client }), { migrationsFolder: f });
    await expect(migrateAndVerify(db, apply, full)).rejects.toThrow(/Unapplied: 0002_add_cached_tokens \(journal 3 vs applied 2\)/);
    await expect(migrateAndVerify(db, apply, full)).rejects.toThrow(/0001_llm_calls: its "when" 2030-01-01T00:00:00.000Z lies in the future/);
    await client.close();
  });

  it("shows that drizzle alone reports success and skips the migration", async () => {
    const client = await PGlite.create();
    await migratePglite(drizzlePglite({ client }), { migrationsFolder: c16Folder(2) });
    await migratePglite(drizzlePglite({ client }), { migrationsFolder: c16Folder(3) });
    const cols = (await client.query<{ column_name: string }>(`select column_name from information_schema.columns where table_name = 'llm_calls'`)).rows;
    expect(cols.map((c) => c.column_name)).not.toContain("cached_input_tokens");
    await client.close();
  });

  it("rejects timestamps that do not increase or lie in the future", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(checkJournal([{ idx: 0, when: 10, tag: "a" }, { idx: 1, when: 10, tag: "b" }], now)).toEqual([
      'b: its "when" 1970-01-01T00:00:00.010Z is not after a (1970-01-01T00:00:00.010Z), so drizzle would skip it',
    ]);
    expect(checkJournal([{ idx: 0, when: now + 1, tag: "a" }], now)).toHaveLength(1);
    expect(checkJournal([{ idx: 0, when: 1, tag: "a" }, { idx: 1, when: 2, tag: "b" }], now)).toEqual([]);
  });

  it("passes for the project's own journal", () => {
    const entries = readJournal(MIGRATIONS_FOLDER);
    expect(entries.length).toBeGreaterThanOrEqual(2);
    expect(checkJournal(entries)).toEqual([]);
  });
});

async function describeSchema(db: Database) {
  const tables = rows(
    await db.execute(sql`select table_name, column_name, data_type from information_schema.columns
      where table_schema = 'public' order by table_name, ordinal_position`),
  ).map((r) => `${r.table_name}.${r.column_name}:${r.data_type}`);
  const views = rows(await db.execute(sql`select viewname from pg_views where schemaname = 'public' order by viewname`)).map((r) => String(r.viewname));
  return { tables, views };
}

const EXPECTED_VIEWS = ["call_facts", "daily_costs", "model_costs", "node_costs", "node_prompt_sizes", "retry_costs", "run_costs"];

describe("migrations on an empty PGlite", () => {
  let opened: OpenedDatabase;
  beforeAll(async () => {
    opened = await memoryDb();
  });
  afterAll(() => opened.close());

  it("create every table and view, and running them again changes nothing", async () => {
    const first = await describeSchema(opened.db);
    expect(first.views).toEqual(EXPECTED_VIEWS);
    expect(first.tables).toContain("llm_calls.cached_input_tokens:bigint");
    expect(first.tables).toContain("llm_calls.cost_usd:numeric");
    await migrateAndVerify(opened.db, (f) => migratePglite(drizzlePglite({ client: opened.pglite! }), { migrationsFolder: f }));
    expect(await describeSchema(opened.db)).toEqual(first);
    const applied = rows(await opened.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`));
    expect(Number(applied[0].n)).toBe(readJournal(MIGRATIONS_FOLDER).length);
  });
});

describePg("migrations on Postgres", () => {
  it("give the same tables, columns and views as PGlite", async () => {
    const pg = await freshPgDb();
    const lite = await memoryDb();
    try {
      const a = await describeSchema(pg.db);
      const b = await describeSchema(lite.db);
      expect(a.views).toEqual(EXPECTED_VIEWS);
      expect(a).toEqual(b);
    } finally {
      await lite.close();
      await pg.drop();
    }
  });
});
