import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { numberToUnits, parseDecimal } from "../../src/ledger/decimal";
import { bookFromSources, loadPriceSources, loadShippedPrices, parsePriceFile, PriceFileError } from "../../src/ledger/price-book";
import {
  cleanModelName,
  conservativeRate,
  costUnits,
  createPriceBook,
  formatUsd,
  priceCall,
  resolveModel,
  unitsToUsd,
  type PriceBook,
} from "../../src/ledger/pricing";
import { SHARED_DIR } from "../helpers/db";
import { C08_PRICES, FIXTURES, fixture, fixtureJson, tempJson } from "./_harness";

const NOW = new Date("2026-01-15T12:00:00Z");
const c08Book = (): PriceBook => bookFromSources(parsePriceFile(fixture("C08-prices.json"), "C08-prices.json", "user"));
const fmt = (cost: string | null) => (cost === null ? null : formatUsd(cost));

describe("C08: model price lookup (C08-prices.json as the price file)", () => {
  const cases = fixtureJson<any[]>("C08-cases.json");

  it.each(cases.map((c) => [c.id, c]))("%s", (_id, c) => {
    const priced = priceCall(
      { model: c.response_model, requestModel: c.request_model, inputTokens: c.input, cachedInputTokens: c.cached, outputTokens: c.output, at: NOW },
      c08Book(),
    );
    expect(fmt(priced.costUsd)).toBe(c.expect.cost_usd);
    if (c.expect.price_status) expect(priced.status).toBe(c.expect.price_status);
    if (c.expect.priced_as) expect(priced.pricedAs).toBe(c.expect.priced_as);
    if (c.expect.price_status === "unknown_model") {
      expect(priced.pricedAs).toBeNull();
      expect(priced.priceId).toBeNull();
    }
  });

  it("lists exactly the six cases a–f with the expected figures", () => {
    expect(cases.map((c) => [c.id, c.expect.cost_usd])).toEqual([
      ["C08-a", "12.50000000"],
      ["C08-b", "20.00000000"],
      ["C08-c", "0.75000000"],
      ["C08-d", null],
      ["C08-e", null],
      ["C08-f", "0.00002100"],
    ]);
  });

  it("prices by the response model, not the request model (a, d)", () => {
    const book = c08Book();
    // d: the request's gpt-4o is an alias of a priced snapshot, but the response names an unknown one.
    const d = priceCall({ model: "gpt-4o-2024-11-20", requestModel: "gpt-4o", inputTokens: 1000, outputTokens: 1000, at: NOW }, book);
    expect(d.status).toBe("unknown_model");
    expect(d.lookedUp).toBe("gpt-4o-2024-11-20");
    // Without a response model the request model is used, through its alias.
    const noResponse = priceCall({ model: null, requestModel: "gpt-4o", inputTokens: 1_000_000, outputTokens: 1_000_000, at: NOW }, book);
    expect(noResponse.pricedAs).toBe("gpt-4o-2024-08-06");
    expect(noResponse.costUsd).toBe("12.500000000000");
  });

  it("never prefix-matches: -mini, longer or shorter dated names and other cases stay unknown", () => {
    const book = c08Book();
    for (const name of ["gpt-4o-mini-2024-07-18-ft", "gpt-4o-2024", "gpt-4o-mini-2024", "GPT-4O-MINI", "gpt-4o-2024-08-06x", "o3-mini-2025"]) {
      expect(resolveModel(book, name), name).toBeNull();
    }
    expect(resolveModel(book, "gpt-4o-mini")).toBe("gpt-4o-mini-2024-07-18");
    expect(resolveModel(book, "gpt-4o")).toBe("gpt-4o-2024-08-06");
  });

  it("f: a doubled name resolves to the single name, also when tripled, and is reported cleaned", () => {
    expect(cleanModelName("gpt-4o-mini-2024-07-18gpt-4o-mini-2024-07-18")).toBe("gpt-4o-mini-2024-07-18");
    expect(cleanModelName("o3-mini-2025-01-31o3-mini-2025-01-31o3-mini-2025-01-31")).toBe("o3-mini-2025-01-31");
    expect(cleanModelName("gpt-4o-mini")).toBe("gpt-4o-mini");
    const f = priceCall({ model: "gpt-4o-minigpt-4o-mini", requestModel: null, inputTokens: 100, outputTokens: 10, at: NOW }, c08Book());
    expect(f.pricedAs).toBe("gpt-4o-mini-2024-07-18");
    expect(f.lookedUp).toBe("gpt-4o-mini");
    expect(f.costUsd).toBe("0.000021000000");
  });

  it("d/e: the budget charges an unknown model at the highest known rate, never 0", () => {
    const rates = conservativeRate(c08Book());
    // The highest rates in the fixture: gpt-4o-2024-05-13 input 5.0, output 15.0.
    expect(rates.input).toBe(500_000_000n);
    expect(rates.output).toBe(1_500_000_000n);
    expect(unitsToUsd(costUnits({ inputTokens: 1000, outputTokens: 1000 }, rates))).toBe("0.020000000000");
  });
});

describe("cost arithmetic", () => {
  it("C03: o3-mini, 2048 in of which 1536 cached, 300 out of which 256 reasoning = 0.00272800", () => {
    const c03 = fixtureJson("C03-completion-cached-reasoning.json");
    const priced = priceCall(
      {
        model: c03.model,
        requestModel: "o3-mini",
        inputTokens: c03.usage.prompt_tokens,
        cachedInputTokens: c03.usage.prompt_tokens_details.cached_tokens,
        outputTokens: c03.usage.completion_tokens,
        at: NOW,
      },
      c08Book(),
    );
    expect(priced.pricedAs).toBe("o3-mini-2025-01-31");
    // 512 × 1.10 + 1536 × 0.55 + 300 × 4.40 = 2728 per 1M tokens; reasoning is already inside output.
    expect(priced.costUsd).toBe("0.002728000000");
    expect(formatUsd(priced.costUsd!)).toBe("0.00272800");
  });

  it("bills cached input at the cached rate and the rest at the input rate", () => {
    const book = c08Book();
    const cached = priceCall({ model: "gpt-4o-2024-08-06", inputTokens: 1000, cachedInputTokens: 400, outputTokens: 0, at: NOW }, book);
    // 600 × 2.50 + 400 × 1.25 = 2000 per 1M.
    expect(cached.costUsd).toBe("0.002000000000");
    const uncached = priceCall({ model: "gpt-4o-2024-08-06", inputTokens: 1000, cachedInputTokens: 0, outputTokens: 0, at: NOW }, book);
    expect(uncached.costUsd).toBe("0.002500000000");
  });

  it("bills cached input at the input rate when the model has no cached rate (null)", () => {
    const priced = priceCall({ model: "gpt-4o-2024-05-13", inputTokens: 1000, cachedInputTokens: 400, outputTokens: 0, at: NOW }, c08Book());
    expect(priced.costUsd).toBe("0.005000000000");
  });

  it("a single cached token keeps its exact price (7.5e-8 USD) at 12 decimals", () => {
    const priced = priceCall({ model: "gpt-4o-mini-2024-07-18", inputTokens: 1, cachedInputTokens: 1, outputTokens: 0, at: NOW }, c08Book());
    expect(priced.costUsd).toBe("0.000000075000");
  });

  it("sums exactly where floats drift: 3 × 0.1 USD per 1M tokens × 1M", () => {
    const book = createPriceBook([{ id: 1, model: "m", input: numberToUnits(0.1, 8), cachedInput: null, output: 0n, validFrom: new Date(0), source: "user" }]);
    const one = priceCall({ model: "m", inputTokens: 1_000_000, outputTokens: 0, at: NOW }, book).costUnits!;
    expect(unitsToUsd(one + one + one)).toBe("0.300000000000");
    expect(0.1 + 0.1 + 0.1).not.toBe(0.3);
  });

  it("returns no_usage (cost NULL) for a known model without usage, and 0 for a call that billed nothing", () => {
    const book = c08Book();
    const none = priceCall({ model: "gpt-4o-mini", inputTokens: null, outputTokens: null, at: NOW }, book);
    expect(none).toMatchObject({ status: "no_usage", costUsd: null, pricedAs: "gpt-4o-mini-2024-07-18" });
    const zero = priceCall({ model: "gpt-4o-mini", inputTokens: 0, outputTokens: 0, at: NOW }, book);
    expect(zero).toMatchObject({ status: "ok", costUsd: "0.000000000000" });
  });

  it("formats for display with 8 decimals, rounding half up", () => {
    expect(formatUsd("12.500000000000")).toBe("12.50000000");
    expect(formatUsd("0.000000005000")).toBe("0.00000001");
    expect(formatUsd("0.000000004999")).toBe("0.00000000");
    expect(formatUsd(16_460_000n)).toBe("0.00001646");
  });

  it("parses decimal literals exactly and refuses more precision than the scale", () => {
    expect(parseDecimal("0.075", 8)).toBe(7_500_000n);
    expect(parseDecimal("1e-7", 8)).toBe(10n);
    expect(parseDecimal("2.5E1", 8)).toBe(2_500_000_000n);
    expect(() => parseDecimal("0.000000001", 8)).toThrow(/more than 8 decimal places/);
    expect(() => numberToUnits(0.1 + 0.2, 8)).toThrow(/more than 8 decimal places/);
    expect(parseDecimal("0.000000015", 8, "half-up")).toBe(2n);
    expect(parseDecimal("0.000000014", 8, "half-up")).toBe(1n);
  });
});

describe("dated prices", () => {
  const file = () =>
    tempJson([
      { model: "acme-1", input: 1.0, cached_input: null, output: 2.0, valid_from: "2025-01-01" },
      { model: "acme-1", input: 3.0, cached_input: null, output: 4.0, valid_from: "2025-06-01T00:00:00Z" },
    ]);

  it("prices a call before the change at the old rate and from the change on at the new one", () => {
    const sources = loadPriceSources(file());
    const book = bookFromSources(sources);
    const at = (iso: string) => priceCall({ model: "acme-1", inputTokens: 1_000_000, outputTokens: 1_000_000, at: new Date(iso) }, book);
    expect(at("2025-03-01T00:00:00Z").costUsd).toBe("3.000000000000");
    expect(at("2025-05-31T23:59:59.999Z").costUsd).toBe("3.000000000000");
    expect(at("2025-06-01T00:00:00Z").costUsd).toBe("7.000000000000");
    expect(at("2026-01-01T00:00:00Z").costUsd).toBe("7.000000000000");
    // Before the first price there is none in force: unknown, not free.
    expect(at("2024-12-31T23:59:59Z")).toMatchObject({ status: "unknown_model", costUsd: null });
  });

  it("ships o3's price cut of 2025-06-10 as a second dated row", () => {
    const book = bookFromSources(loadShippedPrices());
    const at = (iso: string) => priceCall({ model: "o3-2025-04-16", inputTokens: 1_000_000, outputTokens: 1_000_000, at: new Date(iso) }, book);
    expect(at("2025-05-01T00:00:00Z").costUsd).toBe("50.000000000000");
    expect(at("2025-07-01T00:00:00Z").costUsd).toBe("10.000000000000");
  });
});

describe("the shipped table and user price files", () => {
  it("ships the OpenAI models and the offline provider's models at 0, every alias resolving", () => {
    const shipped = loadShippedPrices();
    const book = bookFromSources(shipped);
    expect(shipped.version).toMatch(/^\d{4}-\d{2}-\d{2}/);
    for (const model of [
      "gpt-4o-2024-08-06",
      "gpt-4o-2024-05-13",
      "gpt-4o-mini-2024-07-18",
      "gpt-4.1-2025-04-14",
      "gpt-4.1-mini-2025-04-14",
      "gpt-4.1-nano-2025-04-14",
      "o3-mini-2025-01-31",
      "o4-mini-2025-04-16",
      "text-embedding-3-small",
      "text-embedding-3-large",
      "text-embedding-ada-002",
    ]) {
      expect(book.prices.has(model), model).toBe(true);
    }
    for (const model of ["offline-extractive-1", "offline-template-1", "offline-rules-1", "offline-hash-embed-1"]) {
      const priced = priceCall({ model, inputTokens: 5000, outputTokens: 500, at: NOW }, book);
      expect(priced).toMatchObject({ status: "ok", pricedAs: model, costUsd: "0.000000000000" });
    }
    for (const alias of shipped.aliases) expect(resolveModel(book, alias.alias), alias.alias).toBe(alias.model);
    expect(priceCall({ model: "text-embedding-3-small", inputTokens: 823, outputTokens: 0, at: NOW }, book).costUsd).toBe("0.000016460000");
  });

  it("user entries add models and override shipped ones (an undated entry for all time, a dated one from its date)", () => {
    const file = tempJson([
      { model: "gpt-4o-mini-2024-07-18", input: 0.3, cached_input: 0.15, output: 1.2 },
      { model: "gpt-4.1-2025-04-14", input: 1.0, cached_input: null, output: 4.0, valid_from: "2030-01-01" },
      { model: "my-local-llama", input: 0, cached_input: null, output: 0 },
      { alias: "llama", model: "my-local-llama" },
    ]);
    const book = bookFromSources(loadPriceSources(file));
    const mini = priceCall({ model: "gpt-4o-mini", inputTokens: 1_000_000, outputTokens: 1_000_000, at: NOW }, book);
    expect(mini.costUsd).toBe("1.500000000000");
    const before = priceCall({ model: "gpt-4.1", inputTokens: 1_000_000, outputTokens: 1_000_000, at: NOW }, book);
    expect(before.costUsd).toBe("10.000000000000"); // shipped 2.00 + 8.00 until the user's date
    const after = priceCall({ model: "gpt-4.1", inputTokens: 1_000_000, outputTokens: 1_000_000, at: new Date("2030-02-01T00:00:00Z") }, book);
    expect(after.costUsd).toBe("5.000000000000");
    expect(priceCall({ model: "llama", inputTokens: 10, outputTokens: 10, at: NOW }, book)).toMatchObject({ status: "ok", pricedAs: "my-local-llama" });
  });

  it("reads the C08 fixture's object form ({models, aliases})", () => {
    const parsed = parsePriceFile(readFileSync(C08_PRICES, "utf8"), "C08", "user");
    expect(parsed.prices.map((p) => p.model).sort()).toEqual([
      "gpt-4o-2024-05-13",
      "gpt-4o-2024-08-06",
      "gpt-4o-mini-2024-07-18",
      "o3-mini-2025-01-31",
      "text-embedding-3-small",
    ]);
    expect(parsed.prices.find((p) => p.model === "gpt-4o-2024-05-13")!.cachedInput).toBeNull();
    expect(parsed.aliases.map((a) => `${a.alias}->${a.model}`).sort()).toEqual([
      "gpt-4o->gpt-4o-2024-08-06",
      "gpt-4o-mini->gpt-4o-mini-2024-07-18",
      "o3-mini->o3-mini-2025-01-31",
    ]);
  });

  it("rejects bad entries with a message naming the entry index, the model and the field", () => {
    const file = tempJson([
      { model: "ok-1", input: 1, cached_input: null, output: 2 },
      { model: "a", input: "abc", output: 1 },
      { model: "b", input: 1, cached_input: -1, output: 1 },
      { input: 1, output: 1 },
      { model: "c", input: 1, output: 1, valid_from: "yesterday" },
      { model: "d", input: 1, outptu: 2 },
      { model: "e", input: 0.000000001, output: 1 },
    ]);
    let message = "";
    try {
      loadPriceSources(file);
    } catch (err) {
      expect(err).toBeInstanceOf(PriceFileError);
      message = (err as Error).message;
    }
    expect(message).toContain(`NEWSLEDGER_PRICES ${file}`);
    expect(message).toContain(`entry [1] (model "a"): "input" must be a number >= 0 (USD per 1M tokens), got "abc"`);
    expect(message).toContain(`entry [2] (model "b"): "cached_input" must be a number >= 0 (USD per 1M tokens), got -1`);
    expect(message).toContain(`entry [3]: "model" must be a non-empty string, got undefined`);
    expect(message).toContain(`entry [4] (model "c"): "valid_from" must be an ISO 8601 date`);
    expect(message).toContain(`entry [5] (model "d"): unknown field "outptu"`);
    expect(message).toContain(`entry [5] (model "d"): "output" is missing`);
    expect(message).toContain(`entry [6] (model "e"): "input" has more than 8 decimal places, got 1e-9`);
    expect(message).not.toContain("ok-1");
  });

  it("rejects a file that is not JSON, duplicate dated entries and an alias to a model without a price", () => {
    expect(() => loadPriceSources(tempJson("{ not json"))).toThrow(/NEWSLEDGER_PRICES .*: not valid JSON/);
    expect(() =>
      loadPriceSources(
        tempJson([
          { model: "x", input: 1, output: 1, valid_from: "2025-01-01" },
          { model: "x", input: 2, output: 2, valid_from: "2025-01-01T00:00:00Z" },
        ]),
      ),
    ).toThrow(/model "x" has 2 entries valid from 2025-01-01T00:00:00.000Z/);
    expect(() => loadPriceSources(tempJson([{ alias: "fast", model: "no-such-model" }]))).toThrow(/"fast" -> "no-such-model" \(user\)/);
    expect(() => loadPriceSources("/nonexistent/prices.json")).toThrow(/NEWSLEDGER_PRICES \/nonexistent\/prices.json: cannot read it/);
  });
});

describe("fixtures", () => {
  const shared = path.join(SHARED_DIR, "cases", "inputs");
  it.runIf(existsSync(shared))("are byte-for-byte copies of ../shared/cases/inputs", () => {
    for (const name of ["C01-stream-cut.sse", "C01-stream-no-usage.sse", "C01-stream-with-usage.sse", "C03-completion-cached-reasoning.json", "C04-embeddings-batch1.json", "C04-embeddings-batch2.json", "C07-attempts.json", "C08-cases.json", "C08-prices.json"]) {
      expect(readFileSync(path.join(FIXTURES, name), "utf8"), name).toBe(readFileSync(path.join(shared, name), "utf8"));
    }
  });
});
