/**
 * Prices applied after the fact: re-pricing stored calls after a price change (idempotent: a
 * second run changes nothing), and what a run would have cost on another model.
 */
import { and, eq, gte, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { llmCalls } from "../db/schema";
import { parseDecimal, formatUnits } from "./decimal";
import { COST_SCALE, priceAt, priceCall, resolveModel, costUnits, type PriceBook } from "./pricing";

export interface RepriceResult {
  examined: number;
  changed: number;
  /** Sums of the priced calls examined, before and after (12 decimals). */
  oldTotalUsd: string;
  newTotalUsd: string;
  unpricedBefore: number;
  unpricedAfter: number;
}

const units = (usd: string | null): bigint => (usd === null ? 0n : parseDecimal(usd, COST_SCALE, "half-up"));

/** Re-prices every call started at or after `since` (all calls without it) with `book`. */
export async function repriceCalls(db: Database, book: PriceBook, options: { since?: Date } = {}): Promise<RepriceResult> {
  const where: SQL | undefined = options.since ? gte(llmCalls.startedAt, options.since) : undefined;
  const calls = await db
    .select({
      id: llmCalls.id,
      model: llmCalls.model,
      requestModel: llmCalls.requestModel,
      inputTokens: llmCalls.inputTokens,
      cachedInputTokens: llmCalls.cachedInputTokens,
      outputTokens: llmCalls.outputTokens,
      startedAt: llmCalls.startedAt,
      costUsd: llmCalls.costUsd,
      priceId: llmCalls.priceId,
      priceStatus: llmCalls.priceStatus,
    })
    .from(llmCalls)
    .where(where);

  let oldTotal = 0n;
  let newTotal = 0n;
  let unpricedBefore = 0;
  let unpricedAfter = 0;
  const updates: { id: string; costUsd: string | null; priceId: number | null; priceStatus: string }[] = [];
  for (const call of calls) {
    const priced = priceCall({ ...call, at: call.startedAt }, book);
    // A call that reported no usage stays "no_usage" whatever the price.
    const status = priced.status;
    oldTotal += units(call.costUsd);
    newTotal += priced.costUnits ?? 0n;
    if (call.priceStatus === "unknown_model") unpricedBefore += 1;
    if (status === "unknown_model") unpricedAfter += 1;
    const same =
      units(call.costUsd) === (priced.costUnits ?? 0n) &&
      (call.costUsd === null) === (priced.costUsd === null) &&
      call.priceId === priced.priceId &&
      call.priceStatus === status;
    if (!same) updates.push({ id: call.id, costUsd: priced.costUsd, priceId: priced.priceId, priceStatus: status });
  }
  if (updates.length > 0) {
    await db.transaction(async (tx) => {
      for (const u of updates) {
        await tx.update(llmCalls).set({ costUsd: u.costUsd, priceId: u.priceId, priceStatus: u.priceStatus }).where(eq(llmCalls.id, u.id));
      }
    });
  }
  return {
    examined: calls.length,
    changed: updates.length,
    oldTotalUsd: formatUnits(oldTotal, COST_SCALE),
    newTotalUsd: formatUnits(newTotal, COST_SCALE),
    unpricedBefore,
    unpricedAfter,
  };
}

export interface WhatIfNode {
  node: string;
  calls: number;
  actualUsd: string | null;
  asModelUsd: string;
}

/**
 * What a run's chat calls would have cost on `model` (each at the price in force at its time),
 * with the same token counts; embedding calls keep their own cost. Throws for an unknown model.
 */
export async function costAsModel(db: Database, book: PriceBook, runId: string, model: string): Promise<{ model: string; nodes: WhatIfNode[]; actualUsd: string | null; asModelUsd: string }> {
  const resolved = resolveModel(book, model);
  if (!resolved) {
    throw new UnknownModelError(model, [...book.prices.keys(), ...book.aliases.keys()].sort());
  }
  const calls = await db
    .select({
      node: llmCalls.node,
      kind: llmCalls.kind,
      inputTokens: llmCalls.inputTokens,
      cachedInputTokens: llmCalls.cachedInputTokens,
      outputTokens: llmCalls.outputTokens,
      estimatedInputTokens: llmCalls.estimatedInputTokens,
      estimatedOutputTokens: llmCalls.estimatedOutputTokens,
      startedAt: llmCalls.startedAt,
      costUsd: llmCalls.costUsd,
    })
    .from(llmCalls)
    .where(and(eq(llmCalls.runId, runId)));
  const byNode = new Map<string, { calls: number; actual: bigint; actualKnown: boolean; asModel: bigint }>();
  for (const c of calls) {
    const entry = byNode.get(c.node) ?? { calls: 0, actual: 0n, actualKnown: false, asModel: 0n };
    entry.calls += 1;
    if (c.costUsd !== null) {
      entry.actual += units(c.costUsd);
      entry.actualKnown = true;
    }
    if (c.kind === "chat") {
      const row = priceAt(book, resolved, c.startedAt);
      if (row) {
        // Calls without reported usage are counted at their local estimate.
        const usage = c.inputTokens === null && c.outputTokens === null
          ? { inputTokens: c.estimatedInputTokens, cachedInputTokens: 0, outputTokens: c.estimatedOutputTokens }
          : c;
        entry.asModel += costUnits(usage, { input: row.input, cachedInput: row.cachedInput, output: row.output });
      }
    } else {
      entry.asModel += units(c.costUsd);
    }
    byNode.set(c.node, entry);
  }
  let actual = 0n;
  let asModel = 0n;
  let anyKnown = false;
  const nodes = [...byNode.entries()].map(([node, e]) => {
    actual += e.actual;
    asModel += e.asModel;
    anyKnown ||= e.actualKnown;
    return { node, calls: e.calls, actualUsd: e.actualKnown ? formatUnits(e.actual, COST_SCALE) : null, asModelUsd: formatUnits(e.asModel, COST_SCALE) };
  });
  return { model: resolved, nodes, actualUsd: anyKnown ? formatUnits(actual, COST_SCALE) : null, asModelUsd: formatUnits(asModel, COST_SCALE) };
}

export class UnknownModelError extends Error {
  override name = "UnknownModelError";
  constructor(readonly model: string, readonly known: string[]) {
    super(`no price for model "${model}"; priced models: ${known.join(", ")}. Add it with NEWSLEDGER_PRICES.`);
  }
}
