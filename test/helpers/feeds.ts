/** Feeds written for a test: stories no other generated feed shares, so every run has new work. */
import { writeFileSync } from "node:fs";
import path from "node:path";

const NOUNS = [
  "harbour", "orchard", "railway", "library", "festival", "bridge", "council", "market", "school", "river", "museum", "stadium",
  "hospital", "airport", "factory", "vineyard", "lighthouse", "tram", "reservoir", "theatre", "bakery", "quarry", "ferry", "observatory",
  "glacier", "canal", "brewery", "archive", "greenhouse", "monastery", "aquarium", "foundry", "windmill", "courthouse", "pier", "meadow",
];
const VERBS = ["approved", "rejected", "postponed", "funded", "inspected", "reopened", "expanded", "closed", "renamed", "restored", "sold", "doubled"];
const PEOPLE = ["nurses", "farmers", "students", "pilots", "bakers", "miners", "sailors", "cyclists", "teachers", "painters", "drivers", "divers"];

function pick<T>(list: readonly T[], seed: number): T {
  return list[Math.abs(Math.imul(seed ^ 0x9e3779b9, 2654435761) >>> 7) % list.length]!;
}

/**
 * Writes `town-<n>.xml` with `items` stories of town n and returns its path. Each story has its
 * own nouns, verb, people and figures, so no two are near-duplicates of each other.
 */
export function writeTownFeed(dir: string, n: number, items: number): string {
  const stories = Array.from({ length: items }, (_, i) => {
    const s = n * 1009 + i * 31;
    const [a, b, c] = [pick(NOUNS, s), pick(NOUNS, s + 7), pick(NOUNS, s + 13)];
    const verb = pick(VERBS, s + 3);
    const who = pick(PEOPLE, s + 5);
    const figure = 1000 + n * 97 + i * 13;
    return `<item><title>Town ${n} ${verb} the ${a} scheme ${figure}</title>
      <link>https://town${n}.example.org/news/${a}-${figure}</link><guid>town${n}-${i}</guid>
      <pubDate>Thu, 03 Dec 2026 0${i % 9}:00:00 GMT</pubDate>
      <description>${who[0]!.toUpperCase()}${who.slice(1)} of town ${n} watched as the ${a} scheme ${figure} was ${verb} beside the ${b}.
      ${figure % 7} ${c} projects wait behind it; ${who} near the ${b} say ${figure * 3} visitors came last year.
      A ${c} report on the ${a} is due in ${2 + (i % 4)} months.</description></item>`;
  });
  const file = path.join(dir, `town-${n}.xml`);
  writeFileSync(file, `<?xml version="1.0"?><rss version="2.0"><channel><title>Town ${n} News</title><link>https://town${n}.example.org/</link>${stories.join("")}</channel></rss>`);
  return file;
}
