/** Builds each stage's chat model and the embeddings from the config; nodes get them through deps. */
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { CachedEmbeddings } from "../cache/embeddings";
import { ResponseCache } from "../cache/response-cache";
import { CacheStore } from "../cache/store";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { ledgerFetch } from "../ledger/fetch";
import { OFFLINE_PROVIDER, createOfflineModels } from "./offline";
import { CHAT_STAGES, type ChatStage, type Models } from "./types";

export interface ModelOptions {
  /** The database of the response cache; without one (or with NEWSLEDGER_CACHE_TTL_HOURS=0) nothing is cached. */
  db?: Database;
  /** The cache's clock (tests). */
  now?: () => Date;
  /** false (the benchmark's baseline only) leaves out the ledger's fetch wrapper. */
  ledger?: boolean;
}

/** OpenAI-compatible servers such as Ollama and vLLM need no key, but the client insists on one. */
const PLACEHOLDER_API_KEY = "not-needed";

export function createModels(config: Config, options: ModelOptions = {}): Models {
  const store = options.db && config.cache.ttlHours > 0 ? new CacheStore({ db: options.db, ttlHours: config.cache.ttlHours, now: options.now }) : undefined;
  const cache = store ? new ResponseCache(store) : undefined;
  const models = config.provider === "offline" ? createOfflineModels({ cache }) : createOpenAiCompatibleModels(config, cache, options.ledger !== false);
  if (!store) return models;
  const provider = config.provider === "offline" ? OFFLINE_PROVIDER : "openai";
  return { ...models, embeddings: new CachedEmbeddings(models.embeddings, { model: models.embeddingModelName, provider, store }) };
}

function createOpenAiCompatibleModels(config: Config, cache: ResponseCache | undefined, withLedger: boolean): Models {
  const apiKey = config.openai.apiKey ?? PLACEHOLDER_API_KEY;
  // The ledger's fetch sees every HTTP attempt, the client's own retries and the embeddings' usage included.
  const configuration = { baseURL: config.openai.baseURL, ...(withLedger ? { fetch: ledgerFetch() } : {}) };
  const chatFor = (stage: ChatStage) =>
    new ChatOpenAI({
      model: config.models[stage],
      apiKey,
      configuration,
      maxRetries: config.httpRetries,
      timeout: config.requestTimeoutMs,
      maxTokens: config.maxOutputTokens,
      // Usage on the last streamed chunk; stages stream with .stream(), never `streaming: true`.
      streamUsage: true,
      cache,
    });
  const chats = Object.fromEntries(CHAT_STAGES.map((stage) => [stage, chatFor(stage)])) as Record<ChatStage, ChatOpenAI>;
  return {
    provider: "openai-compatible",
    chat: (stage) => chats[stage],
    chatModelName: (stage) => config.models[stage],
    embeddings: new OpenAIEmbeddings({
      model: config.models.embedding,
      apiKey,
      configuration,
      maxRetries: config.httpRetries,
      timeout: config.requestTimeoutMs,
    }),
    embeddingModelName: config.models.embedding,
  };
}

/** Models that can switch every chat stage to a cheaper model mid-run (after a soft budget limit). */
export interface SwitchableModels extends Models {
  /** Switches the remaining chat calls to the fallback; false when there is none or it is already in use. */
  useFallback(): boolean;
  readonly fallbackModel: string | undefined;
}

export function withFallback(primary: Models, config: Config, options: ModelOptions = {}): SwitchableModels {
  const fallbackModel = config.budget.fallbackModel;
  let fallback: Models | null = null;
  const current = () => fallback ?? primary;
  return {
    get provider() {
      return primary.provider;
    },
    chat: (stage) => current().chat(stage),
    chatModelName: (stage) => current().chatModelName(stage),
    embeddings: primary.embeddings,
    embeddingModelName: primary.embeddingModelName,
    fallbackModel,
    useFallback() {
      if (!fallbackModel || fallback) return false;
      const models = Object.fromEntries(CHAT_STAGES.map((stage) => [stage, fallbackModel])) as Record<ChatStage, string>;
      fallback = createModels({ ...config, provider: primary.provider, models: { ...config.models, ...models } }, options);
      return true;
    },
  };
}
