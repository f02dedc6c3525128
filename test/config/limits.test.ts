/** Limits and alert settings that the arithmetic cannot hold are refused up front, naming the input. */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config";
import { parseNumberFlag } from "../../src/cli/common";

describe("limit settings and flags", () => {
  it("refuses USD limits above a billion dollars, as a flag and as a setting", () => {
    expect(() => loadConfig({}, { maxUsd: 1e30 })).toThrow(new ConfigError("bad argument: --max-usd must be between 0.000000001 and 1000000000 dollars, got 1e+30"));
    expect(() => loadConfig({}, { dayMaxUsd: 1e21 })).toThrow("bad argument: --day-max-usd must be between 0.000000001 and 1000000000 dollars, got 1e+21");
    expect(() => loadConfig({ NEWSLEDGER_MONTH_MAX_USD: "1e30" })).toThrow("bad setting: NEWSLEDGER_MONTH_MAX_USD: must be at most 1000000000 dollars");
    expect(loadConfig({}, { maxUsd: 1e9 }).budget.maxUsd).toBe(1e9);
  });

  it("refuses token limits beyond what a number holds exactly", () => {
    expect(() => loadConfig({}, { monthMaxTokens: 9007199254740993 })).toThrow("--month-max-tokens must be a positive whole number up to 9007199254740991");
    expect(() => loadConfig({ NEWSLEDGER_NODE_MAX_TOKENS: "1e30" })).toThrow("NEWSLEDGER_NODE_MAX_TOKENS: must be at most 9007199254740991");
  });

  it("reads flags as plain decimals only", () => {
    expect(parseNumberFlag("max-tokens", "2500")).toBe(2500);
    expect(parseNumberFlag("max-usd", "0.25")).toBe(0.25);
    expect(parseNumberFlag("max-usd", "1e-3")).toBe(0.001);
    expect(() => parseNumberFlag("max-tokens", "0x10")).toThrow('bad argument: --max-tokens needs a positive decimal number, got "0x10"');
    expect(() => parseNumberFlag("max-tokens", "ten")).toThrow(ConfigError);
  });

  it("refuses an alert cooldown beyond a year (the interval would overflow in SQL)", () => {
    expect(() => loadConfig({ NEWSLEDGER_ALERT_COOLDOWN_MINUTES: "100000000000" })).toThrow("bad setting: NEWSLEDGER_ALERT_COOLDOWN_MINUTES: must be at most 527040 (a year)");
  });
});
