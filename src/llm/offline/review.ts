/**
 * Offline `Task: validate`: a rule-based review of each post against its story. A post passes
 * when it is not empty, fits the limit the prompt gives, has no unfilled template text, links
 * at least one of the story's sources and mentions the story (shares a content word with its
 * titles or summaries).
 */
import { elementText, readElements, readField } from "../markup";
import { contentWords, findLinks, postLength, withoutLinks } from "../text";

export interface Verdict {
  ok: boolean;
  reason: string;
}

/** Template slots and values that leak from code into text. */
const PLACEHOLDER = /\{\{?\s*\w+\s*\}?\}|\bundefined\b|\bNaN\b|\[object Object\]|\bTODO\b/;

export function reviewPost(text: string, limit: number, story: { links: Set<string>; terms: Set<string> }): Verdict {
  if (text.trim() === "") return { ok: false, reason: "the post is empty" };
  const length = postLength(text);
  if (length > limit) return { ok: false, reason: `the post has ${length} characters, over its limit of ${limit}` };
  if (PLACEHOLDER.test(text)) return { ok: false, reason: "the post contains unfilled template text" };
  if (!findLinks(text).some((link) => story.links.has(link))) return { ok: false, reason: "the post links none of the story's sources" };
  if (!contentWords(withoutLinks(text)).some((term) => story.terms.has(term))) {
    return { ok: false, reason: "the post does not mention the story" };
  }
  return { ok: true, reason: "on topic, within its limit and linked to a source" };
}

/** Reads `<source>` and `<post platform limit>` sections; answers `{ [platform]: { ok, reason } }`. */
export function reviewTask(data: string): Record<string, Verdict> {
  const sources = readElements(data, "source");
  const story = {
    links: new Set(sources.map((source) => readField(source.inner, "link"))),
    terms: new Set(sources.flatMap((source) => contentWords(`${readField(source.inner, "title")} ${readField(source.inner, "summary")}`))),
  };
  const posts = readElements(data, "post");
  if (posts.length === 0) throw new Error("offline validate: the prompt has no <post> section");
  return Object.fromEntries(
    posts.map((post) => [post.attributes.platform ?? "", reviewPost(elementText(post), Number(post.attributes.limit), story)]),
  );
}
