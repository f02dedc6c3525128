/**
 * The response_cache table: entries keyed by a hash, with the usage and cost of the call that
 * filled them (what a hit avoids) and an expiry. Shared by the chat cache (a LangChain BaseCache)
 * and the cached embeddings. The cache never breaks a call: callers treat a failed read as a miss.
 */
import { createHash } from "node:crypto";
import { and, eq, inArray, isNull, lte, or, gt, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { responseCache } from "../db/schema";
import type { TokenUsage } from "../ledger/events";
import { readPriceBook } from "../ledger/price-book";
import { priceCall, type PriceBook } from "../ledger/pricing";

export type CacheKind = "chat" | "embedding";

export interface CacheStoreOptions {
  db: Database;
  /** How long an entry is served, in hours (> 0). */
  ttlHours: number;
  /** The clock (tests move it past the TTL). */
  now?: () => Date;
}

export interface CacheEntry {
  key: string;
  model: string;
  value: unknown;
  usage: TokenUsage | null;
}

/** A stable hash of the parts that make two requests the same. */
export function cacheKey(...parts: unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

/** usage jsonb ({ input, cached_input, output, reasoning, total }) ⇄ TokenUsage; {} is "none reported". */
function usageFromJson(u: Record<string, number> | null | undefined): TokenUsage | null {
  if (!u || typeof u.input !== "number" || typeof u.output !== "number") return null;
  return { input: u.input, cached: u.cached_input ?? 0, output: u.output, reasoning: u.reasoning ?? 0, total: u.total ?? u.input + u.output };
}

function usageToJson(u: TokenUsage | null): Record<string, number> {
  return u ? { input: u.input, cached_input: u.cached, output: u.output, reasoning: u.reasoning, total: u.total } : {};
}

export class CacheStore {
  readonly db: Database;
  readonly ttlHours: number;
  readonly now: () => Date;
  private book: Promise<PriceBook> | null = null;
  private purged = false;

  constructor(options: CacheStoreOptions) {
    if (!(Number.isInteger(options.ttlHours) && options.ttlHours > 0)) throw new RangeError(`cache ttlHours must be a positive whole number, got ${options.ttlHours}`);
    this.db = options.db;
    this.ttlHours = options.ttlHours;
    this.now = options.now ?? (() => new Date());
  }

  /** Whether a live entry exists (a look that is not a hit: nothing counted). */
  async has(kind: CacheKind, key: string): Promise<boolean> {
    const rows = await this.db
      .select({ key: responseCache.key })
      .from(responseCache)
      .where(and(eq(responseCache.key, key), eq(responseCache.kind, kind), or(isNull(responseCache.expiresAt), gt(responseCache.expiresAt, this.now()))));
    return rows.length > 0;
  }

  /** The live entries among `keys`; a hit counts on the entry (hits, last_hit_at). */
  async take(kind: CacheKind, keys: string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    if (keys.length === 0) return found;
    const now = this.now();
    const rows = await this.db
      .select({ key: responseCache.key, model: responseCache.model, value: responseCache.value, usage: responseCache.usage })
      .from(responseCache)
      .where(and(inArray(responseCache.key, keys), eq(responseCache.kind, kind), or(isNull(responseCache.expiresAt), gt(responseCache.expiresAt, now))));
    for (const r of rows) found.set(r.key, { key: r.key, model: r.model, value: r.value, usage: usageFromJson(r.usage) });
    if (found.size > 0) {
      await this.db
        .update(responseCache)
        .set({ hits: sql`${responseCache.hits} + 1`, lastHitAt: now })
        .where(inArray(responseCache.key, [...found.keys()]));
    }
    return found;
  }

  /** Stores (or refills) entries; `usage` is what the filling call was billed for each. */
  async put(kind: CacheKind, entries: { key: string; model: string; value: unknown; usage: TokenUsage | null }[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.ttlHours * 3_600_000);
    if (!this.purged) {
      this.purged = true;
      await this.db.delete(responseCache).where(lte(responseCache.expiresAt, now));
    }
    const book = await this.priceBook();
    const rows = entries.map((e) => ({
      key: e.key,
      kind,
      model: e.model,
      value: e.value,
      usage: usageToJson(e.usage),
      costUsd: e.usage
        ? priceCall({ model: e.model, inputTokens: e.usage.input, cachedInputTokens: e.usage.cached, outputTokens: e.usage.output, at: now }, book).costUsd
        : null,
      createdAt: now,
      expiresAt,
      hits: 0,
      lastHitAt: null,
    }));
    const ex = (column: string) => sql.raw(`excluded."${column}"`);
    await this.db
      .insert(responseCache)
      .values(rows)
      .onConflictDoUpdate({
        target: responseCache.key,
        set: { kind: ex("kind"), model: ex("model"), value: ex("value"), usage: ex("usage"), costUsd: ex("cost_usd"), createdAt: ex("created_at"), expiresAt: ex("expires_at"), hits: 0, lastHitAt: null },
      });
  }

  async evict(key: string): Promise<void> {
    await this.db.delete(responseCache).where(eq(responseCache.key, key));
  }

  /** The prices in the database (seeded by the ledger), read once: what a filling call cost. */
  private priceBook(): Promise<PriceBook> {
    this.book ??= readPriceBook(this.db).catch((err) => {
      this.book = null;
      throw err;
    });
    return this.book;
  }
}
