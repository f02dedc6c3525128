-- What the response cache saved, and how big prompts are. The views of 0001 are recreated with
-- columns added at the end (call_facts expands c.*, so it must be recreated to show the columns
-- 0002 added to llm_calls). A cache hit (usage_source 'cache') bills 0 tokens and cost 0; its
-- avoided_* columns hold what the call that filled the entry was billed, priced at the hit's date.
DROP VIEW "model_costs";
--> statement-breakpoint
DROP VIEW "daily_costs";
--> statement-breakpoint
DROP VIEW "run_costs";
--> statement-breakpoint
DROP VIEW "retry_costs";
--> statement-breakpoint
DROP VIEW "node_costs";
--> statement-breakpoint
DROP VIEW "call_facts";
--> statement-breakpoint
CREATE VIEW "call_facts" AS
SELECT
  c.*,
  (c.attempt > 1 OR c.node_attempt > 1) AS is_retry,
  -- Tokens billed by an attempt whose result was thrown away: a failed call, or a call whose node
  -- attempt failed in a node that does not keep its results (node metadata
  -- newsledger_keeps_results, see src/ledger/replies.ts; such a node's retry skips the items done).
  (c.status <> 'ok' OR coalesce(nr.status = 'error' AND NOT nr.keeps_results, false)) AS is_wasted,
  newsledger_day(c.started_at) AS day,
  (c.usage_source = 'cache') AS is_cache_hit,
  -- The prompt's size: billed input, the filling call's input for a cache hit (the same prompt),
  -- the local estimate when the provider reported no usage; NULL for attempts that billed nothing.
  CASE c.usage_source
    WHEN 'provider' THEN c.input_tokens
    WHEN 'cache' THEN c.avoided_input_tokens
    WHEN 'missing' THEN c.estimated_input_tokens
  END AS prompt_tokens
FROM "llm_calls" c
LEFT JOIN "node_runs" nr ON nr.id = c.node_run_id;
--> statement-breakpoint
CREATE VIEW "node_costs" AS
WITH nodes AS (
  SELECT run_id, node FROM "node_runs"
  UNION
  SELECT run_id, node FROM "llm_calls"
), attempts AS (
  SELECT run_id, node,
    count(*)::int AS node_attempts,
    count(*) FILTER (WHERE status = 'error')::int AS node_failed_attempts,
    sum(extract(epoch FROM (finished_at - started_at)) * 1000)::bigint AS node_ms_total
  FROM "node_runs" GROUP BY run_id, node
), calls AS (
  SELECT run_id, node,
    count(DISTINCT call_id)::int AS calls,
    count(*)::int AS attempts,
    count(*) FILTER (WHERE is_retry)::int AS retries,
    coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
    coalesce(sum(cached_input_tokens), 0)::bigint AS cached_input_tokens,
    coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
    coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
    coalesce(sum(total_tokens) FILTER (WHERE is_wasted), 0)::bigint AS retry_tokens,
    sum(cost_usd) AS cost_usd,
    coalesce(sum(cost_usd) FILTER (WHERE is_wasted), 0::numeric(24,12)) AS retry_cost_usd,
    count(*) FILTER (WHERE price_status = 'unknown_model')::int AS unpriced_calls,
    count(*) FILTER (WHERE usage_source = 'missing')::int AS missing_usage_calls,
    coalesce(sum(latency_ms), 0)::bigint AS latency_ms_total,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::int AS latency_ms_p95,
    count(*) FILTER (WHERE is_cache_hit)::int AS cache_hits,
    coalesce(sum(avoided_total_tokens) FILTER (WHERE is_cache_hit), 0)::bigint AS avoided_tokens,
    -- NULL only when every hit was of a model without a price (unknown is not 0).
    CASE WHEN count(*) FILTER (WHERE is_cache_hit) = 0 THEN 0::numeric(24,12)
      ELSE sum(avoided_cost_usd) FILTER (WHERE is_cache_hit) END AS avoided_cost_usd
  FROM "call_facts" GROUP BY run_id, node
)
SELECT
  n.run_id, n.node,
  coalesce(a.node_attempts, 0) AS node_attempts,
  coalesce(a.node_failed_attempts, 0) AS node_failed_attempts,
  coalesce(c.calls, 0) AS calls,
  coalesce(c.attempts, 0) AS attempts,
  coalesce(c.retries, 0) AS retries,
  coalesce(c.input_tokens, 0) AS input_tokens,
  coalesce(c.cached_input_tokens, 0) AS cached_input_tokens,
  coalesce(c.output_tokens, 0) AS output_tokens,
  coalesce(c.reasoning_tokens, 0) AS reasoning_tokens,
  coalesce(c.total_tokens, 0) AS total_tokens,
  coalesce(c.retry_tokens, 0) AS retry_tokens,
  CASE WHEN c.calls IS NULL THEN 0::numeric(24,12) ELSE c.cost_usd END AS cost_usd,
  coalesce(c.retry_cost_usd, 0::numeric(24,12)) AS retry_cost_usd,
  coalesce(c.unpriced_calls, 0) AS unpriced_calls,
  coalesce(c.missing_usage_calls, 0) AS missing_usage_calls,
  coalesce(c.latency_ms_total, 0) AS latency_ms_total,
  c.latency_ms_p95,
  coalesce(a.node_ms_total, 0) AS node_ms_total,
  coalesce(c.cache_hits, 0) AS cache_hits,
  coalesce(c.avoided_tokens, 0) AS avoided_tokens,
  CASE WHEN c.calls IS NULL THEN 0::numeric(24,12) ELSE c.avoided_cost_usd END AS avoided_cost_usd
FROM nodes n
LEFT JOIN attempts a USING (run_id, node)
LEFT JOIN calls c USING (run_id, node);
--> statement-breakpoint
CREATE VIEW "retry_costs" AS
SELECT run_id, node,
  count(*) FILTER (WHERE is_retry)::int AS retries,
  count(*) FILTER (WHERE is_wasted)::int AS wasted_attempts,
  coalesce(sum(total_tokens) FILTER (WHERE is_wasted), 0)::bigint AS retry_tokens,
  coalesce(sum(cost_usd) FILTER (WHERE is_wasted), 0::numeric(24,12)) AS retry_cost_usd
FROM "call_facts"
GROUP BY run_id, node
HAVING count(*) FILTER (WHERE is_retry OR is_wasted) > 0;
--> statement-breakpoint
CREATE VIEW "run_costs" AS
SELECT
  r.id AS run_id, r.workflow, r.trigger, r.provider, r.started_at, r.finished_at, r.status, r.halt_reason,
  count(DISTINCT f.call_id)::int AS calls,
  count(f.id)::int AS attempts,
  count(f.id) FILTER (WHERE f.is_retry)::int AS retries,
  coalesce(sum(f.input_tokens), 0)::bigint AS input_tokens,
  coalesce(sum(f.cached_input_tokens), 0)::bigint AS cached_input_tokens,
  coalesce(sum(f.output_tokens), 0)::bigint AS output_tokens,
  coalesce(sum(f.reasoning_tokens), 0)::bigint AS reasoning_tokens,
  coalesce(sum(f.total_tokens), 0)::bigint AS total_tokens,
  CASE WHEN count(f.id) = 0 THEN 0::numeric(24,12) ELSE sum(f.cost_usd) END AS cost_usd,
  coalesce(sum(f.total_tokens) FILTER (WHERE f.is_wasted), 0)::bigint AS retry_tokens,
  coalesce(sum(f.cost_usd) FILTER (WHERE f.is_wasted), 0::numeric(24,12)) AS retry_cost_usd,
  count(f.id) FILTER (WHERE f.price_status = 'unknown_model')::int AS unpriced_calls,
  count(f.id) FILTER (WHERE f.usage_source = 'missing')::int AS missing_usage_calls,
  count(f.id) FILTER (WHERE f.is_cache_hit)::int AS cache_hits,
  coalesce(sum(f.avoided_total_tokens) FILTER (WHERE f.is_cache_hit), 0)::bigint AS avoided_tokens,
  CASE WHEN count(f.id) FILTER (WHERE f.is_cache_hit) = 0 THEN 0::numeric(24,12)
    ELSE sum(f.avoided_cost_usd) FILTER (WHERE f.is_cache_hit) END AS avoided_cost_usd
FROM "runs" r
LEFT JOIN "call_facts" f ON f.run_id = r.id
GROUP BY r.id;
--> statement-breakpoint
CREATE VIEW "daily_costs" AS
WITH run_days AS (
  SELECT newsledger_day(started_at) AS day, workflow, count(*)::int AS runs
  FROM "runs" GROUP BY 1, 2
), call_days AS (
  SELECT f.day, r.workflow,
    count(*)::int AS calls,
    coalesce(sum(f.total_tokens), 0)::bigint AS total_tokens,
    sum(f.cost_usd) AS cost_usd,
    count(*) FILTER (WHERE f.price_status = 'unknown_model')::int AS unpriced_calls,
    count(*) FILTER (WHERE f.usage_source = 'missing')::int AS missing_usage_calls,
    coalesce(sum(f.total_tokens) FILTER (WHERE f.is_wasted), 0)::bigint AS retry_tokens,
    coalesce(sum(f.cost_usd) FILTER (WHERE f.is_wasted), 0::numeric(24,12)) AS retry_cost_usd,
    count(*) FILTER (WHERE f.is_cache_hit)::int AS cache_hits,
    coalesce(sum(f.avoided_total_tokens) FILTER (WHERE f.is_cache_hit), 0)::bigint AS avoided_tokens,
    CASE WHEN count(*) FILTER (WHERE f.is_cache_hit) = 0 THEN 0::numeric(24,12)
      ELSE sum(f.avoided_cost_usd) FILTER (WHERE f.is_cache_hit) END AS avoided_cost_usd
  FROM "call_facts" f JOIN "runs" r ON r.id = f.run_id
  GROUP BY 1, 2
)
-- A day lists every run started on it, with or without calls.
SELECT day, workflow,
  coalesce(d.runs, 0) AS runs,
  coalesce(c.calls, 0) AS calls,
  coalesce(c.total_tokens, 0) AS total_tokens,
  CASE WHEN c.calls IS NULL THEN 0::numeric(24,12) ELSE c.cost_usd END AS cost_usd,
  coalesce(c.unpriced_calls, 0) AS unpriced_calls,
  coalesce(c.missing_usage_calls, 0) AS missing_usage_calls,
  coalesce(c.retry_tokens, 0) AS retry_tokens,
  coalesce(c.retry_cost_usd, 0::numeric(24,12)) AS retry_cost_usd,
  coalesce(c.cache_hits, 0) AS cache_hits,
  coalesce(c.avoided_tokens, 0) AS avoided_tokens,
  CASE WHEN c.calls IS NULL THEN 0::numeric(24,12) ELSE c.avoided_cost_usd END AS avoided_cost_usd
FROM run_days d FULL JOIN call_days c USING (day, workflow);
--> statement-breakpoint
CREATE VIEW "model_costs" AS
SELECT
  coalesce(model, request_model, 'unknown') AS model,
  count(*)::int AS calls,
  coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
  coalesce(sum(cached_input_tokens), 0)::bigint AS cached_input_tokens,
  coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
  coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
  sum(cost_usd) AS cost_usd,
  count(*) FILTER (WHERE price_status = 'unknown_model')::int AS unpriced_calls,
  count(*) FILTER (WHERE usage_source = 'missing')::int AS missing_usage_calls,
  coalesce(sum(total_tokens) FILTER (WHERE is_wasted), 0)::bigint AS retry_tokens,
  coalesce(sum(cost_usd) FILTER (WHERE is_wasted), 0::numeric(24,12)) AS retry_cost_usd,
  count(*) FILTER (WHERE is_cache_hit)::int AS cache_hits,
  coalesce(sum(avoided_total_tokens) FILTER (WHERE is_cache_hit), 0)::bigint AS avoided_tokens,
  CASE WHEN count(*) FILTER (WHERE is_cache_hit) = 0 THEN 0::numeric(24,12)
    ELSE sum(avoided_cost_usd) FILTER (WHERE is_cache_hit) END AS avoided_cost_usd
FROM "call_facts"
GROUP BY 1;
--> statement-breakpoint
-- Average prompt size per node and run, so that prompt inflation over time shows:
--   select day, node, avg_input_tokens, prev_avg_input_tokens from node_prompt_sizes order by started_at, node
-- calls: the node's calls with a known prompt size (billed, served from the cache, or estimated).
CREATE VIEW "node_prompt_sizes" AS
WITH sizes AS (
  SELECT f.run_id, r.workflow, f.node, r.started_at,
    newsledger_day(r.started_at) AS day,
    count(*)::int AS calls,
    round(avg(f.prompt_tokens))::bigint AS avg_input_tokens,
    max(f.prompt_tokens)::bigint AS max_input_tokens
  FROM "call_facts" f JOIN "runs" r ON r.id = f.run_id
  WHERE f.prompt_tokens IS NOT NULL
  GROUP BY f.run_id, r.workflow, f.node, r.started_at
)
SELECT run_id, workflow, node, day, started_at, calls, avg_input_tokens, max_input_tokens,
  -- The same node's average in the workflow's previous run (NULL for its first).
  lag(avg_input_tokens) OVER (PARTITION BY workflow, node ORDER BY started_at, run_id) AS prev_avg_input_tokens
FROM sizes;
