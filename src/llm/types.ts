/** What the pipeline needs from a model provider; nodes never build models themselves. */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { Embeddings } from "@langchain/core/embeddings";
import type { ProviderKind } from "../config";

/** The stages that call a chat model; each can have its own model (routing). */
export const CHAT_STAGES = ["summarize", "generate_social", "validate"] as const;
export type ChatStage = (typeof CHAT_STAGES)[number];

export interface Models {
  provider: ProviderKind;
  /** The chat model for a stage. */
  chat(stage: ChatStage): BaseChatModel;
  /** The model name a stage uses, for estimates and messages. */
  chatModelName(stage: ChatStage): string;
  embeddings: Embeddings;
  embeddingModelName: string;
}
