import { describe, expect, it } from "vitest";
import { BudgetExceededError } from "../../src/ledger/budget";
import { forEachLimited, haltOnBudget } from "../../src/pipeline/concurrency";

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("forEachLimited", () => {
  it("runs every item, never more than the limit at once", async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await tick();
      done.push(n);
      running -= 1;
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(3);
  });

  it("after a failure starts nothing new, lets the items in flight finish, then rejects with the first error", async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const work = forEachLimited([1, 2, 3, 4, 5, 6], 2, async (n) => {
      started.push(n);
      if (n === 1) throw new Error("item 1 failed");
      await tick();
      finished.push(n);
    });
    await expect(work).rejects.toThrow("item 1 failed");
    expect(started).toEqual([1, 2]);
    expect(finished).toEqual([2]);
  });
});

describe("haltOnBudget", () => {
  it("returns null when the work completes", async () => {
    expect(await haltOnBudget(Promise.resolve())).toBeNull();
  });

  it("turns a budget refusal into its reason", async () => {
    const reason = "run exceeded max tokens 3000 (spent 2950, next call needs ~420)";
    expect(await haltOnBudget(Promise.reject(new BudgetExceededError(reason)))).toBe(reason);
  });

  it("lets any other error through", async () => {
    await expect(haltOnBudget(Promise.reject(new Error("HTTP 500")))).rejects.toThrow("HTTP 500");
  });
});
