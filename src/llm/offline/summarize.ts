/**
 * Offline `Task: summarize`: an extractive summary. Each sentence is scored by how frequent its
 * words are in the article (TF), how many title words it shares, and how early it comes; the
 * 2–3 best are returned in their original order.
 */
import { readElements, readField } from "../markup";
import { contentWords, splitSentences, words } from "../text";

const WEIGHT = { termFrequency: 0.5, titleOverlap: 0.3, position: 0.2 };
/** Shorter sentences are usually datelines, captions or bylines. */
const MIN_WORDS = 5;

function sentenceCount(available: number): number {
  return available >= 6 ? 3 : Math.min(available, 2);
}

export function extractiveSummary(title: string, text: string): string {
  const sentences = splitSentences(text);
  if (sentences.length === 0) return title.trim();

  const terms = sentences.map((sentence) => [...new Set(contentWords(sentence))]);
  const counts = new Map<string, number>();
  for (const sentence of sentences) for (const term of contentWords(sentence)) counts.set(term, (counts.get(term) ?? 0) + 1);
  const maxCount = Math.max(1, ...counts.values());
  const titleTerms = new Set(contentWords(title));

  const scored = sentences.map((sentence, index) => {
    const own = terms[index] ?? [];
    const termFrequency = own.length ? own.reduce((sum, term) => sum + (counts.get(term) ?? 0) / maxCount, 0) / own.length : 0;
    const titleOverlap = titleTerms.size ? own.filter((term) => titleTerms.has(term)).length / titleTerms.size : 0;
    const position = 1 - index / sentences.length;
    const score = WEIGHT.termFrequency * termFrequency + WEIGHT.titleOverlap * titleOverlap + WEIGHT.position * position;
    return { index, score, eligible: words(sentence).length >= MIN_WORDS };
  });
  const eligible = scored.filter((s) => s.eligible);
  const candidates = eligible.length ? eligible : scored;

  return candidates
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, sentenceCount(candidates.length))
    .sort((a, b) => a.index - b.index)
    .map((s) => sentences[s.index])
    .join(" ");
}

/** Reads `<article><title/><text/></article>` and answers `{ summary }`. */
export function summarizeTask(data: string): { summary: string } {
  const article = readElements(data, "article")[0];
  if (!article) throw new Error("offline summarize: the prompt has no <article> section");
  return { summary: extractiveSummary(readField(article.inner, "title"), readField(article.inner, "text")) };
}
