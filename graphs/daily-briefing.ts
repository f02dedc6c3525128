/**
 * The daily briefing: collect → summarize → embed → cluster → generate_social → validate → publish,
 * with budget_guard before every paid stage. This file only wires: each stage lives in
 * src/pipeline/<stage>/, the routers in src/pipeline/routes.ts.
 */
import { END, START, StateGraph, type BaseCheckpointSaver, type RetryPolicy } from "@langchain/langgraph";
import { keepsResults } from "../src/ledger/replies";
import { retryOn } from "../src/ledger/retry";
import { budgetGuard, type BudgetView } from "../src/pipeline/budget_guard";
import { cluster } from "../src/pipeline/cluster";
import { collect } from "../src/pipeline/collect";
import type { Deps } from "../src/pipeline/deps";
import { embed } from "../src/pipeline/embed";
import { generateSocial } from "../src/pipeline/generate_social";
import { publish } from "../src/pipeline/publish";
import { routeAfterCollect, routeAfterGuard, routeAfterValidate, type Stage } from "../src/pipeline/routes";
import { BriefingAnnotation, type BriefingState, type BriefingUpdate } from "../src/pipeline/state";
import { summarize } from "../src/pipeline/summarize";
import { validate } from "../src/pipeline/validate";

export interface DailyBriefingDeps extends Deps {
  /** The run's ledger, read by budget_guard. */
  budget: BudgetView;
}

/**
 * Marks which stage finished, so that budget_guard knows where to go next. A stage stopped by a
 * budget has not finished: a resumed run goes through it again (it skips the work already done).
 */
function stage(name: Stage, run: (state: BriefingState, deps: Deps) => Promise<BriefingUpdate>, deps: Deps) {
  return async (state: BriefingState): Promise<BriefingUpdate> => {
    const update = await run(state, deps);
    return { ...update, lastStage: update.haltReason ? state.lastStage : name };
  };
}

export function buildDailyBriefing(deps: DailyBriefingDeps, options: { checkpointer?: BaseCheckpointSaver } = {}) {
  const { config } = deps;
  // Node retries are the visible ones (every attempt reaches the ledger); the model clients retry
  // at most config.httpRetries times inside, and permanent errors are never retried.
  const retryPolicy: RetryPolicy = {
    maxAttempts: config.nodeAttempts,
    initialInterval: 500,
    backoffFactor: 2,
    maxInterval: 10_000,
    jitter: true,
    retryOn,
    logWarning: false,
  };
  const limits = deps.config.budget;
  // The paid stages write each result as its call returns and a retried attempt skips what is
  // done: a failed attempt wastes only the replies they rejected, not the calls whose results they kept.
  const paidStage = { retryPolicy, metadata: keepsResults() };

  const graph = new StateGraph(BriefingAnnotation)
    // Read the feeds, keep only articles never seen before.
    .addNode("collect", stage("collect", collect, deps))
    // Halt before a paid stage when a budget is crossed or the ledger refused a call.
    .addNode("budget_guard", (state: BriefingState) => budgetGuard(state, deps.budget, limits))
    // One summary per article.
    .addNode("summarize", stage("summarize", summarize, deps), paidStage)
    // One vector per article.
    .addNode("embed", stage("embed", embed, deps), paidStage)
    // Group related articles by their vectors (no model call).
    .addNode("cluster", stage("cluster", cluster, deps))
    // Posts for X, Bluesky and LinkedIn for the top clusters.
    .addNode("generate_social", stage("generate_social", generateSocial, deps), paidStage)
    // Length, links and a model check; failed posts go back to generate_social.
    .addNode("validate", stage("validate", validate, deps), paidStage)
    // The dated briefing, as Markdown and JSON, on disk and in the database.
    .addNode("publish", stage("publish", publish, deps))
    .addEdge(START, "collect")
    .addConditionalEdges("collect", routeAfterCollect, ["budget_guard", END])
    .addConditionalEdges("budget_guard", routeAfterGuard, ["summarize", "embed", "cluster", "generate_social", "validate", END])
    .addEdge("summarize", "budget_guard")
    .addEdge("embed", "budget_guard")
    .addEdge("cluster", "budget_guard")
    .addEdge("generate_social", "budget_guard")
    .addConditionalEdges("validate", (state: BriefingState) => routeAfterValidate(state, config.maxRevisions), [
      "budget_guard",
      "publish",
      END,
    ])
    .addEdge("publish", END)
    .compile({ checkpointer: options.checkpointer });
  graph.name = "daily_briefing";
  return graph;
}

export type DailyBriefingGraph = ReturnType<typeof buildDailyBriefing>;
