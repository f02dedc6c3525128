/**
 * Case C15: a stored instant must not depend on the host's time zone, on either driver, on any
 * pooled connection; and the product schema has no naive timestamp column.
 */
import { PGlite } from "@electric-sql/pglite";
import { getTableColumns, sql } from "drizzle-orm";
import { PgTable, pgTable, serial, timestamp } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import * as productSchema from "../../src/db/schema";
import { rows } from "../../src/db/migrate";
import { createPgDatabase, describePg } from "../helpers/db";

const INSTANT = new Date("2024-03-10T06:30:00Z");
const EPOCH_MS = 1710052200000;
const ZONES = ["UTC", "Europe/Moscow", "America/Los_Angeles"];
const DDL = "CREATE TABLE runs (id serial PRIMARY KEY, started_at timestamptz NOT NULL, started_naive timestamp)";

const runs = pgTable("runs", {
  id: serial("id").primaryKey(),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
  startedNaive: timestamp("started_naive"),
});

const originalTz = process.env.TZ;
afterEach(() => {
  process.env.TZ = originalTz;
});

type Db = ReturnType<typeof drizzlePglite>;

async function roundTrip(db: Db, zone: string) {
  process.env.TZ = zone;
  const [row] = await db.insert(runs).values({ startedAt: INSTANT, startedNaive: INSTANT }).returning();
  const [back] = await db.select().from(runs).where(sql`${runs.id} = ${row.id}`);
  const raw = rows(await db.execute(sql`select (started_at at time zone 'UTC')::text as utc from runs where id = ${row.id}`));
  return { back, utc: raw[0].utc };
}

describe("C15 timestamps on PGlite", () => {
  it.each(ZONES)("keeps the instant under TZ=%s", async (zone) => {
    const client = await PGlite.create();
    await client.exec(DDL);
    const { back, utc } = await roundTrip(drizzlePglite({ client }), zone);
    expect(back.startedAt.getTime()).toBe(EPOCH_MS);
    expect(utc).toBe("2024-03-10 06:30:00");
    await client.close();
  });
});

describePg("C15 timestamps on Postgres", () => {
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => drop?.());

  it.each(ZONES)("keeps the instant under TZ=%s, on every pooled connection", async (zone) => {
    const created = await createPgDatabase("nl_c15");
    drop = created.drop;
    const client = postgres(created.url, { max: 5, onnotice: () => {} });
    await client.unsafe(DDL);
    const db = drizzlePostgres({ client }) as unknown as Db;
    const { back, utc } = await roundTrip(db, zone);
    expect(back.startedAt.getTime()).toBe(EPOCH_MS);
    expect(utc).toBe("2024-03-10 06:30:00");
    await db.execute(sql`SET TIME ZONE 'UTC'`);
    const reads = await Promise.all(Array.from({ length: 20 }, () => db.select().from(runs)));
    expect(reads.map((r) => r[0].startedAt.getTime())).toEqual(Array(20).fill(EPOCH_MS));
    await client.end();
    await created.drop();
    drop = undefined;
  });
});

describe("the product schema", () => {
  it("declares every timestamp column with a time zone", () => {
    const tables = (Object.values(productSchema) as unknown[]).filter((v): v is PgTable => v instanceof PgTable);
    expect(tables.length).toBeGreaterThanOrEqual(8);
    const timestamps = tables.flatMap((t) =>
      Object.values(getTableColumns(t)).filter((c) => c.columnType.startsWith("PgTimestamp")),
    );
    expect(timestamps.length).toBeGreaterThanOrEqual(10);
    const naive = timestamps.filter((c) => !(c as unknown as { withTimezone: boolean }).withTimezone).map((c) => c.name);
    expect(naive).toEqual([]);
  });
});
