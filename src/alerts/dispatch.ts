/**
 * Raises alerts: each is stored in `alerts`, sent to every channel with retries, and each
 * delivery stored in `alert_deliveries`. The same dedupe key inside the cooldown is stored as
 * suppressed and not sent, across processes (an advisory lock orders the check and the insert).
 * Nothing here throws: an alert that cannot be stored or sent never fails the run.
 */
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { rows } from "../db/migrate";
import { alertDeliveries, alerts } from "../db/schema";
import { DeliveryError } from "./channels";
import type { Alert, AlertChannel } from "./types";

const MAX_RETRY_AFTER_MS = 60_000;

export interface AlerterOptions {
  channels: AlertChannel[];
  /** Further attempts after a failed delivery. */
  retries: number;
  cooldownMinutes: number;
  /** Base delay between attempts (doubled each time). */
  retryDelayMs?: number;
  /** Where the alerter's own trouble is told (a channel that failed, a row not stored). */
  warn?: (line: string) => void;
}

export interface RaisedAlert {
  id: number | null;
  deliveryStatus: "sent" | "failed" | "partial" | "suppressed" | "no_channels" | "not_stored";
}

export class Alerter {
  constructor(
    private readonly db: Database,
    private readonly options: AlerterOptions,
  ) {}

  async raise(alert: Alert): Promise<RaisedAlert> {
    let stored: { id: number; createdAt: Date; suppressed: boolean };
    try {
      stored = await this.store(alert);
    } catch (err) {
      // Not stored (so no cooldown check either): still told, rather than lost.
      this.options.warn?.(`alert not stored (${(err as Error).message}): ${alert.message}`);
      await Promise.all(this.options.channels.map((channel) => this.deliver(channel, { ...alert, id: 0, createdAt: new Date() }, false)));
      return { id: null, deliveryStatus: "not_stored" };
    }
    if (stored.suppressed) return { id: stored.id, deliveryStatus: "suppressed" };
    if (this.options.channels.length === 0) {
      await this.setStatus(stored.id, "no_channels");
      return { id: stored.id, deliveryStatus: "no_channels" };
    }
    const results = await Promise.all(this.options.channels.map((channel) => this.deliver(channel, { ...alert, id: stored.id, createdAt: stored.createdAt })));
    const sent = results.filter(Boolean).length;
    const status = sent === results.length ? "sent" : sent === 0 ? "failed" : "partial";
    await this.setStatus(stored.id, status);
    return { id: stored.id, deliveryStatus: status };
  }

  private async store(alert: Alert): Promise<{ id: number; createdAt: Date; suppressed: boolean }> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`newsledger_alert:${alert.dedupeKey}`}))`);
      const recent = rows(
        await tx.execute(sql`select id from alerts where dedupe_key = ${alert.dedupeKey} and delivery_status <> 'suppressed'
          and created_at > now() - make_interval(mins => ${this.options.cooldownMinutes}) limit 1`),
      );
      const suppressed = recent.length > 0;
      const [row] = await tx
        .insert(alerts)
        .values({
          workflow: alert.workflow,
          runId: alert.runId,
          node: alert.node,
          rule: alert.rule,
          scope: alert.scope,
          severity: alert.severity,
          message: alert.message,
          figures: suppressed ? { ...alert.figures, suppressed_by: Number(recent[0]!.id) } : alert.figures,
          dedupeKey: alert.dedupeKey,
          deliveryStatus: suppressed ? "suppressed" : "pending",
        })
        .returning({ id: alerts.id, createdAt: alerts.createdAt });
      return { id: row!.id, createdAt: row!.createdAt, suppressed };
    });
  }

  /** Tries a channel up to 1 + retries times; records the outcome. True when it got through. */
  private async deliver(channel: AlertChannel, alert: Alert & { id: number; createdAt: Date }, record = true): Promise<boolean> {
    const attempts = 1 + this.options.retries;
    let lastError: unknown = null;
    let made = 0;
    for (let i = 0; i < attempts; i++) {
      made++;
      try {
        await channel.send(alert);
        lastError = null;
        break;
      } catch (err) {
        lastError = err;
        if (i < attempts - 1) {
          // The receiver's own Retry-After wins over the backoff, up to a minute (a channel never holds the run longer).
          const asked = err instanceof DeliveryError && err.retryAfterMs !== null ? Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS) : 0;
          await new Promise((r) => setTimeout(r, Math.max(asked, (this.options.retryDelayMs ?? 250) * 2 ** i)));
        }
      }
    }
    const error = lastError === null ? null : describe(lastError);
    if (error) this.options.warn?.(`alert ${alert.id} not delivered to ${channel.name} (${channel.target}) after ${made} attempt(s): ${error}`);
    if (!record) return error === null;
    try {
      await this.db.insert(alertDeliveries).values({ alertId: alert.id, channel: channel.name, target: channel.target, status: error ? "failed" : "sent", attempts: made, error });
    } catch (err) {
      this.options.warn?.(`delivery of alert ${alert.id} to ${channel.name} not recorded: ${(err as Error).message}`);
    }
    return error === null;
  }

  private async setStatus(id: number, status: string): Promise<void> {
    try {
      await this.db.update(alerts).set({ deliveryStatus: status }).where(eq(alerts.id, id));
    } catch (err) {
      this.options.warn?.(`alert ${id} status not recorded: ${(err as Error).message}`);
    }
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string }; code?: string };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause && !String(e?.message).includes(cause) ? ` (${cause})` : ""}`;
}
