/**
 * The CLIs as a user runs them: a real process, real exit codes, stdout/stderr as printed.
 * Each run gets its own data and output folders in the temp dir.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { describe, expect, it } from "vitest";
import { describeShared, SHARED_DIR } from "../helpers/db";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

function cli(script: string, args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(TSX, [path.join(ROOT, "src/cli", script), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", TZ: "UTC", ...env },
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function tempEnv() {
  return {
    NEWSLEDGER_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-cli-data-")),
    NEWSLEDGER_OUT_DIR: mkdtempSync(path.join(os.tmpdir(), "nl-cli-out-")),
  };
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);

// Each test starts several processes (a few seconds each, more on a loaded machine).
describe("npm run briefing", { timeout: 240_000 }, () => {
  it("runs offline on the fixture feeds, prints the node table, and --json ends with one object", () => {
    const env = tempEnv();
    const table = cli("briefing.ts", ["--feeds", "test/fixtures/feeds"], env);
    expect(table.stderr).toMatch(/provider offline/);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^summarize\s+\d+/m);
    expect(table.stdout).toMatch(/^TOTAL\s+\d+/m);
    expect(table.stdout).toMatch(/run [0-9a-f-]{36} succeeded/);

    const again = cli("briefing.ts", ["--feeds", "test/fixtures/feeds", "--json"], env);
    expect(again.code).toBe(0);
    const out = lastJson(again.stdout);
    expect(out.status).toBe("succeeded");
    expect(out.articles).toBe(0);
    expect(out.total_tokens).toBe(0);
    expect(again.stderr).toMatch(/no new articles/);

    const report = cli("report.ts", ["--json"], env);
    expect(report.code).toBe(0);
    const rep = lastJson(report.stdout);
    expect(rep.run.run_id).toBe(out.runId);
    expect(rep.today[0].runs).toBe(2);
  });

  it("exits 2 with a message naming the bad argument or setting", () => {
    const env = tempEnv();
    const bad = cli("briefing.ts", ["--max-tokens", "many"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-tokens needs a positive decimal number, got "many"/);
    const unknown = cli("briefing.ts", ["--fedes", "x"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--fedes'/);
    const setting = cli("briefing.ts", [], { ...env, NEWSLEDGER_CONCURRENCY: "zero" });
    expect(setting.code).toBe(2);
    expect(setting.stderr).toMatch(/NEWSLEDGER_CONCURRENCY/);
  });

  it("exits 3 when a budget halts the run", () => {
    const env = tempEnv();
    const res = cli("briefing.ts", ["--feeds", "test/fixtures/feeds", "--max-tokens", "1500", "--json"], env);
    expect(res.code).toBe(3);
    const out = lastJson(res.stdout);
    expect(out.status).toBe("halted");
    expect(out.haltReason).toMatch(/max tokens 1500/);
  });
});

describeShared("npm run briefing on ../shared/feeds", { timeout: 240_000 }, () => {
  it("attempts all 30 feeds, runs every stage and writes the briefing", async () => {
    const env = tempEnv();
    const res = cli("briefing.ts", ["--feeds", path.join(SHARED_DIR, "feeds"), "--json"], env);
    expect(res.code, res.stderr).toBe(0);
    const out = lastJson(res.stdout);
    expect(out.provider).toBe("offline");
    expect(out.feeds_attempted).toBe(30);
    expect(out.articles).toBeGreaterThan(50);
    expect(existsSync(out.briefing_path)).toBe(true);
    const nodes = new Map<string, { calls: number; total_tokens: number }>(out.nodes.map((n: { node: string }) => [n.node, n]));
    for (const node of ["summarize", "embed", "generate_social", "validate"]) {
      expect(nodes.get(node)!.calls, node).toBeGreaterThan(0);
      expect(nodes.get(node)!.total_tokens, node).toBeGreaterThan(0);
    }
    expect([...nodes.keys()].sort()).toEqual(["budget_guard", "cluster", "collect", "embed", "generate_social", "publish", "summarize", "validate"]);
    // The rows are in the embedded database the CLI used.
    const lite = await PGlite.create(env.NEWSLEDGER_DATA_DIR);
    const calls = await lite.query<{ node: string; n: number }>(
      `select node, count(*)::int as n from llm_calls where run_id = $1 group by node order by node`,
      [out.runId],
    );
    expect(calls.rows.map((r) => r.node)).toEqual(["embed", "generate_social", "summarize", "validate"]);
    await lite.close();
  });
});
