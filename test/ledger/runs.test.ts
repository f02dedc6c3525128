import { eq } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runs } from "../../src/db/schema";
import { finishRun, startRun } from "../../src/ledger/runs";
import { describeBackends, type TestDb } from "./_harness";

describeBackends("runs", (open) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await open();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("starts a run as running with its limits (unset ones left out) and a generated uuid", async () => {
    const id = await startRun(t.db, { workflow: "wf", trigger: "test", provider: "offline", limits: { maxTokens: 3000, maxUsd: undefined } });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const [row] = await t.db.select().from(runs).where(eq(runs.id, id));
    expect(row).toMatchObject({ workflow: "wf", trigger: "test", provider: "offline", status: "running", limits: { maxTokens: 3000 }, haltReason: null, finishedAt: null });
    expect(Object.keys(row!.limits)).toEqual(["maxTokens"]);
  });

  it("finishes a run with its status, halt reason and summary; an unknown run is an error", async () => {
    const id = await startRun(t.db, { id: "run-fixed-id", workflow: "wf", trigger: "manual", provider: "openai-compatible" });
    expect(id).toBe("run-fixed-id");
    await finishRun(t.db, id, { status: "halted", haltReason: "run max tokens 10 reached: 8 spent, next summarize call needs ~5", summary: { articles: 3 } });
    const [row] = await t.db.select().from(runs).where(eq(runs.id, id));
    expect(row).toMatchObject({ status: "halted", haltReason: "run max tokens 10 reached: 8 spent, next summarize call needs ~5", error: null, summary: { articles: 3 } });
    expect(row!.finishedAt).toBeInstanceOf(Date);
    await expect(finishRun(t.db, "no-such-run", { status: "failed" })).rejects.toThrow("finishRun: no run no-such-run");
  });
});
