/**
 * Offline `Task: generate_social`: posts from templates. Each platform's post is the lead
 * source's headline and summary, shortened on a word boundary so that the post, with its
 * link(s) at their full length, fits the limit the prompt gives. LinkedIn gets every summary
 * and a source list. A platform the prompt names a problem for gets the plainest form: headline
 * and link.
 */
import { elementText, readElements, readField } from "../markup";
import { postLength, splitSentences } from "../text";

interface Source {
  title: string;
  feed: string;
  link: string;
  summary: string;
}

interface Template {
  body: string;
  separator: string;
  /** Kept whole: the links. */
  tail: string;
}

const ELLIPSIS = "…";

/** `text` cut to `room` code points on a word boundary, with an ellipsis when cut. */
export function shorten(text: string, room: number): string {
  if (postLength(text) <= room) return text;
  if (room <= 1) return "";
  const cut = [...text].slice(0, room - 1).join("");
  const lastSpace = cut.search(/\s\S*$/);
  const onWord = lastSpace > cut.length / 2 ? cut.slice(0, lastSpace) : cut;
  return `${onWord.replace(/[\s,;:.—-]+$/, "")}${ELLIPSIS}`;
}

export function fit({ body, separator, tail }: Template, limit: number): string {
  const room = limit - postLength(separator) - postLength(tail);
  const shortBody = shorten(body, room);
  return shortBody ? `${shortBody}${separator}${tail}` : tail;
}

function headline(lead: Source): string {
  return lead.title || lead.summary;
}

function templateFor(platform: string, sources: Source[], plain: boolean): Template {
  const lead = sources[0]!;
  if (plain) return { body: headline(lead), separator: " ", tail: lead.link };
  switch (platform) {
    case "linkedin":
      return {
        body: [headline(lead), ...sources.map((s) => s.summary).filter(Boolean)].join("\n\n"),
        separator: "\n\n",
        tail: ["Sources:", ...sources.map((s) => `- ${s.title} (${s.feed}): ${s.link}`)].join("\n"),
      };
    case "bluesky":
      return { body: [headline(lead), lead.summary].filter(Boolean).join("\n\n"), separator: "\n\n", tail: lead.link };
    default: {
      const firstSentence = splitSentences(lead.summary)[0];
      return { body: firstSentence ? `${headline(lead)}: ${firstSentence}` : headline(lead), separator: " ", tail: lead.link };
    }
  }
}

/** Reads `<story>`, `<limit platform>` and optional `<problem platform>` sections; answers one post per limit. */
export function socialTask(data: string): Record<string, string> {
  const sources: Source[] = readElements(data, "source").map((source) => ({
    title: readField(source.inner, "title"),
    feed: readField(source.inner, "feed"),
    link: readField(source.inner, "link"),
    summary: readField(source.inner, "summary"),
  }));
  if (sources.length === 0) throw new Error("offline generate_social: the prompt has no <source> section");
  const limits = readElements(data, "limit").map((limit) => ({
    platform: limit.attributes.platform ?? "",
    limit: Number(elementText(limit)),
  }));
  if (limits.length === 0) throw new Error("offline generate_social: the prompt has no <limit> section");
  const withProblems = new Set(readElements(data, "problem").map((problem) => problem.attributes.platform));

  return Object.fromEntries(
    limits.map(({ platform, limit }) => [platform, fit(templateFor(platform, sources, withProblems.has(platform)), limit)]),
  );
}
