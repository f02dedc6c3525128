/**
 * The LangChain callback handler of a run's ledger. It knows nothing about the app: it turns
 * node attempts, model calls and the ledger's custom events into rows (see recorder.ts).
 *
 * - awaitHandlers: the graph waits for each method, so nothing runs in the background and a
 *   node's rows are written when the node ends.
 * - raiseError: only so that the budget gate can stop a call before it is sent (a throw from
 *   handleChatModelStart / handleLLMStart / the embedding start event aborts the call). Every
 *   other method catches its own errors; the row stays buffered and is written at the next flush.
 *
 * Argument orders are the runtime ones (core's d.ts for handleChainStart is wrong).
 */
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { Serialized } from "@langchain/core/load/serializable";
import type { BaseMessage } from "@langchain/core/messages";
import type { LLMResult } from "@langchain/core/outputs";
import type { ChainValues } from "@langchain/core/utils/types";
import {
  CACHE_STORED,
  EMBEDDING_END,
  EMBEDDING_ERROR,
  EMBEDDING_START,
  HTTP_ATTEMPT,
  REPLY_REJECTED,
  type CacheStoredEvent,
  type EmbeddingEndEvent,
  type EmbeddingErrorEvent,
  type EmbeddingStartEvent,
  type HttpAttemptInfo,
  type ReplyRejectedEvent,
} from "./events";
import type { Recorder } from "./recorder";

export class LedgerHandler extends BaseCallbackHandler {
  name = "newsledger_ledger";
  override awaitHandlers = true;
  override raiseError = true;
  readonly recorder: Recorder;

  constructor(recorder: Recorder | LedgerHandler) {
    super();
    // core may copy() a handler: `new this.constructor(this)`; keep the same recorder.
    this.recorder = recorder instanceof LedgerHandler ? recorder.recorder : recorder;
    this.awaitHandlers = true;
    this.raiseError = true;
  }

  override copy(): LedgerHandler {
    return new LedgerHandler(this.recorder);
  }

  override async handleChainStart(
    _chain: Serialized,
    _inputs: ChainValues,
    runId: string,
    parentRunId?: string,
    _tags?: string[],
    metadata?: Record<string, unknown>,
    _runType?: string,
    runName?: string,
  ): Promise<void> {
    this.recorder.guard("handleChainStart", () => this.recorder.chainStart(runId, parentRunId, metadata, runName));
  }

  override async handleChainEnd(_outputs: ChainValues, runId: string, parentRunId?: string): Promise<void> {
    await this.recorder.guardAsync("handleChainEnd", async () => {
      if (this.recorder.chainEnd(runId, parentRunId)) await this.recorder.write();
    });
  }

  override async handleChainError(err: Error, runId: string, parentRunId?: string): Promise<void> {
    await this.recorder.guardAsync("handleChainError", async () => {
      if (this.recorder.chainError(err, runId, parentRunId)) await this.recorder.write();
    });
  }

  override async handleToolStart(_tool: Serialized, _input: string, runId: string, parentRunId?: string): Promise<void> {
    this.recorder.guard("handleToolStart", () => this.recorder.runStart(runId, parentRunId));
  }

  override async handleRetrieverStart(_retriever: Serialized, _query: string, runId: string, parentRunId?: string): Promise<void> {
    this.recorder.guard("handleRetrieverStart", () => this.recorder.runStart(runId, parentRunId));
  }

  /** The budget gate for chat models: may throw BudgetExceededError, which stops the call unsent. */
  override async handleChatModelStart(
    llm: Serialized,
    messages: BaseMessage[][],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): Promise<void> {
    await this.recorder.gateOnce(runId, "handleChatModelStart", () => this.recorder.chatStart(llm, messages?.[0] ?? [], runId, parentRunId, extraParams, metadata));
  }

  /** The same gate for completion-style LLMs (prompts as strings). */
  override async handleLLMStart(
    llm: Serialized,
    prompts: string[],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): Promise<void> {
    await this.recorder.gateOnce(runId, "handleLLMStart", () =>
      this.recorder.chatStart(llm, (prompts ?? []).slice(0, 1).map((content) => ({ content })), runId, parentRunId, extraParams, metadata),
    );
  }

  override async handleLLMNewToken(token: string, _idx: unknown, runId: string): Promise<void> {
    this.recorder.guard("handleLLMNewToken", () => this.recorder.newToken(runId, token ?? ""));
  }

  // A call's row is written within moments of the call's end (a process killed mid-node loses
  // no paid call), without holding the call back: calls that end close together share one write,
  // and the node's end awaits them all.
  override async handleLLMEnd(output: LLMResult, runId: string): Promise<void> {
    this.recorder.guard("handleLLMEnd", () => this.recorder.chatEnd(output, runId));
    this.recorder.writeSoon();
  }

  override async handleLLMError(err: Error, runId: string): Promise<void> {
    this.recorder.guard("handleLLMError", () => this.recorder.chatError(err, runId));
    this.recorder.writeSoon();
  }

  override async handleCustomEvent(name: string, data: unknown, runId: string, _tags?: string[], metadata?: Record<string, unknown>): Promise<void> {
    switch (name) {
      case EMBEDDING_START:
        // The gate for embeddings: may throw BudgetExceededError back into trackEmbeddingCall.
        await this.recorder.gateOnce(String((data as EmbeddingStartEvent)?.callId), "embedding start", () => this.recorder.embeddingStart(data as EmbeddingStartEvent, runId, metadata));
        return;
      case EMBEDDING_END:
        this.recorder.guard("embedding end", () => this.recorder.embeddingEnd(data as EmbeddingEndEvent));
        await this.recorder.write();
        return;
      case EMBEDDING_ERROR:
        this.recorder.guard("embedding error", () => this.recorder.embeddingError(data as EmbeddingErrorEvent));
        await this.recorder.write();
        return;
      case HTTP_ATTEMPT:
        this.recorder.guard("http attempt", () => this.recorder.httpAttempt(data as HttpAttemptInfo, runId));
        return;
      case REPLY_REJECTED:
        // A node rejected a reply (rejectReply): that call's row becomes parse_error; written at the node's end.
        this.recorder.guard("reply rejected", () => this.recorder.replyRejected(data as ReplyRejectedEvent, runId));
        return;
      case CACHE_STORED:
        // The response cache stored a reply: that call's row names the entry; written at the node's end.
        this.recorder.guard("cache stored", () => this.recorder.cacheStored(data as CacheStoredEvent, runId));
        return;
      default:
        return;
    }
  }
}
