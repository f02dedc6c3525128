CREATE TABLE "articles" (
	"id" serial PRIMARY KEY NOT NULL,
	"canonical_url" text NOT NULL,
	"content_hash" text NOT NULL,
	"link" text NOT NULL,
	"title" text NOT NULL,
	"feed" text NOT NULL,
	"feed_title" text,
	"published_at" timestamp with time zone,
	"date_flag" text,
	"body" text NOT NULL,
	"summary" text,
	"embedding" jsonb,
	"first_run_id" text NOT NULL,
	"run_id" text,
	"collected_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "briefings" (
	"run_id" text PRIMARY KEY NOT NULL,
	"day" date NOT NULL,
	"markdown" text NOT NULL,
	"json" jsonb NOT NULL,
	"markdown_path" text,
	"json_path" text,
	"published_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "clusters" (
	"id" serial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"rank" integer NOT NULL,
	"label" text NOT NULL,
	"article_ids" jsonb NOT NULL,
	"score" numeric(12, 6) NOT NULL
);
--> statement-breakpoint
CREATE TABLE "feed_errors" (
	"id" serial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"feed" text NOT NULL,
	"severity" text NOT NULL,
	"code" text NOT NULL,
	"message" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "llm_calls" (
	"id" text PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"call_id" text NOT NULL,
	"node_run_id" text,
	"node" text NOT NULL,
	"node_attempt" integer DEFAULT 1 NOT NULL,
	"attempt" integer DEFAULT 1 NOT NULL,
	"kind" text NOT NULL,
	"provider" text NOT NULL,
	"request_model" text,
	"model" text,
	"input_tokens" bigint,
	"cached_input_tokens" bigint,
	"output_tokens" bigint,
	"reasoning_tokens" bigint,
	"total_tokens" bigint,
	"usage_source" text NOT NULL,
	"estimated_input_tokens" bigint,
	"estimated_output_tokens" bigint,
	"status" text NOT NULL,
	"http_status" integer,
	"error" text,
	"latency_ms" integer,
	"streamed" boolean DEFAULT false NOT NULL,
	"price_status" text NOT NULL,
	"price_id" integer,
	"cost_usd" numeric(24, 12),
	"provider_cost_usd" numeric(24, 12),
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "model_aliases" (
	"alias" text PRIMARY KEY NOT NULL,
	"model" text NOT NULL,
	"source" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "model_prices" (
	"id" serial PRIMARY KEY NOT NULL,
	"model" text NOT NULL,
	"input_per_mtok" numeric(18, 8) NOT NULL,
	"cached_input_per_mtok" numeric(18, 8),
	"output_per_mtok" numeric(18, 8) NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"source" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "node_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"node" text NOT NULL,
	"task_ns" text NOT NULL,
	"attempt" integer NOT NULL,
	"step" integer,
	"status" text NOT NULL,
	"error" text,
	"keeps_results" boolean DEFAULT false NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "posts" (
	"id" serial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"cluster_id" integer NOT NULL,
	"platform" text NOT NULL,
	"text" text NOT NULL,
	"status" text NOT NULL,
	"revisions" integer DEFAULT 1 NOT NULL,
	"problems" jsonb DEFAULT '[]'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow" text NOT NULL,
	"trigger" text NOT NULL,
	"status" text NOT NULL,
	"halt_reason" text,
	"error" text,
	"provider" text NOT NULL,
	"limits" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"summary" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "articles" ADD CONSTRAINT "articles_first_run_id_runs_id_fk" FOREIGN KEY ("first_run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "articles" ADD CONSTRAINT "articles_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "briefings" ADD CONSTRAINT "briefings_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "clusters" ADD CONSTRAINT "clusters_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "feed_errors" ADD CONSTRAINT "feed_errors_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD CONSTRAINT "llm_calls_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD CONSTRAINT "llm_calls_price_id_model_prices_id_fk" FOREIGN KEY ("price_id") REFERENCES "public"."model_prices"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "node_runs" ADD CONSTRAINT "node_runs_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "posts" ADD CONSTRAINT "posts_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "posts" ADD CONSTRAINT "posts_cluster_id_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."clusters"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "articles_canonical_url_uq" ON "articles" USING btree ("canonical_url");--> statement-breakpoint
CREATE UNIQUE INDEX "articles_content_hash_uq" ON "articles" USING btree ("content_hash");--> statement-breakpoint
CREATE INDEX "articles_first_run_idx" ON "articles" USING btree ("first_run_id");--> statement-breakpoint
CREATE INDEX "articles_run_idx" ON "articles" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "clusters_run_idx" ON "clusters" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "feed_errors_run_idx" ON "feed_errors" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "llm_calls_run_node_idx" ON "llm_calls" USING btree ("run_id","node");--> statement-breakpoint
CREATE INDEX "llm_calls_started_idx" ON "llm_calls" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "llm_calls_model_idx" ON "llm_calls" USING btree ("model","started_at");--> statement-breakpoint
CREATE UNIQUE INDEX "model_prices_model_from_source_uq" ON "model_prices" USING btree ("model","valid_from","source");--> statement-breakpoint
CREATE INDEX "node_runs_run_idx" ON "node_runs" USING btree ("run_id","node");--> statement-breakpoint
CREATE UNIQUE INDEX "posts_cluster_platform_uq" ON "posts" USING btree ("cluster_id","platform");--> statement-breakpoint
CREATE INDEX "runs_started_at_idx" ON "runs" USING btree ("started_at");