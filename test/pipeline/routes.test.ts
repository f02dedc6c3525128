import { END } from "@langchain/langgraph";
import { describe, expect, it } from "vitest";
import { budgetHaltReason, compareDecimal } from "../../src/pipeline/budget_guard";
import { routeAfterCollect, routeAfterGuard, routeAfterValidate } from "../../src/pipeline/routes";
import { initialState, type BriefingState } from "../../src/pipeline/state";

const state = (patch: Partial<BriefingState>): BriefingState => ({ ...initialState("r1", []), ...patch });

describe("routers", () => {
  it("end the run at once when collect found nothing new", () => {
    expect(routeAfterCollect(state({ articleIds: [] }))).toBe(END);
    expect(routeAfterCollect(state({ articleIds: [4, 2] }))).toBe("budget_guard");
  });

  it("let budget_guard pass to the stage after the last one, or end on a halt", () => {
    expect(routeAfterGuard(state({ lastStage: "collect" }))).toBe("summarize");
    expect(routeAfterGuard(state({ lastStage: "summarize" }))).toBe("embed");
    expect(routeAfterGuard(state({ lastStage: "embed" }))).toBe("cluster");
    expect(routeAfterGuard(state({ lastStage: "cluster" }))).toBe("generate_social");
    expect(routeAfterGuard(state({ lastStage: "generate_social" }))).toBe("validate");
    expect(routeAfterGuard(state({ lastStage: "validate" }))).toBe("generate_social");
    expect(routeAfterGuard(state({ lastStage: "summarize", haltReason: "run max tokens 3000 reached" }))).toBe(END);
    expect(() => routeAfterGuard(state({ lastStage: "publish" }))).toThrow(/unexpected stage: publish/);
  });

  it("send invalid posts back while revision rounds are left, then publish", () => {
    expect(routeAfterValidate(state({ invalidPostIds: [], revisionRound: 0 }), 2)).toBe("publish");
    expect(routeAfterValidate(state({ invalidPostIds: [7], revisionRound: 1 }), 2)).toBe("budget_guard");
    expect(routeAfterValidate(state({ invalidPostIds: [7], revisionRound: 2 }), 2)).toBe("budget_guard");
    expect(routeAfterValidate(state({ invalidPostIds: [7], revisionRound: 3 }), 2)).toBe("publish");
    expect(routeAfterValidate(state({ invalidPostIds: [7], revisionRound: 1 }), 0)).toBe("publish");
    expect(routeAfterValidate(state({ invalidPostIds: [7], revisionRound: 1, haltReason: "x" }), 2)).toBe(END);
  });
});

describe("budget guard", () => {
  it("halts on tokens or dollars at the limit, naming the limit and the figures", () => {
    expect(budgetHaltReason({ tokens: 2999, usd: "0" }, { maxTokens: 3000 })).toBeNull();
    expect(budgetHaltReason({ tokens: 3000, usd: "0" }, { maxTokens: 3000 })).toBe("run max tokens 3000 reached: 3000 tokens spent");
    expect(budgetHaltReason({ tokens: 10, usd: "0.049999999999" }, { maxUsd: 0.05 })).toBeNull();
    expect(budgetHaltReason({ tokens: 10, usd: "0.050000000000" }, { maxUsd: 0.05 })).toBe("run max USD 0.05 reached: $0.050000000000 spent");
    expect(budgetHaltReason({ tokens: 10 ** 9, usd: "999" }, {})).toBeNull();
  });

  it("compares decimals exactly", () => {
    expect(compareDecimal("0.1", "0.10")).toBe(0);
    expect(compareDecimal("0.30000000000000004", "0.3")).toBe(1);
    expect(compareDecimal("12.5", "9.99")).toBe(1);
    expect(compareDecimal("0.000000000001", "0")).toBe(1);
  });
});
