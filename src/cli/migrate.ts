/** `npm run db:migrate`: applies drizzle/ to the configured database and verifies it; exits non-zero on any failure. */
import { loadConfig } from "../config";
import { openConfiguredDatabase } from "../db/client";
import { runCli } from "./common";

runCli(async () => {
  const config = loadConfig(process.env);
  const started = Date.now();
  const database = await openConfiguredDatabase(config);
  await database.close();
  process.stdout.write(`migrations applied and verified on ${database.kind} (${database.location}) in ${Date.now() - started} ms\n`);
  return 0;
});
