import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retryAfterMs, webhookChannel } from "../../src/alerts/channels";
import { Alerter } from "../../src/alerts/dispatch";
import type { Alert } from "../../src/alerts/types";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { memoryDb } from "../helpers/db";

const alert = (key: string): Alert => ({ workflow: "wf", runId: null, node: null, rule: "forecast", scope: "day", severity: "warning", message: "m", figures: {}, dedupeKey: key });

describe("alert delivery", () => {
  let database: OpenedDatabase;
  beforeAll(async () => {
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
  });

  it("reads Retry-After as seconds or as a date", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs("Thu, 03 Dec 2026 10:00:05 GMT", Date.parse("Thu, 03 Dec 2026 10:00:00 GMT"))).toBe(5000);
    expect(retryAfterMs("soon")).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });

  it("waits as long as a 429's Retry-After asks before trying again, then records the delivery sent", async () => {
    const times: number[] = [];
    const server = createServer((req, res) => {
      req.resume();
      times.push(Date.now());
      if (times.length === 1) res.writeHead(429, { "retry-after": "1" }).end("slow down");
      else res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const alerter = new Alerter(database.db, { channels: [webhookChannel(url, 5000)], retries: 2, cooldownMinutes: 60, retryDelayMs: 10 });
      const raised = await alerter.raise(alert("retry-after"));
      expect(raised.deliveryStatus).toBe("sent");
      expect(times.length).toBe(2);
      // Not the 10 ms backoff: the receiver asked for a second.
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(990);
      const [d] = rows(await database.db.execute(sql`select status, attempts from alert_deliveries where alert_id = ${raised.id}`));
      expect([d!.status, Number(d!.attempts)]).toEqual(["sent", 2]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
