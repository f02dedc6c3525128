/** `npm run report -- [--run <id>] [--json]`: the per-node cost table of a run and today's totals, from the views. */
import { ConfigError, loadConfig } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { loadPriceBook } from "../ledger/price-book";
import { costAsModel, UnknownModelError } from "../ledger/reprice";
import { dailyTable, nodeTable, promptSizeTable, savingsLine, table, usd8 } from "../report/format";
import { dailyCosts, dayIn, lastRunId, matchRunIds, nodeCosts, promptSizes, runCost } from "../report/queries";
import { parseFlags, runCli } from "./common";
import { budgetLimits, WORKFLOW } from "../app/run-briefing";
import { spendForecast, type SpendForecast } from "../alerts/watch";
import { budgetUse, recentAlerts } from "../report/budgets";
import { eq } from "drizzle-orm";
import { runs } from "../db/schema";
import type { BudgetLimits } from "../ledger";

const USAGE = `usage: npm run report -- [--run <id>] [--as-model <model>] [--json]

Shows the per-node cost table of the last run (or the given one), what the response cache saved,
the average prompt size per node (against the previous run), today's totals, each budget's use
and what is left (limits from the settings, see .env.example), the forecast of today's and this
month's spend with when a day or month limit would be crossed, and the latest alerts.
--as-model prices the run's chat calls, with the same token counts, as another model.`;

runCli(async () => {
  const flags = parseFlags(
    process.argv.slice(2),
    {
      run: { type: "string" },
      "as-model": { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  if (!flags) return 0;
  const config = loadConfig(process.env);
  const database = await openConfiguredDatabase(config);
  try {
    const db = database.db;
    let runId = flags.run === undefined ? await lastRunId(db) : null;
    if (flags.run !== undefined) {
      const matches = await matchRunIds(db, flags.run);
      if (matches.length === 0) throw new ConfigError(`bad argument: --run ${flags.run}: no such run in ${database.location} (npm run report shows the latest run's id)`);
      if (matches.length > 1) throw new ConfigError(`bad argument: --run ${flags.run} is ambiguous: ${matches.join(", ")}; give more of the id`);
      runId = matches[0];
    }
    if (!runId) {
      process.stderr.write(`no runs recorded yet in ${database.location}; start one with: npm run briefing -- --feeds test/fixtures/feeds\n`);
      return 1;
    }
    const run = await runCost(db, runId);
    if (!run) throw new ConfigError(`bad argument: --run ${runId}: no such run in ${database.location}`);
    const nodes = await nodeCosts(db, runId);
    const prompts = await promptSizes(db, runId);
    const today = dayIn(config.schedule.timezone);
    const days = await dailyCosts(db, today);
    let whatIf: Awaited<ReturnType<typeof costAsModel>> | undefined;
    if (flags["as-model"] !== undefined) {
      try {
        whatIf = await costAsModel(db, await loadPriceBook(db, config.pricesFile), runId, flags["as-model"]);
      } catch (err) {
        if (err instanceof UnknownModelError) throw new ConfigError(`bad argument: --as-model: ${err.message}`);
        throw err;
      }
    }
    const limits = budgetLimits(config);
    // The run's own limits are the ones it ran with (flags included); the day and month are today's settings.
    const [ranWith] = await db.select({ limits: runs.limits }).from(runs).where(eq(runs.id, runId));
    const runLimits = (ranWith?.limits ?? {}) as BudgetLimits;
    const set = (l: { maxTokens?: number; maxUsd?: number | string } | undefined) => (l && (l.maxTokens !== undefined || l.maxUsd !== undefined) ? l : undefined);
    const shown: BudgetLimits = {
      ...limits,
      maxTokens: runLimits.maxTokens,
      maxUsd: runLimits.maxUsd,
      node: runLimits.node,
      // A day or month limit given as a flag to the run counts when the settings name none.
      day: set(limits.day) ?? set(runLimits.day),
      month: set(limits.month) ?? set(runLimits.month),
    };
    const budgets = await budgetUse(db, { workflow: run.workflow, runId, limits: shown });
    const forecast = await spendForecast(db, { workflow: run.workflow, timeZone: config.schedule.timezone, cron: run.workflow === WORKFLOW ? config.schedule.cron : undefined, limits: shown });
    const alerts = await recentAlerts(db);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ run, nodes, prompt_sizes: prompts, today: days, budgets, forecast, alerts, ...(whatIf ? { as_model: whatIf } : {}) })}\n`);
      return 0;
    }
    process.stdout.write(
      `run ${run.run_id} (${run.workflow}, ${run.trigger}, provider ${run.provider}) ${run.status}` +
        (run.halt_reason ? `: ${run.halt_reason}` : "") +
        `\nstarted ${run.started_at}${run.finished_at ? `, finished ${run.finished_at}` : ""}\n\n` +
        `${nodeTable(nodes, run)}\n\n` +
        `retry tokens ${run.retry_tokens} (${usd8(run.retry_cost_usd)}), unpriced calls ${run.unpriced_calls}, calls with missing usage ${run.missing_usage_calls}\n` +
        `${savingsLine(run)}\n\n` +
        (prompts.length ? `prompt size per node (input tokens per call):\n${promptSizeTable(prompts)}\n\n` : "") +
        `today (${today}, ${config.schedule.timezone}):\n${days.length ? dailyTable(days) : "no calls yet today"}\n\n` +
        `budgets (used / limit / left):\n` +
        table(
          ["scope", "tokens", "max_tokens", "tokens_left", "usd", "max_usd", "usd_left", "used"],
          budgets.map((b) => [b.scope, b.tokens, b.max_tokens ?? "-", b.tokens_left ?? "-", usd8(b.usd), b.max_usd ? usd8(b.max_usd) : "-", b.usd_left ? usd8(b.usd_left) : "-", b.used_pct === null ? "no limit" : `${b.used_pct}%`]),
        ) +
        `\n\n${forecastText(forecast, shown)}\n` +
        (alerts.length ? `\nlatest alerts:\n${alerts.map((a) => `#${a.id} ${a.created_at.slice(0, 19)}Z ${a.rule} [${a.delivery_status}] ${a.message}`).join("\n")}\n` : ""),
    );
    if (whatIf) {
      process.stdout.write(
        `\nas ${whatIf.model} (chat calls repriced, same tokens; embeddings unchanged):\n` +
          table(
            ["node", "calls", "actual_usd", `as_model_usd`],
            [...whatIf.nodes.map((n) => [n.node, n.calls, usd8(n.actualUsd), usd8(n.asModelUsd)]), ["TOTAL", "", usd8(whatIf.actualUsd), usd8(whatIf.asModelUsd)]],
          ) +
          "\n",
      );
    }
    return 0;
  } finally {
    await database.close();
  }
});

function forecastText(f: SpendForecast, limits: BudgetLimits): string {
  const crossed = (limit: unknown, at: Date | string | null) =>
    limit === undefined ? "no limit" : at === null ? "not crossed" : `crossed ${typeof at === "string" ? `on ${at}` : `at ${at.toISOString()}`}`;
  return (
    `forecast (${f.timeZone}; ${f.runsToday} run(s) with calls today, ${f.scheduledRunsLeftToday} scheduled run(s) left by BRIEFING_CRON, ` +
    `a finished run spends ~${f.tokens.perRun} tokens / $${f.usd.perRun} on average):\n` +
    table(
      ["period", "spent_tokens", "forecast_tokens", "spent_usd", "forecast_usd", "day/month limit"],
      [
        [`today ${f.day}`, f.tokens.spentToday, Math.round(f.tokens.today), `$${f.usd.spentToday}`, `$${f.usd.today}`, `tokens ${crossed(limits.day?.maxTokens, f.tokens.dayLimitCrossedAt)}, USD ${crossed(limits.day?.maxUsd, f.usd.dayLimitCrossedAt)}`],
        [`month ${f.month}`, f.tokens.spentMonth, Math.round(f.tokens.month), `$${f.usd.spentMonth}`, `$${f.usd.month}`, `tokens ${crossed(limits.month?.maxTokens, f.tokens.monthLimitCrossedOn)}, USD ${crossed(limits.month?.maxUsd, f.usd.monthLimitCrossedOn)}`],
      ],
    )
  );
}
