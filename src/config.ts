/**
 * One config, parsed once. Precedence: defaults < environment < command-line flags.
 * `process.env` is read here (and in drizzle.config.ts) and nowhere else; everything else gets
 * the parsed object. Every variable is listed in .env.example with its default (a test checks).
 */
import { z } from "zod";

/** Thrown for bad settings or arguments; the CLIs exit 2 with its message. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const int = (min: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int({ error: "must be a whole number" })
    .max(Number.MAX_SAFE_INTEGER, { error: `must be at most ${Number.MAX_SAFE_INTEGER}` })
    .min(min, { error: `must be at least ${min}` });
/** Dollars: at least a billionth and at most a billion, so that the exact-decimal budget arithmetic can hold it. */
export const MAX_DOLLARS = 1_000_000_000;
const optionalDollars = z.coerce
  .number({ error: "must be a number" })
  .min(0.000000001, { error: "must be at least 0.000000001 dollars" })
  .max(MAX_DOLLARS, { error: `must be at most ${MAX_DOLLARS} dollars` })
  .optional();
const list = z
  .string()
  .transform((s) => s.split(/[,\s]+/).filter(Boolean))
  .pipe(z.array(z.string()));

/** Env variable name → schema. Defaults here are the documented ones. */
export const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, { error: "must be a postgres:// or postgresql:// URL" })
    .optional(),
  NEWSLEDGER_DATA_DIR: z.string().min(1).default(".newsledger"),
  NEWSLEDGER_OUT_DIR: z.string().min(1).default("out"),

  NEWSLEDGER_PROVIDER: z.enum(["auto", "openai", "offline"]).default("auto"),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  NEWSLEDGER_CHAT_MODEL: z.string().min(1).default("gpt-4o-mini"),
  NEWSLEDGER_SUMMARIZE_MODEL: z.string().min(1).optional(),
  NEWSLEDGER_SOCIAL_MODEL: z.string().min(1).optional(),
  NEWSLEDGER_VALIDATE_MODEL: z.string().min(1).optional(),
  NEWSLEDGER_EMBEDDING_MODEL: z.string().min(1).default("text-embedding-3-small"),
  NEWSLEDGER_MAX_OUTPUT_TOKENS: int(16).default(400),
  NEWSLEDGER_STREAM: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  NEWSLEDGER_HTTP_RETRIES: int(0).default(1),
  NEWSLEDGER_NODE_ATTEMPTS: int(1).default(3),
  NEWSLEDGER_REQUEST_TIMEOUT_MS: int(1000).max(3_600_000, { error: "must be at most 3600000 (an hour)" }).default(60_000),
  NEWSLEDGER_PRICES: z.string().min(1).optional(),
  NEWSLEDGER_CACHE_TTL_HOURS: int(0).max(87_600, { error: "must be at most 87600 (ten years)" }).default(168),

  FEEDS: list.optional(),
  NEWSLEDGER_MAX_ITEMS_PER_FEED: int(1).default(5),
  NEWSLEDGER_MAX_ARTICLES_PER_RUN: int(1).default(200),
  NEWSLEDGER_FETCH_TIMEOUT_MS: int(100).max(600_000, { error: "must be at most 600000 (ten minutes)" }).default(10_000),
  NEWSLEDGER_FETCH_MAX_BYTES: int(1024).default(5 * 1024 * 1024),
  NEWSLEDGER_FETCH_MAX_REDIRECTS: int(0).default(5),
  NEWSLEDGER_ARTICLE_MAX_TOKENS: int(50).default(600),
  NEWSLEDGER_SUMMARY_MAX_TOKENS: int(20).default(200),
  NEWSLEDGER_CONCURRENCY: int(1).default(4),
  NEWSLEDGER_DUPLICATE_SIMILARITY: z.coerce
    .number({ error: "must be a number" })
    .min(0.5, { error: "must be at least 0.5 (lower merges different stories)" })
    .max(1, { error: "must be at most 1" })
    .default(0.9),
  NEWSLEDGER_DUPLICATE_WINDOW_DAYS: int(0).default(3),
  NEWSLEDGER_DUPLICATE_MAX_CANDIDATES: int(0).default(2000),

  NEWSLEDGER_CLUSTER_SIMILARITY: z.coerce.number().min(0).max(1).default(0.3),
  NEWSLEDGER_TOP_CLUSTERS: int(1).default(5),
  NEWSLEDGER_MAX_REVISIONS: int(0).default(2),

  NEWSLEDGER_MAX_TOKENS: int(1).optional(),
  NEWSLEDGER_MAX_USD: optionalDollars,
  NEWSLEDGER_NODE_MAX_TOKENS: int(1).optional(),
  NEWSLEDGER_NODE_MAX_USD: optionalDollars,
  NEWSLEDGER_DAY_MAX_TOKENS: int(1).optional(),
  NEWSLEDGER_DAY_MAX_USD: optionalDollars,
  NEWSLEDGER_MONTH_MAX_TOKENS: int(1).optional(),
  NEWSLEDGER_MONTH_MAX_USD: optionalDollars,
  NEWSLEDGER_SOFT_LIMIT: z.coerce.number({ error: "must be a number" }).gt(0, { error: "must be above 0" }).max(1, { error: "must be at most 1" }).default(0.8),
  NEWSLEDGER_FALLBACK_MODEL: z.string().min(1).optional(),

  NEWSLEDGER_ALERT_CONSOLE: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  NEWSLEDGER_ALERT_SLACK_WEBHOOK: z.string().url().optional(),
  NEWSLEDGER_ALERT_DISCORD_WEBHOOK: z.string().url().optional(),
  NEWSLEDGER_ALERT_WEBHOOK_URL: z.string().url().optional(),
  NEWSLEDGER_ALERT_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\/\S+$/, { error: "must be an smtp:// or smtps:// URL, e.g. smtp://user:pass@mail.example.com:587" })
    .optional(),
  NEWSLEDGER_ALERT_EMAIL_FROM: z.string().min(3).default("newsledger@localhost"),
  NEWSLEDGER_ALERT_EMAIL_TO: list.optional(),
  NEWSLEDGER_ALERT_RETRIES: int(0).max(10, { error: "must be at most 10" }).default(3),
  NEWSLEDGER_ALERT_TIMEOUT_MS: int(100).max(120_000, { error: "must be at most 120000 (two minutes)" }).default(5000),
  NEWSLEDGER_ALERT_COOLDOWN_MINUTES: int(0).max(527_040, { error: "must be at most 527040 (a year)" }).default(60),
  NEWSLEDGER_SPIKE_FACTOR: z.coerce.number({ error: "must be a number" }).gt(1, { error: "must be above 1" }).default(3),
  NEWSLEDGER_SPIKE_RUNS: int(1).default(7),
  NEWSLEDGER_SPIKE_MIN_RUNS: int(1).default(3),

  BRIEFING_CRON: z.string().min(1).default("0 7 * * *"),
  BRIEFING_TZ: z.string().min(1).default("UTC"),

  NEWSLEDGER_DEBUG: z.enum(["", "0", "1"]).default(""),
});

export type EnvSettings = z.infer<typeof envSchema>;

/** Flags a CLI may set; each overrides its env variable. */
export interface FlagSettings {
  feeds?: string[];
  maxTokens?: number;
  maxUsd?: number;
  nodeMaxTokens?: number;
  nodeMaxUsd?: number;
  dayMaxTokens?: number;
  dayMaxUsd?: number;
  monthMaxTokens?: number;
  monthMaxUsd?: number;
}

export type ProviderKind = "openai-compatible" | "offline";

export interface ScopeBudget {
  maxTokens?: number;
  maxUsd?: number;
}

export interface AlertSettings {
  console: boolean;
  slackWebhook?: string;
  discordWebhook?: string;
  webhookUrl?: string;
  smtpUrl?: string;
  emailFrom: string;
  emailTo: string[];
  /** Further attempts after a failed delivery. */
  retries: number;
  timeoutMs: number;
  cooldownMinutes: number;
  spike: { factor: number; runs: number; minRuns: number };
}

export interface Config {
  databaseUrl?: string;
  dataDir: string;
  outDir: string;
  provider: ProviderKind;
  openai: { apiKey?: string; baseURL?: string };
  models: {
    summarize: string;
    generate_social: string;
    validate: string;
    embedding: string;
  };
  maxOutputTokens: number;
  stream: boolean;
  httpRetries: number;
  nodeAttempts: number;
  requestTimeoutMs: number;
  pricesFile?: string;
  /** Response cache (chat replies and embeddings) in the database; ttlHours 0: no cache. */
  cache: { ttlHours: number };
  feeds: string[];
  collect: {
    maxItemsPerFeed: number;
    maxArticlesPerRun: number;
    fetchTimeoutMs: number;
    fetchMaxBytes: number;
    maxRedirects: number;
    /** Near-duplicate detection: items compared with articles collected in the window. */
    duplicates: { similarity: number; windowDays: number; maxCandidates: number };
  };
  /** summarize's input cap: the article text, in tokens. */
  articleMaxTokens: number;
  /** Each summary as embed, generate_social and validate read it, in tokens. */
  summaryMaxTokens: number;
  concurrency: number;
  cluster: { similarity: number; top: number };
  maxRevisions: number;
  budget: {
    maxTokens?: number;
    maxUsd?: number;
    node: ScopeBudget;
    day: ScopeBudget;
    month: ScopeBudget;
    /** Share of a limit at which a soft-limit alert fires and the fallback model takes over. */
    softRatio: number;
    /** The cheaper chat model the remaining paid stages switch to after a soft limit. */
    fallbackModel?: string;
  };
  alerts: AlertSettings;
  schedule: { cron: string; timezone: string };
  debug: boolean;
}

/** A few real public feeds, used when neither --feeds nor FEEDS is given. */
export const DEFAULT_FEEDS = [
  "https://feeds.bbci.co.uk/news/world/rss.xml",
  "https://www.theguardian.com/world/rss",
  "https://rss.nytimes.com/services/xml/rss/nyt/World.xml",
  "https://feeds.npr.org/1004/rss.xml",
  "https://www.aljazeera.com/xml/rss/all.xml",
];

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const name = issue.path.join(".") || "(settings)";
      return `${name}: ${issue.message}`;
    })
    .join("; ");
}

/** The known name closest to a misspelt one (edit distance at most 3), if any. */
function closest(name: string, known: string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d <= 3 && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parse the environment (a plain object, so tests pass their own) and the CLI flags.
 * Empty strings count as unset, as a `.env` line `X=` means "no value".
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, flags: FlagSettings = {}): Config {
  const known = Object.keys(envSchema.shape);
  const raw: Record<string, string> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value.trim() !== "") raw[key] = value.trim();
  }
  const unknown = Object.keys(env).filter((k) => k.startsWith("NEWSLEDGER_") && !known.includes(k));
  if (unknown.length > 0) {
    const hints = unknown.map((k) => {
      const near = closest(k, known);
      return near ? `${k} (did you mean ${near}?)` : k;
    });
    throw new ConfigError(`unknown setting ${hints.join(", ")}; every setting is listed in .env.example`);
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`bad setting: ${formatIssues(parsed.error)} (see .env.example for each variable and its default)`);
  }
  const e = parsed.data;
  if (!isValidTimeZone(e.BRIEFING_TZ)) {
    throw new ConfigError(`bad setting: BRIEFING_TZ: "${e.BRIEFING_TZ}" is not an IANA time zone (for example Europe/Berlin or UTC)`);
  }

  let provider: ProviderKind;
  if (e.NEWSLEDGER_PROVIDER === "offline") provider = "offline";
  else if (e.NEWSLEDGER_PROVIDER === "openai") {
    if (!e.OPENAI_API_KEY && !e.OPENAI_BASE_URL) {
      throw new ConfigError("bad setting: NEWSLEDGER_PROVIDER=openai needs OPENAI_API_KEY or OPENAI_BASE_URL");
    }
    provider = "openai-compatible";
  } else provider = e.OPENAI_API_KEY || e.OPENAI_BASE_URL ? "openai-compatible" : "offline";

  for (const [flag, scope] of [["", "max"], ["node-", "nodeMax"], ["day-", "dayMax"], ["month-", "monthMax"]] as const) {
    const tokens = flags[`${scope}Tokens`];
    const usd = flags[`${scope}Usd`];
    if (tokens !== undefined && !(Number.isSafeInteger(tokens) && tokens > 0)) {
      throw new ConfigError(`bad argument: --${flag}max-tokens must be a positive whole number up to ${Number.MAX_SAFE_INTEGER}, got ${tokens}`);
    }
    if (usd !== undefined && !(Number.isFinite(usd) && usd >= 0.000000001 && usd <= MAX_DOLLARS)) {
      throw new ConfigError(`bad argument: --${flag}max-usd must be between 0.000000001 and ${MAX_DOLLARS} dollars, got ${usd}`);
    }
  }
  if (e.NEWSLEDGER_ALERT_SMTP_URL && !e.NEWSLEDGER_ALERT_EMAIL_TO?.length) {
    throw new ConfigError("bad setting: NEWSLEDGER_ALERT_SMTP_URL is set but NEWSLEDGER_ALERT_EMAIL_TO names no recipient");
  }

  const chat = e.NEWSLEDGER_CHAT_MODEL;
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: e.NEWSLEDGER_DATA_DIR,
    outDir: e.NEWSLEDGER_OUT_DIR,
    provider,
    openai: { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL },
    models: {
      summarize: e.NEWSLEDGER_SUMMARIZE_MODEL ?? chat,
      generate_social: e.NEWSLEDGER_SOCIAL_MODEL ?? chat,
      validate: e.NEWSLEDGER_VALIDATE_MODEL ?? chat,
      embedding: e.NEWSLEDGER_EMBEDDING_MODEL,
    },
    maxOutputTokens: e.NEWSLEDGER_MAX_OUTPUT_TOKENS,
    stream: e.NEWSLEDGER_STREAM,
    httpRetries: e.NEWSLEDGER_HTTP_RETRIES,
    nodeAttempts: e.NEWSLEDGER_NODE_ATTEMPTS,
    requestTimeoutMs: e.NEWSLEDGER_REQUEST_TIMEOUT_MS,
    pricesFile: e.NEWSLEDGER_PRICES,
    cache: { ttlHours: e.NEWSLEDGER_CACHE_TTL_HOURS },
    feeds: flags.feeds && flags.feeds.length > 0 ? flags.feeds : (e.FEEDS ?? DEFAULT_FEEDS),
    collect: {
      maxItemsPerFeed: e.NEWSLEDGER_MAX_ITEMS_PER_FEED,
      maxArticlesPerRun: e.NEWSLEDGER_MAX_ARTICLES_PER_RUN,
      fetchTimeoutMs: e.NEWSLEDGER_FETCH_TIMEOUT_MS,
      fetchMaxBytes: e.NEWSLEDGER_FETCH_MAX_BYTES,
      maxRedirects: e.NEWSLEDGER_FETCH_MAX_REDIRECTS,
      duplicates: {
        similarity: e.NEWSLEDGER_DUPLICATE_SIMILARITY,
        windowDays: e.NEWSLEDGER_DUPLICATE_WINDOW_DAYS,
        maxCandidates: e.NEWSLEDGER_DUPLICATE_MAX_CANDIDATES,
      },
    },
    articleMaxTokens: e.NEWSLEDGER_ARTICLE_MAX_TOKENS,
    summaryMaxTokens: e.NEWSLEDGER_SUMMARY_MAX_TOKENS,
    concurrency: e.NEWSLEDGER_CONCURRENCY,
    cluster: { similarity: e.NEWSLEDGER_CLUSTER_SIMILARITY, top: e.NEWSLEDGER_TOP_CLUSTERS },
    maxRevisions: e.NEWSLEDGER_MAX_REVISIONS,
    budget: {
      maxTokens: flags.maxTokens ?? e.NEWSLEDGER_MAX_TOKENS,
      maxUsd: flags.maxUsd ?? e.NEWSLEDGER_MAX_USD,
      node: { maxTokens: flags.nodeMaxTokens ?? e.NEWSLEDGER_NODE_MAX_TOKENS, maxUsd: flags.nodeMaxUsd ?? e.NEWSLEDGER_NODE_MAX_USD },
      day: { maxTokens: flags.dayMaxTokens ?? e.NEWSLEDGER_DAY_MAX_TOKENS, maxUsd: flags.dayMaxUsd ?? e.NEWSLEDGER_DAY_MAX_USD },
      month: { maxTokens: flags.monthMaxTokens ?? e.NEWSLEDGER_MONTH_MAX_TOKENS, maxUsd: flags.monthMaxUsd ?? e.NEWSLEDGER_MONTH_MAX_USD },
      softRatio: e.NEWSLEDGER_SOFT_LIMIT,
      fallbackModel: e.NEWSLEDGER_FALLBACK_MODEL,
    },
    alerts: {
      console: e.NEWSLEDGER_ALERT_CONSOLE,
      slackWebhook: e.NEWSLEDGER_ALERT_SLACK_WEBHOOK,
      discordWebhook: e.NEWSLEDGER_ALERT_DISCORD_WEBHOOK,
      webhookUrl: e.NEWSLEDGER_ALERT_WEBHOOK_URL,
      smtpUrl: e.NEWSLEDGER_ALERT_SMTP_URL,
      emailFrom: e.NEWSLEDGER_ALERT_EMAIL_FROM,
      emailTo: e.NEWSLEDGER_ALERT_EMAIL_TO ?? [],
      retries: e.NEWSLEDGER_ALERT_RETRIES,
      timeoutMs: e.NEWSLEDGER_ALERT_TIMEOUT_MS,
      cooldownMinutes: e.NEWSLEDGER_ALERT_COOLDOWN_MINUTES,
      spike: { factor: e.NEWSLEDGER_SPIKE_FACTOR, runs: e.NEWSLEDGER_SPIKE_RUNS, minRuns: e.NEWSLEDGER_SPIKE_MIN_RUNS },
    },
    schedule: { cron: e.BRIEFING_CRON, timezone: e.BRIEFING_TZ },
    debug: e.NEWSLEDGER_DEBUG === "1",
  };
}
