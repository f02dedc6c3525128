/** The checks every post passes before any model looks at it. Each problem is a short sentence for the revision prompt. */
import { findLinks, postLength } from "../../llm/text";

export function checkPost(text: string, limit: number, storyLinks: ReadonlySet<string>): string[] {
  if (text.trim() === "") return ["empty post"];
  const problems: string[] = [];
  const length = postLength(text);
  if (length > limit) problems.push(`too long: ${length} characters, limit ${limit}`);
  const links = findLinks(text);
  for (const link of new Set(links)) if (!storyLinks.has(link)) problems.push(`link not from this story: ${link}`);
  if (!links.some((link) => storyLinks.has(link))) problems.push("no source link");
  return problems;
}
