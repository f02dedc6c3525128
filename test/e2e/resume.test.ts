/**
 * A run halted by its budget, resumed with a higher one, finishes; the paid calls that succeeded
 * before the halt are not made again (the server counts them), and the run's totals are both parts.
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { ConfigError, loadConfig } from "../../src/config";
import type { OpenedDatabase } from "../../src/db/client";
import { rows } from "../../src/db/migrate";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { memoryDb } from "../helpers/db";
import { startOpenAIServer, type FakeOpenAI } from "../helpers/openai-server";

const FIXTURE_FEEDS = path.resolve(__dirname, "../fixtures/feeds");
const taskOf = (body: { messages?: { role: string; content: string }[] }) => body.messages?.[0]?.content.split("\n")[0] ?? "embeddings";

describe("resuming a halted run", () => {
  let server: FakeOpenAI;
  let database: OpenedDatabase;
  beforeAll(async () => {
    server = await startOpenAIServer({
      content: (body) => answerPrompt(body.messages.map((m: { role: string; content: string }) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content)))),
    });
    database = await memoryDb();
  });
  afterAll(async () => {
    await database.close();
    await server.close();
  });

  it("finishes with a higher budget without repeating a paid call, and totals both parts", async () => {
    const env = {
      OPENAI_BASE_URL: `${server.url}/v1`,
      NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-resume-out-")),
      NEWSLEDGER_MAX_ITEMS_PER_FEED: "50",
    };
    const first = await runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS], maxTokens: 1200 }), database, log: () => {} }, { trigger: "test" });
    expect(first.status).toBe("halted");
    expect(first.haltReason).toMatch(/^run max tokens 1200 reached: \d+ spent/);
    expect(first.total_tokens).toBeLessThanOrEqual(1200);
    const hitsBefore = server.hits();
    const summarizedBefore = server.requests.filter((r) => taskOf(r.body) === "Task: summarize").length;
    expect(summarizedBefore).toBeGreaterThan(0);
    expect(summarizedBefore).toBeLessThan(14);

    await expect(
      runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS] }), database, log: () => {} }, { trigger: "test", resume: "no-such-run" }),
    ).rejects.toBeInstanceOf(ConfigError);

    const lines: string[] = [];
    const second = await runBriefing(
      { config: loadConfig(env, { feeds: [FIXTURE_FEEDS], maxTokens: 100_000 }), database, log: (l) => lines.push(l) },
      { trigger: "test", resume: first.runId },
    );
    expect(second.runId).toBe(first.runId);
    expect(second.error).toBeNull();
    expect(second.status).toBe("succeeded");
    expect(lines.join("\n")).toMatch(new RegExp(`resuming run ${first.runId} at summarize; ${first.total_tokens} tokens already spent`));
    expect(server.hits()).toBeGreaterThan(hitsBefore);
    // Every article was summarised exactly once over both parts.
    expect(server.requests.filter((r) => taskOf(r.body) === "Task: summarize").length).toBe(14);
    expect(second.articles).toBe(14);
    expect(second.briefing_path).not.toBeNull();

    const [totals] = rows(await database.db.execute(sql`select count(*)::int as n, sum(total_tokens)::int as tokens from llm_calls where run_id = ${first.runId}`));
    expect(Number(totals.n)).toBe(server.hits());
    expect(Number(totals.tokens)).toBe(server.billed().total);
    expect(second.total_tokens).toBe(server.billed().total);

    await expect(
      runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS] }), database, log: () => {} }, { trigger: "test", resume: first.runId }),
    ).rejects.toThrow(/the run is succeeded; only a halted or failed run can be resumed/);
  });

  it("refuses to resume a halted run whose articles a later run took over (it would pay for them twice)", async () => {
    const other = await memoryDb();
    try {
      const env = { OPENAI_BASE_URL: `${server.url}/v1`, NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-resume-out-")), NEWSLEDGER_MAX_ITEMS_PER_FEED: "50", NEWSLEDGER_CACHE_TTL_HOURS: "0" };
      const halted = await runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS], maxTokens: 1200 }), database: other, log: () => {} }, { trigger: "test" });
      expect(halted.status).toBe("halted");
      const later = await runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS] }), database: other, log: () => {} }, { trigger: "test" });
      expect(later.articles).toBe(14);
      const hits = server.hits();
      await expect(
        runBriefing({ config: loadConfig(env, { feeds: [FIXTURE_FEEDS], maxTokens: 100_000 }), database: other, log: () => {} }, { trigger: "test", resume: halted.runId }),
      ).rejects.toThrow(new ConfigError(
        `bad argument: --resume ${halted.runId}: 14 of its articles were taken over by a later run (${later.runId}), which briefs them; resuming would pay for them again. Start a new run instead.`,
      ));
      expect(server.hits()).toBe(hits);
    } finally {
      await other.close();
    }
  });
});
