/**
 * Our own feed HTTP client. rss-parser's parseURL only rejects its promise on timeout and leaves
 * the socket open, has no body size limit, and resets nothing on a slow drip (case C13). Here one
 * deadline covers the whole fetch (redirects and retries included), the body is capped while it
 * streams, and every exit path destroys the request, the response and any decompressor.
 */
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable, Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import zlib from "node:zlib";
import { FeedError, OFFLINE_HINT } from "./errors";

export interface FetchLimits {
  /** Total deadline for the whole fetch; never reset by incoming bytes. */
  timeoutMs: number;
  /** Body cap, counted after decompression. */
  maxBytes: number;
  maxRedirects: number;
  /** Extra attempts after a transient failure (429, 502-504, reset connection). Default 1. */
  retries?: number;
  userAgent?: string;
}

export interface FetchedFeed {
  bytes: Buffer;
  contentType: string | null;
  /** Where the body came from after redirects; the configured feed URL stays as it was. */
  finalUrl: string;
  status: number;
  redirects: number;
  /** HTTP requests made, retries and redirects included. */
  requests: number;
}

export const USER_AGENT = "newsledger/0.1 (news briefing feed collector)";
const ACCEPT =
  "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";
const RETRY_DELAY_MS = 500;
const TRANSIENT_STATUSES = new Set([429, 502, 503, 504]);
const TRANSIENT_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE", "ETIMEDOUT"]);

type Hop =
  | { kind: "redirect"; status: number; location: string }
  | { kind: "body"; status: number; bytes: Buffer; contentType: string | null };

export async function fetchFeed(url: string, limits: FetchLimits): Promise<FetchedFeed> {
  const start = parseFeedUrl(url);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), limits.timeoutMs);
  const counter = { requests: 0 };
  try {
    return { ...(await fetchWithRetries(start, limits, deadline.signal, counter)), requests: counter.requests };
  } catch (error) {
    if (deadline.signal.aborted) {
      throw new FeedError("timeout", `no complete response from ${url} within ${limits.timeoutMs} ms`, { cause: error });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function parseFeedUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FeedError("bad_url", `"${url}" is not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new FeedError("bad_url", `"${url}" is not an http(s) URL`);
  }
  return parsed;
}

async function fetchWithRetries(
  start: URL,
  limits: FetchLimits,
  signal: AbortSignal,
  counter: { requests: number },
): Promise<Omit<FetchedFeed, "requests">> {
  const retries = limits.retries ?? 1;
  for (let attempt = 0; ; attempt++) {
    try {
      return await followRedirects(start, limits, signal, counter);
    } catch (error) {
      if (attempt >= retries || !isTransient(error)) throw error;
      await sleep(RETRY_DELAY_MS, undefined, { signal });
    }
  }
}

function isTransient(error: unknown): boolean {
  if (!(error instanceof FeedError)) return false;
  if (error.code.startsWith("http_")) return TRANSIENT_STATUSES.has(Number(error.code.slice(5)));
  const socketCode = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  return error.code === "network" && socketCode !== undefined && TRANSIENT_SOCKET_CODES.has(socketCode);
}

async function followRedirects(
  start: URL,
  limits: FetchLimits,
  signal: AbortSignal,
  counter: { requests: number },
): Promise<Omit<FetchedFeed, "requests">> {
  let current = start;
  for (let redirects = 0; ; redirects++) {
    counter.requests++;
    const hop = await requestOnce(current, limits, signal);
    if (hop.kind === "body") {
      return { bytes: hop.bytes, contentType: hop.contentType, finalUrl: current.href, status: hop.status, redirects };
    }
    if (redirects >= limits.maxRedirects) {
      throw new FeedError(
        "too_many_redirects",
        `more than ${limits.maxRedirects} redirects from ${start.href} (the last one: ${current.href} → ${hop.location})`,
      );
    }
    current = resolveRedirect(current, hop.location);
  }
}

function resolveRedirect(from: URL, location: string): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new FeedError("bad_redirect", `${from.href} redirects to "${location}", which is not a valid URL`);
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new FeedError("bad_redirect", `${from.href} redirects to ${next.href}, which is not http(s)`);
  }
  return next;
}

function requestOnce(url: URL, limits: FetchLimits, signal: AbortSignal): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    if (signal.aborted) return reject(new FeedError("timeout", "deadline passed"));
    const transport = url.protocol === "https:" ? https : http;
    // agent: false gives each request its own connection, closed with it: no pooled socket
    // outlives the fetch and keeps a scheduled process alive.
    const request = transport.request(url, {
      method: "GET",
      agent: false,
      headers: {
        "User-Agent": limits.userAgent ?? USER_AGENT,
        Accept: ACCEPT,
        "Accept-Encoding": "gzip, deflate, br",
      },
    });
    let response: IncomingMessage | undefined;
    let decompressor: Transform | undefined;
    let settled = false;

    const release = () => {
      signal.removeEventListener("abort", onAbort);
      decompressor?.destroy();
      response?.destroy();
      request.destroy();
    };
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      release();
      reject(error);
    };
    const succeed = (hop: Hop) => {
      if (settled) return;
      settled = true;
      release();
      resolve(hop);
    };
    const onAbort = () => fail(new FeedError("timeout", "deadline passed"));
    signal.addEventListener("abort", onAbort, { once: true });

    request.on("error", (error) => fail(socketError(url, error)));
    request.on("response", (res) => {
      response = res;
      res.on("error", (error) => fail(socketError(url, error)));
      res.on("close", () => {
        if (!res.complete) fail(new FeedError("network", `${url.host} closed the connection before the feed was complete`));
      });
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && status !== 304 && location) {
        return succeed({ kind: "redirect", status, location });
      }
      if (status < 200 || status >= 300) return fail(httpError(url, status, res.statusMessage));

      const declaredLength = Number(res.headers["content-length"]);
      if (declaredLength > limits.maxBytes) return fail(tooLarge(url, limits.maxBytes, `it declares ${declaredLength} bytes`));

      const encoding = (res.headers["content-encoding"] ?? "identity").trim().toLowerCase();
      decompressor = createDecompressor(encoding);
      if (decompressor === undefined && encoding !== "identity") {
        return fail(new FeedError("bad_compression", `${url.href} uses an unsupported Content-Encoding "${encoding}"`));
      }
      const body: Readable = decompressor ? res.pipe(decompressor) : res;
      if (decompressor) {
        decompressor.on("error", (error) =>
          fail(new FeedError("bad_compression", `${url.href} sent a corrupt ${encoding} body: ${error.message}`, { cause: error })),
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      body.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBytes) return fail(tooLarge(url, limits.maxBytes, "the body grew past it"));
        chunks.push(chunk);
      });
      body.on("end", () =>
        succeed({ kind: "body", status, bytes: Buffer.concat(chunks, size), contentType: res.headers["content-type"] ?? null }),
      );
    });
    request.end();
  });
}

function createDecompressor(encoding: string): Transform | undefined {
  switch (encoding) {
    case "gzip":
    case "x-gzip":
      return zlib.createGunzip();
    case "deflate":
      return zlib.createInflate();
    case "br":
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

function tooLarge(url: URL, maxBytes: number, why: string): FeedError {
  return new FeedError("too_large", `${url.href} is larger than the ${maxBytes}-byte cap (${why})`);
}

function httpError(url: URL, status: number, statusMessage: string | undefined): FeedError {
  const gone = status === 404 || status === 410 ? "; the feed may have moved or been removed, check its address" : "";
  return new FeedError(`http_${status}`, `${url.href} answered HTTP ${status}${statusMessage ? ` ${statusMessage}` : ""}${gone}`);
}

function socketError(url: URL, error: Error): FeedError {
  if (error instanceof FeedError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? "";
  let message: string;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    message = `cannot resolve ${url.hostname} (${code}): ${OFFLINE_HINT}, or the host name is wrong`;
  } else if (code === "ECONNREFUSED") {
    message = `${url.host} refused the connection (${code}): the server is down or ${OFFLINE_HINT}`;
  } else if (code.startsWith("ERR_TLS") || code.includes("CERT")) {
    message = `TLS problem with ${url.host} (${code}): ${error.message}`;
  } else {
    message = `network error talking to ${url.host} (${code || error.message}): ${OFFLINE_HINT}`;
  }
  return new FeedError("network", message, { cause: error });
}
