/** Feeds written for a test: stories no other generated feed shares, so every run has new work. */
import { writeFileSync } from "node:fs";
import path from "node:path";

const WORDS = ["harbour", "orchard", "railway", "library", "festival", "bridge", "council", "market", "school", "river", "museum", "stadium"];

/** Writes `town-<n>.xml` with `items` stories of town n (its own words, links and numbers) and returns its path. */
export function writeTownFeed(dir: string, n: number, items: number): string {
  const stories = Array.from({ length: items }, (_, i) => {
    const a = WORDS[(n + i) % WORDS.length]!;
    const b = WORDS[(n * 3 + i * 5 + 1) % WORDS.length]!;
    const figure = 1000 + n * 97 + i * 13;
    return `<item><title>Town ${n} ${a} plan number ${figure} approved</title>
      <link>https://town${n}.example.org/news/${a}-${figure}</link><guid>town${n}-${i}</guid>
      <pubDate>Thu, 03 Dec 2026 0${i % 9}:00:00 GMT</pubDate>
      <description>The town ${n} council approved the ${a} plan number ${figure} on Thursday after a long debate about the ${b}.
      Supporters said the ${a} would bring ${figure} visitors a year; opponents worried about the ${b} and the cost to residents of town ${n}.
      Work on the ${a} starts in spring and should take ${2 + (i % 4)} years, the council said.</description></item>`;
  });
  const file = path.join(dir, `town-${n}.xml`);
  writeFileSync(file, `<?xml version="1.0"?><rss version="2.0"><channel><title>Town ${n} News</title><link>https://town${n}.example.org/</link>${stories.join("")}</channel></rss>`);
  return file;
}
