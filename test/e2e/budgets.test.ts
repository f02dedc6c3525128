/**
 * Hard limits hold exactly: a run halts before the call that would pass its limit, and the
 * tokens it recorded never exceed it (offline provider: its usage is counted with the same
 * tokenizer as the reservation, so every reservation covers its call).
 */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { runBriefing } from "../../src/app/run-briefing";
import { loadConfig, type FlagSettings } from "../../src/config";
import { rows } from "../../src/db/migrate";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { answerPrompt } from "../../src/llm/offline/chat-model";
import { describeShared, memoryDb, SHARED_DIR } from "../helpers/db";
import { chatCompletion, startOpenAIServer } from "../helpers/openai-server";

const FIXTURE_FEEDS = path.resolve(__dirname, "../fixtures/feeds");

async function briefing(feeds: string, flags: FlagSettings, env: Record<string, string> = {}) {
  const database = await memoryDb();
  try {
    const config = loadConfig(
      { NEWSLEDGER_PROVIDER: "offline", NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-budget-out-")), NEWSLEDGER_ALERT_CONSOLE: "false", NEWSLEDGER_MAX_ITEMS_PER_FEED: "50", ...env },
      { feeds: [feeds], ...flags },
    );
    const result = await runBriefing({ config, database, log: () => {} }, { trigger: "test" });
    const [recorded] = rows(await database.db.execute(sql`select coalesce(sum(total_tokens), 0)::int as tokens, count(*)::int as calls from llm_calls where run_id = ${result.runId}`));
    const byNode = rows(await database.db.execute(sql`select node, sum(total_tokens)::int as tokens from llm_calls where run_id = ${result.runId} group by node order by node`));
    const counters = rows(await database.db.execute(sql`select key, spent_tokens::int as spent, reserved_tokens::int as reserved from budget_counters where key = ${`run:${result.runId}`}`));
    return { result, recorded: recorded as { tokens: number; calls: number }, byNode, counters };
  } finally {
    await database.close();
  }
}

describe("hard limits (fixture feeds)", () => {
  it.each([400, 1200, 2500])("--max-tokens %i: halted, exit 3, recorded tokens never above the limit", async (n) => {
    const { result, recorded, counters } = await briefing(FIXTURE_FEEDS, { maxTokens: n });
    expect(result.status).toBe("halted");
    expect(result.exitCode).toBe(3);
    expect(result.haltReason).toMatch(new RegExp(`^run max tokens ${n} reached: \\d+ spent, next \\w+ (embedding )?call needs ~\\d+$`));
    expect(recorded.tokens).toBeLessThanOrEqual(n);
    expect(result.total_tokens).toBe(recorded.tokens);
    // The counter agrees with the rows, and nothing stays reserved after the run.
    expect(counters).toEqual([{ key: `run:${result.runId}`, spent: recorded.tokens, reserved: 0 }]);
  });

  it("a node limit halts the run at that node with its reason; other nodes stay under it", async () => {
    const { result, byNode } = await briefing(FIXTURE_FEEDS, { nodeMaxTokens: 1500 });
    expect(result.status).toBe("halted");
    expect(result.haltReason).toMatch(/^node summarize max tokens 1500 reached: \d+ spent, next summarize call needs ~\d+$/);
    for (const r of byNode) expect(Number(r.tokens)).toBeLessThanOrEqual(1500);
  });

  it("a USD limit does not stop the free offline models: the run succeeds at exactly $0", async () => {
    // The offline models are priced 0: a limit in USD never halts them, and says nothing is spent.
    const { result } = await briefing(FIXTURE_FEEDS, { maxUsd: 0.0001 });
    expect(result.status).toBe("succeeded");
    expect(result.cost_usd).toBe("0.000000000000");
  });
});

describeShared("hard limits on ../shared/feeds", () => {
  it.each([1000, 3000, 10000, 30000])("--max-tokens %i on the 30 real feeds: halted, recorded tokens ≤ the limit", async (n) => {
    const { result, recorded } = await briefing(path.join(SHARED_DIR, "feeds"), { maxTokens: n }, { NEWSLEDGER_MAX_ITEMS_PER_FEED: "5" });
    expect(result.status).toBe("halted");
    expect(result.exitCode).toBe(3);
    expect(recorded.tokens).toBeLessThanOrEqual(n);
    expect(recorded.calls).toBeGreaterThan(0);
  }, 120_000);
});

describe("a loop that would run forever", () => {
  it("validate rejecting every post, revisions unbounded: halted by the node limit with its reason, every call recorded", async () => {
    const reply = (body: any) => answerPrompt(body.messages.map((m: { role: string; content: string }) => (m.role === "system" ? new SystemMessage(m.content) : new HumanMessage(m.content))));
    const never = JSON.stringify(Object.fromEntries(["x", "bluesky", "linkedin"].map((p) => [p, { ok: false, reason: "needs another pass" }])));
    const server = await startOpenAIServer({ content: reply, fixed: { prompt: 100, completion: 20 } });
    server.respondWith("chat", (body) =>
      body.messages[0].content.startsWith("Task: validate") ? chatCompletion({ content: never, usage: { prompt: 600, completion: 40 } }) : undefined,
    );
    try {
      const { result, byNode } = await briefing(FIXTURE_FEEDS, { nodeMaxTokens: 20000 }, { OPENAI_BASE_URL: `${server.url}/v1`, NEWSLEDGER_PROVIDER: "openai", NEWSLEDGER_MAX_REVISIONS: "1000", NEWSLEDGER_CACHE_TTL_HOURS: "0" });
      expect(result.status).toBe("halted");
      expect(result.haltReason).toMatch(/^node validate max tokens 20000 reached: \d+ spent, next validate call needs ~\d+$/);
      const validate = Number(byNode.find((r) => r.node === "validate")!.tokens);
      expect(validate).toBeLessThanOrEqual(20000);
      // Many rounds went by before the limit (each round reviews up to 5 stories at 640 tokens a call; the server bills less than each reservation, as a real one does).
      expect(validate).toBeGreaterThan(20000 - 640 - 1500);
      expect(server.requests.filter((r) => r.body.messages?.[0]?.content.startsWith("Task: validate")).length).toBe(validate / 640);
    } finally {
      await server.close();
    }
  }, 120_000);
});
