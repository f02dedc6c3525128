/**
 * Case C14: numeric and bigint values must keep their exact value on every read path and both
 * drivers; aggregates are mapped explicitly (count is a number on PGlite, a string on postgres.js).
 */
import { PGlite } from "@electric-sql/pglite";
import { eq, relations, sql } from "drizzle-orm";
import { bigint, integer, numeric, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { llmCalls } from "../../src/db/schema";
import { createPgDatabase, describePg } from "../helpers/db";

// The statements of ../shared/cases/inputs/C14-schema.sql.
const C14_SQL = `
CREATE TABLE runs (id serial PRIMARY KEY, started_at timestamptz NOT NULL, started_naive timestamp);
CREATE TABLE llm_calls (id serial PRIMARY KEY, run_id integer NOT NULL REFERENCES runs(id), node text NOT NULL,
  input_tokens bigint, output_tokens bigint, cost_usd numeric(14,8));
INSERT INTO runs (id, started_at, started_naive) VALUES (1, '2024-03-10T06:30:00Z', '2024-03-10 06:30:00');
INSERT INTO llm_calls (run_id, node, input_tokens, output_tokens, cost_usd) VALUES
  (1, 'summarize', 2048, 300, 12345.12345678), (1, 'embed', 823, 0, 0.00001646);`;

const runs = pgTable("runs", {
  id: serial("id").primaryKey(),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
});
const calls = pgTable("llm_calls", {
  id: serial("id").primaryKey(),
  runId: integer("run_id").notNull(),
  node: text("node").notNull(),
  inputTokens: bigint("input_tokens", { mode: "number" }),
  costUsd: numeric("cost_usd", { precision: 14, scale: 8 }),
});
const runsRelations = relations(runs, ({ many }) => ({ calls: many(calls) }));
const callsRelations = relations(calls, ({ one }) => ({ run: one(runs, { fields: [calls.runId], references: [runs.id] }) }));
const schema = { runs, calls, runsRelations, callsRelations };

type AnyDb = ReturnType<typeof drizzlePglite<typeof schema>>;

function checks(getDb: () => AnyDb) {
  it("reads cost_usd as the same exact string through select and through a relational query", async () => {
    const db = getDb();
    const selected = await db.select().from(calls).where(eq(calls.node, "summarize"));
    expect(selected[0].costUsd).toBe("12345.12345678");
    const run = await db.query.runs.findFirst({ with: { calls: true } });
    const summarize = run!.calls.find((c) => c.node === "summarize")!;
    expect(summarize.costUsd).toBe("12345.12345678");
    expect(typeof summarize.costUsd).toBe("string");
  });

  it("sums money in SQL as exact decimal and maps counts and token sums explicitly", async () => {
    const db = getDb();
    const [agg] = await db
      .select({
        cost: sql<string>`sum(${calls.costUsd})`,
        n: sql<number>`count(*)`.mapWith(Number),
        input: sql<number>`sum(${calls.inputTokens})`.mapWith(Number),
      })
      .from(calls);
    expect(agg.cost).toBe("12345.12347324");
    expect(agg.n).toBe(2);
    expect(agg.input).toBe(2871);
  });
}

describe("C14 numeric and bigint types on PGlite", () => {
  let client: PGlite;
  let db: AnyDb;
  beforeAll(async () => {
    client = await PGlite.create();
    await client.exec(C14_SQL);
    db = drizzlePglite({ client, schema });
  });
  afterAll(() => client.close());
  checks(() => db);
});

describePg("C14 numeric and bigint types on Postgres", () => {
  let drop: () => Promise<void>;
  let client: postgres.Sql;
  let db: AnyDb;
  beforeAll(async () => {
    const created = await createPgDatabase();
    drop = created.drop;
    client = postgres(created.url, { max: 2, onnotice: () => {} });
    await client.unsafe(C14_SQL);
    db = drizzlePostgres({ client, schema }) as unknown as AnyDb;
  });
  afterAll(async () => {
    await client.end();
    await drop();
  });
  checks(() => db);
});

describe("the product schema keeps money exact", () => {
  it("stores every cost as numeric in string mode", () => {
    expect(llmCalls.costUsd.columnType).toBe("PgNumeric");
    expect(llmCalls.providerCostUsd.columnType).toBe("PgNumeric");
  });
});
