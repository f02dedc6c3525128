/**
 * The daily briefing's state: ids, counters and the halt reason only. Article bodies, summaries
 * and vectors live in the database, so a checkpoint stays small however many articles a run has.
 * Every field is overwritten by the node that sets it (no field merges, so no reducers).
 */
import { Annotation } from "@langchain/langgraph";

export const BriefingAnnotation = Annotation.Root({
  /** The run this thread belongs to (runs.id). */
  runId: Annotation<string>,
  /** Feed sources as given: URLs, files or folders. */
  feeds: Annotation<string[]>,
  /** Articles collected by this run (articles.id), newest first. */
  articleIds: Annotation<number[]>,
  /** How many feeds collect attempted, and how many of them failed. */
  feedsAttempted: Annotation<number>,
  feedsFailed: Annotation<number>,
  /** Clusters of this run (clusters.id), best first; only the top ones get posts. */
  clusterIds: Annotation<number[]>,
  /** Posts of this run (posts.id). */
  postIds: Annotation<number[]>,
  /** Posts that failed validation and go back to generate_social. */
  invalidPostIds: Annotation<number[]>,
  /** How many times validate has sent posts back; stops at config.maxRevisions. */
  revisionRound: Annotation<number>,
  /** The last stage that finished: budget_guard routes to the stage after it. */
  lastStage: Annotation<string | null>,
  /** Set when a budget stops the run: the limit and the figures. The run ends as halted. */
  haltReason: Annotation<string | null>,
  /** Where publish wrote the briefing (Markdown). */
  briefingPath: Annotation<string | null>,
});

export type BriefingState = typeof BriefingAnnotation.State;
export type BriefingUpdate = typeof BriefingAnnotation.Update;

/** The state a run starts with. */
export function initialState(runId: string, feeds: string[]): BriefingState {
  return {
    runId,
    feeds,
    articleIds: [],
    feedsAttempted: 0,
    feedsFailed: 0,
    clusterIds: [],
    postIds: [],
    invalidPostIds: [],
    revisionRound: 0,
    lastStage: null,
    haltReason: null,
    briefingPath: null,
  };
}
