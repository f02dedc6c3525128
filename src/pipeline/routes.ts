/**
 * The daily briefing's routers: pure functions of the state, each returning a literal union that
 * the graph lists as its targets. No I/O here.
 */
import { END } from "@langchain/langgraph";
import type { BriefingState } from "./state";
import { shouldRevise } from "./validate";

export type Stage = "collect" | "summarize" | "embed" | "cluster" | "generate_social" | "validate" | "publish";

/** After each stage, the stage budget_guard lets through next. */
const NEXT_STAGE: Record<string, Exclude<Stage, "collect" | "publish">> = {
  collect: "summarize",
  summarize: "embed",
  embed: "cluster",
  cluster: "generate_social",
  generate_social: "validate",
  // validate only comes back through the guard to revise posts
  validate: "generate_social",
};

/** Nothing new collected: end at once, no paid call. */
export function routeAfterCollect(state: BriefingState): "budget_guard" | typeof END {
  return state.articleIds.length > 0 ? "budget_guard" : END;
}

export function routeAfterGuard(state: BriefingState): Exclude<Stage, "collect" | "publish"> | typeof END {
  if (state.haltReason) return END;
  const next = state.lastStage ? NEXT_STAGE[state.lastStage] : undefined;
  if (!next) throw new Error(`budget_guard reached after an unexpected stage: ${state.lastStage ?? "(none)"}`);
  return next;
}

/** Invalid posts go back (through the guard) while revision rounds are left; else publish. */
export function routeAfterValidate(
  state: BriefingState,
  maxRevisions: number,
): "budget_guard" | "publish" | typeof END {
  if (state.haltReason) return END;
  return shouldRevise(state, maxRevisions) ? "budget_guard" : "publish";
}
