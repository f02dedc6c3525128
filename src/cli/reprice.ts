/** `npm run reprice -- [--since <date>] [--json]`: re-prices stored calls with the current price table. */
import { ConfigError, loadConfig } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { loadPriceBook } from "../ledger/price-book";
import { repriceCalls } from "../ledger/reprice";
import { usd8 } from "../report/format";
import { parseFlags, runCli } from "./common";

const USAGE = `usage: npm run reprice -- [--since <date>] [--json]

Recomputes the cost of stored calls (all, or those started on or after --since, an ISO date such
as 2026-12-01) from the price table: the shipped prices plus NEWSLEDGER_PRICES. Running it again
changes nothing.`;

runCli(async () => {
  const flags = parseFlags(process.argv.slice(2), { since: { type: "string" }, json: { type: "boolean", default: false } }, USAGE);
  if (!flags) return 0;
  let since: Date | undefined;
  if (flags.since !== undefined) {
    since = new Date(flags.since);
    if (!/^\d{4}-\d{2}-\d{2}/.test(flags.since) || Number.isNaN(since.getTime())) {
      throw new ConfigError(`bad argument: --since needs an ISO date such as 2026-12-01, got "${flags.since}"`);
    }
  }
  const config = loadConfig(process.env);
  const database = await openConfiguredDatabase(config);
  try {
    const book = await loadPriceBook(database.db, config.pricesFile);
    const result = await repriceCalls(database.db, book, { since });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      process.stdout.write(
        `repriced ${result.changed} of ${result.examined} calls${since ? ` since ${since.toISOString()}` : ""}: ` +
          `total ${usd8(result.oldTotalUsd)} -> ${usd8(result.newTotalUsd)}; unpriced calls ${result.unpricedBefore} -> ${result.unpricedAfter}\n`,
      );
    }
    return 0;
  } finally {
    await database.close();
  }
});
