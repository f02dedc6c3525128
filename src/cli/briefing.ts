/** `npm run briefing -- [--feeds <url|file|folder> ...] [--max-tokens N] [--max-usd X] [--node-|day-|month-max-tokens N] [--json]` */
import { ConfigError, loadConfig } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { runBriefing } from "../app/run-briefing";
import { nodeTable, savingsLine, usd8 } from "../report/format";
import { matchRunIds, runCost } from "../report/queries";
import { parseFlags, parseNumberFlag, runCli, spreadFeeds } from "./common";

const USAGE = `usage: npm run briefing -- [--feeds <url|file|folder> ...] [limits] [--json]
       npm run briefing -- --resume <runId> [limits] [--json]

limits (each overrides its setting in .env.example; tokens and USD):
  --max-tokens N --max-usd X              this run
  --node-max-tokens N --node-max-usd X    each node within the run
  --day-max-tokens N --day-max-usd X      the calendar day (BRIEFING_TZ), all runs and processes
  --month-max-tokens N --month-max-usd X  the calendar month

Runs the daily briefing once, now; --resume continues a halted or failed run from where it stopped
(its paid calls that succeeded are not made again; the limits count what it already spent). Exit codes: 0 succeeded, 3 halted by a budget, 1 failed,
2 bad arguments or settings. Settings come from the environment (see .env.example).`;

runCli(async () => {
  const flags = parseFlags(
    spreadFeeds(process.argv.slice(2)),
    {
      feeds: { type: "string", multiple: true },
      "max-tokens": { type: "string" },
      "max-usd": { type: "string" },
      "node-max-tokens": { type: "string" },
      "node-max-usd": { type: "string" },
      "day-max-tokens": { type: "string" },
      "day-max-usd": { type: "string" },
      "month-max-tokens": { type: "string" },
      "month-max-usd": { type: "string" },
      resume: { type: "string" },
      json: { type: "boolean", default: false },
    },
    USAGE,
  );
  if (!flags) return 0;
  const config = loadConfig(process.env, {
    feeds: flags.feeds,
    maxTokens: parseNumberFlag("max-tokens", flags["max-tokens"]),
    maxUsd: parseNumberFlag("max-usd", flags["max-usd"]),
    nodeMaxTokens: parseNumberFlag("node-max-tokens", flags["node-max-tokens"]),
    nodeMaxUsd: parseNumberFlag("node-max-usd", flags["node-max-usd"]),
    dayMaxTokens: parseNumberFlag("day-max-tokens", flags["day-max-tokens"]),
    dayMaxUsd: parseNumberFlag("day-max-usd", flags["day-max-usd"]),
    monthMaxTokens: parseNumberFlag("month-max-tokens", flags["month-max-tokens"]),
    monthMaxUsd: parseNumberFlag("month-max-usd", flags["month-max-usd"]),
  });
  const database = await openConfiguredDatabase(config);
  // The first Ctrl-C (delivered several times by the terminal, npm and tsx) stops the run and
  // records it; a later one quits at once.
  const controller = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      process.stderr.write(`${signal}: stopping the run and recording it (press again to quit at once)\n`);
      controller.abort(new Error(`${signal} received`));
    } else if (Date.now() - firstSignalAt > 1500) {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const log = (line: string) => process.stderr.write(`${line}\n`);
    let resume: string | undefined;
    if (flags.resume !== undefined) {
      const matches = await matchRunIds(database.db, flags.resume);
      if (matches.length !== 1) {
        throw new ConfigError(
          matches.length === 0 ? `bad argument: --resume ${flags.resume}: no such run` : `bad argument: --resume ${flags.resume} is ambiguous: ${matches.join(", ")}`,
        );
      }
      resume = matches[0];
    }
    const result = await runBriefing({ config, database, log }, { trigger: "manual", signal: controller.signal, resume });
    const run = await runCost(database.db, result.runId);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      process.stdout.write(`\n${nodeTable(result.nodes, run)}\n\n`);
      process.stdout.write(
        `run ${result.runId} ${result.status}` +
          (result.haltReason ? ` (${result.haltReason})` : "") +
          `: provider ${result.provider}, ${result.articles} articles, ${result.clusters} clusters, ${result.posts} posts, ` +
          `${result.total_tokens} tokens, ${usd8(result.cost_usd)}` +
          (run && run.cache_hits > 0 ? `\n${savingsLine(run)}` : "") +
          (result.briefing_path ? `\nbriefing: ${result.briefing_path}` : "") +
          (result.status === "halted" ? `\nto continue it with a higher limit: npm run briefing -- --resume ${result.runId.slice(0, 8)} --max-tokens <N>` : "") +
          "\n",
      );
    }
    return result.exitCode;
  } finally {
    await database.close();
  }
});
