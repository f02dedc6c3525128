/**
 * The bench server in a child process (forked by cli.ts): it sends `{ url }` over IPC once it
 * listens and exits when its parent goes away.
 */
import { countTextTokens } from "../ledger/tokens";
import { startBenchServer } from "./server";

const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? "50");
// Build both encoders now, not inside the first timed call.
countTextTokens("warm", "gpt-4o-mini");
countTextTokens("warm", "text-embedding-3-small");
const server = await startBenchServer({ latencyMs });
process.send?.({ url: server.url });
process.on("disconnect", () => {
  void server.close().then(() => process.exit(0));
});
