-- Every cost roll-up is a view over the leaf rows in llm_calls: nothing else stores money, so
-- nothing can double-count or drift. A NULL cost_usd means "unpriced", never "free"; the
-- unpriced_calls column says how many calls a total is missing.
-- Days are calendar days in the zone named by the session setting newsledger.tz (UTC when unset);
-- the app sets it from BRIEFING_TZ, a psql user can `SET newsledger.tz = 'Europe/Berlin'`.
CREATE FUNCTION newsledger_day(at timestamptz) RETURNS date LANGUAGE sql STABLE AS $$
  SELECT (at AT TIME ZONE coalesce(nullif(current_setting('newsledger.tz', true), ''), 'UTC'))::date
$$;
--> statement-breakpoint
CREATE VIEW "call_facts" AS
SELECT
  c.*,
  (c.attempt > 1 OR c.node_attempt > 1) AS is_retry,
  -- Tokens billed by an attempt whose result was thrown away: a failed call, or a call whose node
  -- attempt failed in a node that does not keep its results (node metadata
  -- newsledger_keeps_results, see src/ledger/replies.ts; such a node's retry skips the items done).
  (c.status <> 'ok' OR coalesce(nr.status = 'error' AND NOT nr.keeps_results, false)) AS is_wasted,
  newsledger_day(c.started_at) AS day
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
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::int AS latency_ms_p95
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
  coalesce(a.node_ms_total, 0) AS node_ms_total
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
  count(f.id) FILTER (WHERE f.usage_source = 'missing')::int AS missing_usage_calls
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
    coalesce(sum(f.cost_usd) FILTER (WHERE f.is_wasted), 0::numeric(24,12)) AS retry_cost_usd
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
  coalesce(c.retry_cost_usd, 0::numeric(24,12)) AS retry_cost_usd
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
  coalesce(sum(cost_usd) FILTER (WHERE is_wasted), 0::numeric(24,12)) AS retry_cost_usd
FROM "call_facts"
GROUP BY 1;
