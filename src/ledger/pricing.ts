/**
 * Pure cost arithmetic: (usage, model, time, price book) → an exact decimal cost.
 *
 * Rates are USD per 1M tokens held as BigInt units of 10^-8 USD (the scale of the
 * model_prices columns); token × rate is then an exact count of 10^-14 USD, rounded half-up
 * once per call to the 12 decimals of llm_calls.cost_usd. No JS float ever holds money.
 */
import { formatUnits, parseDecimal, rescale } from "./decimal";

/** Decimals of a rate (USD per 1M tokens), as in model_prices (numeric(18,8)). */
export const RATE_SCALE = 8;
/** Decimals of a cost in USD, as in llm_calls.cost_usd (numeric(24,12)). */
export const COST_SCALE = 12;
/** tokens × rate units = 10^-(RATE_SCALE + 6) USD. */
const EXACT_SCALE = RATE_SCALE + 6;

/** Rates in units of 10^-8 USD per 1M tokens. cachedInput null: no cache discount. */
export interface Rates {
  input: bigint;
  cachedInput: bigint | null;
  output: bigint;
}

export interface PriceRow extends Rates {
  /** model_prices.id; null for a book built without the database. */
  id: number | null;
  model: string;
  validFrom: Date;
  source: "shipped" | "user";
}

export interface PriceBook {
  /** Exact model name → its dated rows, oldest first. */
  prices: ReadonlyMap<string, readonly PriceRow[]>;
  /** Explicit alias → exact model name. */
  aliases: ReadonlyMap<string, string>;
}

export function createPriceBook(rows: Iterable<PriceRow>, aliases: Iterable<readonly [string, string]> = []): PriceBook {
  const prices = new Map<string, PriceRow[]>();
  for (const row of rows) {
    const list = prices.get(row.model) ?? [];
    list.push(row);
    prices.set(row.model, list);
  }
  for (const list of prices.values()) list.sort((a, b) => a.validFrom.getTime() - b.validFrom.getTime());
  return { prices, aliases: new Map(aliases) };
}

export type PriceStatus = "ok" | "unknown_model" | "no_usage";

export interface CallToPrice {
  /** The model that served the call (the response's model); wins over requestModel. */
  model?: string | null;
  requestModel?: string | null;
  /** All input tokens, cached ones included. null: the provider reported no usage. */
  inputTokens: number | null;
  /** The part of inputTokens read from the provider's cache. */
  cachedInputTokens?: number | null;
  /** All output tokens, reasoning included. */
  outputTokens: number | null;
  at: Date;
}

export interface PricedCall {
  status: PriceStatus;
  priceId: number | null;
  /** The exact model name whose price was used. */
  pricedAs: string | null;
  /** The name that was looked up (response model, else request model), after cleaning. */
  lookedUp: string | null;
  /** USD with 12 decimals; null when unpriced (unknown is not free) or without usage. */
  costUsd: string | null;
  /** The same in units of 10^-12 USD. */
  costUnits: bigint | null;
  rates: Rates | null;
}

/**
 * Cleans a reported model name: trims it and collapses a name repeated end to end
 * ("gpt-4o-mini-2024-07-18gpt-4o-mini-2024-07-18", from a duplicated finishing chunk whose
 * metadata strings were concatenated) to the single name.
 */
export function cleanModelName(name: string | null | undefined): string | null {
  if (name === null || name === undefined) return null;
  const trimmed = name.trim();
  if (trimmed === "") return null;
  const repeated = /^(.+?)\1+$/s.exec(trimmed);
  return repeated ? repeated[1]! : trimmed;
}

/** Exact name first, then an explicit alias rule. Never a prefix match. */
export function resolveModel(book: PriceBook, name: string | null | undefined): string | null {
  if (name === null || name === undefined) return null;
  const candidates = [name.trim()];
  const cleaned = cleanModelName(name);
  if (cleaned && cleaned !== candidates[0]) candidates.push(cleaned);
  for (const candidate of candidates) {
    if (book.prices.has(candidate)) return candidate;
  }
  for (const candidate of candidates) {
    let target = book.aliases.get(candidate);
    // An alias may name another alias; follow a short chain, never a loop.
    for (let hops = 0; target !== undefined && hops < 5; hops++) {
      if (book.prices.has(target)) return target;
      target = book.aliases.get(target);
    }
  }
  return null;
}

/**
 * The row in force at `at`: the one with the latest valid_from <= at. A user row in force
 * overrides shipped rows; shipped rows apply where no user row is in force yet.
 */
export function priceAt(book: PriceBook, model: string, at: Date): PriceRow | null {
  const rows = book.prices.get(model);
  if (!rows) return null;
  const t = at.getTime();
  let user: PriceRow | null = null;
  let shipped: PriceRow | null = null;
  for (const row of rows) {
    if (row.validFrom.getTime() > t) continue;
    if (row.source === "user") user = row;
    else shipped = row;
  }
  return user ?? shipped;
}

/** Looks a call's model up: the response model wins; the request model is used only without one. */
export function findPrice(
  book: PriceBook,
  call: { model?: string | null; requestModel?: string | null; at: Date },
): { lookedUp: string | null; row: PriceRow | null } {
  const raw = cleanModelName(call.model) !== null ? call.model! : call.requestModel ?? null;
  const lookedUp = cleanModelName(raw);
  const resolved = resolveModel(book, raw);
  if (!resolved) return { lookedUp, row: null };
  return { lookedUp, row: priceAt(book, resolved, call.at) };
}

function tokens(n: number | null | undefined, what: string): bigint {
  if (n === null || n === undefined) return 0n;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a whole number >= 0, got ${n}`);
  return BigInt(n);
}

/** Exact cost in units of 10^-12 USD. Cached input is part of input; reasoning is part of output. */
export function costUnits(
  usage: { inputTokens: number | null; cachedInputTokens?: number | null; outputTokens: number | null },
  rates: Rates,
): bigint {
  const input = tokens(usage.inputTokens, "inputTokens");
  let cached = tokens(usage.cachedInputTokens, "cachedInputTokens");
  if (cached > input) cached = input;
  const output = tokens(usage.outputTokens, "outputTokens");
  const exact = (input - cached) * rates.input + cached * (rates.cachedInput ?? rates.input) + output * rates.output;
  return rescale(exact, EXACT_SCALE, COST_SCALE);
}

export function priceCall(call: CallToPrice, book: PriceBook): PricedCall {
  const { lookedUp, row } = findPrice(book, call);
  if (!row) {
    return { status: "unknown_model", priceId: null, pricedAs: null, lookedUp, costUsd: null, costUnits: null, rates: null };
  }
  const rates: Rates = { input: row.input, cachedInput: row.cachedInput, output: row.output };
  const base = { priceId: row.id, pricedAs: row.model, lookedUp, rates };
  if (call.inputTokens === null && call.outputTokens === null) {
    return { status: "no_usage", ...base, costUsd: null, costUnits: null };
  }
  const units = costUnits(call, rates);
  return { status: "ok", ...base, costUsd: formatUnits(units, COST_SCALE), costUnits: units };
}

/**
 * What a call served from the response cache avoided: the tokens of the call that filled the
 * entry, priced as that model costs at `at` (today), not as it cost when the entry was filled.
 * Null usage (the filling call reported none) prices as no_usage.
 */
export function priceAvoided(
  avoided: { model: string | null | undefined; inputTokens: number | null; cachedInputTokens: number | null; outputTokens: number | null },
  book: PriceBook,
  at: Date,
): PricedCall {
  return priceCall({ model: avoided.model, inputTokens: avoided.inputTokens, cachedInputTokens: avoided.cachedInputTokens, outputTokens: avoided.outputTokens, at }, book);
}

/**
 * The highest known rates, for estimating calls to a model without a price: a budget charges an
 * unknown model at least this much, never 0.
 */
export function conservativeRate(book: PriceBook): Rates {
  let input = 0n;
  let output = 0n;
  for (const rows of book.prices.values()) {
    for (const row of rows) {
      const rowMaxInput = row.cachedInput !== null && row.cachedInput > row.input ? row.cachedInput : row.input;
      if (rowMaxInput > input) input = rowMaxInput;
      if (row.output > output) output = row.output;
    }
  }
  return { input, cachedInput: null, output };
}

/** Rates for a budget estimate: the model's own in force now, else the conservative ones. */
export function ratesForEstimate(book: PriceBook, model: string | null | undefined, at: Date): { rates: Rates; known: boolean } {
  const { row } = findPrice(book, { model, at });
  if (row) return { rates: { input: row.input, cachedInput: row.cachedInput, output: row.output }, known: true };
  return { rates: conservativeRate(book), known: false };
}

/** Parses a rate in USD per 1M tokens ("2.5", "0.075") into units; more than 8 decimals is an error. */
export function parseRate(text: string): bigint {
  return parseDecimal(text, RATE_SCALE, "exact");
}

/** Parses a USD amount into units of 10^-12 USD, rounding half-up past 12 decimals. */
export function usdToUnits(usd: string | number): bigint {
  return parseDecimal(typeof usd === "number" ? String(usd) : usd, COST_SCALE, "half-up");
}

/** Units of 10^-12 USD → a 12-decimal string. */
export function unitsToUsd(units: bigint): string {
  return formatUnits(units, COST_SCALE);
}

/** For display: a USD amount (decimal string or 10^-12 units) rounded half-up to `decimals` places. */
export function formatUsd(value: string | bigint, decimals = 8): string {
  const units = typeof value === "bigint" ? value : parseDecimal(value, COST_SCALE, "half-up");
  return formatUnits(rescale(units, COST_SCALE, decimals), decimals);
}

/** A rate as a decimal string with 8 places (what model_prices stores). */
export function rateToString(units: bigint): string {
  return formatUnits(units, RATE_SCALE);
}
