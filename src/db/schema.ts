/**
 * The one typed schema. `npm run db:generate` turns changes into SQL under drizzle/; the views
 * are hand-written in their own migration. Every timestamp is `timestamptz` (a naive timestamp
 * shifts with the host zone) and money is `numeric` (never a float).
 *
 * Cost lives only on leaf rows (`llm_calls`); runs and node runs carry none, and every roll-up
 * is a view over llm_calls.
 */
import {
  bigint,
  boolean,
  date,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const tokens = (name: string) => bigint(name, { mode: "number" });
/** USD with 12 decimals: a single cached token can cost 7.5e-8 USD, and sums must stay exact. */
const usd = (name: string) => numeric(name, { precision: 24, scale: 12 });
/** USD per 1M tokens. */
const rate = (name: string) => numeric(name, { precision: 18, scale: 8 });

/** One workflow run (a LangGraph thread). */
export const runs = pgTable(
  "runs",
  {
    id: text("id").primaryKey(),
    workflow: text("workflow").notNull(),
    /** manual | schedule | bench | test */
    trigger: text("trigger").notNull(),
    /** running | succeeded | halted | failed */
    status: text("status", { enum: ["running", "succeeded", "halted", "failed"] }).notNull(),
    haltReason: text("halt_reason"),
    error: text("error"),
    /** Which model provider served the run: openai-compatible | offline. */
    provider: text("provider").notNull(),
    /** The limits the run was started with (tokens, USD), as given. */
    limits: jsonb("limits").$type<Record<string, unknown>>().notNull().default({}),
    /** Counters the pipeline reports at the end (articles, clusters, posts...). Not costs. */
    summary: jsonb("summary").$type<Record<string, unknown>>().notNull().default({}),
    startedAt: tstz("started_at").notNull().defaultNow(),
    finishedAt: tstz("finished_at"),
  },
  (t) => [index("runs_started_at_idx").on(t.startedAt)],
);
export type Run = typeof runs.$inferSelect;

/** One attempt of one graph node (a LangGraph task). Retries of a node are further rows. */
export const nodeRuns = pgTable(
  "node_runs",
  {
    /** The LangChain run id of the node's chain run. */
    id: text("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    node: text("node").notNull(),
    /** langgraph_checkpoint_ns: the same for every attempt of one task. */
    taskNs: text("task_ns").notNull(),
    attempt: integer("attempt").notNull(),
    step: integer("step"),
    /** running | ok | error */
    status: text("status", { enum: ["running", "ok", "error"] }).notNull(),
    error: text("error"),
    /**
     * The node keeps each call's result as it returns (node metadata newsledger_keeps_results):
     * when this attempt failed, its ok calls are not wasted (see call_facts.is_wasted).
     */
    keepsResults: boolean("keeps_results").notNull().default(false),
    startedAt: tstz("started_at").notNull(),
    finishedAt: tstz("finished_at"),
  },
  (t) => [index("node_runs_run_idx").on(t.runId, t.node)],
);
export type NodeRun = typeof nodeRuns.$inferSelect;

/** Prices as dated data: a change is a new row with a later valid_from, never an UPDATE. */
export const modelPrices = pgTable(
  "model_prices",
  {
    id: serial("id").primaryKey(),
    model: text("model").notNull(),
    inputPerMtok: rate("input_per_mtok").notNull(),
    /** NULL: no cache discount, cached input is billed at the input rate. */
    cachedInputPerMtok: rate("cached_input_per_mtok"),
    outputPerMtok: rate("output_per_mtok").notNull(),
    validFrom: tstz("valid_from").notNull(),
    /** shipped | user */
    source: text("source").notNull(),
  },
  (t) => [uniqueIndex("model_prices_model_from_source_uq").on(t.model, t.validFrom, t.source)],
);
export type ModelPrice = typeof modelPrices.$inferSelect;

/** Explicit alias rules: an undated or vendor name that is billed as one exact model. */
export const modelAliases = pgTable("model_aliases", {
  alias: text("alias").primaryKey(),
  model: text("model").notNull(),
  source: text("source").notNull(),
});
export type ModelAlias = typeof modelAliases.$inferSelect;

/**
 * One row per model call attempt: the leaf rows that carry cost. `id` is the attempt's own id
 * (LangChain run id, plus the HTTP attempt where a client retried), so rewriting it is idempotent.
 */
export const llmCalls = pgTable(
  "llm_calls",
  {
    id: text("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    /** The logical call (LangChain run id); HTTP retries of one call share it. */
    callId: text("call_id").notNull(),
    nodeRunId: text("node_run_id"),
    node: text("node").notNull(),
    nodeAttempt: integer("node_attempt").notNull().default(1),
    /** HTTP attempt within the logical call, 1 for the first. */
    attempt: integer("attempt").notNull().default(1),
    /** chat | embedding */
    kind: text("kind", { enum: ["chat", "embedding"] }).notNull(),
    provider: text("provider").notNull(),
    requestModel: text("request_model"),
    /** The model that served the call (the response's model wins over the request's). */
    model: text("model"),
    /** NULL when the provider reported no usage (see usage_source). */
    inputTokens: tokens("input_tokens"),
    cachedInputTokens: tokens("cached_input_tokens"),
    outputTokens: tokens("output_tokens"),
    reasoningTokens: tokens("reasoning_tokens"),
    totalTokens: tokens("total_tokens"),
    /** provider: reported by the provider | missing: none reported | none: failed before billing | cache: served from the response cache, nothing billed */
    usageSource: text("usage_source", { enum: ["provider", "missing", "none", "cache"] }).notNull(),
    /** Local tokenizer estimate, kept apart from the billed counts. */
    estimatedInputTokens: tokens("estimated_input_tokens"),
    estimatedOutputTokens: tokens("estimated_output_tokens"),
    /** ok | error | http_<status> | parse_error | stream_interrupted | context_overflow | budget_refused ... */
    status: text("status").notNull(),
    httpStatus: integer("http_status"),
    error: text("error"),
    latencyMs: integer("latency_ms"),
    streamed: boolean("streamed").notNull().default(false),
    /** ok | unknown_model | no_usage */
    priceStatus: text("price_status").notNull(),
    priceId: integer("price_id").references(() => modelPrices.id, { onDelete: "restrict" }),
    /** NULL when unpriced: unknown is not free. */
    costUsd: usd("cost_usd"),
    /** The cost the provider itself reported (e.g. OpenRouter), kept beside ours. */
    providerCostUsd: usd("provider_cost_usd"),
    /** A cache hit (usage_source cache) bills nothing; these are the tokens and cost it avoided. */
    avoidedInputTokens: tokens("avoided_input_tokens"),
    avoidedOutputTokens: tokens("avoided_output_tokens"),
    avoidedTotalTokens: tokens("avoided_total_tokens"),
    avoidedCostUsd: usd("avoided_cost_usd"),
    /** The response_cache key the call was served from or stored under. */
    cacheKey: text("cache_key"),
    startedAt: tstz("started_at").notNull(),
    finishedAt: tstz("finished_at").notNull(),
  },
  (t) => [
    index("llm_calls_run_node_idx").on(t.runId, t.node),
    index("llm_calls_started_idx").on(t.startedAt),
    index("llm_calls_model_idx").on(t.model, t.startedAt),
  ],
);
export type LlmCall = typeof llmCalls.$inferSelect;
export type NewLlmCall = typeof llmCalls.$inferInsert;

/** Feeds as sources, so that an error can be tracked per feed across runs. */
export const feedErrors = pgTable(
  "feed_errors",
  {
    id: serial("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    feed: text("feed").notNull(),
    /** error: the feed yielded nothing | warning: it yielded items but something was off */
    severity: text("severity", { enum: ["error", "warning"] }).notNull(),
    /** timeout | too_large | too_many_redirects | http_<status> | parse_error | leading_garbage | ... */
    code: text("code").notNull(),
    message: text("message").notNull(),
    at: tstz("at").notNull().defaultNow(),
  },
  (t) => [index("feed_errors_run_idx").on(t.runId)],
);
export type FeedError = typeof feedErrors.$inferSelect;

/** Articles, deduplicated across runs by canonical link and by content hash. */
export const articles = pgTable(
  "articles",
  {
    id: serial("id").primaryKey(),
    canonicalUrl: text("canonical_url").notNull(),
    contentHash: text("content_hash").notNull(),
    link: text("link").notNull(),
    title: text("title").notNull(),
    feed: text("feed").notNull(),
    feedTitle: text("feed_title"),
    /** NULL when the feed gave no date or one that does not parse (see date_flag). */
    publishedAt: tstz("published_at"),
    /** missing | unparseable, NULL when the date is good */
    dateFlag: text("date_flag"),
    body: text("body").notNull(),
    summary: text("summary"),
    embedding: jsonb("embedding").$type<number[]>(),
    firstRunId: text("first_run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    /**
     * The run that took the article into its briefing: the collecting run, or a later run that
     * took it over because that one failed or halted before publishing.
     */
    runId: text("run_id").references(() => runs.id, { onDelete: "set null" }),
    collectedAt: tstz("collected_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("articles_canonical_url_uq").on(t.canonicalUrl),
    uniqueIndex("articles_content_hash_uq").on(t.contentHash),
    index("articles_first_run_idx").on(t.firstRunId),
    index("articles_run_idx").on(t.runId),
    // The near-duplicate check reads the most recently collected articles.
    index("articles_collected_at_idx").on(t.collectedAt),
  ],
);
export type Article = typeof articles.$inferSelect;
export type NewArticle = typeof articles.$inferInsert;

/** Groups of related articles within a run. */
export const clusters = pgTable(
  "clusters",
  {
    id: serial("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    rank: integer("rank").notNull(),
    label: text("label").notNull(),
    articleIds: jsonb("article_ids").$type<number[]>().notNull(),
    score: numeric("score", { precision: 12, scale: 6, mode: "number" }).notNull(),
  },
  (t) => [index("clusters_run_idx").on(t.runId)],
);
export type Cluster = typeof clusters.$inferSelect;

/** Social posts generated for a cluster; one row per platform, updated as validation loops. */
export const posts = pgTable(
  "posts",
  {
    id: serial("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    clusterId: integer("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "cascade" }),
    /** x | bluesky | linkedin */
    platform: text("platform").notNull(),
    text: text("text").notNull(),
    /** draft | valid | invalid */
    status: text("status", { enum: ["draft", "valid", "invalid"] }).notNull(),
    /** How many times generate_social wrote this post. */
    revisions: integer("revisions").notNull().default(1),
    problems: jsonb("problems").$type<string[]>().notNull().default([]),
  },
  (t) => [uniqueIndex("posts_cluster_platform_uq").on(t.clusterId, t.platform)],
);
export type Post = typeof posts.$inferSelect;

/** The published briefing of a run. */
export const briefings = pgTable("briefings", {
  runId: text("run_id")
    .primaryKey()
    .references(() => runs.id, { onDelete: "cascade" }),
  day: date("day").notNull(),
  markdown: text("markdown").notNull(),
  json: jsonb("json").$type<Record<string, unknown>>().notNull(),
  markdownPath: text("markdown_path"),
  jsonPath: text("json_path"),
  publishedAt: tstz("published_at").notNull().defaultNow(),
});
export type Briefing = typeof briefings.$inferSelect;

/**
 * Where else an article was seen: every feed item that turned out to be the same story (same
 * canonical link, same text, or a near-duplicate by similarity) is a source of the one article.
 */
export const articleSources = pgTable(
  "article_sources",
  {
    id: serial("id").primaryKey(),
    articleId: integer("article_id")
      .notNull()
      .references(() => articles.id, { onDelete: "cascade" }),
    canonicalUrl: text("canonical_url").notNull(),
    link: text("link").notNull(),
    title: text("title").notNull(),
    feed: text("feed").notNull(),
    feedTitle: text("feed_title"),
    publishedAt: tstz("published_at"),
    /** first (the item the article was made from) | canonical_url | content_hash | near_duplicate */
    matchedBy: text("matched_by", { enum: ["first", "canonical_url", "content_hash", "near_duplicate"] }).notNull(),
    /** Cosine similarity for near_duplicate matches. */
    similarity: numeric("similarity", { precision: 7, scale: 6, mode: "number" }),
    runId: text("run_id").references(() => runs.id, { onDelete: "set null" }),
    seenAt: tstz("seen_at").notNull().defaultNow(),
  },
  (t) => [
    // One row per link and feed: a second feed carrying the same link is a second source, and
    // runs that collect at once record a sighting once (ON CONFLICT DO NOTHING).
    uniqueIndex("article_sources_canonical_url_feed_uq").on(t.canonicalUrl, t.feed),
    index("article_sources_article_idx").on(t.articleId),
  ],
);
export type ArticleSource = typeof articleSources.$inferSelect;

/**
 * Model replies and embeddings kept for reuse, keyed by a hash of model, prompt and parameters
 * (embeddings: model and text). `usage` and `cost_usd` are what the original call was billed:
 * what a hit avoids.
 */
export const responseCache = pgTable(
  "response_cache",
  {
    key: text("key").primaryKey(),
    kind: text("kind", { enum: ["chat", "embedding"] }).notNull(),
    model: text("model").notNull(),
    value: jsonb("value").$type<unknown>().notNull(),
    /** { input, cached_input, output, reasoning, total } of the call that filled the entry. */
    usage: jsonb("usage").$type<Record<string, number>>().notNull().default({}),
    costUsd: usd("cost_usd"),
    createdAt: tstz("created_at").notNull().defaultNow(),
    /** NULL: never expires. */
    expiresAt: tstz("expires_at"),
    hits: integer("hits").notNull().default(0),
    lastHitAt: tstz("last_hit_at"),
  },
  (t) => [index("response_cache_expires_idx").on(t.expiresAt)],
);
export type ResponseCacheEntry = typeof responseCache.$inferSelect;

/**
 * One counter per budget scope: a run, a node within a run, a calendar day or month of a
 * workflow. Calls reserve here before they are sent (a conditional UPDATE, atomic across
 * processes) and settle with their real usage afterwards.
 */
export const budgetCounters = pgTable("budget_counters", {
  /** run:<runId> | node:<runId>:<node> | day:<workflow>:<YYYY-MM-DD> | month:<workflow>:<YYYY-MM> */
  key: text("key").primaryKey(),
  scope: text("scope", { enum: ["run", "node", "day", "month"] }).notNull(),
  workflow: text("workflow").notNull(),
  runId: text("run_id"),
  node: text("node"),
  /** The day or month, for day and month scopes. */
  period: text("period"),
  spentTokens: tokens("spent_tokens").notNull().default(0),
  spentUsd: usd("spent_usd").notNull().default("0"),
  reservedTokens: tokens("reserved_tokens").notNull().default(0),
  reservedUsd: usd("reserved_usd").notNull().default("0"),
  updatedAt: tstz("updated_at").notNull().defaultNow(),
});
export type BudgetCounter = typeof budgetCounters.$inferSelect;

/** One reservation per call attempt, so that a killed process's reservations can be released. */
export const budgetReservations = pgTable(
  "budget_reservations",
  {
    /** The call attempt's id (llm_calls.id once recorded). */
    id: text("id").primaryKey(),
    runId: text("run_id")
      .notNull()
      .references(() => runs.id, { onDelete: "cascade" }),
    node: text("node").notNull(),
    /** The budget_counters keys the reservation holds. */
    counterKeys: jsonb("counter_keys").$type<string[]>().notNull(),
    tokens: tokens("tokens").notNull(),
    usd: usd("usd").notNull(),
    /** reserved | settled | released */
    status: text("status", { enum: ["reserved", "settled", "released"] }).notNull(),
    settledTokens: tokens("settled_tokens"),
    settledUsd: usd("settled_usd"),
    createdAt: tstz("created_at").notNull().defaultNow(),
    settledAt: tstz("settled_at"),
  },
  (t) => [index("budget_reservations_run_idx").on(t.runId, t.status)],
);
export type BudgetReservation = typeof budgetReservations.$inferSelect;

/** Something a person should know about spend: a threshold crossed, a spike, a forecast, a halt. */
export const alerts = pgTable(
  "alerts",
  {
    id: serial("id").primaryKey(),
    workflow: text("workflow").notNull(),
    runId: text("run_id").references(() => runs.id, { onDelete: "set null" }),
    node: text("node"),
    /** soft_limit | hard_limit | spike | forecast */
    rule: text("rule").notNull(),
    /** run | node | day | month */
    scope: text("scope").notNull(),
    /** info | warning | critical */
    severity: text("severity", { enum: ["info", "warning", "critical"] }).notNull(),
    message: text("message").notNull(),
    /** The figures behind the message (tokens, limits, median, factor...). */
    figures: jsonb("figures").$type<Record<string, unknown>>().notNull().default({}),
    /** Alerts with the same key inside the cooldown are recorded as suppressed, not sent again. */
    dedupeKey: text("dedupe_key").notNull(),
    /** sent | failed | partial | suppressed | no_channels */
    deliveryStatus: text("delivery_status").notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [index("alerts_dedupe_idx").on(t.dedupeKey, t.createdAt), index("alerts_run_idx").on(t.runId)],
);
export type AlertRow = typeof alerts.$inferSelect;

/** One row per alert and channel: whether it got through, after how many attempts. */
export const alertDeliveries = pgTable(
  "alert_deliveries",
  {
    id: serial("id").primaryKey(),
    alertId: integer("alert_id")
      .notNull()
      .references(() => alerts.id, { onDelete: "cascade" }),
    /** console | slack | discord | webhook | email */
    channel: text("channel").notNull(),
    /** Where it went, without secrets (webhook host and path start, email recipients). */
    target: text("target").notNull(),
    /** sent | failed */
    status: text("status", { enum: ["sent", "failed"] }).notNull(),
    attempts: integer("attempts").notNull(),
    error: text("error"),
    at: tstz("at").notNull().defaultNow(),
  },
  (t) => [index("alert_deliveries_alert_idx").on(t.alertId)],
);
export type AlertDelivery = typeof alertDeliveries.$inferSelect;
