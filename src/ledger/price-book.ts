/**
 * The price table as data: the shipped, versioned prices.json plus an optional user file
 * (NEWSLEDGER_PRICES), validated, seeded into model_prices / model_aliases idempotently, and read
 * back from the database (the database is the record: call rows point at model_prices.id).
 *
 * A price change is a new row with a later valid_from, never an UPDATE: seeding is
 * INSERT ... ON CONFLICT DO NOTHING, and a file that gives an already recorded
 * (model, valid_from, source) different rates is refused, because calls already billed at the
 * recorded rates would silently change meaning.
 *
 * User file formats (USD per 1M tokens; keys starting with "_" are comments):
 *  - an array of { "model", "input", "cached_input", "output", "valid_from"? } and/or { "alias", "model" }
 *  - { "prices": [ ...as above ], "aliases": { "alias": "model" } }
 *  - { "models": { "<model>": { "input", "cached_input", "output", "valid_from"? } }, "aliases": { ... } }
 * cached_input null or absent = no cache discount. valid_from absent (user entries only) = in force
 * since 1970, so the entry overrides the shipped price for all time.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { modelAliases, modelPrices } from "../db/schema";
import { DecimalError, numberToUnits, parseDecimal } from "./decimal";
import { createPriceBook, RATE_SCALE, rateToString, type PriceBook, type PriceRow } from "./pricing";

export class PriceFileError extends Error {
  override name = "PriceFileError";
}

export type PriceSource = "shipped" | "user";

export interface PriceEntry {
  model: string;
  /** Units of 10^-8 USD per 1M tokens. */
  input: bigint;
  cachedInput: bigint | null;
  output: bigint;
  validFrom: Date;
  source: PriceSource;
}

export interface AliasEntry {
  alias: string;
  model: string;
  source: PriceSource;
}

export interface PriceSources {
  /** The shipped table's version. */
  version: string;
  prices: PriceEntry[];
  aliases: AliasEntry[];
  /** The user file, when one was given. */
  userFile?: string;
}

export const SHIPPED_PRICES_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "prices.json");
const USER_DEFAULT_VALID_FROM = new Date("1970-01-01T00:00:00.000Z");
const PRICE_FIELDS = new Set(["model", "input", "cached_input", "output", "valid_from"]);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rate(value: unknown, field: string, problems: string[], where: string, nullable: boolean): bigint | null {
  if (value === null || value === undefined) {
    if (nullable) return null;
    problems.push(`${where}: "${field}" is missing (USD per 1M tokens, e.g. 2.5)`);
    return null;
  }
  try {
    let units: bigint;
    if (typeof value === "number") units = numberToUnits(value, RATE_SCALE, "exact");
    else if (typeof value === "string" && value.trim() !== "") units = parseDecimal(value, RATE_SCALE, "exact");
    else throw new DecimalError("not a number");
    if (units < 0n) throw new DecimalError("negative");
    return units;
  } catch (err) {
    const why = err instanceof DecimalError && /decimal places/.test(err.message) ? `has more than ${RATE_SCALE} decimal places` : "must be a number >= 0 (USD per 1M tokens)";
    problems.push(`${where}: "${field}" ${why}, got ${describe(value)}`);
    return null;
  }
}

/** Parses and validates one price file's text. Throws PriceFileError naming every bad entry and field. */
export function parsePriceFile(text: string, origin: string, source: PriceSource): { prices: PriceEntry[]; aliases: AliasEntry[]; version?: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PriceFileError(`${origin}: not valid JSON: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const prices: PriceEntry[] = [];
  const aliases: AliasEntry[] = [];
  let version: string | undefined;

  const priceEntry = (raw: unknown, where: string, modelName?: string) => {
    if (!isObject(raw)) {
      problems.push(`${where}: must be an object like {"model": "...", "input": 2.5, "cached_input": 1.25, "output": 10}, got ${describe(raw)}`);
      return;
    }
    const model = modelName ?? raw.model;
    const label = typeof model === "string" && model.trim() !== "" ? `${where} (model "${model}")` : where;
    if (typeof model !== "string" || model.trim() === "") {
      problems.push(`${where}: "model" must be a non-empty string, got ${describe(model)}`);
    }
    for (const key of Object.keys(raw)) {
      if (key.startsWith("_") || PRICE_FIELDS.has(key)) continue;
      if (modelName === undefined || key !== "model") problems.push(`${label}: unknown field "${key}" (allowed: ${[...PRICE_FIELDS].join(", ")})`);
    }
    const input = rate(raw.input, "input", problems, label, false);
    const cachedInput = rate(raw.cached_input, "cached_input", problems, label, true);
    const output = rate(raw.output, "output", problems, label, false);
    let validFrom: Date | null = null;
    if (raw.valid_from === undefined || raw.valid_from === null) {
      if (source === "shipped") problems.push(`${label}: "valid_from" is required in the shipped table`);
      else validFrom = USER_DEFAULT_VALID_FROM;
    } else if (typeof raw.valid_from === "string" && ISO_DATE.test(raw.valid_from.trim()) && !Number.isNaN(Date.parse(raw.valid_from))) {
      const trimmed = raw.valid_from.trim();
      // A bare date is midnight UTC, not local midnight.
      validFrom = new Date(/^\d{4}-\d{2}-\d{2}$/.test(trimmed) ? `${trimmed}T00:00:00Z` : trimmed);
    } else {
      problems.push(`${label}: "valid_from" must be an ISO 8601 date or date-time such as "2025-01-31" or "2025-01-31T00:00:00Z", got ${describe(raw.valid_from)}`);
    }
    if (typeof model === "string" && model.trim() !== "" && input !== null && output !== null && validFrom && (cachedInput !== null || raw.cached_input == null)) {
      prices.push({ model: model.trim(), input, cachedInput, output, validFrom, source });
    }
  };

  const aliasEntry = (alias: unknown, model: unknown, where: string) => {
    if (typeof alias !== "string" || alias.trim() === "" || typeof model !== "string" || model.trim() === "") {
      problems.push(`${where}: an alias needs a non-empty "alias" and "model", got ${describe({ alias, model })}`);
      return;
    }
    aliases.push({ alias: alias.trim(), model: model.trim(), source });
  };

  const aliasBlock = (raw: unknown, where: string) => {
    if (raw === undefined) return;
    if (Array.isArray(raw)) {
      raw.forEach((a, i) => (isObject(a) ? aliasEntry(a.alias, a.model, `${where}[${i}]`) : aliasEntry(undefined, undefined, `${where}[${i}]`)));
    } else if (isObject(raw)) {
      for (const [alias, model] of Object.entries(raw)) if (!alias.startsWith("_")) aliasEntry(alias, model, `${where}.${alias}`);
    } else {
      problems.push(`${where}: must be an object {"alias": "model"} or an array of {"alias", "model"}`);
    }
  };

  if (Array.isArray(data)) {
    data.forEach((raw, i) => {
      if (isObject(raw) && "alias" in raw) aliasEntry(raw.alias, raw.model, `entry [${i}]`);
      else priceEntry(raw, `entry [${i}]`);
    });
  } else if (isObject(data)) {
    if (typeof data.version === "string") version = data.version;
    const known = new Set(["prices", "models", "aliases", "version"]);
    for (const key of Object.keys(data)) {
      if (!key.startsWith("_") && !known.has(key)) problems.push(`unknown top-level field "${key}" (allowed: prices, models, aliases, version)`);
    }
    if (data.prices !== undefined) {
      if (!Array.isArray(data.prices)) problems.push(`"prices" must be an array`);
      else data.prices.forEach((raw, i) => priceEntry(raw, `entry [${i}]`));
    }
    if (data.models !== undefined) {
      if (!isObject(data.models)) problems.push(`"models" must be an object {"<model>": {"input", "cached_input", "output"}}`);
      else
        Object.entries(data.models)
          .filter(([name]) => !name.startsWith("_"))
          .forEach(([name, raw], i) => priceEntry(raw, `entry [${i}]`, name));
    }
    if (data.prices === undefined && data.models === undefined) problems.push(`no "prices" array or "models" object`);
    aliasBlock(data.aliases, "aliases");
  } else {
    problems.push(`must be a JSON array of price entries or an object with "prices"/"models"`);
  }

  const seen = new Map<string, number>();
  prices.forEach((p) => {
    const key = `${p.model}@${p.validFrom.toISOString()}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  });
  for (const [key, count] of seen) {
    if (count > 1) problems.push(`model "${key.split("@")[0]}" has ${count} entries valid from ${key.split("@")[1]}; give each price change its own valid_from`);
  }
  if (problems.length > 0) {
    throw new PriceFileError(`${origin}: ${problems.length} problem(s): ${problems.join("; ")}`);
  }
  return { prices, aliases, version };
}

/** The shipped table. */
export function loadShippedPrices(): PriceSources {
  const parsed = parsePriceFile(readFileSync(SHIPPED_PRICES_FILE, "utf8"), `shipped price table ${SHIPPED_PRICES_FILE}`, "shipped");
  return { version: parsed.version ?? "unversioned", prices: parsed.prices, aliases: parsed.aliases };
}

/** A user price file on its own (validated). */
export function loadUserPrices(file: string): { prices: PriceEntry[]; aliases: AliasEntry[] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PriceFileError(`NEWSLEDGER_PRICES ${file}: cannot read it: ${(err as Error).message}`);
  }
  return parsePriceFile(text, `NEWSLEDGER_PRICES ${file}`, "user");
}

/**
 * Shipped plus user prices. User entries add to and override shipped ones (at lookup a user row
 * in force wins). Every alias must point at a model that has a price.
 */
export function loadPriceSources(pricesFile?: string): PriceSources {
  const shipped = loadShippedPrices();
  const user = pricesFile ? loadUserPrices(pricesFile) : { prices: [], aliases: [] };
  const prices = [...shipped.prices, ...user.prices];
  const models = new Set(prices.map((p) => p.model));
  const userAliases = new Set(user.aliases.map((a) => a.alias));
  const aliases = [...shipped.aliases.filter((a) => !userAliases.has(a.alias)), ...user.aliases];
  const dangling = aliases.filter((a) => !models.has(a.model) && !aliases.some((b) => b.alias === a.model));
  if (dangling.length > 0) {
    throw new PriceFileError(
      `${pricesFile ? `NEWSLEDGER_PRICES ${pricesFile}` : "price table"}: alias(es) pointing at a model without a price: ${dangling
        .map((a) => `"${a.alias}" -> "${a.model}" (${a.source})`)
        .join(", ")}`,
    );
  }
  return { version: shipped.version, prices, aliases, userFile: pricesFile };
}

function toRow(p: PriceEntry, id: number | null = null): PriceRow {
  return { id, model: p.model, input: p.input, cachedInput: p.cachedInput, output: p.output, validFrom: p.validFrom, source: p.source };
}

/** A book straight from sources, without the database (ids are null). For pure uses and tests. */
export function bookFromSources(sources: { prices: PriceEntry[]; aliases: AliasEntry[] }): PriceBook {
  // User aliases win over shipped ones of the same name.
  const aliases = new Map<string, string>();
  for (const a of sources.aliases.filter((x) => x.source === "shipped")) aliases.set(a.alias, a.model);
  for (const a of sources.aliases.filter((x) => x.source === "user")) aliases.set(a.alias, a.model);
  return createPriceBook(sources.prices.map((p) => toRow(p)), aliases);
}

const key = (model: string, validFrom: Date, source: string) => `${model}\u0000${validFrom.getTime()}\u0000${source}`;

/**
 * Writes the sources into model_prices / model_aliases. Idempotent: existing rows are left as
 * they are (ON CONFLICT DO NOTHING); rates that differ from a recorded row with the same
 * (model, valid_from, source) are refused with a PriceFileError.
 */
export async function seedPrices(db: Database, sources: { prices: PriceEntry[]; aliases: AliasEntry[] }): Promise<{ inserted: number }> {
  let inserted = 0;
  if (sources.prices.length > 0) {
    const result = await db
      .insert(modelPrices)
      .values(
        sources.prices.map((p) => ({
          model: p.model,
          inputPerMtok: rateToString(p.input),
          cachedInputPerMtok: p.cachedInput === null ? null : rateToString(p.cachedInput),
          outputPerMtok: rateToString(p.output),
          validFrom: p.validFrom,
          source: p.source,
        })),
      )
      .onConflictDoNothing({ target: [modelPrices.model, modelPrices.validFrom, modelPrices.source] })
      .returning({ id: modelPrices.id });
    inserted = result.length;
    const stored = new Map<string, PriceRow>();
    for (const row of await db.select().from(modelPrices)) {
      const r = dbRow(row);
      stored.set(key(r.model, r.validFrom, r.source), r);
    }
    const conflicts: string[] = [];
    for (const p of sources.prices) {
      const s = stored.get(key(p.model, p.validFrom, p.source));
      if (!s) {
        conflicts.push(`${p.model} valid from ${p.validFrom.toISOString()} (${p.source}) was not recorded`);
      } else if (s.input !== p.input || s.output !== p.output || s.cachedInput !== p.cachedInput) {
        const fmt = (x: { input: bigint; cachedInput: bigint | null; output: bigint }) =>
          `input ${rateToString(x.input)}, cached_input ${x.cachedInput === null ? "null" : rateToString(x.cachedInput)}, output ${rateToString(x.output)}`;
        conflicts.push(
          `${p.model} valid from ${p.validFrom.toISOString()} (${p.source}) is already recorded as ${fmt(s)}, the file says ${fmt(p)}`,
        );
      }
    }
    if (conflicts.length > 0) {
      throw new PriceFileError(
        `price table conflicts with the recorded prices: ${conflicts.join("; ")}. Calls were already billed at the recorded rates; ` +
          `a price change must be a new entry with a later "valid_from".`,
      );
    }
  }
  const shippedAliases = sources.aliases.filter((a) => a.source === "shipped");
  const userAliases = sources.aliases.filter((a) => a.source === "user");
  if (shippedAliases.length > 0) {
    await db
      .insert(modelAliases)
      .values(shippedAliases)
      .onConflictDoUpdate({
        target: modelAliases.alias,
        set: { model: sql`excluded.model` },
        // A user's alias is never replaced by a shipped one.
        setWhere: sql`${modelAliases.source} = 'shipped' and ${modelAliases.model} <> excluded.model`,
      });
  }
  if (userAliases.length > 0) {
    await db
      .insert(modelAliases)
      .values(userAliases)
      .onConflictDoUpdate({
        target: modelAliases.alias,
        set: { model: sql`excluded.model`, source: sql`excluded.source` },
        setWhere: sql`${modelAliases.source} <> 'user' or ${modelAliases.model} <> excluded.model`,
      });
  }
  return { inserted };
}

function dbRow(row: typeof modelPrices.$inferSelect): PriceRow {
  return {
    id: row.id,
    model: row.model,
    input: parseDecimal(row.inputPerMtok, RATE_SCALE),
    cachedInput: row.cachedInputPerMtok === null ? null : parseDecimal(row.cachedInputPerMtok, RATE_SCALE),
    output: parseDecimal(row.outputPerMtok, RATE_SCALE),
    validFrom: row.validFrom,
    source: row.source === "user" ? "user" : "shipped",
  };
}

/** The book as recorded in the database (every row, with its id). */
export async function readPriceBook(db: Database): Promise<PriceBook> {
  const rows = (await db.select().from(modelPrices)).map(dbRow);
  const aliases = (await db.select().from(modelAliases)).map((a) => [a.alias, a.model] as const);
  return createPriceBook(rows, aliases);
}

/** Loads shipped + user prices, seeds them, and returns the book read back from the database. */
export async function loadPriceBook(db: Database, pricesFile?: string): Promise<PriceBook> {
  const sources = loadPriceSources(pricesFile);
  await seedPrices(db, sources);
  return readPriceBook(db);
}
