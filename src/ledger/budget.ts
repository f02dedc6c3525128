/**
 * The run's budget: what was spent, what is reserved by calls in flight, and the gate that refuses
 * a call before it is sent. Tokens are counted as numbers (whole tokens), USD as BigInt units of
 * 10^-12 USD.
 */
import { stampRetryable } from "@langchain/core/errors";
import { formatUsd, unitsToUsd, usdToUnits } from "./pricing";

/** Thrown (by the ledger's handler, before a call is sent) when a call would break a budget. */
export class BudgetExceededError extends Error {
  override name = "BudgetExceededError";
  constructor(
    /** A reason a person can read, naming the limit and the figures, e.g. "run exceeded max tokens 3000 (spent 2950, next call needs ~420)". */
    readonly reason: string,
  ) {
    super(reason);
    // Never retried: not by the model client's AsyncCaller, not by LangGraph (see retryOn).
    stampRetryable(this, false);
  }
}

export function isBudgetExceeded(err: unknown): err is BudgetExceededError {
  return err instanceof Error && err.name === "BudgetExceededError";
}

export interface BudgetLimits {
  maxTokens?: number;
  /** USD; a number from the config is read as the decimal it was written as. */
  maxUsd?: number | string;
}

export interface Charge {
  tokens: number;
  /** 10^-12 USD. */
  usdUnits: bigint;
}

/**
 * Thrown by reserve() when a call would fit the budget but for what calls in flight have
 * reserved: the caller waits for `settled` and tries again, instead of halting a run that still
 * has room (their real usage is usually well under their reservation).
 */
export class BudgetWait extends Error {
  override name = "BudgetWait";
  constructor(readonly settled: Promise<void>) {
    super("waiting for calls in flight to settle before reserving");
  }
}

/**
 * Reservations are made synchronously (check and reserve with no await between), so calls that
 * start at the same time in one process cannot both slip under a limit.
 */
export class BudgetTracker {
  readonly maxTokens: number | undefined;
  readonly maxUsdUnits: bigint | undefined;
  private readonly maxUsdText: string | undefined;
  private spentTokens = 0;
  private spentUnits = 0n;
  private readonly reservations = new Map<string, Charge>();
  private settledWaiters: (() => void)[] = [];
  /** Set by the first refusal; every later call is refused with it too (a halted run stops spending). */
  haltReason: string | null = null;

  constructor(limits: BudgetLimits = {}, alreadySpent: Charge = { tokens: 0, usdUnits: 0n }) {
    this.spentTokens = alreadySpent.tokens;
    this.spentUnits = alreadySpent.usdUnits;
    if (limits.maxTokens !== undefined && !(Number.isInteger(limits.maxTokens) && limits.maxTokens > 0)) {
      throw new RangeError(`budget maxTokens must be a positive whole number, got ${limits.maxTokens}`);
    }
    this.maxTokens = limits.maxTokens;
    if (limits.maxUsd !== undefined) {
      // A number as a plain decimal: String(1e-7) would be "1e-7".
      this.maxUsdText = typeof limits.maxUsd === "number" ? limits.maxUsd.toFixed(12).replace(/\.?0+$/, "") : limits.maxUsd;
      this.maxUsdUnits = usdToUnits(this.maxUsdText);
      if (this.maxUsdUnits <= 0n) throw new RangeError(`budget maxUsd must be positive, got ${limits.maxUsd}`);
    }
  }

  get reservedTokens(): number {
    let t = 0;
    for (const r of this.reservations.values()) t += r.tokens;
    return t;
  }

  get reservedUnits(): bigint {
    let u = 0n;
    for (const r of this.reservations.values()) u += r.usdUnits;
    return u;
  }

  spent(): { tokens: number; usd: string; usdUnits: bigint } {
    return { tokens: this.spentTokens, usd: unitsToUsd(this.spentUnits), usdUnits: this.spentUnits };
  }

  hasReservation(id: string): boolean {
    return this.reservations.has(id);
  }

  /**
   * Reserves `need` for call `id`, or throws BudgetExceededError. `label` names the call in the
   * reason ("summarize call").
   */
  reserve(id: string, need: Charge, label: string): void {
    if (this.haltReason) throw new BudgetExceededError(this.haltReason);
    const reservedTokens = this.reservedTokens;
    const reservedUnits = this.reservedUnits;
    const overTokens = (reserved: number) => this.maxTokens !== undefined && this.spentTokens + reserved + need.tokens > this.maxTokens;
    const overUsd = (reserved: bigint) => this.maxUsdUnits !== undefined && this.spentUnits + reserved + need.usdUnits > this.maxUsdUnits;
    if ((overTokens(reservedTokens) || overUsd(reservedUnits)) && !overTokens(0) && !overUsd(0n) && this.reservations.size > 0) {
      throw new BudgetWait(new Promise((resolve) => this.settledWaiters.push(resolve)));
    }
    if (this.maxTokens !== undefined && this.spentTokens + reservedTokens + need.tokens > this.maxTokens) {
      const inFlight = reservedTokens > 0 ? ` (+${reservedTokens} reserved by calls in flight)` : "";
      this.haltReason = `run max tokens ${this.maxTokens} reached: ${this.spentTokens} spent${inFlight}, next ${label} needs ~${need.tokens}`;
      throw new BudgetExceededError(this.haltReason);
    }
    if (this.maxUsdUnits !== undefined && this.spentUnits + reservedUnits + need.usdUnits > this.maxUsdUnits) {
      const inFlight = reservedUnits > 0n ? ` (+$${formatUsd(reservedUnits)} reserved by calls in flight)` : "";
      this.haltReason =
        `run max USD ${this.maxUsdText} reached: $${formatUsd(this.spentUnits)} spent${inFlight}, ` +
        `next ${label} needs ~$${formatUsd(need.usdUnits)} (${need.tokens} tokens)`;
      throw new BudgetExceededError(this.haltReason);
    }
    this.reservations.set(id, need);
  }

  /** Replaces the reservation of `id` by what the call really cost. */
  settle(id: string, actual: Charge): void {
    this.reservations.delete(id);
    this.spentTokens += actual.tokens;
    this.spentUnits += actual.usdUnits;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The reservation of `id`, if any (what a call with unknown usage is charged). */
  reservation(id: string): Charge | undefined {
    return this.reservations.get(id);
  }
}
