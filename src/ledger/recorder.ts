/**
 * The ledger's state for one run: node attempts, calls in flight, buffered rows, the budget.
 * LedgerHandler instances forward callback events here; several instances can share one
 * recorder, and every event is applied once (keyed by run id / call id).
 *
 * Only the budget gate (chatModelStart, llmStart, embeddingStart) may throw, and only a
 * BudgetExceededError. Every other method catches its own errors into `problems`. Rows stay
 * buffered until a write succeeds; a failed write is retried at the next flush.
 */
import { describeError, classifyError, nodeFailureClass } from "./errors";
import type { Database } from "../db/client";
import type { NewLlmCall } from "../db/schema";
import { BudgetExceededError, isBudgetExceeded, scopeLabel, scopesFor, validateLimits, type BudgetLimits, type Charge, type Scope, type SoftCrossing } from "./budget";
import { BudgetStore, settleReservationsIn } from "./budget-store";

/** How long a call waits, in all, for calls in flight to free room in the budget. */
const GATE_WAIT_MS = 120_000;
/** How long a call's row may wait to share a write with the rows of calls ending just after it. */
const WRITE_SOON_MS = 20;
/** How often a waiting call looks again (calls of other processes settle without telling us). */
const GATE_POLL_MS = 100;
import { parseDecimal, formatUnits } from "./decimal";
import {
  fingerprintOf,
  markAttemptClaimed,
  registerAttemptSink,
  unregisterAttemptSink,
  CACHE_METADATA_KEY,
  type AttemptCandidate,
  type CacheStoredEvent,
  type CacheUse,
  type EmbeddingEndEvent,
  type EmbeddingErrorEvent,
  type EmbeddingStartEvent,
  type HttpAttemptInfo,
  type HttpAttemptSink,
  type RawUsage,
  type ReplyRejectedEvent,
  type TokenUsage,
} from "./events";
import { EXPECTED_CACHE_HIT_METADATA, KEEPS_RESULTS_METADATA } from "./replies";
import { cleanModelName, conservativeRate, COST_SCALE, costUnits, formatUsd, priceAvoided, priceCall, ratesForEstimate, unitsToUsd, type PriceBook } from "./pricing";
import { contentText, countTextTokens, estimateMessagesTokens } from "./tokens";
import { upsertCalls, upsertNodeRuns, type NewNodeRun } from "./writer";

export interface RecorderOptions {
  db: Database;
  runId: string;
  /** runs.workflow: the day and month budgets are the workflow's. */
  workflow: string;
  book: PriceBook;
  /** What the run spent before this ledger opened (a resumed run), counted against its budget. */
  alreadySpent?: Charge;
  budget?: BudgetLimits;
  /** What a chat call reserves for its output when it sets no max_tokens. */
  defaultMaxOutputTokens: number;
  now?: () => Date;
  /** Told when a budget passes its soft share or refuses a call (once per scope and run). */
  onBudgetEvent?: (event: BudgetEvent) => void;
}

/** A budget that passed its soft share (the run goes on) or refused a call (the run halts). */
export interface BudgetEvent {
  type: "soft_limit" | "hard_limit";
  scope: Scope;
  node: string;
  /** The halt reason, or a sentence with the figures for a soft limit. */
  message: string;
  /** Spent and reserved in the scope before this call, and what the call needed. */
  spentTokens: number;
  spentUsd: string;
  reservedTokens: number;
  needTokens: number;
}

export type AlertKind = "unknown_model" | "missing_usage" | "stream_interrupted" | "quota" | "budget" | "write_failed";

export interface LedgerAlert {
  kind: AlertKind;
  message: string;
  callId?: string;
  model?: string;
  node?: string;
}

interface NodeAttempt {
  id: string;
  node: string;
  taskNs: string;
  attempt: number;
  step: number | null;
  status: "running" | "ok" | "error";
  error: string | null;
  /** The status given to this attempt's successful calls when the attempt failed. */
  failureClass: string | null;
  /**
   * The node keeps each call's result as it returns (node metadata, see keepsResults()): a failed
   * attempt leaves its successful calls ok; only the replies it rejected (rejectReply) are wasted.
   */
  keepsResults: boolean;
  startedAt: Date;
  finishedAt: Date | null;
  rowIds: Set<string>;
}

interface CallState {
  id: string;
  kind: "chat" | "embedding";
  /** parentRunId and its ancestors, nearest first. */
  ancestors: string[];
  attemptRef: NodeAttempt | null;
  node: string;
  provider: string;
  requestModel: string | null;
  startedAt: Date;
  /** The local tokenizer's count of the input, computed once when first asked (it costs ~1 ms a call). */
  estimateInput: () => number;
  maxOutputTokens: number;
  fingerprint: string;
  streamed: boolean;
  streamedText: string;
  http: HttpAttemptInfo[];
  ended: boolean;
  /** The reply message's ids (response id, "run-<call id>"), for rejectReply. */
  replyIds: string[];
  /** fingerprintOf the reply text. */
  replyFingerprint: string;
  rejected: boolean;
}

type Usage = TokenUsage;

interface RowFields {
  id: string;
  attempt: number;
  status: string;
  httpStatus: number | null;
  error: string | null;
  /** provider usage; null with billedNothing false = missing. */
  usage: Usage | null;
  /** The provider answered with an error: nothing was billed (tokens 0). */
  billedNothing: boolean;
  responseModel: string | null;
  outputText: string;
  startedAt: Date;
  finishedAt: Date;
  providerCostUsd: string | null;
  streamed: boolean;
  /** The response cache served this call (hit: nothing billed) or was filled by it. */
  cache?: CacheUse | null;
}

export class LedgerWriteError extends Error {
  override name = "LedgerWriteError";
}

function once<T>(fn: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = fn();
      done = true;
    }
    return value;
  };
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const count = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : null);
const positiveInt = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined);
const NO_NODE = "(none)";
const ZERO_USAGE: Usage = { input: 0, cached: 0, output: 0, reasoning: 0, total: 0 };
const ZERO_USD = formatUnits(0n, COST_SCALE);
const isInternalNode = (node: string) => /^__.*__$/.test(node);

/** usage_metadata as LangChain gives it (details may be missing or undefined: 0). */
function usageFromMetadata(u: unknown): Usage | null {
  if (!u || typeof u !== "object") return null;
  const m = u as {
    input_tokens?: unknown;
    output_tokens?: unknown;
    total_tokens?: unknown;
    input_token_details?: { cache_read?: unknown };
    output_token_details?: { reasoning?: unknown };
  };
  return usageOf(count(m.input_tokens), count(m.output_tokens), count(m.input_token_details?.cache_read), count(m.output_token_details?.reasoning), count(m.total_tokens));
}

/** Usage from its counts; null when neither input nor output was reported. */
function usageOf(input: number | null, output: number | null, cached: number | null, reasoning: number | null, total: number | null): Usage | null {
  if (input === null && output === null) return null;
  const i = input ?? 0;
  const o = output ?? 0;
  return { input: i, output: o, cached: cached ?? 0, reasoning: reasoning ?? 0, total: total ?? i + o };
}

/** Raw OpenAI-style usage (chat completions or responses names). */
function usageFromRaw(u: RawUsage | undefined): Usage | null {
  if (!u) return null;
  return usageOf(
    count(u.prompt_tokens) ?? count(u.input_tokens),
    count(u.completion_tokens) ?? count(u.output_tokens),
    count(u.prompt_tokens_details?.cached_tokens) ?? count(u.input_tokens_details?.cached_tokens),
    count(u.completion_tokens_details?.reasoning_tokens) ?? count(u.output_tokens_details?.reasoning_tokens),
    count(u.total_tokens),
  );
}

/** A provider-reported cost (decimal text or a JSON number) as 12-decimal text. */
function normaliseCost(v: unknown): string | null {
  try {
    if (typeof v === "string" && v.trim() !== "") return formatUnits(parseDecimal(v, COST_SCALE, "half-up"), COST_SCALE);
    if (typeof v === "number" && Number.isFinite(v)) return formatUnits(parseDecimal(String(v), COST_SCALE, "half-up"), COST_SCALE);
  } catch {
    /* not a number: ignored */
  }
  return null;
}

/** A cache hit as the response cache marks the reply (response_metadata) or an embeddings event carries it. */
function cacheUseOf(v: unknown): CacheUse | null {
  if (!v || typeof v !== "object") return null;
  const c = v as Partial<CacheUse>;
  if (typeof c.key !== "string" || c.key === "" || typeof c.hit !== "boolean") return null;
  return { key: c.key, hit: c.hit, model: str(c.model) ?? null, avoided: c.hit ? usageFromMetadata(tokenDetails(c.avoided)) : null };
}

/** TokenUsage in usage_metadata's shape (so one parser checks both). */
function tokenDetails(u: TokenUsage | null | undefined): unknown {
  if (!u || typeof u !== "object") return null;
  return { input_tokens: u.input, output_tokens: u.output, total_tokens: u.total, input_token_details: { cache_read: u.cached }, output_token_details: { reasoning: u.reasoning } };
}

/** A call with no HTTP attempt in flight (a call's attempts are sequential). */
const isFree = (c: CallState) => c.http.every((a) => a.finishedAt !== undefined);

function httpClass(status: number, code?: string, message?: string): string {
  if (code === "insufficient_quota" || (status === 429 && /quota/i.test(message ?? ""))) return "quota";
  if (code === "context_length_exceeded") return "context_overflow";
  return `http_${status}`;
}

export class Recorder implements HttpAttemptSink {
  readonly runId: string;
  readonly book: PriceBook;
  readonly workflow: string;
  private readonly limits: BudgetLimits;
  private readonly store: BudgetStore;
  private readonly onBudgetEvent: ((event: BudgetEvent) => void) | undefined;
  /** Whether any scope has a limit (else calls reserve nothing in the database). */
  private readonly limited: boolean;
  /** Set by the first refusal; every later call is refused with it too (a halted run stops spending). */
  private halt: string | null = null;
  private spentTokens = 0;
  private spentUnits = 0n;
  /** What each call in flight reserved (a call with unknown usage is charged it). */
  private readonly reservations = new Map<string, Charge>();
  /** Settled charges whose counters are updated with the next write of the rows. */
  private readonly settlements = new Map<string, Charge>();
  private settledWaiters: (() => void)[] = [];
  /** Gates in progress by call id: a second handler instance on the same call waits for the first. */
  private readonly gates = new Map<string, Promise<void>>();
  private readonly budgetEventsSent = new Set<string>();
  private readonly db: Database;
  private readonly defaultMaxOutputTokens: number;
  private readonly now: () => Date;

  /** Chain/tool/retriever run id → parent run id. */
  private readonly parents = new Map<string, string | undefined>();
  private readonly nodeAttempts = new Map<string, NodeAttempt>();
  private readonly attemptsByNs = new Map<string, number>();
  private readonly calls = new Map<string, CallState>();
  /** Calls started and not yet ended (what an HTTP attempt can belong to). */
  private readonly openCalls = new Set<CallState>();
  private readonly seenAttempts = new Set<string>();
  /** Ended chat calls by the ids of their reply message (a provider may repeat an id). */
  private readonly callsByReplyId = new Map<string, CallState[]>();
  /** Registered for unscoped HTTP attempts while chat calls are in flight. */
  private sinkRef: WeakRef<HttpAttemptSink> | null = null;

  private readonly rows = new Map<string, NewLlmCall>();
  private readonly versions = new Map<string, number>();
  private readonly dirtyCalls = new Set<string>();
  private readonly dirtyNodes = new Set<string>();
  private writeChain: Promise<unknown> = Promise.resolve();
  private soon: NodeJS.Timeout | null = null;
  private lastWriteError: unknown = null;

  private readonly unpriced = new Set<string>();
  private readonly alertList: LedgerAlert[] = [];
  readonly problems: string[] = [];

  constructor(options: RecorderOptions) {
    this.db = options.db;
    this.runId = options.runId;
    this.book = options.book;
    this.workflow = options.workflow;
    this.limits = options.budget ?? {};
    validateLimits(this.limits);
    this.limited = scopesFor({ workflow: "", runId: "", node: "", at: new Date(0) }, this.limits).some((s) => s.limit);
    this.store = new BudgetStore(options.db, { softRatio: this.limits.softRatio, timeZone: this.limits.timeZone ?? "UTC" });
    this.onBudgetEvent = options.onBudgetEvent;
    this.spentTokens = options.alreadySpent?.tokens ?? 0;
    this.spentUnits = options.alreadySpent?.usdUnits ?? 0n;
    this.defaultMaxOutputTokens = options.defaultMaxOutputTokens;
    this.now = options.now ?? (() => new Date());
  }

  // ---- reading ----------------------------------------------------------------------------

  get haltReason(): string | null {
    return this.halt;
  }

  spent(): { tokens: number; usd: string } {
    return { tokens: this.spentTokens, usd: unitsToUsd(this.spentUnits) };
  }

  unpricedModels(): string[] {
    return [...this.unpriced].sort();
  }

  alerts(): LedgerAlert[] {
    return [...this.alertList];
  }

  /** Rows buffered but not yet written. */
  pendingWrites(): number {
    return this.dirtyCalls.size + this.dirtyNodes.size;
  }

  private wakeWaiters(): void {
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Why no further call can fit a budget shared with other runs (day, month), or null. */
  async exhausted(): Promise<string | null> {
    if (this.halt) return this.halt;
    const scopes = scopesFor({ workflow: this.workflow, runId: this.runId, node: "", at: this.now() }, this.limits).filter((s) => s.kind !== "node");
    return this.store.exhausted(scopes);
  }

  /** Frees what calls that never reached the provider still hold in the budget counters. */
  async releaseReservations(): Promise<void> {
    await this.store.releaseRun(this.runId);
  }

  // ---- guarding ---------------------------------------------------------------------------

  /** Runs a non-gate step; its errors become `problems`, never exceptions. */
  guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.problem(what, err);
    }
  }

  /** Runs a gate step: a BudgetExceededError propagates (it stops the call), anything else becomes a problem. */
  async gate(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (isBudgetExceeded(err)) throw err;
      this.problem(what, err);
    }
  }

  /**
   * Reserves `need` for call `id` in every budget that applies, or throws BudgetExceededError.
   * While a budget has room but calls in flight (of any process) hold it, waits for them to
   * settle and tries again (at most GATE_WAIT_MS in all, then the run halts).
   */
  private async reserve(id: string, node: string, need: Charge, label: string): Promise<void> {
    if (!this.limited) {
      // No limit anywhere: nothing to hold, and no database round trip in front of the call.
      this.reservations.set(id, need);
      return;
    }
    const deadline = Date.now() + GATE_WAIT_MS;
    for (;;) {
      if (this.halt) throw new BudgetExceededError(this.halt);
      const scopes = scopesFor({ workflow: this.workflow, runId: this.runId, node, at: this.now() }, this.limits);
      let decision;
      try {
        decision = await this.store.reserve(id, this.runId, node, scopes, need, label);
      } catch (err) {
        // Without the shared counters no budget can be held: a limited run stops rather than overspend.
        if (!scopes.some((s) => s.limit)) {
          this.problem("reserving a budget", err);
          this.reservations.set(id, need);
          return;
        }
        this.halt ??= `budget: the budget counters could not be read (${describeError(err)}); no further call is sent`;
        this.alert({ kind: "budget", message: this.halt, node });
        throw new BudgetExceededError(this.halt);
      }
      if (decision.verdict === "ok") {
        this.reservations.set(id, need);
        for (const crossing of decision.overSoft) this.softLimit(crossing, node, need);
        return;
      }
      if (decision.verdict === "refuse") {
        this.halt ??= decision.reason;
        this.alert({ kind: "budget", message: decision.reason, node });
        this.budgetEvent("hard_limit", decision.scope, node, decision.reason, need);
        throw new BudgetExceededError(this.halt);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.halt ??= `budget: waited ${GATE_WAIT_MS / 1000} s for calls in flight (of this or other runs) to settle; ${label} needs ~${need.tokens} tokens`;
        this.alert({ kind: "budget", message: this.halt, node });
        const held = scopes.find((s) => s.limit) ?? scopes[0]!;
        this.budgetEvent("hard_limit", held, node, this.halt, need);
        throw new BudgetExceededError(this.halt);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.settledWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(left, GATE_POLL_MS)))),
      ]);
      clearTimeout(timer);
    }
  }

  private softLimit(crossing: SoftCrossing, node: string, need: Charge): void {
    const { scope, counter } = crossing;
    const limit = scope.limit!;
    const parts: string[] = [];
    if (limit.tokens !== undefined) parts.push(`${counter.spentTokens + counter.reservedTokens + need.tokens} of ${limit.tokens} tokens`);
    if (limit.usdUnits !== undefined) parts.push(`$${formatUsd(counter.spentUnits + counter.reservedUnits + need.usdUnits)} of $${limit.usdText}`);
    const share = Math.round((this.limits.softRatio ?? 0.8) * 100);
    this.budgetEvent("soft_limit", scope, node, `${scopeLabel(scope, this.limits.timeZone ?? "UTC")} passed ${share}% of its budget: ${parts.join(", ")} spent or reserved`, need, counter);
  }

  private budgetEvent(type: BudgetEvent["type"], scope: Scope, node: string, message: string, need: Charge, counter?: SoftCrossing["counter"]): void {
    const once = `${type}:${scope.key}`;
    if (!this.onBudgetEvent || this.budgetEventsSent.has(once)) return;
    this.budgetEventsSent.add(once);
    try {
      this.onBudgetEvent({
        type,
        scope,
        node,
        message,
        spentTokens: counter?.spentTokens ?? this.spentTokens,
        spentUsd: unitsToUsd(counter?.spentUnits ?? this.spentUnits),
        reservedTokens: counter?.reservedTokens ?? 0,
        needTokens: need.tokens,
      });
    } catch (err) {
      this.problem("budget event listener", err);
    }
  }

  /** Runs a call's gate once, however many handler instances report the call. */
  async gateOnce(id: string, what: string, fn: () => Promise<void>): Promise<void> {
    const running = this.gates.get(id);
    if (running) return running;
    const gate = this.gate(what, fn).finally(() => this.gates.delete(id));
    this.gates.set(id, gate);
    return gate;
  }

  async guardAsync(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.problem(what, err);
    }
  }

  private problem(what: string, err: unknown): void {
    const text = `${what}: ${describeError(err)}`;
    if (this.problems.length < 200) this.problems.push(text);
  }

  private alert(a: LedgerAlert): void {
    if (this.alertList.length < 1000) this.alertList.push(a);
  }

  // ---- chains and node attempts -------------------------------------------------------------

  private nodeAttemptFor(runId: string | undefined): NodeAttempt | null {
    let id = runId;
    for (let hops = 0; id !== undefined && hops < 200; hops++) {
      const attempt = this.nodeAttempts.get(id);
      if (attempt) return attempt;
      id = this.parents.get(id);
    }
    return null;
  }

  private ancestorsOf(runId: string | undefined): string[] {
    const out: string[] = [];
    let id = runId;
    for (let hops = 0; id !== undefined && hops < 200; hops++) {
      out.push(id);
      id = this.parents.get(id);
    }
    return out;
  }

  /** Any run that can parent a model call (chain, tool, retriever). */
  runStart(runId: string, parentRunId: string | undefined): void {
    if (!this.parents.has(runId)) this.parents.set(runId, parentRunId);
  }

  chainStart(runId: string, parentRunId: string | undefined, metadata: Record<string, unknown> | undefined, runName: string | undefined): void {
    if (this.parents.has(runId)) return;
    this.parents.set(runId, parentRunId);
    const node = str(metadata?.langgraph_node);
    if (!node || runName !== node || isInternalNode(node)) return;
    const ns = str(metadata?.langgraph_checkpoint_ns) ?? str(metadata?.checkpoint_ns) ?? runId;
    // A runnable inside the node that happens to carry the node's name is not a new attempt.
    const enclosing = this.nodeAttemptFor(parentRunId);
    if (enclosing && enclosing.taskNs === ns) return;
    const attempt = (this.attemptsByNs.get(ns) ?? 0) + 1;
    this.attemptsByNs.set(ns, attempt);
    const step = metadata?.langgraph_step;
    const na: NodeAttempt = {
      id: runId,
      node,
      taskNs: ns,
      attempt,
      step: typeof step === "number" && Number.isInteger(step) ? step : null,
      status: "running",
      error: null,
      failureClass: null,
      keepsResults: metadata?.[KEEPS_RESULTS_METADATA] === true,
      startedAt: this.now(),
      finishedAt: null,
      rowIds: new Set(),
    };
    this.nodeAttempts.set(runId, na);
    this.markNode(runId);
  }

  /** Returns true when the chain was a node attempt or the root run: a moment to flush. */
  chainEnd(runId: string, parentRunId: string | undefined): boolean {
    const na = this.nodeAttempts.get(runId);
    if (na) {
      if (na.status === "running") {
        na.status = "ok";
        na.finishedAt = this.now();
        this.markNode(runId);
      }
      return true;
    }
    this.parents.delete(runId);
    return parentRunId === undefined;
  }

  chainError(err: unknown, runId: string, parentRunId: string | undefined): boolean {
    const na = this.nodeAttempts.get(runId);
    if (!na) {
      this.parents.delete(runId);
      return parentRunId === undefined;
    }
    if (na.status !== "running") return true;
    na.finishedAt = this.now();
    const name = (err as { name?: unknown })?.name;
    if (name === "ParentCommand") {
      // A Command to the parent graph is how the node returns: its result is used.
      na.status = "ok";
    } else {
      na.status = "error";
      na.error = describeError(err);
      na.failureClass = nodeFailureClass(err);
      // Calls that succeeded inside a failed attempt billed tokens whose result was thrown away,
      // unless the node keeps its results (then only the replies it rejected are wasted).
      if (!na.keepsResults) for (const id of na.rowIds) {
        const row = this.rows.get(id);
        if (row && row.status === "ok") {
          row.status = na.failureClass;
          row.error = `node attempt failed: ${na.error}`;
          this.markCall(id);
        }
      }
    }
    this.markNode(runId);
    return true;
  }

  // ---- chat calls --------------------------------------------------------------------------

  /** The gate. Throws BudgetExceededError when the call would break a limit; nothing is recorded then. */
  /** Registers a call that has passed the gate, with nothing of its outcome known yet. */
  private openCall(fields: Omit<CallState, "streamed" | "streamedText" | "http" | "ended" | "replyIds" | "replyFingerprint" | "rejected">): CallState {
    const call: CallState = { ...fields, streamed: false, streamedText: "", http: [], ended: false, replyIds: [], replyFingerprint: "", rejected: false };
    this.calls.set(call.id, call);
    this.openCalls.add(call);
    call.attemptRef?.rowIds.add(call.id);
    return call;
  }

  async chatStart(
    llm: unknown,
    messages: readonly unknown[],
    runId: string,
    parentRunId: string | undefined,
    extraParams: Record<string, unknown> | undefined,
    metadata: Record<string, unknown> | undefined,
  ): Promise<void> {
    if (this.calls.has(runId)) return;
    const now = this.now();
    const na = this.nodeAttemptFor(parentRunId);
    const node = na?.node ?? str(metadata?.langgraph_node) ?? NO_NODE;
    const inv = (extraParams?.invocation_params ?? {}) as Record<string, unknown>;
    const kwargs = ((llm as { kwargs?: Record<string, unknown> } | undefined)?.kwargs ?? {}) as Record<string, unknown>;
    const requestModel = str(inv.model) ?? str(inv.model_name) ?? str(metadata?.ls_model_name) ?? str(kwargs.model) ?? str(kwargs.model_name) ?? null;
    const maxOutputTokens =
      positiveInt(inv.max_tokens) ??
      positiveInt(inv.max_completion_tokens) ??
      positiveInt(inv.max_output_tokens) ??
      positiveInt(metadata?.ls_max_tokens) ??
      this.defaultMaxOutputTokens;
    const list = messages;
    let fingerprint = "";
    try {
      const last = list[list.length - 1] as { content?: unknown } | string | undefined;
      fingerprint = fingerprintOf(typeof last === "string" ? last : last?.content);
    } catch (err) {
      this.problem("fingerprinting a chat call", err);
    }
    // Counted when a budget needs it now, or later if the provider reports no usage.
    const estimateInput = once(() => {
      try {
        return estimateMessagesTokens(list, requestModel, inv.tools ?? inv.functions);
      } catch (err) {
        this.problem("estimating a chat call", err);
        return Math.ceil(JSON.stringify(list ?? "").length / 3);
      }
    });
    // A call its caller knows to be a cache hit bills nothing: it needs no room in any budget.
    const expectedHit = metadata?.[EXPECTED_CACHE_HIT_METADATA] === true;
    if (this.limited && !expectedHit) {
      const estimatedInputTokens = estimateInput();
      let need: Charge;
      try {
        const { rates } = ratesForEstimate(this.book, requestModel, now);
        need = {
          tokens: estimatedInputTokens + maxOutputTokens,
          usdUnits: costUnits({ inputTokens: estimatedInputTokens, outputTokens: maxOutputTokens }, rates),
        };
      } catch (err) {
        this.problem("pricing a chat estimate", err);
        need = { tokens: estimatedInputTokens + maxOutputTokens, usdUnits: costUnits({ inputTokens: estimatedInputTokens, outputTokens: maxOutputTokens }, conservativeRate(this.book)) };
      }
      await this.reserve(runId, node, need, `${node} call`);
    } else if (this.halt && !expectedHit) {
      throw new BudgetExceededError(this.halt);
    }
    this.openCall({
      id: runId,
      kind: "chat",
      ancestors: this.ancestorsOf(parentRunId),
      attemptRef: na,
      node,
      provider: str(metadata?.ls_provider) ?? "unknown",
      requestModel,
      startedAt: now,
      estimateInput,
      maxOutputTokens,
      fingerprint,
    });
    this.sinkRef ??= registerAttemptSink(this);
  }

  newToken(runId: string, token: string): void {
    const call = this.calls.get(runId);
    if (!call || call.ended) return;
    call.streamed = true;
    if (call.streamedText.length < 200_000) call.streamedText += token;
  }

  /**
   * An HTTP attempt seen by ledgerFetch; `runId` is the run in whose context fetch ran. When no
   * call of this ledger is open under that run, the attempt is left unclaimed: it is then offered
   * by request (candidateFor) to every ledger with calls in flight.
   */
  httpAttempt(info: HttpAttemptInfo, runId: string): void {
    if (!info || typeof info !== "object" || !info.id) return;
    if (this.seenAttempts.has(info.id)) return;
    const open = [...this.openCalls].filter((c) => c.kind === "chat" && !c.ended && (c.id === runId || c.ancestors.includes(runId)));
    if (open.length === 0) return;
    let pick: CallState | undefined = open.length === 1 ? open[0] : undefined;
    if (!pick) {
      const same = open.filter((c) => c.fingerprint === info.fingerprint);
      const pool = same.length > 0 ? same : open;
      // The oldest call with no attempt in flight; HTTP attempts of one call are sequential.
      pick = pool.find(isFree) ?? pool[0];
    }
    this.takeAttempt(pick!, info);
  }

  private takeAttempt(call: CallState, info: HttpAttemptInfo): void {
    this.seenAttempts.add(info.id);
    call.http.push(info);
    markAttemptClaimed(info);
  }

  /**
   * An HTTP attempt made with no run in scope (a streamed call): this ledger's open chat call that
   * sent that request, if any. exact: the request's last message and model match the call's;
   * otherwise only a lone open chat call is offered (and taken only if it is the only one anywhere).
   */
  candidateFor(info: HttpAttemptInfo): AttemptCandidate | null {
    if (!info || typeof info !== "object" || !info.id || this.seenAttempts.has(info.id)) return null;
    const open = [...this.openCalls].filter(
      (c) => c.kind === "chat" && !c.ended && (c.requestModel === null || info.requestModel === null || c.requestModel === info.requestModel),
    );
    const same = open.filter((c) => c.fingerprint === info.fingerprint);
    const pool = same.length > 0 ? same : open.length === 1 ? open : [];
    if (pool.length === 0) return null;
    // Oldest first (openCalls keeps insertion order); one with no attempt in flight first.
    const call = pool.find(isFree) ?? pool[0]!;
    return {
      exact: same.length > 0,
      free: isFree(call),
      startedAt: call.startedAt.getTime(),
      claim: () => this.guard("http attempt", () => this.takeAttempt(call, info)),
    };
  }

  unmatched(info: HttpAttemptInfo): void {
    if ([...this.openCalls].some((c) => c.kind === "chat")) {
      this.problem("http attempt", new Error(`an HTTP attempt to ${info?.path} matched no open chat call`));
    }
  }

  chatEnd(output: unknown, runId: string): void {
    const call = this.calls.get(runId);
    if (!call || call.ended) return;
    call.ended = true;
    const finishedAt = this.now();
    const charges: Charge[] = this.hiddenAttempts(call);
    const gen = (output as { generations?: unknown[][] })?.generations?.[0]?.[0] as
      | { text?: string; message?: Record<string, unknown>; generationInfo?: Record<string, unknown> }
      | undefined;
    const msg = gen?.message as
      | { usage_metadata?: unknown; response_metadata?: Record<string, unknown>; content?: unknown }
      | undefined;
    const meta = (msg?.response_metadata ?? {}) as Record<string, unknown>;
    const info = gen?.generationInfo ?? {};
    const last = call.http[call.http.length - 1];
    const usage = usageFromMetadata(msg?.usage_metadata) ?? usageFromRaw(last?.usage);
    const responseModel = cleanModelName(last?.responseModel ?? str(meta.model_name) ?? str(meta.model) ?? str(info.model_name));
    const finish = str(meta.finish_reason) ?? str(info.finish_reason) ?? (meta.status === "completed" ? "completed" : undefined);
    // Served from the response cache: core replays the text as one token; nothing was sent or streamed.
    const cacheHit = call.http.length === 0 ? cacheUseOf(meta[CACHE_METADATA_KEY]) : null;
    const hit = cacheHit?.hit === true ? cacheHit : null;
    const streamed = !hit && (call.streamed || last?.stream === true);
    let status = "ok";
    let error: string | null = null;
    if (streamed && !usage && !finish && !last?.sawDone) {
      status = "stream_interrupted";
      error = "the stream ended without a finish reason or usage";
    }
    const text = typeof gen?.text === "string" && gen.text !== "" ? gen.text : contentText(msg?.content).text || call.streamedText;
    this.indexReply(call, [(msg as { id?: unknown } | undefined)?.id, meta.id, `run-${call.id}`], text);
    const rawCost = (meta.usage as { cost?: unknown } | undefined)?.cost;
    charges.push(
      this.putRow(call, {
        id: call.id,
        attempt: Math.max(1, call.http.length),
        status,
        httpStatus: last?.status ?? null,
        error,
        usage,
        billedNothing: false,
        responseModel,
        outputText: text,
        startedAt: last ? new Date(last.startedAt) : call.startedAt,
        finishedAt,
        providerCostUsd: hit ? null : (normaliseCost(last?.providerCostUsd) ?? normaliseCost(rawCost)),
        streamed,
        cache: hit,
      }),
    );
    this.settle(call, charges);
  }

  private indexReply(call: CallState, ids: unknown[], text: string): void {
    call.replyFingerprint = fingerprintOf(text);
    for (const id of ids) {
      if (typeof id !== "string" || id === "" || call.replyIds.includes(id)) continue;
      call.replyIds.push(id);
      const list = this.callsByReplyId.get(id);
      if (list) list.push(call);
      else this.callsByReplyId.set(id, [call]);
    }
  }

  /**
   * A node rejected a reply (rejectReply): the call that produced it becomes parse_error, its
   * tokens wasted. Found by the message id among the calls under the run in scope (the node
   * attempt), the reply text breaking ties; without an id, by the text alone.
   */
  replyRejected(data: ReplyRejectedEvent, runId: string): void {
    if (!data || typeof data !== "object") return;
    const call = this.replyCall(data, runId);
    if (!call) {
      this.problem("reply rejected", new Error(`no call of this run produced the rejected reply ${data.messageIds?.join(", ") || `"${data.fingerprint.slice(0, 60)}"`}`));
      return;
    }
    call.rejected = true;
    const row = this.rows.get(call.id);
    if (row && row.status === "ok") {
      row.status = str(data.status) ?? "parse_error";
      row.error = `reply rejected: ${data.reason}`;
      this.markCall(row.id);
    }
  }

  /** The response cache stored the reply of an ended call: its row names the entry it filled. */
  cacheStored(data: CacheStoredEvent, runId: string): void {
    if (!data || typeof data !== "object" || typeof data.key !== "string") return;
    const call = this.replyCall(data, runId);
    const row = call ? this.rows.get(call.id) : undefined;
    if (!row) {
      this.problem("cache stored", new Error(`no call of this run produced the cached reply ${data.messageIds?.join(", ") || `"${data.fingerprint.slice(0, 60)}"`}`));
      return;
    }
    row.cacheKey = data.key;
    this.markCall(row.id);
  }

  /** The ended chat call that produced a reply, by message id (under the run in scope), the text breaking ties. */
  private replyCall(data: { messageIds?: string[]; fingerprint: string }, runId: string): CallState | undefined {
    const under = (c: CallState) => c.id === runId || c.ancestors.includes(runId);
    const byId = [...new Set((data.messageIds ?? []).flatMap((id) => this.callsByReplyId.get(id) ?? []))];
    let pool = byId.length > 0 ? byId : [...this.calls.values()].filter((c) => c.kind === "chat" && c.ended && under(c) && c.replyFingerprint === data.fingerprint);
    if (pool.length > 1) pool = pool.filter(under).length > 0 ? pool.filter(under) : pool;
    if (pool.length > 1) pool = pool.filter((c) => c.replyFingerprint === data.fingerprint).length > 0 ? pool.filter((c) => c.replyFingerprint === data.fingerprint) : pool;
    if (pool.length > 1) pool = pool.filter((c) => !c.rejected).length > 0 ? pool.filter((c) => !c.rejected) : pool;
    // Still several: identical replies to the same request in one attempt; the latest is the one just read.
    return pool[pool.length - 1];
  }

  chatError(err: unknown, runId: string): void {
    const call = this.calls.get(runId);
    if (!call || call.ended) return;
    call.ended = true;
    const finishedAt = this.now();
    const charges: Charge[] = this.hiddenAttempts(call);
    const last = call.http[call.http.length - 1];
    const c = classifyError(err);
    const httpStatus = c.httpStatus ?? (last?.status !== undefined && last.status >= 400 ? last.status : null);
    let status: string = c.status;
    if (httpStatus !== null && (status === "error" || status === `http_${httpStatus}`)) {
      status = httpClass(httpStatus, last?.errorCode, last?.errorMessage);
    }
    const streamed = call.streamed || (last?.stream === true && last.status !== undefined && last.status < 400);
    if (streamed && (status === "error" || (status === "aborted" && last?.streamError !== undefined && !/cancel/i.test(last.streamError)))) {
      status = "stream_interrupted";
    }
    const billedNothing = httpStatus !== null && httpStatus >= 400;
    charges.push(
      this.putRow(call, {
        id: call.id,
        attempt: Math.max(1, call.http.length),
        status,
        httpStatus: httpStatus ?? last?.status ?? null,
        error: c.message,
        usage: billedNothing ? null : usageFromRaw(last?.usage),
        billedNothing,
        responseModel: cleanModelName(last?.responseModel),
        outputText: call.streamedText,
        startedAt: last ? new Date(last.startedAt) : call.startedAt,
        finishedAt,
        providerCostUsd: normaliseCost(last?.providerCostUsd),
        streamed,
      }),
    );
    if (status === "quota") this.alert({ kind: "quota", message: `provider quota exhausted: ${c.message}`, callId: call.id, node: call.node });
    this.settle(call, charges);
  }

  /** Rows for the HTTP attempts before the last one: retries inside the client. */
  private hiddenAttempts(call: CallState): Charge[] {
    const charges: Charge[] = [];
    for (let i = 0; i < call.http.length - 1; i++) {
      const a = call.http[i]!;
      let status: string;
      let error: string | null = null;
      let billedNothing = false;
      let usage: Usage | null = null;
      if (a.status !== undefined && a.status >= 400) {
        status = httpClass(a.status, a.errorCode, a.errorMessage);
        error = a.errorMessage ?? null;
        billedNothing = true;
      } else if (a.networkError) {
        status = classifyError({ name: a.networkError.name, message: a.networkError.message }).status;
        error = `${a.networkError.name}: ${a.networkError.message}`;
      } else {
        usage = usageFromRaw(a.usage);
        status = a.streamError ? "stream_interrupted" : "error";
        error = a.streamError ?? "the client retried after this attempt";
      }
      charges.push(
        this.putRow(call, {
          id: `${call.id}:${i + 1}`,
          attempt: i + 1,
          status,
          httpStatus: a.status ?? null,
          error,
          usage,
          billedNothing,
          responseModel: cleanModelName(a.responseModel),
          outputText: "",
          startedAt: new Date(a.startedAt),
          finishedAt: new Date(a.finishedAt ?? a.startedAt),
          providerCostUsd: normaliseCost(a.providerCostUsd),
          streamed: a.stream,
        }),
      );
    }
    return charges;
  }

  // ---- embeddings --------------------------------------------------------------------------

  async embeddingStart(data: EmbeddingStartEvent, runId: string, metadata: Record<string, unknown> | undefined): Promise<void> {
    if (!data || typeof data.callId !== "string" || this.calls.has(data.callId)) return;
    const now = this.now();
    const na = this.nodeAttemptFor(runId);
    const node = na?.node ?? str(metadata?.langgraph_node) ?? NO_NODE;
    const estimated = count(data.estimatedInputTokens) ?? 0;
    const model = str(data.model) ?? null;
    let usdUnits: bigint;
    try {
      usdUnits = costUnits({ inputTokens: estimated, outputTokens: 0 }, ratesForEstimate(this.book, model, now).rates);
    } catch (err) {
      this.problem("pricing an embedding estimate", err);
      usdUnits = costUnits({ inputTokens: estimated, outputTokens: 0 }, conservativeRate(this.book));
    }
    await this.reserve(data.callId, node, { tokens: estimated, usdUnits }, `${node} embedding call`);
    this.openCall({
      id: data.callId,
      kind: "embedding",
      ancestors: this.ancestorsOf(runId),
      attemptRef: na,
      node,
      provider: str(data.provider) ?? "unknown",
      requestModel: model,
      startedAt: typeof data.startedAt === "number" ? new Date(data.startedAt) : now,
      estimateInput: () => estimated,
      maxOutputTokens: 0,
      fingerprint: "",
    });
  }

  embeddingEnd(data: EmbeddingEndEvent): void {
    const call = data ? this.calls.get(data.callId) : undefined;
    if (!call || call.ended) return;
    call.ended = true;
    const http = typeof data.httpStatus === "number" ? data.httpStatus : null;
    const failed = http !== null && http >= 400;
    const tokens = count(data.inputTokens);
    const status = failed ? httpClass(http, data.errorCode) : "ok";
    const charge = this.putRow(call, {
      id: call.id,
      attempt: 1,
      status,
      httpStatus: http,
      error: failed ? `HTTP ${http}${data.errorCode ? ` (${data.errorCode})` : ""}` : null,
      usage: !failed && tokens !== null ? { input: tokens, cached: 0, output: 0, reasoning: 0, total: tokens } : null,
      billedNothing: failed,
      responseModel: cleanModelName(data.responseModel),
      outputText: "",
      startedAt: call.startedAt,
      finishedAt: typeof data.finishedAt === "number" ? new Date(data.finishedAt) : this.now(),
      providerCostUsd: normaliseCost(data.providerCostUsd),
      streamed: false,
      cache: failed ? null : cacheUseOf(data.cache),
    });
    if (status === "quota") this.alert({ kind: "quota", message: "provider quota exhausted (embeddings)", callId: call.id, node: call.node });
    this.settle(call, [charge]);
  }

  embeddingError(data: EmbeddingErrorEvent): void {
    const call = data ? this.calls.get(data.callId) : undefined;
    if (!call || call.ended) return;
    call.ended = true;
    const http = typeof data.httpStatus === "number" ? data.httpStatus : null;
    const billedNothing = http !== null && http >= 400;
    const charge = this.putRow(call, {
      id: call.id,
      attempt: 1,
      status: str(data.status) ?? "error",
      httpStatus: http,
      error: str(data.error) ?? null,
      usage: null,
      billedNothing,
      responseModel: null,
      outputText: "",
      startedAt: call.startedAt,
      finishedAt: typeof data.finishedAt === "number" ? new Date(data.finishedAt) : this.now(),
      providerCostUsd: null,
      streamed: false,
    });
    if (data.status === "quota") this.alert({ kind: "quota", message: `provider quota exhausted: ${data.error}`, callId: call.id, node: call.node });
    this.settle(call, [charge]);
  }

  // ---- rows --------------------------------------------------------------------------------

  /** Builds, prices and buffers one call row; returns what it charges the budget. */
  private putRow(call: CallState, f: RowFields): Charge {
    const na = call.attemptRef;
    let status = f.status;
    let error = f.error;
    if (status === "ok" && na?.status === "error" && na.failureClass && !na.keepsResults) {
      status = na.failureClass;
      error = `node attempt failed: ${na.error}`;
    }
    // A cache hit bills nothing: 0 tokens, cost 0; what it avoided is priced apart (today's price).
    const hit = f.cache?.hit === true ? f.cache : null;
    const missing = f.usage === null && !f.billedNothing && !hit;
    const usage: Usage | null = hit ? ZERO_USAGE : (f.usage ?? (f.billedNothing ? ZERO_USAGE : null));
    const model = f.responseModel ?? cleanModelName(call.requestModel);
    const avoided = hit?.avoided ?? null;
    const avoidedPrice = hit
      ? priceAvoided({ model: hit.model ?? model, inputTokens: avoided?.input ?? null, cachedInputTokens: avoided?.cached ?? null, outputTokens: avoided?.output ?? null }, this.book, f.startedAt)
      : null;
    const priced = priceCall(
      {
        model: f.responseModel,
        requestModel: call.requestModel,
        inputTokens: usage?.input ?? null,
        cachedInputTokens: usage?.cached ?? null,
        outputTokens: usage?.output ?? null,
        at: f.startedAt,
      },
      this.book,
    );
    let estimatedOutput: number | null = null;
    if (missing) {
      try {
        estimatedOutput = call.kind === "embedding" ? 0 : countTextTokens(f.outputText ?? "", model);
      } catch (err) {
        this.problem("estimating output tokens", err);
        estimatedOutput = Math.ceil((f.outputText ?? "").length / 4);
      }
    }
    const row: NewLlmCall = {
      id: f.id,
      runId: this.runId,
      callId: call.id,
      nodeRunId: na?.id ?? null,
      node: call.node,
      nodeAttempt: na?.attempt ?? 1,
      attempt: f.attempt,
      kind: call.kind,
      provider: call.provider,
      requestModel: call.requestModel,
      model,
      inputTokens: usage?.input ?? null,
      cachedInputTokens: usage ? Math.min(usage.cached, usage.input) : null,
      outputTokens: usage?.output ?? null,
      reasoningTokens: usage ? Math.min(usage.reasoning, usage.output) : null,
      totalTokens: usage?.total ?? null,
      usageSource: hit ? "cache" : missing ? "missing" : f.billedNothing ? "none" : "provider",
      estimatedInputTokens: missing ? call.estimateInput() : null,
      estimatedOutputTokens: estimatedOutput,
      status,
      httpStatus: f.httpStatus,
      error,
      latencyMs: Math.max(0, f.finishedAt.getTime() - f.startedAt.getTime()),
      streamed: f.streamed,
      priceStatus: hit ? "ok" : priced.status,
      priceId: hit ? avoidedPrice!.priceId : priced.priceId,
      costUsd: hit ? ZERO_USD : priced.costUsd,
      providerCostUsd: f.providerCostUsd,
      avoidedInputTokens: avoided?.input ?? null,
      avoidedOutputTokens: avoided?.output ?? null,
      avoidedTotalTokens: avoided?.total ?? null,
      avoidedCostUsd: avoidedPrice?.costUsd ?? null,
      cacheKey: f.cache?.key ?? null,
      startedAt: f.startedAt,
      finishedAt: f.finishedAt,
    };
    this.rows.set(row.id, row);
    na?.rowIds.add(row.id);
    this.markCall(row.id);

    if (priced.status === "unknown_model" && priced.lookedUp && !hit) {
      if (!this.unpriced.has(priced.lookedUp)) {
        this.alert({ kind: "unknown_model", message: `no price for model "${priced.lookedUp}": cost recorded as NULL (unpriced), budget charged at the highest known rate`, model: priced.lookedUp, callId: call.id });
      }
      this.unpriced.add(priced.lookedUp);
    }
    if (missing) {
      this.alert({
        kind: status === "stream_interrupted" ? "stream_interrupted" : "missing_usage",
        message: `${call.node}: ${call.kind} call ${f.id} ended without usage (${status}); tokens recorded as NULL, estimated ${call.estimateInput()} in / ${estimatedOutput ?? 0} out`,
        callId: f.id,
        node: call.node,
      });
    }

    // What the budget is charged. A cache hit settles its reservation at 0.
    if (hit) return { tokens: 0, usdUnits: 0n };
    if (usage === null) return { tokens: -1, usdUnits: -1n }; // missing: the reservation is kept (see settle)
    const usdUnits =
      priced.costUnits ??
      costUnits({ inputTokens: usage.input, cachedInputTokens: 0, outputTokens: usage.output }, conservativeRate(this.book));
    return { tokens: usage.total, usdUnits };
  }

  /** Settles a call's reservation: real usage where known, the whole reservation where usage is missing. */
  private settle(call: CallState, charges: Charge[]): void {
    this.openCalls.delete(call);
    if (this.sinkRef && ![...this.openCalls].some((c) => c.kind === "chat")) {
      unregisterAttemptSink(this.sinkRef);
      this.sinkRef = null;
    }
    const reserved = this.reservations.get(call.id) ?? { tokens: call.estimateInput() + call.maxOutputTokens, usdUnits: 0n };
    let tokens = 0;
    let usdUnits = 0n;
    let missingCounted = false;
    for (const c of charges) {
      if (c.tokens < 0) {
        // Usage unknown: charge the conservative reservation (once per call).
        if (!missingCounted) {
          tokens += reserved.tokens;
          usdUnits += reserved.usdUnits;
          missingCounted = true;
        }
      } else {
        tokens += c.tokens;
        usdUnits += c.usdUnits;
      }
    }
    this.reservations.delete(call.id);
    this.spentTokens += tokens;
    this.spentUnits += usdUnits;
    if (this.limited) this.settlements.set(call.id, { tokens, usdUnits });
  }

  private markCall(id: string): void {
    this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
    this.dirtyCalls.add(id);
  }

  private markNode(id: string): void {
    this.versions.set(`node:${id}`, (this.versions.get(`node:${id}`) ?? 0) + 1);
    this.dirtyNodes.add(id);
  }

  private nodeRow(na: NodeAttempt): NewNodeRun {
    return {
      id: na.id,
      runId: this.runId,
      node: na.node,
      taskNs: na.taskNs,
      attempt: na.attempt,
      step: na.step,
      status: na.status,
      error: na.error,
      keepsResults: na.keepsResults,
      startedAt: na.startedAt,
      finishedAt: na.finishedAt,
    };
  }

  /**
   * Calls that started and never ended (a stream whose reader stopped early, a run that was cut
   * short). One that reached the provider is recorded with usage missing; one that never did
   * keeps only its reservation.
   */
  finalizePending(): void {
    for (const call of [...this.openCalls]) {
      if (call.ended) continue;
      if (call.http.length === 0 && !call.streamed) {
        this.problem("finalize", new Error(`${call.kind} call ${call.id} (${call.node}) started but never ended and never reached the provider`));
        continue;
      }
      call.ended = true;
      const charges = this.hiddenAttempts(call);
      const last = call.http[call.http.length - 1];
      charges.push(
        this.putRow(call, {
          id: call.id,
          attempt: Math.max(1, call.http.length),
          status: call.streamed || last?.stream ? "stream_interrupted" : "abandoned",
          httpStatus: last?.status ?? null,
          error: "the call never ended (its reader stopped or the run was cut short)",
          usage: usageFromRaw(last?.usage),
          billedNothing: false,
          responseModel: cleanModelName(last?.responseModel),
          outputText: call.streamedText,
          startedAt: last ? new Date(last.startedAt) : call.startedAt,
          finishedAt: this.now(),
          providerCostUsd: normaliseCost(last?.providerCostUsd),
          streamed: call.streamed || last?.stream === true,
        }),
      );
      this.settle(call, charges);
    }
  }

  // ---- writing -----------------------------------------------------------------------------

  /** Writes within WRITE_SOON_MS: rows of calls that end close together go in one transaction. */
  writeSoon(): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.write();
    }, WRITE_SOON_MS);
  }

  /** One write of every buffered row; resolves false (rows stay buffered) when it fails. */
  write(): Promise<boolean> {
    if (this.soon) {
      clearTimeout(this.soon);
      this.soon = null;
    }
    const run = async (): Promise<boolean> => {
      const nodeIds = [...this.dirtyNodes];
      const callIds = [...this.dirtyCalls];
      if (nodeIds.length === 0 && callIds.length === 0 && this.settlements.size === 0) return true;
      const nodeVersions = nodeIds.map((id) => this.versions.get(`node:${id}`));
      const callVersions = callIds.map((id) => this.versions.get(id));
      const settling = new Map(this.settlements);
      try {
        // The rows and the budget counters they settle change together, or not at all.
        await this.db.transaction(async (tx) => {
          if (nodeIds.length > 0) await upsertNodeRuns(tx, nodeIds.map((id) => this.nodeRow(this.nodeAttempts.get(id)!)));
          if (callIds.length > 0) await upsertCalls(tx, callIds.map((id) => ({ ...this.rows.get(id)! })));
          await settleReservationsIn(tx, settling);
        });
        nodeIds.forEach((id, i) => {
          if (this.versions.get(`node:${id}`) === nodeVersions[i]) this.dirtyNodes.delete(id);
        });
        callIds.forEach((id, i) => {
          if (this.versions.get(id) === callVersions[i]) this.dirtyCalls.delete(id);
        });
        for (const id of settling.keys()) this.settlements.delete(id);
        if (settling.size > 0) this.wakeWaiters();
        return true;
      } catch (err) {
        if (this.lastWriteError === null) {
          this.alert({ kind: "write_failed", message: `ledger rows could not be written (kept buffered, retried at the next flush): ${describeError(err)}` });
        }
        this.lastWriteError = err;
        this.problem("writing ledger rows", err);
        return false;
      }
    };
    const result = this.writeChain.then(run, run);
    this.writeChain = result.catch(() => false);
    return result;
  }

  /** Writes every buffered row, retrying; throws LedgerWriteError when rows remain unwritten. */
  async flush(options: { final?: boolean; attempts?: number; retryDelayMs?: number } = {}): Promise<void> {
    if (options.final !== false) this.guard("finalizing calls in flight", () => this.finalizePending());
    const attempts = Math.max(1, options.attempts ?? 3);
    for (let i = 0; i < attempts; i++) {
      if (await this.write()) {
        if (this.pendingWrites() === 0) return;
        continue;
      }
      if (i < attempts - 1) await new Promise((r) => setTimeout(r, (options.retryDelayMs ?? 100) * 2 ** i));
    }
    if (this.pendingWrites() > 0) {
      throw new LedgerWriteError(
        `${this.pendingWrites()} ledger row(s) for run ${this.runId} could not be written after ${attempts} attempt(s): ` +
          `${describeError(this.lastWriteError)}. They are still buffered; call flush() again once the database is back.`,
      );
    }
  }
}
