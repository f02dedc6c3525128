/**
 * The offline chat model: a real BaseChatModel that does deterministic work for the task named
 * on the system prompt's first line (see ../markup.ts), answers in the JSON the stage parses,
 * and reports usage counted with js-tiktoken over the real prompt and reply, so the ledger sees
 * it exactly as it sees a remote model.
 */
import type { CallbackManagerForLLMRun } from "@langchain/core/callbacks/manager";
import { BaseChatModel, type BaseChatModelParams, type LangSmithParams } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { readTask } from "../markup";
import { countTokens } from "../tokens";
import { CHAT_STAGES, type ChatStage } from "../types";
import { reviewTask } from "./review";
import { socialTask } from "./social";
import { summarizeTask } from "./summarize";

export const OFFLINE_PROVIDER = "offline";

const TASKS: Record<ChatStage, (data: string) => unknown> = {
  summarize: summarizeTask,
  generate_social: socialTask,
  validate: reviewTask,
};

function isChatStage(task: string): task is ChatStage {
  return (CHAT_STAGES as readonly string[]).includes(task);
}

/** The answer to a prompt, as the JSON text a model would reply with. */
export function answerPrompt(messages: BaseMessage[]): string {
  const system = messages.find((message) => message.type === "system");
  const task = system ? readTask(system.text) : null;
  if (task === null) {
    throw new Error(`offline model: the system message must begin with a "Task: <name>" line (one of ${CHAT_STAGES.join(", ")})`);
  }
  if (!isChatStage(task)) throw new Error(`offline model: unknown task "${task}"; it handles ${CHAT_STAGES.join(", ")}`);
  const data = messages
    .filter((message) => message.type !== "system")
    .map((message) => message.text)
    .join("\n");
  return JSON.stringify(TASKS[task](data));
}

/** Prompt tokens as the offline provider bills them: the text of every message. */
export function promptTokens(messages: BaseMessage[]): number {
  return messages.reduce((sum, message) => sum + countTokens(message.text), 0);
}

export interface OfflineChatModelFields extends BaseChatModelParams {
  model: string;
}

export class OfflineChatModel extends BaseChatModel {
  readonly model: string;

  static override lc_name(): string {
    return "OfflineChatModel";
  }

  constructor(fields: OfflineChatModelFields) {
    super(fields);
    this.model = fields.model;
  }

  override _llmType(): string {
    return OFFLINE_PROVIDER;
  }

  /** Part of the response cache's key: two offline models answer the same prompt differently. */
  override _identifyingParams(): Record<string, unknown> {
    return { model: this.model };
  }

  override getLsParams(_options: this["ParsedCallOptions"]): LangSmithParams {
    return { ls_provider: OFFLINE_PROVIDER, ls_model_name: this.model, ls_model_type: "chat" };
  }

  override async _generate(messages: BaseMessage[], options: this["ParsedCallOptions"], _runManager?: CallbackManagerForLLMRun): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    const reply = answerPrompt(messages);
    options.signal?.throwIfAborted();
    const inputTokens = promptTokens(messages);
    const outputTokens = countTokens(reply);
    const message = new AIMessage({
      content: reply,
      usage_metadata: {
        input_tokens: inputTokens,
        output_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
        input_token_details: { cache_read: 0 },
        output_token_details: { reasoning: 0 },
      },
      response_metadata: { model_name: this.model, model_provider: OFFLINE_PROVIDER },
    });
    return { generations: [{ text: reply, message }] };
  }
}
