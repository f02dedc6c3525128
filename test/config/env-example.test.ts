import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, envSchema, loadConfig } from "../../src/config";

const ROOT = path.resolve(__dirname, "../..");
const example = readFileSync(path.join(ROOT, ".env.example"), "utf8");
const entries = new Map(
  example
    .split("\n")
    .filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^"(.*)"$/, "$1")] as const),
);

describe(".env.example", () => {
  it("lists every setting of the config schema exactly once", () => {
    const names = example.split("\n").filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l)).map((l) => l.split("=")[0]);
    expect(new Set(names).size).toBe(names.length);
    for (const key of Object.keys(envSchema.shape)) expect(entries.has(key), key).toBe(true);
  });

  it("gives each setting its real default", () => {
    const defaults = envSchema.parse({});
    for (const [key, value] of Object.entries(defaults)) {
      if (value === undefined) continue;
      const written = entries.get(key)!;
      const parsed = envSchema.shape[key as keyof typeof envSchema.shape].parse(written);
      expect(parsed, key).toEqual(value);
    }
    for (const key of Object.keys(envSchema.shape)) {
      if ((defaults as Record<string, unknown>)[key] === undefined) expect(entries.get(key), key).toBe("");
    }
  });

  it("parses as a whole into the same config as no settings at all", () => {
    expect(loadConfig(Object.fromEntries(entries))).toEqual(loadConfig({}));
  });
});

describe("loadConfig", () => {
  it("picks the offline provider without a key or base URL, and OpenAI-compatible with either", () => {
    expect(loadConfig({}).provider).toBe("offline");
    expect(loadConfig({ OPENAI_BASE_URL: "http://127.0.0.1:11434/v1" }).provider).toBe("openai-compatible");
    expect(loadConfig({ OPENAI_API_KEY: "sk-x" }).provider).toBe("openai-compatible");
    expect(loadConfig({ OPENAI_API_KEY: "sk-x", NEWSLEDGER_PROVIDER: "offline" }).provider).toBe("offline");
  });

  it("lets flags win over the environment", () => {
    const c = loadConfig({ NEWSLEDGER_MAX_TOKENS: "900", FEEDS: "a.xml,b.xml" }, { maxTokens: 3000, feeds: ["c.xml"] });
    expect(c.budget.maxTokens).toBe(3000);
    expect(c.feeds).toEqual(["c.xml"]);
    expect(loadConfig({ FEEDS: "a.xml, b.xml" }).feeds).toEqual(["a.xml", "b.xml"]);
  });

  it("routes a model per stage, falling back to the chat model", () => {
    const c = loadConfig({ NEWSLEDGER_CHAT_MODEL: "gpt-4.1", NEWSLEDGER_VALIDATE_MODEL: "gpt-4.1-nano" });
    expect(c.models).toEqual({ summarize: "gpt-4.1", generate_social: "gpt-4.1", validate: "gpt-4.1-nano", embedding: "text-embedding-3-small" });
  });

  it("refuses a misspelt setting and suggests the right name", () => {
    expect(() => loadConfig({ NEWSLEDGER_MAX_TOKEN: "5" })).toThrow(
      "unknown setting NEWSLEDGER_MAX_TOKEN (did you mean NEWSLEDGER_MAX_TOKENS?); every setting is listed in .env.example",
    );
  });

  it("names the bad setting and what is wrong", () => {
    expect(() => loadConfig({ DATABASE_URL: "mysql://x@y/z" })).toThrow("DATABASE_URL: must be a postgres:// or postgresql:// URL");
    expect(() => loadConfig({ NEWSLEDGER_MAX_TOKENS: "2.5" })).toThrow("NEWSLEDGER_MAX_TOKENS: must be a whole number");
    expect(() => loadConfig({ NEWSLEDGER_CONCURRENCY: "0" })).toThrow("NEWSLEDGER_CONCURRENCY: must be at least 1");
    expect(() => loadConfig({ NEWSLEDGER_MAX_TOKENS: "lots" })).toThrow(/NEWSLEDGER_MAX_TOKENS/);
    expect(() => loadConfig({ DATABASE_URL: "not a url" })).toThrow(ConfigError);
    expect(() => loadConfig({ BRIEFING_TZ: "Mars/Olympus" })).toThrow(/BRIEFING_TZ: "Mars\/Olympus" is not an IANA time zone/);
    expect(() => loadConfig({ NEWSLEDGER_PROVIDER: "openai" })).toThrow(/needs OPENAI_API_KEY or OPENAI_BASE_URL/);
    expect(() => loadConfig({}, { maxTokens: -5 })).toThrow(/--max-tokens must be a positive whole number up to 9007199254740991, got -5/);
    expect(() => loadConfig({ NEWSLEDGER_DUPLICATE_SIMILARITY: "0.3" })).toThrow(
      "NEWSLEDGER_DUPLICATE_SIMILARITY: must be at least 0.5 (lower merges different stories)",
    );
    expect(() => loadConfig({ NEWSLEDGER_DUPLICATE_SIMILARITY: "high" })).toThrow("NEWSLEDGER_DUPLICATE_SIMILARITY: must be a number");
    expect(() => loadConfig({ NEWSLEDGER_DUPLICATE_WINDOW_DAYS: "-1" })).toThrow("NEWSLEDGER_DUPLICATE_WINDOW_DAYS: must be at least 0");
  });

  it("reads the near-duplicate settings into collect.duplicates", () => {
    expect(loadConfig({}).collect.duplicates).toEqual({ similarity: 0.9, windowDays: 3, maxCandidates: 2000 });
    const c = loadConfig({ NEWSLEDGER_DUPLICATE_SIMILARITY: "0.95", NEWSLEDGER_DUPLICATE_WINDOW_DAYS: "0", NEWSLEDGER_DUPLICATE_MAX_CANDIDATES: "500" });
    expect(c.collect.duplicates).toEqual({ similarity: 0.95, windowDays: 0, maxCandidates: 500 });
  });
});
