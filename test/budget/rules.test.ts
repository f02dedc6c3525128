import { describe, expect, it } from "vitest";
import { addDays, daysLeftInMonth, findSpikes, forecast, median } from "../../src/alerts/rules";

describe("alert rules (pure)", () => {
  it("median of odd and even lists", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it("a spike is more than factor × the node's own median, judged only with enough history", () => {
    const history = new Map([
      ["summarize", [500, 480, 520, 9000, 470, 510, 490, 100_000]],
      ["validate", [300, 310]],
    ]);
    const current = new Map([
      ["summarize", 1600],
      ["validate", 5000],
      ["embed", 99_999],
    ]);
    // Last 7 of summarize: median 500 (the old outlier beyond 7 runs does not count); validate has 2 runs < 3.
    expect(findSpikes(current, history, { factor: 3, runs: 7, minRuns: 3 })).toEqual([{ node: "summarize", tokens: 1600, median: 500, ratio: 3.2, historyRuns: 7 }]);
    expect(findSpikes(new Map([["summarize", 1500]]), history, { factor: 3, runs: 7, minRuns: 3 })).toEqual([]);
  });

  it("forecasts today from the scheduled runs left and the month from the recent mean per day, with the crossing dates", () => {
    const fires = [new Date("2026-12-03T12:00:00Z"), new Date("2026-12-03T18:00:00Z")];
    const f = forecast({
      today: 10_000,
      month: 25_000,
      perRun: 6_000,
      firesLeftToday: fires,
      recentDays: [0, 0, 0, 0, 0, 7_500, 7_500],
      daysLeftInMonth: daysLeftInMonth("2026-12-03"),
      todayDate: "2026-12-03",
      dayLimit: 20_000,
      monthLimit: 100_000,
    });
    // Today: 10,000 + 2 runs × 6,000 = 22,000, past 20,000 at the second run (18:00).
    expect(f.today).toBe(22_000);
    expect(f.dayLimitCrossedAt).toEqual(fires[1]);
    // Month: 25,000 + 12,000 + 28 days × (15,000 / 7) = 97,000: under 100,000, no crossing.
    expect(f.perDay).toBeCloseTo(15_000 / 7, 6);
    expect(f.month).toBeCloseTo(97_000, 6);
    expect(f.monthLimitCrossedOn).toBeNull();
    const tighter = forecast({ today: 10_000, month: 25_000, perRun: 6_000, firesLeftToday: fires, recentDays: [7_000], daysLeftInMonth: 28, todayDate: "2026-12-03", monthLimit: 50_000 });
    // 37,000 after today, + 7,000 a day: 44,000 on the 4th, 51,000 on the 5th.
    expect(tighter.monthLimitCrossedOn).toBe("2026-12-05");
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(daysLeftInMonth("2028-02-27")).toBe(2);
  });
});
