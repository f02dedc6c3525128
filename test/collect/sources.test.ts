/** listFeedSources: URLs, files and folders; unusable entries become per-feed problems, not crashes. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { listFeedSources, readFeedFile } from "../../src/pipeline/collect/sources";

const scratch = mkdtempSync(path.join(os.tmpdir(), "newsledger-sources-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("listFeedSources", () => {
  it("expands a folder to its feed files, sorted, ignoring other files and subfolders", async () => {
    const folder = path.join(scratch, "feeds");
    mkdirSync(path.join(folder, "nested.xml"), { recursive: true });
    for (const name of ["b.rss", "a.xml", "c.atom", "d.RDF", "notes.txt", "e.json"]) writeFileSync(path.join(folder, name), "<rss/>");
    const { sources, problems } = await listFeedSources([folder]);
    expect(problems).toEqual([]);
    expect(sources.map((s) => path.basename(s.name))).toEqual(["a.xml", "b.rss", "c.atom", "d.RDF"]);
    expect(sources.every((s) => s.kind === "file")).toBe(true);
  });

  it("keeps URLs and files in the order given, once each", async () => {
    const file = path.join(scratch, "one.xml");
    writeFileSync(file, "<rss/>");
    const { sources } = await listFeedSources([
      "https://news.example.org/feed.xml",
      file,
      " https://news.example.org/feed.xml ",
      pathToFileURL(file).href,
      "",
    ]);
    expect(sources).toEqual([
      { kind: "url", name: "https://news.example.org/feed.xml" },
      { kind: "file", name: file, path: file },
    ]);
  });

  it("reports a missing path, an empty folder and an unsupported scheme by name", async () => {
    const empty = path.join(scratch, "empty");
    mkdirSync(empty);
    const missing = path.join(scratch, "no-such-feeds");
    const { sources, problems } = await listFeedSources([missing, empty, "ftp://news.example.org/feed.xml"]);
    expect(sources).toEqual([]);
    expect(problems.map((p) => [p.name, p.error.code])).toEqual([
      [missing, "not_found"],
      [empty, "no_feed_files"],
      ["ftp://news.example.org/feed.xml", "unsupported_source"],
    ]);
    expect(problems[0].error.message).toContain(`"${missing}"`);
    expect(problems[0].error.message).toContain("neither an http(s) URL nor an existing file or folder");
  });
});

describe("readFeedFile", () => {
  it("refuses a file over the size cap", async () => {
    const file = path.join(scratch, "big.xml");
    writeFileSync(file, "x".repeat(2048));
    await expect(readFeedFile(file, 1024)).rejects.toMatchObject({ code: "too_large" });
    expect((await readFeedFile(file, 4096)).length).toBe(2048);
  });
});
