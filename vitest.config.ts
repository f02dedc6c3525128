import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    // PGlite start-up and the local model servers make a few tests take seconds, never minutes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    passWithNoTests: false,
    env: { TZ: "UTC", LANGCHAIN_CALLBACKS_BACKGROUND: "false", LANGCHAIN_TRACING_V2: "false" },
  },
});
