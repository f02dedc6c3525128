/**
 * LangGraph checkpoints in the same database as the ledger, schema "langgraph": on Postgres
 * through its own pg pool, on PGlite through PGlite's node-postgres adapter over the same
 * instance (PGlite is one session, so the pool has one connection).
 */
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";
import type { OpenedDatabase } from "./client";

export const CHECKPOINT_SCHEMA = "langgraph";

export interface OpenedCheckpointer {
  saver: PostgresSaver;
  close(): Promise<void>;
}

const shared = new WeakMap<OpenedDatabase, Promise<PostgresSaver>>();

/**
 * The database's one checkpointer, opened on first use and closed with the database. One per
 * database, not per run: PGlite's adapter serves a single connection, so concurrent runs must
 * share its pool.
 */
export function sharedCheckpointer(database: OpenedDatabase): Promise<PostgresSaver> {
  let saver = shared.get(database);
  if (!saver) {
    const opening = openCheckpointer(database);
    saver = opening.then((c) => c.saver);
    shared.set(database, saver);
    database.onClose(async () => (await opening).close());
  }
  return saver;
}

export async function openCheckpointer(database: OpenedDatabase): Promise<OpenedCheckpointer> {
  let pool: pg.Pool;
  if (database.kind === "postgres") {
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
  } else {
    // The adapter's config object carries the connection; pg's typings don't know it.
    pool = new pg.Pool(createPgConfig(database.pglite!) as unknown as pg.PoolConfig);
  }
  const saver = new PostgresSaver(pool, undefined, { schema: CHECKPOINT_SCHEMA });
  await setupOnce(saver);
  return {
    saver,
    close: async () => {
      await pool.end();
    },
  };
}

/** Several processes may start at once: CREATE ... IF NOT EXISTS can still race, so try again once. */
async function setupOnce(saver: PostgresSaver): Promise<void> {
  try {
    await saver.setup();
  } catch {
    await new Promise((r) => setTimeout(r, 200));
    await saver.setup();
  }
}
