/** Feed sources as the user gives them: http(s) URLs, feed files, or folders of feed files. */
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FeedError } from "./errors";

export type FeedSource =
  | { kind: "url"; /** As given; also the name stored with its articles and errors. */ name: string }
  | { kind: "file"; /** The path as given (folder entries joined to the folder as given). */ name: string; path: string };

/** A listed source that cannot be used at all, reported per feed instead of failing the run. */
export interface SourceProblem {
  name: string;
  error: FeedError;
}

export const FEED_FILE_EXTENSIONS = [".xml", ".rss", ".atom", ".rdf"];

const URL_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

export async function listFeedSources(feeds: string[]): Promise<{ sources: FeedSource[]; problems: SourceProblem[] }> {
  const sources: FeedSource[] = [];
  const problems: SourceProblem[] = [];
  const seen = new Set<string>();
  const add = (source: FeedSource) => {
    const key = source.kind === "url" ? source.name : path.resolve(source.path);
    if (seen.has(key)) return;
    seen.add(key);
    sources.push(source);
  };

  for (const given of feeds.map((feed) => feed.trim()).filter(Boolean)) {
    if (URL_LIKE.test(given)) {
      const source = urlSource(given);
      if (source instanceof FeedError) problems.push({ name: given, error: source });
      else add(source);
      continue;
    }
    let info;
    try {
      info = await stat(given);
    } catch {
      problems.push({
        name: given,
        error: new FeedError("not_found", `"${given}" is neither an http(s) URL nor an existing file or folder (looked in ${path.resolve(given)})`),
      });
      continue;
    }
    if (!info.isDirectory()) {
      add({ kind: "file", name: given, path: given });
      continue;
    }
    const files = (await readdir(given, { withFileTypes: true }))
      .filter((entry) => entry.isFile() && FEED_FILE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()))
      .map((entry) => entry.name)
      .sort();
    if (files.length === 0) {
      problems.push({
        name: given,
        error: new FeedError("no_feed_files", `the folder "${given}" has no ${FEED_FILE_EXTENSIONS.map((e) => `*${e}`).join(", ")} files`),
      });
    }
    for (const file of files) add({ kind: "file", name: path.join(given, file), path: path.join(given, file) });
  }
  return { sources, problems };
}

function urlSource(given: string): FeedSource | FeedError {
  const scheme = given.slice(0, given.indexOf(":")).toLowerCase();
  if (scheme === "http" || scheme === "https") return { kind: "url", name: given };
  if (scheme !== "file") return new FeedError("unsupported_source", `"${given}": only http(s) URLs, files and folders are supported`);
  try {
    return { kind: "file", name: given, path: fileURLToPath(given) };
  } catch (cause) {
    return new FeedError("bad_url", `"${given}" is not a usable file URL: ${(cause as Error).message}`, { cause });
  }
}

/** A feed file's bytes, refusing files over the same cap as downloads. */
export async function readFeedFile(file: string, maxBytes: number): Promise<Buffer> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (cause) {
    throw new FeedError("not_found", `cannot read "${file}": ${(cause as Error).message}`, { cause });
  }
  if (size > maxBytes) throw new FeedError("too_large", `"${file}" is ${size} bytes, over the ${maxBytes}-byte cap`);
  try {
    return await readFile(file);
  } catch (cause) {
    throw new FeedError("read_error", `cannot read "${file}": ${(cause as Error).message}`, { cause });
  }
}
