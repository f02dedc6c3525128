import { describe, expect, it } from "vitest";
import { averageLinkage, buildClusters, cosine, labelFromTitles, type ClusterInput } from "../../src/pipeline/cluster/algorithm";

/** A unit vector at `degrees` in the plane: cosine between two is the cosine of the angle between them. */
const at = (degrees: number) => [Math.cos((degrees * Math.PI) / 180), Math.sin((degrees * Math.PI) / 180)];

describe("averageLinkage", () => {
  it("groups vectors whose average similarity reaches the threshold, and no others", () => {
    // Two tight groups 90° apart, and one vector between them at 45° from each.
    const vectors = [at(0), at(10), at(90), at(100), at(20), at(55)];
    expect(averageLinkage(vectors, 0.9)).toEqual([[0, 1, 4], [2, 3], [5]]);
  });

  it("merges by the average, not the closest pair (a chain does not pull in its far end)", () => {
    // 0–1 and 1–2 are each 30° apart (cos 0.866), but 0–2 is 60° (0.5): the average from {0,1} to 2 is 0.683.
    expect(averageLinkage([at(0), at(30), at(60)], 0.8)).toEqual([[0, 1], [2]]);
    expect(averageLinkage([at(0), at(30), at(60)], 0.68)).toEqual([[0, 1, 2]]);
  });

  it("keeps everything apart above a similarity of 1 and treats a zero vector as unlike all", () => {
    expect(averageLinkage([at(0), at(0), [0, 0]], 1.01)).toEqual([[0], [1], [2]]);
    expect(cosine([0, 0], at(0))).toBe(0);
  });
});

describe("labelFromTitles", () => {
  it("uses the words most titles share, as first written", () => {
    expect(labelFromTitles(["Ferry strike closes Northport harbour", "Northport ferry strike strands commuters", "Union to meet over Northport ferry strike"])).toBe(
      "Ferry · strike · Northport",
    );
  });

  it("uses the title when nothing is shared", () => {
    expect(labelFromTitles(["Council approves budget for new cycle lanes"])).toBe("Council approves budget for new cycle lanes");
  });
});

describe("buildClusters", () => {
  const article = (id: number, degrees: number, feed: string, at_: string): ClusterInput => ({
    id,
    title: `Story ${id}`,
    feed,
    at: new Date(at_),
    vector: at(degrees),
  });

  it("ranks by size, then distinct feeds, then recency, with the most central article first", () => {
    // Sizes 3, 2, 1, 1, 1; the singletons all have one feed, so the newest (6) leads them.
    const ranked = buildClusters(
      [
        article(1, 0, "a", "2024-05-02T08:00:00Z"),
        article(2, 4, "a", "2024-05-02T09:00:00Z"),
        article(3, 90, "a", "2024-05-02T10:00:00Z"),
        article(4, 94, "b", "2024-05-02T07:00:00Z"),
        article(5, 180, "a", "2024-05-01T07:00:00Z"),
        article(6, 270, "b", "2024-05-02T11:00:00Z"),
        article(7, 45, "a", "2024-05-01T12:00:00Z"),
        article(8, 2, "b", "2024-05-01T12:00:00Z"),
      ],
      0.95,
    );
    // 8 sits at the centre of 1, 8, 2; 1 and 2 are equally far, so the newer (2) comes first.
    expect(ranked.map((c) => c.articleIds)).toEqual([[8, 2, 1], [3, 4], [6], [7], [5]]);
    expect(ranked[0]!.score).toBe(0.999594);
    expect(ranked[2]!.score).toBe(1);
  });

  it("puts a story told by two feeds above an equally large, newer story from one feed", () => {
    const ranked = buildClusters(
      [
        article(1, 0, "a", "2024-05-02T12:00:00Z"),
        article(2, 1, "a", "2024-05-02T13:00:00Z"),
        article(3, 90, "a", "2024-05-01T08:00:00Z"),
        article(4, 91, "b", "2024-05-01T09:00:00Z"),
      ],
      0.95,
    );
    expect(ranked.map((c) => c.articleIds)).toEqual([[4, 3], [2, 1]]);
  });
});
