/** parseFeedDate: the date shapes real feeds use (see ../shared/feeds/MANIFEST.md, "Dates"). */
import { describe, expect, it } from "vitest";
import { parseFeedDate } from "../../src/pipeline/collect/dates";

const parsed = (raw: string) => parseFeedDate(raw)?.toISOString() ?? null;

describe("parseFeedDate", () => {
  it.each([
    ["Thu, 02 May 2024 08:00:00 +0200", "2024-05-02T06:00:00.000Z"],
    ["Thu, 02 May 2024 08:00:00 GMT", "2024-05-02T08:00:00.000Z"],
    ["Tue, 01 Oct 2019 14:30:00 PST", "2019-10-01T22:30:00.000Z"],
    ["Wed, 17 Jan 2018 15:50:00 EST", "2018-01-17T20:50:00.000Z"],
    ["Thu, 02 May 2024 08:00:00 CEST", "2024-05-02T06:00:00.000Z"],
    ["07 Nov 2015 12:00:00 EST", "2015-11-07T17:00:00.000Z"],
    ["Thu, 07 Dec 17 10:00:29 -0800", "2017-12-07T18:00:29.000Z"],
    ["Sat, 01 Jan 99 00:00:00 GMT", "1999-01-01T00:00:00.000Z"],
    ["Seg, 24 Set 2018 19:42:40 -0300", "2018-09-24T22:42:40.000Z"],
    ["Mo, 06 Okt 2025 09:00:00 +0200", "2025-10-06T07:00:00.000Z"],
    ["Thu, 2 May 2024 08:00 +0000 (UTC)", "2024-05-02T08:00:00.000Z"],
    ["Thu, 02 May 2024 08:00:00 GMT+0100", "2024-05-02T07:00:00.000Z"],
    ["2024-05-02T08:00:00Z", "2024-05-02T08:00:00.000Z"],
    ["2024-05-02T14:40:00+02:00", "2024-05-02T12:40:00.000Z"],
    ["2016-06-03T07:38:00.001-07:00", "2016-06-03T14:38:00.001Z"],
    ["2024-05-02 08:00:00", "2024-05-02T08:00:00.000Z"],
    ["2019-08-24", "2019-08-24T00:00:00.000Z"],
    ["2020/1/10 14:33:00", "2020-01-10T14:33:00.000Z"],
  ])("%s → %s", (raw, expected) => {
    expect(parsed(raw)).toBe(expected);
  });

  it.each([
    "yesterday morning",
    "2024-05-02 at 8am",
    "",
    "   ",
    "Thu, 31 Apr 2024 08:00:00 GMT",
    "2024-13-01T00:00:00Z",
    "Thu, 02 Foo 2024 08:00:00 GMT",
    "Thu, 02 May 2024 08:00:00 XYZ",
  ])("%j does not parse", (raw) => {
    expect(parseFeedDate(raw)).toBeNull();
  });

  it("does not depend on the host's time zone", () => {
    expect(process.env.TZ).toBe("UTC");
    expect(parsed("2020/1/10 14:33:00")).toBe("2020-01-10T14:33:00.000Z");
  });
});
