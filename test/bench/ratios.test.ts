import { describe, expect, it } from "vitest";
import { limitRatio, median, overheadRatio, ratio, round3 } from "../../src/bench/ratios";

describe("bench arithmetic", () => {
  it("takes the median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it("measures wall time against the latency floor: calls × latency ÷ concurrency", () => {
    // 160 calls of 50 ms, 4 at a time: 2 s at best; 2.4 s is 1.2 times that.
    expect(limitRatio(2400, 160, 50, 4)).toBeCloseTo(1.2, 12);
    expect(limitRatio(2000, 160, 50, 4)).toBe(1);
    expect(limitRatio(100, 0, 50, 4)).toBeNaN();
  });

  it("takes the median of the paired with ÷ without ratios, not the ratio of sums", () => {
    const pairs = [
      { withMs: 3300, withoutMs: 3000 },
      { withMs: 3030, withoutMs: 3000 },
      { withMs: 9000, withoutMs: 3000 },
    ];
    expect(overheadRatio(pairs)).toBeCloseTo(1.1, 12);
  });

  it("divides, with NaN for no baseline, and rounds to 3 decimals", () => {
    expect(ratio(0, 71083)).toBe(0);
    expect(ratio(5, 0)).toBeNaN();
    expect(round3(7.49812)).toBe(7.498);
  });
});
