/**
 * Embeddings cached by content: an Embeddings that wraps the real one (remote or offline) and
 * sends only the texts that have no live entry in response_cache (key: model, dimensions, text).
 * The texts served from the cache are one ledger row per call (trackEmbeddingCall with the hit:
 * usage_source 'cache', nothing reserved or billed, the entries' tokens as avoided). The request
 * for the rest is made by the wrapped client as usual, inside an EmbeddingCacheFill scope, so its
 * row names the entries it fills and the billed tokens are shared out among them.
 */
import { Embeddings } from "@langchain/core/embeddings";
import { trackEmbeddingCall, withEmbeddingCacheFill, type EmbeddingCacheFill, type TokenUsage } from "../ledger/events";
import { countTextTokens } from "../ledger/tokens";
import { CacheStore, cacheKey, type CacheStoreOptions } from "./store";

export interface CachedEmbeddingsOptions {
  /** The embeddings model's name (part of the key, and the rows' model). */
  model: string;
  /** The provider named on the cache-hit rows ("openai", "offline"). */
  provider: string;
  store: CacheStore | CacheStoreOptions;
}

/**
 * Splits `total` into whole parts proportional to `weights`, the remainders going to the largest
 * fractions (the earlier on ties), so the parts add up to `total` exactly.
 */
export function apportion(total: number, weights: number[]): number[] {
  if (weights.length === 0) return [];
  const w = weights.map((x) => BigInt(Math.max(1, Math.round(x))));
  const sum = w.reduce((a, b) => a + b, 0n);
  const t = BigInt(total);
  const parts = w.map((x) => (t * x) / sum);
  let left = Number(t - parts.reduce((a, b) => a + b, 0n));
  const order = w.map((x, i) => ({ i, rem: (t * x) % sum })).sort((a, b) => (b.rem > a.rem ? 1 : b.rem < a.rem ? -1 : a.i - b.i));
  for (const { i } of order) {
    if (left <= 0) break;
    parts[i]! += 1n;
    left -= 1;
  }
  return parts.map(Number);
}

const inputOnly = (input: number): TokenUsage => ({ input, cached: 0, output: 0, reasoning: 0, total: input });

export class CachedEmbeddings extends Embeddings {
  readonly inner: Embeddings;
  readonly model: string;
  readonly provider: string;
  readonly store: CacheStore;

  constructor(inner: Embeddings, options: CachedEmbeddingsOptions) {
    super({});
    this.inner = inner;
    this.model = options.model;
    this.provider = options.provider;
    this.store = options.store instanceof CacheStore ? options.store : new CacheStore(options.store);
  }

  /** The wrapped client's batch size (the embed stage sends one batch per request). */
  get batchSize(): number | undefined {
    const size = (this.inner as { batchSize?: unknown }).batchSize;
    return typeof size === "number" ? size : undefined;
  }

  keyOf(text: string): string {
    const dimensions = (this.inner as { dimensions?: unknown }).dimensions;
    return cacheKey("embedding/v1", this.model, typeof dimensions === "number" ? dimensions : null, text);
  }

  async embedDocuments(texts: string[]): Promise<number[][]> {
    const keys = texts.map((t) => this.keyOf(t));
    const unique = [...new Set(keys)];
    let found: Map<string, { value: unknown; usage: TokenUsage | null }>;
    try {
      found = await this.store.take("embedding", unique);
    } catch {
      found = new Map(); // an unreadable cache is a miss
    }
    const vectors = new Map<string, number[]>();
    for (const [key, entry] of found) if (Array.isArray(entry.value)) vectors.set(key, entry.value as number[]);
    const hitKeys = unique.filter((k) => vectors.has(k));
    if (hitKeys.length > 0) {
      const known = hitKeys.map((k) => found.get(k)!.usage);
      const avoided = known.every((u) => u !== null) ? inputOnly(known.reduce((s, u) => s + u!.input, 0)) : null;
      await trackEmbeddingCall(
        { model: this.model, provider: this.provider, estimatedInputTokens: 0, cache: { key: hitKeys.join(","), hit: true, model: this.model, avoided } },
        async () => ({ value: undefined, inputTokens: 0, responseModel: this.model }),
      );
    }

    const missKeys = unique.filter((k) => !vectors.has(k));
    if (missKeys.length > 0) {
      const textOf = new Map(keys.map((k, i) => [k, texts[i]!]));
      const missTexts = missKeys.map((k) => textOf.get(k)!);
      const fill: EmbeddingCacheFill = { key: missKeys.join(","), billed: 0, requests: 0 };
      const fresh = await withEmbeddingCacheFill(fill, () => this.inner.embedDocuments(missTexts));
      if (fresh.length !== missTexts.length) return fresh; // the caller reports the mismatch; nothing is cached
      missKeys.forEach((k, i) => vectors.set(k, fresh[i]!));
      await this.fill(missKeys, missTexts, fresh, fill);
    }
    return keys.map((k) => vectors.get(k)!);
  }

  async embedQuery(text: string): Promise<number[]> {
    const [vector] = await this.embedDocuments([text]);
    return vector!;
  }

  /** Stores the new vectors, each with its share of what the request billed (local token counts as weights). */
  private async fill(keys: string[], texts: string[], vectors: number[][], fill: EmbeddingCacheFill): Promise<void> {
    try {
      const local = texts.map((t) => countTextTokens(t, this.model));
      const billed = fill.requests > 0 && fill.billed !== null ? apportion(fill.billed, local) : null;
      await this.store.put(
        "embedding",
        keys.map((key, i) => ({ key, model: this.model, value: vectors[i], usage: billed ? inputOnly(billed[i]!) : null })),
      );
    } catch {
      /* not stored: paid again next time */
    }
  }
}
