/**
 * Alerts end to end: a node that suddenly uses many times its usual tokens (against a local
 * OpenAI-compatible server) sends one alert to a local webhook receiver and one email to a local
 * SMTP receiver; a dead channel is recorded as failed and the run still succeeds; the same alert
 * inside the cooldown is stored as suppressed and not sent again.
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { sql } from "drizzle-orm";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { memoryDb } from "../helpers/db";
import { writeTownFeed } from "../helpers/feeds";
import { chatCompletion, startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";

const reply = (body: { messages: { role: string; content: string }[] }) =>
  answerPrompt(body.messages.map((m) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content))));

describe("spend alerts", () => {
  let server: FakeOpenAI;
  let database: OpenedDatabase;
  let webhook: Server;
  let webhookUrl: string;
  const posts: any[] = [];
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: string[] = [];
  let deadUrl: string;

  beforeAll(async () => {
    server = await startOpenAIServer({ content: reply, fixed: { prompt: 100, completion: 20 } });
    database = await memoryDb();
    webhook = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        posts.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => webhook.listen(0, "127.0.0.1", r));
    webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/newsledger`;
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      onData(stream, _session, done) {
        let text = "";
        stream.on("data", (d) => (text += d));
        stream.on("end", () => {
          mails.push(text);
          done();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
    smtpPort = (smtp.server.address() as AddressInfo).port;
    // A port that was open a moment ago and is closed now: a Slack webhook that is down.
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}/services/T000/B000/XXXX`;
    await new Promise<void>((r) => dead.close(() => r()));
  });
  afterAll(async () => {
    await database.close();
    await server.close();
    await new Promise<void>((r) => webhook.close(() => r()));
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  /** From now on summarize's prompts bill 2,000 tokens each (the others stay as they were). */
  const inflateSummarize = () =>
    server.respondWith("chat", (body) =>
      body.messages[0].content.startsWith("Task: summarize") ? chatCompletion({ content: reply(body), usage: { prompt: 2000, completion: 20 } }) : undefined,
    );
  const dir = mkdtempSync(path.join(os.tmpdir(), "nl-alerts-"));
  const env = {
    OPENAI_BASE_URL: "",
    NEWSLEDGER_OUT_DIR: path.join(dir, "out"),
    NEWSLEDGER_ALERT_CONSOLE: "false",
    NEWSLEDGER_ALERT_RETRIES: "2",
    NEWSLEDGER_SPIKE_FACTOR: "3",
    NEWSLEDGER_SPIKE_RUNS: "7",
    NEWSLEDGER_SPIKE_MIN_RUNS: "3",
  };
  const run = (n: number, extra: Record<string, string> = {}) =>
    runBriefing(
      {
        config: loadConfig(
          {
            ...env,
            OPENAI_BASE_URL: `${server.url}/v1`,
            NEWSLEDGER_ALERT_WEBHOOK_URL: webhookUrl,
            NEWSLEDGER_ALERT_SLACK_WEBHOOK: deadUrl,
            NEWSLEDGER_ALERT_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
            NEWSLEDGER_ALERT_EMAIL_TO: "ops@example.org",
            ...extra,
          },
          { feeds: [writeTownFeed(dir, n, 4)] },
        ),
        database,
        log: () => {},
      },
      { trigger: "test" },
    );

  it("a spike in summarize: one webhook alert and one email with the run, node, figures and rule; the dead channel is recorded failed; the run succeeds", async () => {
    // Four ordinary runs: summarize bills 120 tokens a call, 4 calls a run.
    for (let n = 0; n < 4; n++) {
      const r = await run(n);
      expect(r.status).toBe("succeeded");
      expect(r.alerts).toEqual([]);
    }
    // The fifth: summarize's prompts suddenly bill 2,000 tokens each.
    inflateSummarize();
    const spiked = await run(4);
    server.respondWith("chat", undefined);
    expect(spiked.status).toBe("succeeded");
    expect(spiked.alerts.map((a) => [a.rule, a.node, a.deliveryStatus])).toEqual([["spike", "summarize", "partial"]]);
    const message = `run ${spiked.runId}: node summarize used 8080 tokens, 16.8x its median of 480 over its last 4 runs (rule: more than 3x the median of the last 7 runs)`;
    expect(spiked.alerts[0]!.message).toBe(message);

    expect(posts.length).toBe(1);
    expect(posts[0]).toMatchObject({
      run_id: spiked.runId,
      node: "summarize",
      rule: "spike",
      scope: "node",
      severity: "warning",
      message,
      figures: { tokens: 8080, median_tokens: 480, ratio: 16.8, history_runs: 4, factor: 3, window_runs: 7 },
    });
    expect(mails.length).toBe(1);
    expect(mails[0]).toContain("Subject: [newsledger] warning: spike in summarize (daily_briefing)");
    expect(mails[0]).toContain("To: ops@example.org");
    expect(mails[0]).toContain(`run: ${spiked.runId}`);
    expect(mails[0]).toContain("median_tokens: 480");
    expect(mails[0]).toContain("rule: spike (node)");

    const stored = rows(await database.db.execute(sql`select id, rule, node, delivery_status from alerts where run_id = ${spiked.runId}`));
    expect(stored.map((a) => [a.rule, a.node, a.delivery_status])).toEqual([["spike", "summarize", "partial"]]);
    const deliveries = rows(await database.db.execute(sql`select channel, target, status, attempts, error from alert_deliveries where alert_id = ${stored[0]!.id} order by channel`));
    expect(deliveries.map((d) => [d.channel, d.status, Number(d.attempts)])).toEqual([
      ["email", "sent", 1],
      ["slack", "failed", 3],
      ["webhook", "sent", 1],
    ]);
    const slack = deliveries.find((d) => d.channel === "slack")!;
    expect(String(slack.error)).toMatch(/fetch failed.*ECONNREFUSED/);
    // The webhook's secret path is not stored.
    expect(String(slack.target)).not.toContain("XXXX");
  }, 60_000);

  it("the same spike again inside the cooldown is stored as suppressed and sent nowhere", async () => {
    inflateSummarize();
    const again = await run(5);
    server.respondWith("chat", undefined);
    expect(again.status).toBe("succeeded");
    expect(again.alerts.map((a) => [a.rule, a.node, a.deliveryStatus])).toEqual([["spike", "summarize", "suppressed"]]);
    expect(posts.length).toBe(1);
    expect(mails.length).toBe(1);
    const [count] = rows(await database.db.execute(sql`select count(*)::int as n from alert_deliveries`));
    expect(Number(count!.n)).toBe(3);
  }, 60_000);

  it("a soft limit warns once and switches the remaining chat calls to the fallback model", async () => {
    const r = await run(6, { NEWSLEDGER_MAX_TOKENS: "5000", NEWSLEDGER_FALLBACK_MODEL: "gpt-4.1-nano", NEWSLEDGER_SOFT_LIMIT: "0.3" });
    expect(r.status).toBe("succeeded");
    const soft = r.alerts.filter((a) => a.rule === "soft_limit");
    expect(soft.map((a) => [a.scope, a.deliveryStatus])).toEqual([["run", "partial"]]);
    expect(soft[0]!.message).toMatch(new RegExp(`^run ${r.runId}: run passed 30% of its budget: \\d+ of 5000 tokens spent or reserved$`));
    const models = rows(await database.db.execute(sql`select request_model, count(*)::int as n from llm_calls where run_id = ${r.runId} and kind = 'chat' group by request_model order by request_model`));
    expect(models.map((m) => m.request_model)).toEqual(["gpt-4.1-nano", "gpt-4o-mini"]);
  }, 60_000);
});
