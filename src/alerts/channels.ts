/**
 * Alert channels: console, Slack and Discord incoming webhooks, a generic JSON webhook, and email
 * over SMTP (nodemailer). Each `send` throws when the alert did not get through; the dispatcher
 * retries and records.
 */
import nodemailer from "nodemailer";
import type { AlertSettings } from "../config";
import type { Alert, AlertChannel } from "./types";

type Sent = Alert & { id: number; createdAt: Date };

/** A URL for messages: host and the start of the path; webhook paths are secrets. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname.length > 12 ? `${u.pathname.slice(0, 12)}…` : u.pathname;
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return "(bad url)";
  }
}

export function alertTitle(alert: Alert): string {
  return `[newsledger] ${alert.severity}: ${alert.rule.replace("_", " ")}${alert.node ? ` in ${alert.node}` : ""} (${alert.workflow})`;
}

/** The text every channel sends: title, message, then each figure on its own line. */
export function alertText(alert: Sent): string {
  const lines = [alertTitle(alert), alert.message, `run: ${alert.runId ?? "-"}`, `node: ${alert.node ?? "-"}`, `rule: ${alert.rule} (${alert.scope})`];
  for (const [k, v] of Object.entries(alert.figures)) lines.push(`${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  lines.push(`at: ${alert.createdAt.toISOString()} (alert ${alert.id})`);
  return lines.join("\n");
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<void> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!res.ok) {
    const text = (await res.text().catch(() => "")).slice(0, 200);
    throw new DeliveryError(`HTTP ${res.status}${text ? `: ${text}` : ""}`, retryAfterMs(res.headers.get("retry-after")));
  }
}

/** A delivery that failed; `retryAfterMs` when the receiver said when to try again (429/503 Retry-After). */
export class DeliveryError extends Error {
  override name = "DeliveryError";
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  const seconds = Number(header.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function consoleChannel(write: (line: string) => void): AlertChannel {
  return { name: "console", target: "stderr", send: async (a) => write(`alert ${a.severity}: ${a.message}`) };
}

export function slackChannel(url: string, timeoutMs: number): AlertChannel {
  return { name: "slack", target: redactUrl(url), send: (a) => postJson(url, { text: alertText(a) }, timeoutMs) };
}

export function discordChannel(url: string, timeoutMs: number): AlertChannel {
  // Discord refuses content over 2000 characters.
  return { name: "discord", target: redactUrl(url), send: (a) => postJson(url, { content: alertText(a).slice(0, 2000) }, timeoutMs) };
}

export function webhookChannel(url: string, timeoutMs: number): AlertChannel {
  return {
    name: "webhook",
    target: redactUrl(url),
    send: (a) =>
      postJson(
        url,
        {
          id: a.id,
          workflow: a.workflow,
          run_id: a.runId,
          node: a.node,
          rule: a.rule,
          scope: a.scope,
          severity: a.severity,
          message: a.message,
          figures: a.figures,
          created_at: a.createdAt.toISOString(),
        },
        timeoutMs,
      ),
  };
}

export function emailChannel(smtpUrl: string, from: string, to: readonly string[], timeoutMs: number): AlertChannel {
  const u = new URL(smtpUrl);
  const secure = u.protocol === "smtps:";
  const transport = nodemailer.createTransport({
    host: u.hostname,
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    name: "email",
    target: `${to.join(", ")} via ${u.hostname}`,
    send: async (a) => {
      await transport.sendMail({ from, to: [...to], subject: alertTitle(a), text: alertText(a) });
    },
  };
}

/** The channels the settings turn on. */
export function channelsFrom(settings: AlertSettings, write: (line: string) => void): AlertChannel[] {
  const channels: AlertChannel[] = [];
  if (settings.console) channels.push(consoleChannel(write));
  if (settings.slackWebhook) channels.push(slackChannel(settings.slackWebhook, settings.timeoutMs));
  if (settings.discordWebhook) channels.push(discordChannel(settings.discordWebhook, settings.timeoutMs));
  if (settings.webhookUrl) channels.push(webhookChannel(settings.webhookUrl, settings.timeoutMs));
  if (settings.smtpUrl && settings.emailTo.length > 0) channels.push(emailChannel(settings.smtpUrl, settings.emailFrom, settings.emailTo, settings.timeoutMs));
  return channels;
}
