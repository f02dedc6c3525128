/**
 * The ledger of one run: a callback handler that records every model and embedding call of any
 * LangGraph/LangChain app as a priced row, and a budget gate in front of every call. It knows
 * nothing about the app it instruments.
 *
 *   const runId = await startRun(db, { workflow, trigger, provider, limits });
 *   const ledger = await Ledger.open({ db, runId, budget, defaultMaxOutputTokens });
 *   await graph.invoke(input, { callbacks: [ledger.handler] });   // models use ledgerFetch()
 *   // A node that keeps each call's result: addNode(name, fn, { metadata: keepsResults() }), and
 *   // rejectReply(message, err) for a reply it could not use (see replies.ts).
 *   await ledger.flush();
 *   await finishRun(db, runId, { status, haltReason: ledger.haltReason });
 */
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { llmCalls, runs } from "../db/schema";
import { parseDecimal } from "./decimal";
import { COST_SCALE } from "./pricing";
import type { BudgetLimits } from "./budget";
import { releaseAbandonedReservations } from "./budget-store";
import { LedgerHandler } from "./handler";
import { loadPriceBook } from "./price-book";
import type { PriceBook } from "./pricing";
import { Recorder, type BudgetEvent, type LedgerAlert } from "./recorder";

export interface LedgerOpenOptions {
  db: Database;
  /** An existing runs.id (see startRun). */
  runId: string;
  budget?: BudgetLimits;
  /** What a chat call reserves for its output when it sets no max_tokens / max_completion_tokens. */
  defaultMaxOutputTokens: number;
  /** A user price file (NEWSLEDGER_PRICES) added to the shipped table. */
  pricesFile?: string;
  /** Told when a budget passes its soft share or refuses a call (once per scope). */
  onBudgetEvent?: (event: BudgetEvent) => void;
}

export class Ledger {
  readonly runId: string;
  readonly handler: LedgerHandler;
  readonly book: PriceBook;
  private readonly recorder: Recorder;

  private constructor(recorder: Recorder) {
    this.recorder = recorder;
    this.runId = recorder.runId;
    this.book = recorder.book;
    this.handler = new LedgerHandler(recorder);
  }

  static async open(options: LedgerOpenOptions): Promise<Ledger> {
    const found = await options.db.select({ id: runs.id, workflow: runs.workflow }).from(runs).where(eq(runs.id, options.runId));
    if (found.length === 0) throw new Error(`Ledger.open: no run ${options.runId}; call startRun first`);
    if (!(Number.isInteger(options.defaultMaxOutputTokens) && options.defaultMaxOutputTokens > 0)) {
      throw new RangeError(`Ledger.open: defaultMaxOutputTokens must be a positive whole number, got ${options.defaultMaxOutputTokens}`);
    }
    const book = await loadPriceBook(options.db, options.pricesFile);
    // Calls in flight of runs that died (their process was killed) hold budget nobody will settle.
    await releaseAbandonedReservations(options.db);
    // A resumed run already spent something: its budget counts it.
    const [before] = await options.db
      .select({ tokens: sql<string | null>`sum(${llmCalls.totalTokens})`, usd: sql<string | null>`sum(${llmCalls.costUsd})` })
      .from(llmCalls)
      .where(eq(llmCalls.runId, options.runId));
    const alreadySpent = {
      tokens: Number(before?.tokens ?? 0),
      usdUnits: before?.usd ? parseDecimal(String(before.usd), COST_SCALE, "half-up") : 0n,
    };
    return new Ledger(
      new Recorder({
        db: options.db,
        runId: options.runId,
        workflow: found[0]!.workflow,
        book,
        onBudgetEvent: options.onBudgetEvent,
        budget: options.budget,
        defaultMaxOutputTokens: options.defaultMaxOutputTokens,
        alreadySpent,
      }),
    );
  }

  /** Another handler instance on the same state (events seen by both count once). */
  createHandler(): LedgerHandler {
    return new LedgerHandler(this.recorder);
  }

  /**
   * Writes every buffered row (retrying), after recording calls that never ended. Call it when
   * the run ends; `{ final: false }` writes without touching calls still in flight. Throws
   * LedgerWriteError when rows could not be written; they stay buffered for another flush().
   */
  async flush(options?: { final?: boolean }): Promise<void> {
    await this.recorder.flush(options);
    if (options?.final !== false) await this.recorder.releaseReservations();
  }

  /** Why no further call can fit the run's budget or one it shares with other runs (day, month); null while there is room. */
  exhausted(): Promise<string | null> {
    return this.recorder.exhausted();
  }

  /** Set when the budget refused a call: the limit and the figures. */
  get haltReason(): string | null {
    return this.recorder.haltReason;
  }

  /** What the run was charged: billed tokens and cost, with calls of unknown usage at their reservation and unknown models at the highest known rate. */
  spent(): { tokens: number; usd: string } {
    return this.recorder.spent();
  }

  /** Models that served calls without a price (their cost is NULL, not 0). */
  unpricedModels(): string[] {
    return this.recorder.unpricedModels();
  }

  /** Things a person should know: unknown models, calls without usage, interrupted streams, quota, refusals, failed writes. */
  alerts(): LedgerAlert[] {
    return this.recorder.alerts();
  }

  /** Internal errors the handler caught (it never lets them break a call). */
  problems(): string[] {
    return [...this.recorder.problems];
  }
}

export { LedgerHandler } from "./handler";
export { Recorder, LedgerWriteError, type LedgerAlert, type AlertKind, type BudgetEvent } from "./recorder";
export { BudgetExceededError, isBudgetExceeded, calendarPeriod, type BudgetLimits, type ScopeLimits, type Scope } from "./budget";
export { ledgerFetch } from "./fetch";
export { trackEmbeddingCall } from "./events";
export { KEEPS_RESULTS_METADATA, keepsResults, rejectReply, type ReplyMessage } from "./replies";
export { retryOn } from "./retry";
export { classifyError } from "./errors";
export { startRun, finishRun } from "./runs";
export { priceCall, conservativeRate, formatUsd, cleanModelName, type PriceBook, type PricedCall } from "./pricing";
export { loadPriceBook, loadPriceSources, seedPrices, readPriceBook, bookFromSources, PriceFileError } from "./price-book";
