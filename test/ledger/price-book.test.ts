import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { modelAliases, modelPrices } from "../../src/db/schema";
import { loadPriceBook, loadPriceSources, PriceFileError, readPriceBook, seedPrices } from "../../src/ledger/price-book";
import { priceCall } from "../../src/ledger/pricing";
import { C08_PRICES, describeBackends, tempJson, type TestDb } from "./_harness";

describeBackends("seeding model_prices / model_aliases", (open) => {
  let opened: TestDb;
  beforeAll(async () => {
    opened = await open();
  });
  afterAll(async () => {
    await opened?.close();
  });

  it("is idempotent: a second seed inserts nothing and changes nothing", async () => {
    const db = opened.db;
    const sources = loadPriceSources(C08_PRICES);
    const first = await seedPrices(db, sources);
    expect(first.inserted).toBe(sources.prices.length);
    const before = await db.select().from(modelPrices).orderBy(asc(modelPrices.id));
    const second = await seedPrices(db, loadPriceSources(C08_PRICES));
    expect(second.inserted).toBe(0);
    expect(await db.select().from(modelPrices).orderBy(asc(modelPrices.id))).toEqual(before);
    // The fixture's rows are user rows next to the shipped ones; rates are stored with 8 decimals.
    const user = before.filter((r) => r.source === "user");
    expect(user.map((r) => r.model).sort()).toEqual(["gpt-4o-2024-05-13", "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31", "text-embedding-3-small"]);
    const mini = user.find((r) => r.model === "gpt-4o-mini-2024-07-18")!;
    expect([mini.inputPerMtok, mini.cachedInputPerMtok, mini.outputPerMtok]).toEqual(["0.15000000", "0.07500000", "0.60000000"]);
    expect(mini.validFrom.toISOString()).toBe("1970-01-01T00:00:00.000Z");
    const aliases = await db.select().from(modelAliases).where(eq(modelAliases.alias, "gpt-4o-mini"));
    expect(aliases).toEqual([{ alias: "gpt-4o-mini", model: "gpt-4o-mini-2024-07-18", source: "user" }]);
  });

  it("reads the book back with the rows' ids, so call rows can point at the price they used", async () => {
    const db = opened.db;
    const book = await readPriceBook(db);
    const priced = priceCall({ model: "gpt-4o-mini-2024-07-18", inputTokens: 100, outputTokens: 10, at: new Date() }, book);
    const [row] = await db.select().from(modelPrices).where(eq(modelPrices.id, priced.priceId!));
    expect(row).toMatchObject({ model: "gpt-4o-mini-2024-07-18", source: "user" });
    expect(priced.costUsd).toBe("0.000021000000");
  });

  it("refuses different rates for an already recorded (model, valid_from, source), without updating it", async () => {
    const db = opened.db;
    const changed = tempJson({ models: { "gpt-4o-mini-2024-07-18": { input: 0.3, cached_input: 0.075, output: 0.6 } } });
    await expect(loadPriceBook(db, changed)).rejects.toThrow(PriceFileError);
    await expect(loadPriceBook(db, changed)).rejects.toThrow(
      /gpt-4o-mini-2024-07-18 valid from 1970-01-01T00:00:00.000Z \(user\) is already recorded as input 0.15000000, cached_input 0.07500000, output 0.60000000, the file says input 0.30000000, cached_input 0.07500000, output 0.60000000.*a price change must be a new entry with a later "valid_from"/,
    );
    const rows = await db.select().from(modelPrices).where(eq(modelPrices.model, "gpt-4o-mini-2024-07-18"));
    expect(rows.filter((r) => r.source === "user").map((r) => r.inputPerMtok)).toEqual(["0.15000000"]);
  });

  it("records a price change as a new row; calls before and after it get their own price id", async () => {
    const db = opened.db;
    const change = tempJson([
      { model: "gpt-4o-mini-2024-07-18", input: 0.15, cached_input: 0.075, output: 0.6 },
      { model: "gpt-4o-mini-2024-07-18", input: 0.3, cached_input: 0.15, output: 1.2, valid_from: "2030-01-01T00:00:00Z" },
    ]);
    const before = await db.select().from(modelPrices).orderBy(asc(modelPrices.id));
    const book = await loadPriceBook(db, change);
    const after = await db.select().from(modelPrices).orderBy(asc(modelPrices.id));
    expect(after.length).toBe(before.length + 1);
    expect(after.slice(0, before.length)).toEqual(before);
    const old = priceCall({ model: "gpt-4o-mini", inputTokens: 1_000_000, outputTokens: 0, at: new Date("2029-12-31T23:59:59Z") }, book);
    const neu = priceCall({ model: "gpt-4o-mini", inputTokens: 1_000_000, outputTokens: 0, at: new Date("2030-01-01T00:00:00Z") }, book);
    expect(old.costUsd).toBe("0.150000000000");
    expect(neu.costUsd).toBe("0.300000000000");
    expect(neu.priceId).toBe(after[after.length - 1]!.id);
    expect(old.priceId).not.toBe(neu.priceId);
  });
});
