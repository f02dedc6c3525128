/**
 * `npm run bench -- [--feeds <dir|file> ...] [--latency-ms N] [--pairs N] [--json]`
 *
 * The briefing through the real @langchain/openai client against a local model server with a
 * set latency (server.ts, in a child process), each run on a fresh embedded database in the
 * system's temp folder. Runs: one untimed warm-up each way, then `pairs` pairs with and without the ledger (alternating which goes
 * first), a second run on the first run's database, and the naive pipeline (naive.ts). Not a
 * test: nothing asserts a time.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runBriefing, type BriefingResult } from "../app/run-briefing";
import { ConfigError, loadConfig, type Config } from "../config";
import { openDatabase, type OpenedDatabase } from "../db/client";
import { sharedCheckpointer } from "../db/checkpointer";
import { countTextTokens } from "../ledger/tokens";
import { table } from "../report/format";
import { parseFlags, parseNumberFlag, runCli, spreadFeeds } from "../cli/common";
import { runNaive } from "./naive";
import { limitRatio, median, overheadRatio, ratio, round3 } from "./ratios";
import { readStats, resetStats, totalOf, type ServerStats } from "./server";

const USAGE = `usage: npm run bench -- [--feeds <dir|file> ...] [--latency-ms N] [--pairs N] [--json] [--verbose]

Benchmarks the briefing against a local OpenAI-compatible server answering each call after
--latency-ms (default 50). Feeds default to ../shared/feeds. With --json the last line is one JSON object;
--verbose prints every run's progress lines with their times.`;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_FEEDS = path.resolve(HERE, "../../../shared/feeds");

interface Measured {
  wallMs: number;
  stats: ServerStats;
  result: BriefingResult;
  database: OpenedDatabase;
  dir: string;
}

async function startServer(latencyMs: number): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(path.join(HERE, "server-process.ts"), [], {
    env: { ...process.env, BENCH_LATENCY_MS: String(latencyMs) },
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { url: string }).url));
    child.once("exit", (code) => reject(new Error(`the bench server exited (code ${code}) before it listened`)));
  });
  return { url, child };
}

function benchConfig(url: string, scratch: string): Config {
  const env: Record<string, string | undefined> = { ...process.env };
  // The bench's own database and models; a budget would only stop the baseline runs.
  for (const key of ["DATABASE_URL", "NEWSLEDGER_MAX_TOKENS", "NEWSLEDGER_MAX_USD", "FEEDS"]) delete env[key];
  return loadConfig({
    ...env,
    NEWSLEDGER_PROVIDER: "openai",
    OPENAI_BASE_URL: url,
    OPENAI_API_KEY: "bench-dummy-key",
    NEWSLEDGER_OUT_DIR: path.join(scratch, "out"),
  });
}

/** One run on a fresh database (or the given one). Opening and migrating it is not timed. */
async function measure(config: Config, url: string, feeds: string[], options: { ledger: boolean; reuse?: Measured; log?: (l: string) => void }): Promise<Measured> {
  const dir = options.reuse?.dir ?? mkdtempSync(path.join(os.tmpdir(), "newsledger-bench-db-"));
  const database = options.reuse?.database ?? (await openDatabase({ dataDir: dir, timezone: config.schedule.timezone }));
  await sharedCheckpointer(database);
  await resetStats(url);
  const started = performance.now();
  const log = options.log ? (line: string) => options.log!(`+${Math.round(performance.now() - started)} ms ${line}`) : () => {};
  const result = await runBriefing({ config, database, log }, { trigger: "bench", feeds, ledger: options.ledger });
  const wallMs = performance.now() - started;
  if (result.status !== "succeeded") throw new Error(`bench run ${result.status}: ${result.error ?? result.haltReason}`);
  return { wallMs, stats: await readStats(url), result, database, dir };
}

async function dispose(m: Measured): Promise<void> {
  await m.database.close();
  rmSync(m.dir, { recursive: true, force: true });
}

runCli(async () => {
  const flags = parseFlags(
    spreadFeeds(process.argv.slice(2)),
    {
      feeds: { type: "string", multiple: true },
      "latency-ms": { type: "string" },
      pairs: { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
    },
    USAGE,
  );
  if (!flags) return 0;
  const latencyMs = parseNumberFlag("latency-ms", flags["latency-ms"]) ?? 50;
  const pairs = parseNumberFlag("pairs", flags.pairs) ?? 3;
  if (!(latencyMs >= 0) || !(Number.isInteger(pairs) && pairs >= 1)) throw new ConfigError("bad argument: --latency-ms must be at least 0 and --pairs a whole number from 1");
  const feeds = flags.feeds?.length ? flags.feeds.map((f) => path.resolve(f)) : [DEFAULT_FEEDS];
  for (const feed of feeds) {
    if (!existsSync(feed)) {
      throw new ConfigError(
        feed === DEFAULT_FEEDS
          ? `bench: the shared feed corpus is not at ${DEFAULT_FEEDS} (see its MANIFEST.md); pass --feeds <dir|file> to use other feeds`
          : `bad argument: --feeds ${feed}: no such file or folder`,
      );
    }
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);

  const scratch = mkdtempSync(path.join(os.tmpdir(), "newsledger-bench-"));
  const { url, child } = await startServer(latencyMs);
  try {
    const config = benchConfig(url, scratch);
    // Build the tokenizer's encoders before anything is timed (a long-lived process has them).
    countTextTokens("warm", config.models.summarize);
    countTextTokens("warm", config.models.embedding);

    // One untimed run each way first: the code paths of both get compiled, as in a long-lived
    // process (the scheduler), so the first timed pair does not pay for it on one side only.
    for (const ledger of [true, false]) await dispose(await measure(config, url, feeds, { ledger }));
    say("warm-up: one run with and one without the ledger, not timed");

    const withRuns: Measured[] = [];
    const pairTimes: { withMs: number; withoutMs: number }[] = [];
    let main: Measured | undefined;
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first, so warm-up and drift fall on both sides alike.
      const order = i % 2 === 0 ? [true, false] : [false, true];
      const times: Record<string, number> = {};
      for (const ledger of order) {
        const m = await measure(config, url, feeds, { ledger, log: flags.verbose || (!main && ledger) ? say : undefined });
        times[String(ledger)] = m.wallMs;
        say(`pair ${i + 1}: ${ledger ? "with" : "without"} the ledger ${(m.wallMs / 1000).toFixed(3)} s, ${totalOf(m.stats).calls} calls`);
        if (ledger) {
          withRuns.push(m);
          if (!main) main = m;
          else await dispose(m);
        } else await dispose(m);
      }
      pairTimes.push({ withMs: times.true!, withoutMs: times.false! });
    }
    main = main!;

    const rerun = await measure(config, url, feeds, { ledger: true, reuse: main });
    say(`rerun on the same database: ${(rerun.wallMs / 1000).toFixed(3)} s, ${totalOf(rerun.stats).calls} calls, ${rerun.result.total_tokens} tokens`);
    await dispose(main);

    await resetStats(url);
    const naive = await runNaive({ baseUrl: url, config, feeds });
    say(`naive: ${naive.articles} articles, ${naive.calls} calls, ${naive.tokens} tokens`);

    const served = totalOf(main.stats);
    if (served.total !== main.result.total_tokens) say(`warning: the ledger counted ${main.result.total_tokens} tokens, the server billed ${served.total}`);
    const wallMs = median(withRuns.map((m) => m.wallMs));
    const tokensByNode = Object.fromEntries(main.result.nodes.map((n) => [n.node, n.total_tokens]));
    const figures = {
      latency_ms: latencyMs,
      concurrency: config.concurrency,
      articles: main.result.articles,
      posts: main.result.posts,
      wall_s: round3(wallMs / 1000),
      calls: served.calls,
      calls_by_node: Object.fromEntries(main.result.nodes.map((n) => [n.node, n.calls])),
      tokens: main.result.total_tokens,
      tokens_by_node: tokensByNode,
      tokens_per_post: main.result.posts ? Math.round(main.result.total_tokens / main.result.posts) : null,
      limit_ratio: round3(limitRatio(wallMs, served.calls, latencyMs, config.concurrency)),
      ledger_overhead_ratio: round3(overheadRatio(pairTimes)),
      pairs_s: pairTimes.map((p) => [round3(p.withMs / 1000), round3(p.withoutMs / 1000)]),
      rerun_token_ratio: round3(ratio(rerun.result.total_tokens, main.result.total_tokens)),
      naive_token_ratio: round3(ratio(naive.tokens, main.result.total_tokens)),
      naive: { articles: naive.articles, calls: naive.calls, tokens: naive.tokens, tokens_by_stage: naive.tokensByStage },
    };

    process.stdout.write(
      `\n${table(
        ["node", "calls", "tokens"],
        main.result.nodes.map((n) => [n.node, n.calls, n.total_tokens]),
      )}\n\n${table(
        ["figure", "value", "target"],
        [
          ["wall_s", figures.wall_s, ""],
          ["calls", figures.calls, ""],
          ["tokens", figures.tokens, ""],
          ["tokens_per_post", figures.tokens_per_post ?? "-", ""],
          ["limit_ratio", figures.limit_ratio, "<= 1.2"],
          ["ledger_overhead_ratio", figures.ledger_overhead_ratio, "<= 1.02"],
          ["rerun_token_ratio", figures.rerun_token_ratio, "<= 0.02"],
          ["naive_token_ratio", figures.naive_token_ratio, ">= 2"],
        ],
      )}\n`,
    );
    if (flags.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
    return 0;
  } finally {
    child.disconnect();
    rmSync(scratch, { recursive: true, force: true });
  }
});
