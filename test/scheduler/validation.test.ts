/** Bad cron expressions and time zones are refused up front, with the setting named. */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config";
import { ScheduleConfigError, startSchedule, validateSchedule } from "../../src/scheduler";
import { VirtualClock } from "./helpers/virtual-clock";

const SHAPE = '(expected 5 fields "minute hour day-of-month month day-of-week", or 6 with seconds first, e.g. "0 7 * * *")';

function startError(cron: string, timezone: string, labels?: { cron?: string; timezone?: string }): Error {
  const clock = new VirtualClock(Date.UTC(2024, 0, 1));
  try {
    startSchedule({ cron, timezone, clock, labels, job: async () => {} });
  } catch (err) {
    expect(clock.pendingTimers()).toBe(0); // nothing was armed
    return err as Error;
  }
  throw new Error(`startSchedule accepted cron "${cron}" in "${timezone}"`);
}

describe("schedule validation", () => {
  it.each([
    ["61 * * * *", "61 is a invalid expression for minute"],
    ["0 25 * * *", "25 is a invalid expression for hour"],
    ["* * *", "expected 5 or 6 fields but got 3"],
    ["0 7 * * * * *", "expected 5 or 6 fields but got 7"],
    ["0 7 31 2 *", "31 2 is an impossible day of month for the given month"],
    ["0 7 * * 8", "8 is a invalid expression for week day"],
    ["every day at 7", "expected 5 or 6 fields but got 4"],
    ["0 7 * * %", "pattern includes illegal characters"],
  ])("cron %j is refused: %s", (cron, reason) => {
    const err = startError(cron, "UTC");
    expect(err).toBeInstanceOf(ScheduleConfigError);
    expect(err).toBeInstanceOf(ConfigError); // the CLIs exit 2 on it
    expect(err.message).toBe(`BRIEFING_CRON "${cron}" is not a valid cron expression: ${reason} ${SHAPE}`);
  });

  it("an empty cron is refused", () => {
    expect(startError("  ", "UTC").message).toBe(`BRIEFING_CRON "  " is not a valid cron expression: it is empty ${SHAPE}`);
  });

  it.each(["Mars/Olympus_Mons", "Europe/Berln", "UTC+2"])("time zone %j is refused", (tz) => {
    const err = startError("0 7 * * *", tz);
    expect(err).toBeInstanceOf(ScheduleConfigError);
    expect(err.message).toMatch(new RegExp(`^BRIEFING_TZ "${tz.replace("+", "\\+")}" is not a valid IANA time zone: .+ \\(for example Europe/Berlin or UTC\\)$`));
  });

  it("an empty time zone is refused", () => {
    expect(startError("0 7 * * *", "").message).toBe("BRIEFING_TZ is empty: give an IANA time zone such as Europe/Berlin or UTC");
  });

  it("messages use the labels given", () => {
    expect(startError("61 * * * *", "UTC", { cron: "--cron" }).message).toMatch(/^--cron "61 \* \* \* \*" is not a valid cron expression: /);
    expect(startError("0 7 * * *", "Nowhere/Land", { timezone: "--tz" }).message).toMatch(/^--tz "Nowhere\/Land" is not a valid IANA time zone: /);
  });

  it("validateSchedule says the same without starting anything, and accepts good settings", () => {
    expect(() => validateSchedule("61 * * * *", "UTC")).toThrowError(/^BRIEFING_CRON "61 \* \* \* \*" is not a valid cron expression: 61 is a invalid expression for minute/);
    expect(() => validateSchedule("0 7 * * *", "Nowhere/Land")).toThrowError(/^BRIEFING_TZ "Nowhere\/Land" is not a valid IANA time zone/);
    for (const [cron, tz] of [
      ["0 7 * * *", "UTC"],
      ["0 7 * * MON-FRI", "Europe/Berlin"],
      ["@hourly", "Asia/Tokyo"],
      ["*/10 * * * * *", "America/New_York"],
      ["0 9 L * *", "Etc/UTC"],
    ]) {
      expect(validateSchedule(cron, tz).expression).toBe(cron);
    }
  });
});
