/** Builds each stage's chat model and the embeddings from the config; nodes get them through deps. */
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import type { Config } from "../config";
import { ledgerFetch } from "../ledger/fetch";
import { createOfflineModels } from "./offline";
import { CHAT_STAGES, type ChatStage, type Models } from "./types";

/** OpenAI-compatible servers such as Ollama and vLLM need no key, but the client insists on one. */
const PLACEHOLDER_API_KEY = "not-needed";

/** `ledger: false` (the benchmark's baseline only) leaves out the ledger's fetch wrapper. */
export function createModels(config: Config, options: { ledger?: boolean } = {}): Models {
  return config.provider === "offline" ? createOfflineModels() : createOpenAiCompatibleModels(config, options.ledger !== false);
}

function createOpenAiCompatibleModels(config: Config, withLedger: boolean): Models {
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

export function withFallback(primary: Models, config: Config): SwitchableModels {
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
      fallback = createModels({ ...config, provider: primary.provider, models: { ...config.models, ...models } });
      return true;
    },
  };
}
