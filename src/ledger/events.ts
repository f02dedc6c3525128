/**
 * Custom callback events between code that sees HTTP (ledgerFetch, offline models) and the run's
 * LedgerHandler. Embeddings fire no LangChain callbacks, so every embeddings HTTP call (remote,
 * via ledgerFetch) or offline batch goes through trackEmbeddingCall, which tells the handler
 * before the call (so a budget can refuse it) and after (with the usage), via dispatchCustomEvent.
 * The events travel through the callbacks of the runnable config in AsyncLocalStorage, so they
 * reach the handlers of the graph run that made the call, with that node's metadata.
 */
import { randomUUID } from "node:crypto";
import { dispatchCustomEvent } from "@langchain/core/callbacks/dispatch";
import { isBudgetExceeded } from "./budget";
import { classifyError } from "./errors";

export const EMBEDDING_START = "newsledger.embedding.start";
export const EMBEDDING_END = "newsledger.embedding.end";
export const EMBEDDING_ERROR = "newsledger.embedding.error";
/** One HTTP attempt of a chat call, seen by ledgerFetch (client-internal retries included). */
export const HTTP_ATTEMPT = "newsledger.http.attempt";

export interface EmbeddingCallInfo {
  model: string;
  provider: string;
  /** Tokens counted locally before the call (for the budget reservation). */
  estimatedInputTokens: number;
}

export interface EmbeddingCallResult<T> {
  value: T;
  /** Tokens the provider billed; null when it reported none. */
  inputTokens: number | null;
  responseModel?: string;
  httpStatus?: number;
  /** Cost the provider itself reported (e.g. OpenRouter's usage.cost), as a decimal string. */
  providerCostUsd?: string;
  /** error.code / error.type of an error response (insufficient_quota...). */
  errorCode?: string;
}

export interface EmbeddingStartEvent extends EmbeddingCallInfo {
  callId: string;
  startedAt: number;
}

export interface EmbeddingEndEvent {
  callId: string;
  inputTokens: number | null;
  responseModel?: string;
  httpStatus?: number;
  providerCostUsd?: string;
  errorCode?: string;
  finishedAt: number;
}

export interface EmbeddingErrorEvent {
  callId: string;
  status: string;
  httpStatus: number | null;
  error: string;
  finishedAt: number;
}

/** Raw usage as an OpenAI-compatible server reports it. */
export interface RawUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
  /** Responses API names. */
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { cached_tokens?: number | null } | null;
  output_tokens_details?: { reasoning_tokens?: number | null } | null;
}

/**
 * One HTTP attempt, shared by reference: ledgerFetch keeps filling it in (status, model, the end
 * of a streamed body) after the event was dispatched; the handler reads it when the call ends.
 */
export interface HttpAttemptInfo {
  id: string;
  path: string;
  requestModel: string | null;
  stream: boolean;
  includeUsage: boolean;
  /** The last request message's text, to tell concurrent calls of one node apart. */
  fingerprint: string;
  startedAt: number;
  finishedAt?: number;
  /** HTTP status; undefined when the request failed without a response. */
  status?: number;
  /** error.code / error.type from an error body (insufficient_quota, context_length_exceeded...). */
  errorCode?: string;
  errorMessage?: string;
  /** Set when fetch itself threw (connection refused, timeout, abort). */
  networkError?: { name: string; message: string };
  /** The model as the response's first JSON/SSE chunk names it. */
  responseModel?: string;
  usage?: RawUsage;
  providerCostUsd?: string;
  /** Streamed body: the "[DONE]" sentinel was seen / the body ended / it broke off. */
  sawDone?: boolean;
  streamEnded?: boolean;
  streamError?: string;
}

/**
 * Dispatches a ledger event to the handlers of the current run. A BudgetExceededError from the
 * handler (the gate) propagates; anything else (no run in scope, a foreign handler failing) is
 * swallowed: accounting must never break the call it accounts for.
 */
export async function dispatchLedgerEvent(name: string, data: unknown): Promise<void> {
  try {
    await dispatchCustomEvent(name, data);
  } catch (err) {
    if (isBudgetExceeded(err)) throw err;
  }
}

export async function trackEmbeddingCall<T>(info: EmbeddingCallInfo, send: () => Promise<EmbeddingCallResult<T>>): Promise<T> {
  const callId = randomUUID();
  const start: EmbeddingStartEvent = { ...info, callId, startedAt: Date.now() };
  await dispatchLedgerEvent(EMBEDDING_START, start);
  let result: EmbeddingCallResult<T>;
  try {
    result = await send();
  } catch (err) {
    const c = classifyError(err);
    const event: EmbeddingErrorEvent = { callId, status: c.status, httpStatus: c.httpStatus, error: c.message, finishedAt: Date.now() };
    await dispatchLedgerEvent(EMBEDDING_ERROR, event).catch(() => {});
    throw err;
  }
  const end: EmbeddingEndEvent = {
    callId,
    inputTokens: result.inputTokens,
    responseModel: result.responseModel,
    httpStatus: result.httpStatus,
    providerCostUsd: result.providerCostUsd,
    errorCode: result.errorCode,
    finishedAt: Date.now(),
  };
  await dispatchLedgerEvent(EMBEDDING_END, end).catch(() => {});
  return result.value;
}

/** Normalised text of a message content, to match a request body against a callback's messages. */
export function fingerprintOf(content: unknown): string {
  let text = "";
  if (typeof content === "string") text = content;
  else if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === "string") text += part;
      else if (part && typeof part === "object") {
        const p = part as { text?: unknown; content?: unknown };
        if (typeof p.text === "string") text += p.text;
        else if (p.content !== undefined) text += fingerprintOf(p.content);
      }
    }
  }
  return text.replace(/\s+/g, " ").trim().slice(0, 200);
}
