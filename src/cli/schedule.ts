/**
 * `npm run schedule`: runs the daily briefing on BRIEFING_CRON in BRIEFING_TZ until SIGINT or
 * SIGTERM. The first signal stops ticking and waits for a running briefing to finish, then closes
 * the database and exits 0; a second signal aborts at once. A failing run never stops it.
 * Exit codes: 0 stopped cleanly, 2 bad settings, 1 could not start (e.g. no database).
 */
import { runBriefing } from "../app/run-briefing";
import { openDatabase } from "../db/client";
import { runScheduleCli } from "../scheduler/cli";
import { runCli } from "./common";

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

// A stray rejection from inside a run must not take the scheduler down with it.
process.on("unhandledRejection", (reason) => {
  err(`newsledger schedule: unhandled rejection (the scheduler keeps running): ${reason instanceof Error ? reason.message : String(reason)}`);
});

runCli(async () => {
  const code = await runScheduleCli({
    env: process.env,
    openDatabase,
    runBriefing,
    out,
    err,
    signals: process,
    exit: (c) => process.exit(c),
  });
  // Everything is closed; should a library still hold a handle, do not hang on it.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
});
