/** Shared bits of the ledger tests (not a test file). */
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { asc, eq, sql } from "drizzle-orm";
import type { Database } from "../../src/db/client";
import { rows as resultRows } from "../../src/db/migrate";
import { llmCalls, nodeRuns } from "../../src/db/schema";
import { ledgerFetch } from "../../src/ledger/fetch";
import { Ledger } from "../../src/ledger/index";
import { startRun } from "../../src/ledger/runs";
import type { BudgetLimits } from "../../src/ledger/budget";
import type { FakeOpenAI } from "../helpers/openai-server";
import { afterAll, beforeAll, describe } from "vitest";
import { describePg, freshPgDb, memoryDb } from "../helpers/db";

/** Copies of the case inputs from ../shared/cases/inputs (a test checks they still match). */
export const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures");
export const C08_PRICES = path.join(FIXTURES, "C08-prices.json");

export function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), "utf8");
}

export function fixtureJson<T = any>(name: string): T {
  return JSON.parse(fixture(name)) as T;
}

/** Writes a temporary JSON file and returns its path. */
export function tempJson(value: unknown, name = "prices.json"): string {
  const dir = mkdtempSync(path.join(tmpdir(), "nl-ledger-"));
  const file = path.join(dir, name);
  writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return file;
}

export async function openRun(
  db: Database,
  options: { budget?: BudgetLimits; defaultMaxOutputTokens?: number; pricesFile?: string } = {},
): Promise<{ runId: string; ledger: Ledger }> {
  const runId = await startRun(db, { workflow: "ledger_test", trigger: "test", provider: "openai-compatible", limits: { ...options.budget } });
  const ledger = await Ledger.open({
    db,
    runId,
    budget: options.budget ?? {},
    defaultMaxOutputTokens: options.defaultMaxOutputTokens ?? 256,
    pricesFile: options.pricesFile ?? C08_PRICES,
  });
  return { runId, ledger };
}

export function chatModel(server: FakeOpenAI, fields: Record<string, unknown> = {}): ChatOpenAI {
  return new ChatOpenAI({
    model: "gpt-4o-mini",
    apiKey: "sk-fake",
    maxRetries: 0,
    configuration: { baseURL: server.url, fetch: ledgerFetch() },
    ...fields,
  });
}

export function embeddingsModel(server: FakeOpenAI, fields: Record<string, unknown> = {}): OpenAIEmbeddings {
  return new OpenAIEmbeddings({
    model: "text-embedding-3-small",
    apiKey: "sk-fake",
    maxRetries: 0,
    configuration: { baseURL: server.url, fetch: ledgerFetch() },
    ...fields,
  });
}

export async function callRows(db: Database, runId: string) {
  return db.select().from(llmCalls).where(eq(llmCalls.runId, runId)).orderBy(asc(llmCalls.startedAt), asc(llmCalls.attempt), asc(llmCalls.id));
}

export async function nodeRunRows(db: Database, runId: string) {
  return db.select().from(nodeRuns).where(eq(nodeRuns.runId, runId)).orderBy(asc(nodeRuns.startedAt));
}

const NUMERIC_VIEW_COLUMNS = new Set([
  "node_attempts",
  "node_failed_attempts",
  "calls",
  "attempts",
  "retries",
  "input_tokens",
  "cached_input_tokens",
  "output_tokens",
  "reasoning_tokens",
  "total_tokens",
  "retry_tokens",
  "unpriced_calls",
  "missing_usage_calls",
  "cache_hits",
  "avoided_tokens",
]);

/** A view row with its integer aggregates mapped to numbers (strings on postgres.js) and money kept as strings. */
function mapViewRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = NUMERIC_VIEW_COLUMNS.has(k) && v !== null ? Number(v) : v === null || v === undefined ? v : typeof v === "bigint" ? String(v) : v;
    if ((k === "cost_usd" || k === "retry_cost_usd" || k === "avoided_cost_usd") && v !== null && v !== undefined) out[k] = String(v);
  }
  return out;
}

export async function nodeCosts(db: Database, runId: string): Promise<Record<string, any>[]> {
  const result = await db.execute(sql`select * from node_costs where run_id = ${runId} order by node`);
  return resultRows(result).map(mapViewRow);
}

export async function runCosts(db: Database, runId: string): Promise<Record<string, any>> {
  const result = await db.execute(sql`select * from run_costs where run_id = ${runId}`);
  return mapViewRow(resultRows(result)[0]!);
}

export interface TestDb {
  db: Database;
  close(): Promise<void>;
}

/**
 * Runs a suite on embedded PGlite, and again on the real Postgres named by TEST_DATABASE_URL
 * (skipped with a message when it is unset): the upserts, views and aggregate types differ
 * between the drivers.
 */
export function describeBackends(title: string, suite: (open: () => Promise<TestDb>) => void): void {
  describe(`${title} [pglite]`, () =>
    suite(async () => {
      const opened = await memoryDb();
      return { db: opened.db, close: () => opened.close() };
    }),
  );
  describePg(`${title} [postgres]`, () =>
    suite(async () => {
      const opened = await freshPgDb();
      return { db: opened.db, close: () => opened.drop() };
    }),
  );
}

/** Opens the suite's database before its tests and closes it after; `ready` receives it. */
export function useTestDb(open: () => Promise<TestDb>, ready: (db: Database) => void): void {
  let testDb: TestDb | undefined;
  beforeAll(async () => {
    testDb = await open();
    ready(testDb.db);
  });
  afterAll(async () => {
    await testDb?.close();
  });
}
