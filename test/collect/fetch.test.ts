/** Case C13: our feed client's deadline, size cap, redirect cap and error codes, on a local server. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeFeed } from "../../src/pipeline/collect/decode";
import { FeedError } from "../../src/pipeline/collect/errors";
import { fetchFeed, type FetchLimits } from "../../src/pipeline/collect/fetch";
import { parseFeed } from "../../src/pipeline/collect/parse";
import { closedPort, eventually, startFeedServer, type FeedServer } from "./feed-server";

const DEADLINE_MS = 1500;
const MiB = 1024 * 1024;
const limits: FetchLimits = { timeoutMs: DEADLINE_MS, maxBytes: 5 * MiB, maxRedirects: 5 };

let server: FeedServer;
beforeAll(async () => {
  server = await startFeedServer();
});
afterAll(async () => {
  await server.close();
});

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "TCPSocketWrap").length;
}

async function fetchError(url: string, options: FetchLimits = limits): Promise<{ error: FeedError; elapsedMs: number }> {
  const started = Date.now();
  try {
    await fetchFeed(url, options);
  } catch (error) {
    return { error: error as FeedError, elapsedMs: Date.now() - started };
  }
  throw new Error(`expected ${url} to fail`);
}

/** Both ends closed: no socket left in this process, none left on the server. */
async function expectNoOpenSockets(baseline: number) {
  expect(await eventually(() => server.openConnections() === 0 && tcpSockets() <= baseline)).toBe(true);
  expect(server.openConnections()).toBe(0);
  expect(tcpSockets()).toBeLessThanOrEqual(baseline);
}

describe("fetchFeed (case C13)", () => {
  it("/hang: times out at the total deadline and leaves no socket open", async () => {
    const baseline = tcpSockets();
    const { error, elapsedMs } = await fetchError(server.url("/hang"));
    expect(error).toBeInstanceOf(FeedError);
    expect(error.code).toBe("timeout");
    expect(error.message).toContain(`${DEADLINE_MS} ms`);
    expect(elapsedMs).toBeGreaterThanOrEqual(DEADLINE_MS - 20);
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + 500);
    await expectNoOpenSockets(baseline);
  });

  it("/drip: a byte every 100 ms does not extend the deadline", async () => {
    const baseline = tcpSockets();
    const { error, elapsedMs } = await fetchError(server.url("/drip"));
    expect(error.code).toBe("timeout");
    expect(elapsedMs).toBeGreaterThanOrEqual(DEADLINE_MS - 20);
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + 500);
    await expectNoOpenSockets(baseline);
  });

  it("/huge: stops reading at the 5 MiB cap with too_large, in bounded memory", async () => {
    const baseline = tcpSockets();
    const rssBefore = process.memoryUsage().rss;
    const { error, elapsedMs } = await fetchError(server.url("/huge"));
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(error.code).toBe("too_large");
    expect(error.message).toContain(`${5 * MiB}-byte cap`);
    expect(elapsedMs).toBeLessThan(DEADLINE_MS);
    expect(rssGrowth).toBeLessThan(64 * MiB);
    await expectNoOpenSockets(baseline);
    // The server was cut off far short of the 50 MiB it would have sent.
    expect(server.hugeBytesWritten()).toBeLessThan(20 * MiB);
  });

  it("caps the decompressed size too: a 50 MiB gzip bomb is too_large", async () => {
    const { error } = await fetchError(server.url("/bomb"));
    expect(error.code).toBe("too_large");
  });

  it("decompresses a gzip body", async () => {
    const fetched = await fetchFeed(server.url("/gzip"), limits);
    const { text } = decodeFeed(fetched.bytes, fetched.contentType);
    expect((await parseFeed(text, fetched.finalUrl)).items.map((item) => item.title)).toEqual([
      "Ferry timetable changes",
      "Library extends opening hours",
    ]);
  });

  it("/r1: follows a relative 301 and a 302, records the final URL, parses 2 items", async () => {
    const baseline = tcpSockets();
    const configured = server.url("/r1");
    const fetched = await fetchFeed(configured, limits);
    expect(fetched.finalUrl).toBe(server.url("/feed.xml"));
    expect(fetched.redirects).toBe(2);
    expect(fetched.status).toBe(200);
    expect(fetched.contentType).toBe("text/xml");
    expect(server.hits.get("/sub/r2")).toBe(1);
    const { text } = decodeFeed(fetched.bytes, fetched.contentType);
    const feed = await parseFeed(text, fetched.finalUrl);
    expect(feed.items.map((item) => item.title)).toEqual(["Ferry timetable changes", "Library extends opening hours"]);
    expect(configured).toBe(server.url("/r1"));
    await expectNoOpenSockets(baseline);
  });

  it("/loop: too_many_redirects after 5 followed redirects, well within 1 s", async () => {
    const { error, elapsedMs } = await fetchError(server.url("/loop"));
    expect(error.code).toBe("too_many_redirects");
    expect(error.message).toContain("more than 5 redirects");
    expect(elapsedMs).toBeLessThan(1000);
    expect(server.hits.get("/loop")).toBe(6);
  });

  it("/gone: http_410 with exactly one request (a permanent status is not retried)", async () => {
    const { error } = await fetchError(server.url("/gone"));
    expect(error.code).toBe("http_410");
    expect(error.message).toContain("HTTP 410");
    expect(server.hits.get("/gone")).toBe(1);
  });

  it("retries a transient 503 once", async () => {
    const fetched = await fetchFeed(server.url("/flaky"), limits);
    expect(fetched.requests).toBe(2);
    expect(server.hits.get("/flaky")).toBe(2);
    expect(fetched.bytes.length).toBeGreaterThan(0);
  });

  it("a refused connection is `network`, and the message says the machine may be offline", async () => {
    const port = await closedPort();
    const { error } = await fetchError(`http://127.0.0.1:${port}/feed.xml`, { ...limits, retries: 0 });
    expect(error.code).toBe("network");
    expect(error.message).toContain("ECONNREFUSED");
    expect(error.message).toContain("the machine may be offline");
  });

  it("rejects a non-http URL as bad_url without any request", async () => {
    const { error } = await fetchError("ftp://news.example.org/feed.xml");
    expect(error.code).toBe("bad_url");
  });

  it("clears its deadline timer after a successful fetch", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const before = timers();
    await fetchFeed(server.url("/feed.xml"), { ...limits, timeoutMs: 60_000 });
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
