/**
 * The chat response cache: a LangChain BaseCache over response_cache, given to a chat model as
 * its `cache` option (ChatOpenAI and the offline model alike). Core 1.x (BaseChatModel.generate)
 * fires handleChatModelStart (the budget gate) first, then calls lookup(prompt, llmKey): on a hit
 * it zeroes the reply's usage_metadata and fires handleLLMEnd, so a hit reaches the ledger as an
 * ordinary call end; this cache marks the reply (response_metadata.newsledger_cache) with its key
 * and what the filling call was billed, and the ledger records it as usage_source 'cache'. On a
 * miss core sends the call, ends it (the ledger writes its row), then calls update(): the entry
 * is stored and the ledger told (CACHE_STORED) which call filled it. `.stream()` bypasses
 * caches in core (only invoke/generate consult them).
 */
import { BaseChatModel as BaseChatModelClass, type BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { BaseMessage } from "@langchain/core/messages";
import { BaseCache, deserializeStoredGeneration, serializeGeneration } from "@langchain/core/caches";
import type { Generation } from "@langchain/core/outputs";
import { CACHE_METADATA_KEY, CACHE_STORED, dispatchLedgerEvent, fingerprintOf, type CacheStoredEvent, type CacheUse, type TokenUsage } from "../ledger/events";
import { CacheStore, cacheKey, type CacheStoreOptions } from "./store";

/** llmKey entries that do not change the reply: credentials, the client's plumbing, the call's abort signal. */
const NOT_THE_REQUEST = new Set(["apiKey", "organization", "signal", "fetch", "dangerouslyAllowBrowser", "timeout", "maxRetries"]);

/**
 * core's llmKey, "name:<JSON>" entries joined by "," (sorted by name), split into its entries.
 * A value may itself contain commas, so the split follows JSON strings and brackets.
 */
export function llmKeyEntries(llmKey: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < llmKey.length) {
    const colon = llmKey.indexOf(":", i);
    if (colon < 0) break;
    let j = colon + 1;
    let depth = 0;
    let inString = false;
    for (; j < llmKey.length; j++) {
      const ch = llmKey[j];
      if (inString) {
        if (ch === "\\") j++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === "{" || ch === "[") depth++;
      else if (ch === "}" || ch === "]") depth--;
      else if (ch === "," && depth === 0) break;
    }
    out.push([llmKey.slice(i, colon), llmKey.slice(colon + 1, j)]);
    i = j + 1;
  }
  return out;
}

/** The cache key of a chat call: the prompt and every parameter that shapes the reply (model, temperature, max tokens, response format...). */
export function chatCacheKey(prompt: string, llmKey: string): string {
  const params = llmKeyEntries(llmKey)
    .filter(([name]) => !NOT_THE_REQUEST.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return cacheKey("chat/v1", prompt, params);
}

function requestModel(llmKey: string): string | null {
  const entries = new Map(llmKeyEntries(llmKey));
  for (const name of ["model", "model_name", "modelName"]) {
    const raw = entries.get(name);
    if (raw === undefined) continue;
    try {
      const v = JSON.parse(raw);
      if (typeof v === "string" && v !== "") return v;
    } catch {
      /* not JSON: next */
    }
  }
  return null;
}

interface ReplyLike {
  id?: string;
  text?: string;
  content?: unknown;
  usage_metadata?: { input_tokens?: number; output_tokens?: number; total_tokens?: number; input_token_details?: { cache_read?: number }; output_token_details?: { reasoning?: number } };
  response_metadata?: Record<string, unknown>;
}

const messageOf = (g: Generation): ReplyLike | undefined => (g as { message?: ReplyLike }).message;

function usageOf(m: ReplyLike | undefined): TokenUsage | null {
  const u = m?.usage_metadata;
  if (!u || typeof u.input_tokens !== "number" || typeof u.output_tokens !== "number") return null;
  return {
    input: u.input_tokens,
    cached: u.input_token_details?.cache_read ?? 0,
    output: u.output_tokens,
    reasoning: u.output_token_details?.reasoning ?? 0,
    total: u.total_tokens ?? u.input_tokens + u.output_tokens,
  };
}

export class ResponseCache extends BaseCache<Generation[]> {
  readonly store: CacheStore;

  constructor(options: CacheStoreOptions | CacheStore) {
    super();
    this.store = options instanceof CacheStore ? options : new CacheStore(options);
  }

  /** Whether lookup(prompt, llmKey) would hit now, without counting a hit. */
  async has(prompt: string, llmKey: string): Promise<boolean> {
    try {
      return await this.store.has("chat", chatCacheKey(prompt, llmKey));
    } catch {
      return false;
    }
  }

  async lookup(prompt: string, llmKey: string): Promise<Generation[] | null> {
    try {
      const key = chatCacheKey(prompt, llmKey);
      const entry = (await this.store.take("chat", [key])).get(key);
      if (!entry || !Array.isArray(entry.value)) return null;
      const use: CacheUse = { key, hit: true, model: entry.model, avoided: entry.usage };
      return entry.value.map((stored) => {
        const generation = deserializeStoredGeneration(stored) as Generation;
        const message = messageOf(generation);
        if (message) message.response_metadata = { ...message.response_metadata, [CACHE_METADATA_KEY]: use };
        return generation;
      });
    } catch {
      // A cache that cannot be read is a miss: the call is made and paid as usual.
      return null;
    }
  }

  async update(prompt: string, llmKey: string, value: Generation[]): Promise<void> {
    try {
      const key = chatCacheKey(prompt, llmKey);
      const first = value[0] ? messageOf(value[0]) : undefined;
      const responseModel = first?.response_metadata?.model_name;
      const model = (typeof responseModel === "string" && responseModel) || requestModel(llmKey) || "unknown";
      await this.store.put("chat", [{ key, model, value: value.map((g) => serializeGeneration(g)), usage: usageOf(first) }]);
      if (first) {
        // The caller's reply names its entry, so a node that rejects it can evict it (forgetCachedReply).
        first.response_metadata = { ...first.response_metadata, [CACHE_METADATA_KEY]: { key, hit: false } satisfies CacheUse };
        const event: CacheStoredEvent = {
          messageIds: typeof first.id === "string" && first.id !== "" ? [first.id] : [],
          fingerprint: fingerprintOf(value[0]!.text ?? first.content),
          key,
        };
        await dispatchLedgerEvent(CACHE_STORED, event).catch(() => {});
      }
    } catch {
      // Not stored: the next identical call is paid again, nothing worse.
    }
  }
}

/**
 * Evicts a reply that the node could not use, so that its retry (and later runs) ask the model
 * again instead of being served the same bad reply. Never throws.
 */
export async function forgetCachedReply(model: BaseChatModel, reply: { response_metadata?: Record<string, unknown> }): Promise<void> {
  try {
    const cache = (model as { cache?: unknown }).cache;
    const use = reply?.response_metadata?.[CACHE_METADATA_KEY] as Partial<CacheUse> | undefined;
    if (cache instanceof ResponseCache && typeof use?.key === "string") await cache.store.evict(use.key);
  } catch {
    /* the entry expires with its TTL */
  }
}

/**
 * Whether `model.invoke(messages, options)` will be served by its response cache: the key is
 * computed as core's generate() does. The ledger's budget gate runs before core's cache lookup,
 * so a call known to be a hit is told so (EXPECTED_CACHE_HIT metadata) and is not held to a
 * budget it costs nothing against.
 */
export async function expectsCacheHit(model: BaseChatModel, messages: BaseMessage[], options: Record<string, unknown> = {}): Promise<boolean> {
  const cache = model.cache;
  if (!(cache instanceof ResponseCache)) return false;
  const internals = model as unknown as {
    _separateRunnableConfigFromCallOptionsCompat(o: unknown): [unknown, Record<string, unknown>];
    _getSerializedCacheKeyParametersForCall(o: unknown): string;
  };
  try {
    const [, callOptions] = internals._separateRunnableConfigFromCallOptionsCompat(options);
    const llmKey = internals._getSerializedCacheKeyParametersForCall(callOptions);
    // core's own conversion (protected in the types, public at run time).
    const prompt = (BaseChatModelClass as unknown as { _convertInputToPromptValue(m: BaseMessage[]): { toString(): string } })._convertInputToPromptValue(messages).toString();
    return await cache.has(prompt, llmKey);
  } catch {
    return false;
  }
}
