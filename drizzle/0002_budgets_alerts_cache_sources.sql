CREATE TABLE "alert_deliveries" (
	"id" serial PRIMARY KEY NOT NULL,
	"alert_id" integer NOT NULL,
	"channel" text NOT NULL,
	"target" text NOT NULL,
	"status" text NOT NULL,
	"attempts" integer NOT NULL,
	"error" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" serial PRIMARY KEY NOT NULL,
	"workflow" text NOT NULL,
	"run_id" text,
	"node" text,
	"rule" text NOT NULL,
	"scope" text NOT NULL,
	"severity" text NOT NULL,
	"message" text NOT NULL,
	"figures" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"dedupe_key" text NOT NULL,
	"delivery_status" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "article_sources" (
	"id" serial PRIMARY KEY NOT NULL,
	"article_id" integer NOT NULL,
	"canonical_url" text NOT NULL,
	"link" text NOT NULL,
	"title" text NOT NULL,
	"feed" text NOT NULL,
	"feed_title" text,
	"published_at" timestamp with time zone,
	"matched_by" text NOT NULL,
	"similarity" numeric(7, 6),
	"run_id" text,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "budget_counters" (
	"key" text PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"workflow" text NOT NULL,
	"run_id" text,
	"node" text,
	"period" text,
	"spent_tokens" bigint DEFAULT 0 NOT NULL,
	"spent_usd" numeric(24, 12) DEFAULT '0' NOT NULL,
	"reserved_tokens" bigint DEFAULT 0 NOT NULL,
	"reserved_usd" numeric(24, 12) DEFAULT '0' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "budget_reservations" (
	"id" text PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"node" text NOT NULL,
	"counter_keys" jsonb NOT NULL,
	"tokens" bigint NOT NULL,
	"usd" numeric(24, 12) NOT NULL,
	"status" text NOT NULL,
	"settled_tokens" bigint,
	"settled_usd" numeric(24, 12),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"settled_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "response_cache" (
	"key" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"model" text NOT NULL,
	"value" jsonb NOT NULL,
	"usage" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"cost_usd" numeric(24, 12),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"hits" integer DEFAULT 0 NOT NULL,
	"last_hit_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "avoided_input_tokens" bigint;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "avoided_output_tokens" bigint;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "avoided_total_tokens" bigint;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "avoided_cost_usd" numeric(24, 12);--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "cache_key" text;--> statement-breakpoint
ALTER TABLE "alert_deliveries" ADD CONSTRAINT "alert_deliveries_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "article_sources" ADD CONSTRAINT "article_sources_article_id_articles_id_fk" FOREIGN KEY ("article_id") REFERENCES "public"."articles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "article_sources" ADD CONSTRAINT "article_sources_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "budget_reservations" ADD CONSTRAINT "budget_reservations_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alert_deliveries_alert_idx" ON "alert_deliveries" USING btree ("alert_id");--> statement-breakpoint
CREATE INDEX "alerts_dedupe_idx" ON "alerts" USING btree ("dedupe_key","created_at");--> statement-breakpoint
CREATE INDEX "alerts_run_idx" ON "alerts" USING btree ("run_id");--> statement-breakpoint
CREATE UNIQUE INDEX "article_sources_canonical_url_uq" ON "article_sources" USING btree ("canonical_url");--> statement-breakpoint
CREATE INDEX "article_sources_article_idx" ON "article_sources" USING btree ("article_id");--> statement-breakpoint
CREATE INDEX "budget_reservations_run_idx" ON "budget_reservations" USING btree ("run_id","status");--> statement-breakpoint
CREATE INDEX "response_cache_expires_idx" ON "response_cache" USING btree ("expires_at");