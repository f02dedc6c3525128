/**
 * Custom callback events between code that sees HTTP (ledgerFetch, offline models) and the run's
 * LedgerHandler. Embeddings fire no LangChain callbacks, so every embeddings HTTP call (remote,
 * via ledgerFetch) or offline batch goes through trackEmbeddingCall, which tells the handler
 * before the call (so a budget can refuse it) and after (with the usage), via dispatchCustomEvent.
 * The events travel through the callbacks of the runnable config in AsyncLocalStorage, so they
 * reach the handlers of the graph run that made the call, with that node's metadata.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { dispatchCustomEvent } from "@langchain/core/callbacks/dispatch";
import { isBudgetExceeded } from "./budget";
import { classifyError } from "./errors";

export const EMBEDDING_START = "newsledger.embedding.start";
export const EMBEDDING_END = "newsledger.embedding.end";
export const EMBEDDING_ERROR = "newsledger.embedding.error";
/** One HTTP attempt of a chat call, seen by ledgerFetch (client-internal retries included). */
export const HTTP_ATTEMPT = "newsledger.http.attempt";
/** A node rejected a model reply it could not use (see rejectReply). */
export const REPLY_REJECTED = "newsledger.reply.rejected";
/** The response cache stored a chat reply: its call's row gets the cache key. */
export const CACHE_STORED = "newsledger.cache.stored";
/** response_metadata key of a chat reply served from (or stored in) the response cache. */
export const CACHE_METADATA_KEY = "newsledger_cache";

/** Token counts as the ledger and the response cache keep them. */
export interface TokenUsage {
  input: number;
  cached: number;
  output: number;
  reasoning: number;
  total: number;
}

/** How a call used the response cache: served from it (hit) or filled it (miss). */
export interface CacheUse {
  /** response_cache.key; an embeddings call that covers several texts lists their keys, comma-separated. */
  key: string;
  hit: boolean;
  /** Hit: the model of the call that filled the entry, and what it was billed (what the hit avoided). */
  model?: string | null;
  avoided?: TokenUsage | null;
}

/** What the response cache tells the ledger after storing a chat reply (the call's row already exists). */
export interface CacheStoredEvent {
  /** The reply message's id, to find its call (as for ReplyRejectedEvent). */
  messageIds: string[];
  fingerprint: string;
  key: string;
}

export interface EmbeddingCallInfo {
  model: string;
  provider: string;
  /** Tokens counted locally before the call (for the budget reservation). */
  estimatedInputTokens: number;
  /** Set for texts served from the response cache (then nothing is sent and estimatedInputTokens is 0). */
  cache?: CacheUse;
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
  cache?: CacheUse;
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

/** What rejectReply tells the handler: the message's ids and text, to find the call that produced it. */
export interface ReplyRejectedEvent {
  /** The AIMessage id (the provider's response id, or LangChain's "run-<call run id>"). */
  messageIds: string[];
  /** fingerprintOf(the message text), to tell calls apart when a provider repeats ids. */
  fingerprint: string;
  reason: string;
  status: string;
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

/**
 * An embeddings request made to fill response-cache entries (see CachedEmbeddings): the request
 * sees it through AsyncLocalStorage, however deep in the client it is sent, so its row gets the
 * keys and the cache learns what the provider billed.
 */
export interface EmbeddingCacheFill {
  key: string;
  /** Billed input tokens of the requests made so far; null once one reported none. */
  billed: number | null;
  requests: number;
}

const cacheFills = new AsyncLocalStorage<EmbeddingCacheFill>();

export function withEmbeddingCacheFill<T>(fill: EmbeddingCacheFill, fn: () => Promise<T>): Promise<T> {
  return cacheFills.run(fill, fn);
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
  let cache = info.cache;
  const fill = info.cache ? undefined : cacheFills.getStore();
  if (fill && (result.httpStatus === undefined || result.httpStatus < 400)) {
    fill.requests += 1;
    fill.billed = fill.billed === null || result.inputTokens === null ? null : fill.billed + result.inputTokens;
    cache = { key: fill.key, hit: false };
  }
  const end: EmbeddingEndEvent = {
    callId,
    inputTokens: result.inputTokens,
    responseModel: result.responseModel,
    httpStatus: result.httpStatus,
    providerCostUsd: result.providerCostUsd,
    errorCode: result.errorCode,
    cache,
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

// ---- HTTP attempts made outside any run's scope ------------------------------------------------
//
// ledgerFetch announces an attempt through the runnable config in AsyncLocalStorage. That config
// is not always there: while a chat model streams (`model.stream()`), core runs the stream's
// generator under `runWithConfig(config, …, avoidCreatingRootRunTree = true)`, which, without a
// LangSmith tracer, leaves AsyncLocalStorage empty — so fetch runs with no config, and
// dispatchCustomEvent silently delivers to nobody. An attempt that no handler in scope claimed is
// offered to every ledger with a chat call in flight; it goes to the call whose request it is
// (the same last-message fingerprint and model), preferring one with no attempt in flight, then
// the oldest.

/** A chat call in flight that could own an unscoped HTTP attempt. */
export interface AttemptCandidate {
  /** The request's fingerprint and model match the call's (otherwise it is only the sole call in flight). */
  exact: boolean;
  /** The call has no other attempt in flight. */
  free: boolean;
  startedAt: number;
  claim(): void;
}

/** A ledger that can take HTTP attempts nobody in scope claimed (the Recorder). */
export interface HttpAttemptSink {
  candidateFor(info: HttpAttemptInfo): AttemptCandidate | null;
  /** Told when an attempt matched no call anywhere, to be reported as a problem. */
  unmatched(info: HttpAttemptInfo): void;
}

const sinks = new Set<WeakRef<HttpAttemptSink>>();
const claimed = new WeakSet<HttpAttemptInfo>();

/** Adds a ledger with chat calls in flight; returns the handle to remove it with. */
export function registerAttemptSink(sink: HttpAttemptSink): WeakRef<HttpAttemptSink> {
  const ref = new WeakRef(sink);
  sinks.add(ref);
  return ref;
}

export function unregisterAttemptSink(ref: WeakRef<HttpAttemptSink>): void {
  sinks.delete(ref);
}

/** Called by a ledger that took the attempt (so it is not offered again). */
export function markAttemptClaimed(info: HttpAttemptInfo): void {
  claimed.add(info);
}

function offerUnscopedAttempt(info: HttpAttemptInfo): void {
  const found: AttemptCandidate[] = [];
  const live: HttpAttemptSink[] = [];
  for (const ref of sinks) {
    const sink = ref.deref();
    if (!sink) {
      sinks.delete(ref);
      continue;
    }
    live.push(sink);
    const c = sink.candidateFor(info);
    if (c) found.push(c);
  }
  const exact = found.filter((c) => c.exact);
  // Without a matching request, only a lone call in flight (in all ledgers) may take it.
  const pool = exact.length > 0 ? exact : found.length === 1 ? found : [];
  const best = pool.sort((a, b) => Number(b.free) - Number(a.free) || a.startedAt - b.startedAt)[0];
  if (best) {
    best.claim();
    return;
  }
  for (const sink of live) sink.unmatched(info);
}

/**
 * Announces one HTTP attempt (ledgerFetch): to the handlers of the run in scope, and when none
 * took it (no run in scope, as inside a streamed call), to the ledgers with a matching call in
 * flight. Never throws.
 */
export async function announceHttpAttempt(info: HttpAttemptInfo): Promise<void> {
  await dispatchLedgerEvent(HTTP_ATTEMPT, info).catch(() => {});
  if (claimed.has(info)) return;
  try {
    offerUnscopedAttempt(info);
  } catch {
    /* accounting never breaks the call */
  }
}
