/**
 * Near-duplicates without a model call: an item's title and lead, as the offline provider's
 * feature-hashed word vector, compared by cosine with the articles of the window. Free and
 * local, so that a copy of a story is recognised before anything is paid for it.
 */
import { hashVector } from "../../llm/offline/embeddings";
import { contentWords, withoutLinks } from "../../llm/text";

/** The lead: the start of the body, where copies of one story agree most. */
export const LEAD_CHARS = 400;
/**
 * Texts with fewer content words are never near-duplicates: with a handful of words, different
 * items of one feed ("v3.8.3", "v3.8.8") score high by their shared words alone.
 */
export const MIN_CONTENT_WORDS = 8;

/** What is compared: the title and the lead. */
export function similarityText(title: string, body: string): string {
  return `${title}\n${body.slice(0, LEAD_CHARS)}`;
}

/** The vector of a text, or null when the text is too short to compare. */
export function similarityVector(title: string, body: string): number[] | null {
  const text = similarityText(title, body);
  return contentWords(withoutLinks(text)).length < MIN_CONTENT_WORDS ? null : hashVector(text);
}

/** Both vectors are unit length (hashVector normalises), so the dot product is the cosine. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Stored with 6 decimals (numeric(7, 6)). */
export function roundSimilarity(similarity: number): number {
  return Math.round(similarity * 1e6) / 1e6;
}

/** Vectors of the stories seen so far, each under its key; answers which one an item repeats. */
export class NearDuplicateIndex<Key> {
  private readonly entries: { key: Key; vector: number[] }[] = [];

  constructor(private readonly threshold: number) {
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`near-duplicate threshold must be in (0, 1], got ${threshold}`);
  }

  add(key: Key, vector: number[] | null): void {
    if (vector) this.entries.push({ key, vector });
  }

  /** The most similar story at or above the threshold, or null. */
  closest(vector: number[] | null): { key: Key; similarity: number } | null {
    if (!vector) return null;
    let best: { key: Key; similarity: number } | null = null;
    for (const entry of this.entries) {
      const similarity = cosine(vector, entry.vector);
      if (similarity >= this.threshold && (!best || similarity > best.similarity)) best = { key: entry.key, similarity };
    }
    return best;
  }
}
