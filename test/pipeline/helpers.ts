/** Shared set-up for the stage tests: a run row, articles from the fixture, and offline deps. */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { loadConfig, type Config } from "../../src/config";
import type { Database } from "../../src/db/client";
import { articles, runs } from "../../src/db/schema";
import { createModels } from "../../src/llm/factory";
import type { Models } from "../../src/llm/types";
import type { Deps } from "../../src/pipeline/deps";
import { initialState, type BriefingState } from "../../src/pipeline/state";

export interface FixtureArticle {
  title: string;
  feed: string;
  feedTitle: string;
  link: string;
  publishedAt: string;
  body: string;
}

export const FIXTURE_ARTICLES: FixtureArticle[] = JSON.parse(
  readFileSync(new URL("./fixtures/articles.json", import.meta.url), "utf8"),
);

export function offlineConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ NEWSLEDGER_PROVIDER: "offline", ...env });
}

export function offlineDeps(db: Database, options: { env?: Record<string, string>; models?: Models } = {}): Deps & { lines: string[] } {
  const config = offlineConfig(options.env);
  const lines: string[] = [];
  return { db, config, models: options.models ?? createModels(config), log: (line) => lines.push(line), lines };
}

/** Inserts the run row (the articles' and clusters' foreign key) and the fixture articles; returns the state. */
export async function seedRun(db: Database, runId: string, fixtures: FixtureArticle[] = FIXTURE_ARTICLES): Promise<BriefingState> {
  await db.insert(runs).values({
    id: runId,
    workflow: "daily_briefing",
    trigger: "test",
    status: "running",
    provider: "offline",
    startedAt: new Date("2024-05-02T06:30:00Z"),
  });
  const inserted = await db
    .insert(articles)
    .values(
      fixtures.map((a) => ({
        canonicalUrl: a.link,
        contentHash: createHash("sha256").update(a.body).digest("hex"),
        link: a.link,
        title: a.title,
        feed: a.feed,
        feedTitle: a.feedTitle,
        publishedAt: new Date(a.publishedAt),
        body: a.body,
        firstRunId: runId,
      })),
    )
    .returning({ id: articles.id });
  return { ...initialState(runId, []), articleIds: inserted.map((a) => a.id) };
}

/** Applies a stage's update the way the graph does (every field overwrites). */
export function apply(state: BriefingState, update: Partial<BriefingState>): BriefingState {
  return { ...state, ...update };
}
