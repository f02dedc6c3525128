/** `npm run report -- [--run <id>] [--json]`: the per-node cost table of a run and today's totals, from the views. */
import { ConfigError, loadConfig } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { dailyTable, nodeTable, usd8 } from "../report/format";
import { dailyCosts, dayIn, lastRunId, nodeCosts, runCost } from "../report/queries";
import { parseFlags, runCli } from "./common";

const USAGE = `usage: npm run report -- [--run <id>] [--json]

Shows the per-node cost table of the last run (or the given one) and today's totals.`;

runCli(async () => {
  const flags = parseFlags(
    process.argv.slice(2),
    {
      run: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  if (!flags) return 0;
  const config = loadConfig(process.env);
  const database = await openConfiguredDatabase(config);
  try {
    const db = database.db;
    const runId = flags.run ?? (await lastRunId(db));
    if (!runId) {
      process.stderr.write(`no runs recorded yet in ${database.location}; start one with: npm run briefing -- --feeds test/fixtures/feeds\n`);
      return 1;
    }
    const run = await runCost(db, runId);
    if (!run) throw new ConfigError(`bad argument: --run ${runId}: no such run in ${database.location}`);
    const nodes = await nodeCosts(db, runId);
    const today = dayIn(config.schedule.timezone);
    const days = await dailyCosts(db, today);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ run, nodes, today: days })}\n`);
      return 0;
    }
    process.stdout.write(
      `run ${run.run_id} (${run.workflow}, ${run.trigger}, provider ${run.provider}) ${run.status}` +
        (run.halt_reason ? `: ${run.halt_reason}` : "") +
        `\nstarted ${run.started_at}${run.finished_at ? `, finished ${run.finished_at}` : ""}\n\n` +
        `${nodeTable(nodes, run)}\n\n` +
        `retry tokens ${run.retry_tokens} (${usd8(run.retry_cost_usd)}), unpriced calls ${run.unpriced_calls}, calls with missing usage ${run.missing_usage_calls}\n\n` +
        `today (${today}, ${config.schedule.timezone}):\n${days.length ? dailyTable(days) : "no calls yet today"}\n`,
    );
    return 0;
  } finally {
    await database.close();
  }
});
