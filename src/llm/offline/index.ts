/** The offline provider: deterministic local models with real token usage and a price of 0. */
import type { BaseCache } from "@langchain/core/caches";
import type { ChatStage, Models } from "../types";
import { OfflineChatModel } from "./chat-model";
import { OfflineHashEmbeddings } from "./embeddings";

export { OfflineChatModel, OFFLINE_PROVIDER, answerPrompt, promptTokens } from "./chat-model";
export { OfflineHashEmbeddings, hashVector } from "./embeddings";

/** The offline models' names, one per stage: what the ledger records and prices (at 0). */
export const OFFLINE_MODEL_NAMES: Record<ChatStage | "embedding", string> = {
  summarize: "offline-extractive-1",
  generate_social: "offline-template-1",
  validate: "offline-rules-1",
  embedding: "offline-hash-embed-1",
};

export function createOfflineModels(options: { cache?: BaseCache } = {}): Models {
  const { cache } = options;
  const chats = {
    summarize: new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.summarize, cache }),
    generate_social: new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.generate_social, cache }),
    validate: new OfflineChatModel({ model: OFFLINE_MODEL_NAMES.validate, cache }),
  } satisfies Record<ChatStage, OfflineChatModel>;
  return {
    provider: "offline",
    chat: (stage) => chats[stage],
    chatModelName: (stage) => OFFLINE_MODEL_NAMES[stage],
    embeddings: new OfflineHashEmbeddings({ model: OFFLINE_MODEL_NAMES.embedding }),
    embeddingModelName: OFFLINE_MODEL_NAMES.embedding,
  };
}
