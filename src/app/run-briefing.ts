/**
 * One run of the daily briefing, start to end: the run row, the ledger, the models, the graph,
 * and the figures read back from the views. The CLIs and the scheduler call this; it never exits
 * the process and never prints except through `log`.
 */
import { randomUUID } from "node:crypto";
import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { buildDailyBriefing } from "../../graphs/daily-briefing";
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import { eq, sql } from "drizzle-orm";
import { ConfigError, type Config } from "../config";
import type { Database } from "../db/client";
import { runs } from "../db/schema";
import { rows } from "../db/migrate";
import { loadPriceSources } from "../ledger/price-book";
import { markDeadRuns, type OpenedDatabase } from "../db/client";
import { pgAdvisoryLock, runLivenessKey } from "../db/locks";
import { Ledger } from "../ledger";
import { finishRun, reopenRun, startRun } from "../ledger/runs";
import { sharedCheckpointer } from "../db/checkpointer";
import { createModels, withFallback } from "../llm/factory";
import { Alerter, type RaisedAlert } from "../alerts/dispatch";
import { channelsFrom } from "../alerts/channels";
import { budgetAlert, forecastAlerts, spendForecast, spikeAlerts } from "../alerts/watch";
import type { Alert } from "../alerts/types";
import type { BudgetLimits } from "../ledger";
import type { Models } from "../llm/types";
import { initialState, type BriefingState } from "../pipeline/state";
import { feedProblems, nodeCosts, runCost, type NodeCostRow } from "../report/queries";
import { describeError, outcomeOfError, type RunStatus } from "./outcome";
import { runThread } from "./thread";

export const WORKFLOW = "daily_briefing";

/** What the run needs of a ledger when it has none (the benchmark's baseline): nothing spent, nothing kept. */
const NO_LEDGER = {
  haltReason: null,
  spent: () => ({ tokens: 0, usd: "0" }),
  flush: async () => {},
  unpricedModels: (): string[] => [],
};


export interface BriefingOptions {
  trigger: "manual" | "schedule" | "bench" | "test";
  feeds?: string[];
  /** Replace the models (tests, bench); defaults to the configured provider. */
  models?: Models;
  /** A run id chosen by the caller. */
  runId?: string;
  /** Aborting it stops the run (a signal): the call in flight ends, the run is recorded as failed. */
  signal?: AbortSignal;
  /** Continue this halted or failed run from where it stopped, with the config's (new) limits. */
  resume?: string;
  /**
   * false: no ledger at all (no callback handler, no fetch wrapper, no llm_calls rows), so the
   * benchmark can measure what the ledger costs. Never for real runs: nothing is accounted.
   */
  ledger?: boolean;
}

export interface BriefingResult {
  runId: string;
  status: RunStatus;
  exitCode: 0 | 1 | 3;
  provider: string;
  haltReason: string | null;
  error: string | null;
  articles: number;
  feeds_attempted: number;
  feeds_failed: number;
  clusters: number;
  posts: number;
  briefing_path: string | null;
  calls: number;
  total_tokens: number;
  cost_usd: string | null;
  unpriced_calls: number;
  unpriced_models: string[];
  nodes: NodeCostRow[];
  /** Alerts this run raised, with how their delivery went. */
  alerts: Array<Pick<Alert, "rule" | "scope" | "node" | "message"> & RaisedAlert>;
}

/** Every budget of the config as the ledger enforces it; days and months in BRIEFING_TZ. */
export function budgetLimits(config: Config): BudgetLimits {
  const b = config.budget;
  return { maxTokens: b.maxTokens, maxUsd: b.maxUsd, node: b.node, day: b.day, month: b.month, softRatio: b.softRatio, timeZone: config.schedule.timezone };
}

export interface RunnerDeps {
  config: Config;
  database: OpenedDatabase;
  log: (line: string) => void;
}

export async function runBriefing(deps: RunnerDeps, options: BriefingOptions): Promise<BriefingResult> {
  const runId = options.resume ?? options.runId ?? randomUUID();
  const { database } = deps;
  if (database.kind !== "postgres" || !database.url) return runBriefingAs(runId, deps, options);
  // On a shared Postgres a run holds a lock for as long as its process lives, taken before its
  // row exists; runs "running" whose lock nobody holds are dead and marked failed first.
  const alive = pgAdvisoryLock(database.url, runLivenessKey(runId));
  await alive.tryAcquire();
  try {
    const dead = await markDeadRuns(database);
    if (dead.length > 0) deps.log(`${dead.length} run(s) whose process died are marked failed: ${dead.join(", ")}`);
    return await runBriefingAs(runId, deps, options);
  } finally {
    await alive.close?.();
  }
}

async function runBriefingAs(runId: string, deps: RunnerDeps, options: BriefingOptions): Promise<BriefingResult> {
  const { config, database, log } = deps;
  const db = database.db;
  const withLedger = options.ledger !== false;
  const b = config.budget;
  const anyLimit = [b.maxTokens, b.maxUsd, b.node.maxTokens, b.node.maxUsd, b.day.maxTokens, b.day.maxUsd, b.month.maxTokens, b.month.maxUsd].some((v) => v !== undefined);
  if (!withLedger && (anyLimit || options.resume)) {
    throw new ConfigError("a run without the ledger can have no budget and cannot resume (it records no calls)");
  }
  const models = withFallback(options.models ?? createModels(config, { db, ledger: withLedger }), config, { db, ledger: withLedger });
  const feeds = options.feeds && options.feeds.length > 0 ? options.feeds : config.feeds;
  // Bad settings are found before the run row exists and before any paid call.
  checkBeforeRun(config, feeds);
  const checkpointer = await sharedCheckpointer(database);

  if (options.resume) {
    await checkResumable(db, checkpointer, options.resume);
    await reopenRun(db, runId, { limits: { ...config.budget } });
  } else {
    await startRun(db, {
      id: runId,
      workflow: WORKFLOW,
      trigger: options.trigger,
      provider: models.provider,
      limits: { ...config.budget },
    });
  }
  const alerter = new Alerter(db, {
    channels: channelsFrom(config.alerts, log),
    retries: config.alerts.retries,
    cooldownMinutes: config.alerts.cooldownMinutes,
    warn: (line) => log(`warning: ${line}`),
  });
  const raised: BriefingResult["alerts"] = [];
  const sending: Promise<void>[] = [];
  // Alerter.raise never throws: a channel that fails is recorded, the run goes on.
  const raise = async (alert: Alert) => {
    const outcome = await alerter.raise(alert);
    raised.push({ rule: alert.rule, scope: alert.scope, node: alert.node, message: alert.message, ...outcome });
  };
  const limits = budgetLimits(config);
  const ledger = withLedger
    ? await Ledger.open({
        db,
        runId,
        budget: limits,
        defaultMaxOutputTokens: config.maxOutputTokens,
        pricesFile: config.pricesFile,
        onBudgetEvent: (event) => {
          // Sent while the run goes on; the run waits for it before it ends.
          sending.push(raise(budgetAlert(event, WORKFLOW, runId)));
          if (event.type === "soft_limit" && models.useFallback()) {
            log(`soft limit: ${event.message}; chat calls started from now on use ${models.fallbackModel}`);
          }
        },
      })
    : NO_LEDGER;
  log(`run ${runId}: provider ${models.provider}, database ${database.kind} (${database.location}), ${options.resume ? "resuming with the articles it collected" : `feeds ${feeds.join(" ")}`}`);

  const graph = buildDailyBriefing({ db, config, models, log, budget: ledger }, { checkpointer });
  const threadConfig = { configurable: { thread_id: runId } };
  if (options.resume) {
    const snapshot = await graph.getState(threadConfig);
    // Halted at budget_guard, the graph ended: clear the halt as if the guard had let it through.
    if (snapshot.next.length === 0) await graph.updateState(threadConfig, { haltReason: null }, "budget_guard");
    const next = (await graph.getState(threadConfig)).next;
    log(`resuming run ${runId} at ${next.join(", ") || "(nothing left)"}; ${ledger.spent().tokens} tokens already spent`);
  }
  let final: BriefingState | null = null;
  let status: RunStatus = "succeeded";
  let haltReason: string | null = null;
  let error: string | null = null;
  try {
    ({ state: final } = await runThread<BriefingState>(graph, initialState(runId, feeds), {
      callbacks: withLedger ? [(ledger as Ledger).handler] : [],
      configurable: { thread_id: runId },
      recursionLimit: 100,
      signal: options.signal,
    }));
    haltReason = final.haltReason ?? ledger.haltReason;
  } catch (err) {
    ({ status, haltReason, error } = outcomeOfError(err));
    if (options.signal?.aborted) error = `interrupted: ${String((options.signal.reason as Error)?.message ?? options.signal.reason)}`;
    // The last checkpoint still says what the run had done (articles collected, posts written).
    final = await lastCheckpointState(graph, runId);
  }
  if (haltReason && status !== "failed") status = "halted";
  // Every feed unreadable is a failure a schedule must notice, not an empty success.
  if (status === "succeeded" && final && final.feedsAttempted > 0 && final.feedsFailed === final.feedsAttempted) {
    status = "failed";
    error = `no feed could be read (${final.feedsFailed} of ${final.feedsAttempted} failed; the machine may be offline). To run on local files: npm run briefing -- --feeds test/fixtures/feeds`;
  }
  if (error && models.provider === "openai-compatible" && /connection error|ECONNREFUSED|fetch failed/i.test(error)) {
    error += ` (model endpoint ${config.openai.baseURL ?? "https://api.openai.com/v1"})`;
  }

  try {
    await ledger.flush();
  } catch (err) {
    // The run's rows are still buffered in memory at this point; say so loudly.
    status = "failed";
    error = `${error ? `${error}; ` : ""}ledger could not write every call row: ${describeError(err)}`;
  }

  const summary = {
    articles: final?.articleIds.length ?? 0,
    feeds_attempted: final?.feedsAttempted ?? 0,
    feeds_failed: final?.feedsFailed ?? 0,
    clusters: final?.clusterIds.length ?? 0,
    posts: final?.postIds.length ?? 0,
    briefing_path: final?.briefingPath ?? null,
  };
  await finishRun(db, runId, { status, haltReason, error, summary });
  // Alerts never fail the run: each is stored and sent, or its trouble logged.
  try {
    for (const alert of await spikeAlerts(db, WORKFLOW, runId, config.alerts.spike)) await raise(alert);
    if (limits.day || limits.month) {
      const f = await spendForecast(db, { workflow: WORKFLOW, timeZone: config.schedule.timezone, cron: config.schedule.cron, limits });
      for (const alert of forecastAlerts(f, WORKFLOW, runId, limits)) await raise(alert);
    }
  } catch (err) {
    log(`warning: alert rules could not be checked: ${describeError(err)}`);
  }
  await Promise.all(sending);

  const run = await runCost(db, runId);
  const nodes = await nodeCosts(db, runId);
  for (const problem of await feedProblems(db, runId)) log(`feed ${problem.severity}: ${problem.feed}: ${problem.code}: ${problem.message}`);
  if (final && final.articleIds.length === 0 && status === "succeeded") {
    log("collect: no new articles since the last run; nothing to summarize, no paid calls made");
  }
  if (status === "halted") log(`run halted: ${haltReason}`);
  if (status === "failed") log(`run failed: ${error}`);
  if (run && run.missing_usage_calls > 0) {
    log(
      `warning: ${run.missing_usage_calls} call(s) came back without usage; their tokens are NULL (usage_source 'missing') ` +
        `with a local estimate beside them, so the totals above leave them out. Does the endpoint support stream_options.include_usage?`,
    );
  }
  const unpricedModels = ledger.unpricedModels();
  if (unpricedModels.length > 0) {
    log(`warning: no price for model(s) ${unpricedModels.join(", ")}: their cost is recorded as NULL (unpriced), not $0. Add them with NEWSLEDGER_PRICES.`);
  }

  return {
    runId,
    status,
    exitCode: status === "succeeded" ? 0 : status === "halted" ? 3 : 1,
    provider: models.provider,
    haltReason,
    error,
    ...summary,
    calls: run?.calls ?? 0,
    total_tokens: run?.total_tokens ?? 0,
    cost_usd: run?.cost_usd ?? null,
    unpriced_calls: run?.unpriced_calls ?? 0,
    unpriced_models: unpricedModels,
    nodes,
    alerts: raised,
  };
}

/** Throws ConfigError for what would otherwise fail late: no feeds, a bad price file, an unwritable output folder. */
function checkBeforeRun(config: Config, feeds: string[]): void {
  if (feeds.length === 0) {
    throw new ConfigError("bad argument: no feeds given; pass --feeds <url|file|folder> or set FEEDS (see .env.example)");
  }
  try {
    loadPriceSources(config.pricesFile);
  } catch (err) {
    throw new ConfigError(`bad setting: NEWSLEDGER_PRICES: ${(err as Error).message}`);
  }
  const out = path.resolve(config.outDir);
  try {
    mkdirSync(out, { recursive: true });
    accessSync(out, constants.W_OK);
    if (!statSync(out).isDirectory()) throw new Error("it is a file");
  } catch (err) {
    throw new ConfigError(`bad setting: NEWSLEDGER_OUT_DIR: cannot write briefings to ${out} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at a folder you can write`);
  }
}

async function lastCheckpointState(graph: { getState(c: { configurable: { thread_id: string } }): Promise<{ values: unknown }> }, runId: string): Promise<BriefingState | null> {
  try {
    const snapshot = await graph.getState({ configurable: { thread_id: runId } });
    const values = snapshot.values as Partial<BriefingState> | undefined;
    return values && Array.isArray(values.articleIds) ? (values as BriefingState) : null;
  } catch {
    return null;
  }
}

/** A run can be resumed when it is this workflow's, halted or failed, and has a checkpoint. */
async function checkResumable(db: Database, checkpointer: BaseCheckpointSaver, runId: string): Promise<void> {
  const [run] = await db.select().from(runs).where(eq(runs.id, runId));
  if (!run) throw new ConfigError(`bad argument: --resume ${runId}: no such run`);
  if (run.workflow !== WORKFLOW) throw new ConfigError(`bad argument: --resume ${runId}: it is a run of ${run.workflow}, not ${WORKFLOW}`);
  if (run.status !== "halted" && run.status !== "failed") {
    throw new ConfigError(`bad argument: --resume ${runId}: the run is ${run.status}; only a halted or failed run can be resumed`);
  }
  const tuple = await checkpointer.getTuple({ configurable: { thread_id: runId } });
  if (!tuple) throw new ConfigError(`bad argument: --resume ${runId}: the run has no checkpoint to continue from`);
  // A later run took its articles over (and briefed them): resuming would pay for them twice.
  const [taken] = rows(
    await db.execute(sql`select count(*)::int as n, min(run_id) as by_run from articles where first_run_id = ${runId} and run_id is distinct from ${runId}`),
  );
  if (Number(taken?.n ?? 0) > 0) {
    throw new ConfigError(
      `bad argument: --resume ${runId}: ${Number(taken!.n)} of its articles were taken over by a later run (${String(taken!.by_run)}), ` +
        `which briefs them; resuming would pay for them again. Start a new run instead.`,
    );
  }
}
