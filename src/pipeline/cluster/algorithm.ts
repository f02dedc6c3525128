/**
 * Clustering without a model: average-linkage agglomerative clustering of article vectors by
 * cosine similarity, then ranking and labelling. Pure and deterministic: ties always go to the
 * lower index, so the same vectors give the same clusters.
 */
import { isContentWord, normalizeWord, wordTokens } from "../../llm/text";

export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

/**
 * Groups of indices into `vectors`. Starting from singletons, the two groups with the highest
 * average pairwise similarity merge while that average is at least `threshold`. Each group is in
 * ascending index order, and groups are ordered by their first index.
 */
export function averageLinkage(vectors: readonly (readonly number[])[], threshold: number): number[][] {
  const groups: (number[] | null)[] = vectors.map((_, i) => [i]);
  // linkage[a][b]: average similarity between groups a and b, kept current by the Lance–Williams update.
  const linkage = vectors.map((a) => vectors.map((b) => cosine(a, b)));
  for (;;) {
    let best: { a: number; b: number; similarity: number } | null = null;
    for (let a = 0; a < groups.length; a++) {
      if (!groups[a]) continue;
      for (let b = a + 1; b < groups.length; b++) {
        if (!groups[b]) continue;
        const similarity = linkage[a]![b]!;
        if (similarity >= threshold && (best === null || similarity > best.similarity)) best = { a, b, similarity };
      }
    }
    if (best === null) break;
    const { a, b } = best;
    const sizeA = groups[a]!.length;
    const sizeB = groups[b]!.length;
    for (let c = 0; c < groups.length; c++) {
      if (!groups[c] || c === a || c === b) continue;
      const merged = (sizeA * linkage[a]![c]! + sizeB * linkage[b]![c]!) / (sizeA + sizeB);
      linkage[a]![c] = merged;
      linkage[c]![a] = merged;
    }
    groups[a] = [...groups[a]!, ...groups[b]!].sort((x, y) => x - y);
    groups[b] = null;
  }
  return groups.filter((group): group is number[] => group !== null);
}

export function centroid(vectors: readonly (readonly number[])[]): number[] {
  const sum = new Array<number>(vectors[0]?.length ?? 0).fill(0);
  for (const vector of vectors) vector.forEach((value, i) => (sum[i]! += value));
  return sum.map((value) => value / vectors.length);
}

const LABEL_TERMS = 4;

/**
 * The title words most cluster members share (in at least two titles), most shared first, ties
 * in order of first appearance, as first written; the lead title when no word is shared.
 */
export function labelFromTitles(titles: readonly string[]): string {
  const terms = new Map<string, { surface: string; titles: number; first: number }>();
  let position = 0;
  for (const title of titles) {
    const seen = new Set<string>();
    for (const token of wordTokens(title)) {
      const key = normalizeWord(token);
      position += 1;
      if (!isContentWord(key) || seen.has(key)) continue;
      seen.add(key);
      const term = terms.get(key);
      if (term) term.titles += 1;
      else terms.set(key, { surface: token, titles: 1, first: position });
    }
  }
  const shared = [...terms.values()]
    .filter((term) => term.titles >= 2)
    .sort((a, b) => b.titles - a.titles || a.first - b.first)
    .slice(0, LABEL_TERMS);
  return shared.length > 0 ? shared.map((term) => term.surface).join(" · ") : (titles[0] ?? "").trim();
}

export interface ClusterInput {
  id: number;
  title: string;
  feed: string;
  /** When the article was published (or collected, when the feed gave no date). */
  at: Date;
  vector: number[];
}

export interface RankedCluster {
  /** Members, most central first. */
  articleIds: number[];
  label: string;
  /** Cohesion: the members' mean cosine similarity to the cluster's centroid (1 for one article). */
  score: number;
}

interface Candidate extends RankedCluster {
  distinctFeeds: number;
  newest: number;
  firstId: number;
}

/** Clusters of `articles`, best first: most articles, then most distinct feeds, then newest. */
export function buildClusters(articles: readonly ClusterInput[], threshold: number): RankedCluster[] {
  const ordered = [...articles].sort((a, b) => a.id - b.id);
  const candidates: Candidate[] = averageLinkage(
    ordered.map((a) => a.vector),
    threshold,
  ).map((indices) => {
    const members = indices.map((i) => ordered[i]!);
    const center = centroid(members.map((m) => m.vector));
    const central = members
      // Rounded so that members equally close to the centre tie exactly, whatever the float noise.
      .map((member) => ({ member, similarity: Math.round(cosine(member.vector, center) * 1e9) / 1e9 }))
      .sort((x, y) => y.similarity - x.similarity || y.member.at.getTime() - x.member.at.getTime() || x.member.id - y.member.id);
    const cohesion = central.reduce((sum, c) => sum + c.similarity, 0) / central.length;
    return {
      articleIds: central.map((c) => c.member.id),
      label: labelFromTitles(central.map((c) => c.member.title)),
      score: Math.round(cohesion * 1e6) / 1e6,
      distinctFeeds: new Set(members.map((m) => m.feed)).size,
      newest: Math.max(...members.map((m) => m.at.getTime())),
      firstId: members[0]!.id,
    };
  });
  return candidates
    .sort(
      (a, b) =>
        b.articleIds.length - a.articleIds.length || b.distinctFeeds - a.distinctFeeds || b.newest - a.newest || a.firstId - b.firstId,
    )
    .map(({ articleIds, label, score }) => ({ articleIds, label, score }));
}
