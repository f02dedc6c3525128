import { describe, expect, it } from "vitest";
import { calendarPeriod, decide, scopesFor, softThreshold, validateLimits, type CounterState } from "../../src/ledger/budget";

const at = new Date("2026-12-03T23:30:00Z");
const counter = (spentTokens: number, reservedTokens = 0): CounterState => ({ spentTokens, spentUnits: 0n, reservedTokens, reservedUnits: 0n });

describe("budget scopes and decisions (pure)", () => {
  it("a call falls in its run, its node, the workflow's day and month in the zone", () => {
    const scopes = scopesFor({ workflow: "wf", runId: "r1", node: "validate", at }, { maxTokens: 100, node: { maxTokens: 50 }, day: { maxUsd: 2 }, timeZone: "Europe/Moscow" });
    expect(scopes.map((s) => s.key)).toEqual(["run:r1", "node:r1:validate", "day:wf:2026-12-04", "month:wf:2026-12"]);
    expect(scopes.map((s) => s.limit)).toEqual([{ tokens: 100 }, { tokens: 50 }, { usdText: "2", usdUnits: 2_000_000_000_000n }, null]);
    expect(calendarPeriod(at, "America/Los_Angeles")).toEqual({ day: "2026-12-03", month: "2026-12" });
  });

  it("refuses the call that would pass a limit, naming the scope and the figures", () => {
    const scopes = scopesFor({ workflow: "wf", runId: "r1", node: "validate", at }, { node: { maxTokens: 20000 }, day: { maxTokens: 50000 } });
    const c = new Map([
      ["node:r1:validate", counter(19500)],
      ["day:wf:2026-12-03", counter(30000)],
    ]);
    expect(decide(scopes, c, { tokens: 900, usdUnits: 0n }, "validate call")).toEqual({
      verdict: "refuse",
      scope: scopes[1],
      reason: "node validate max tokens 20000 reached: 19500 spent, next validate call needs ~900",
    });
    const day = new Map([["day:wf:2026-12-03", counter(49500)]]);
    expect(decide(scopes, day, { tokens: 900, usdUnits: 0n }, "summarize call")).toMatchObject({
      verdict: "refuse",
      reason: "day 2026-12-03 (UTC) of wf max tokens 50000 reached: 49500 spent by all runs, next summarize call needs ~900",
    });
  });

  it("waits when only calls in flight hold the room; fits exactly at the limit", () => {
    const scopes = scopesFor({ workflow: "wf", runId: "r1", node: "n", at }, { maxTokens: 1000 });
    expect(decide(scopes, new Map([["run:r1", counter(100, 500)]]), { tokens: 600, usdUnits: 0n }, "n call")).toEqual({ verdict: "wait" });
    expect(decide(scopes, new Map([["run:r1", counter(400, 0)]]), { tokens: 600, usdUnits: 0n }, "n call")).toMatchObject({ verdict: "ok" });
    expect(decide(scopes, new Map([["run:r1", counter(401, 0)]]), { tokens: 600, usdUnits: 0n }, "n call")).toMatchObject({ verdict: "refuse" });
  });

  it("reports the scopes a reservation takes past their soft share (80% by default)", () => {
    const scopes = scopesFor({ workflow: "wf", runId: "r1", node: "n", at }, { maxTokens: 1000, day: { maxTokens: 10000 } });
    const d = decide(scopes, new Map([["run:r1", counter(700)]]), { tokens: 100, usdUnits: 0n }, "n call");
    expect(d.verdict === "ok" && d.overSoft.map((o) => o.scope.key)).toEqual(["run:r1"]);
    const below = decide(scopes, new Map([["run:r1", counter(600)]]), { tokens: 100, usdUnits: 0n }, "n call");
    expect(below.verdict === "ok" && below.overSoft).toEqual([]);
    expect(softThreshold({ tokens: 1001, usdUnits: 10n }, 0.8)).toEqual({ tokens: 800, usdUnits: 8n });
  });

  it("USD limits are exact decimals", () => {
    const scopes = scopesFor({ workflow: "wf", runId: "r1", node: "n", at }, { maxUsd: 0.000001 });
    const c = new Map([["run:r1", { ...counter(0), spentUnits: 999_000n }]]);
    expect(decide(scopes, c, { tokens: 10, usdUnits: 1_000n }, "n call")).toMatchObject({ verdict: "ok" });
    expect(decide(scopes, c, { tokens: 10, usdUnits: 1_001n }, "n call")).toMatchObject({
      verdict: "refuse",
      reason: "run max USD 0.000001 reached: $0.00000100 spent, next n call needs ~$0.00000000 (10 tokens)",
    });
  });

  it("rejects bad limits up front", () => {
    expect(() => validateLimits({ day: { maxTokens: 0 } })).toThrow("budget day maxTokens must be a positive whole number, got 0");
    expect(() => validateLimits({ softRatio: 1.5 })).toThrow("budget softRatio must be above 0 and at most 1, got 1.5");
    expect(() => validateLimits({ timeZone: "Mars/Olympus" })).toThrow('budget timeZone "Mars/Olympus" is not an IANA time zone');
  });
});
