/**
 * A local HTTP server with the routes of case C13 (../shared/cases/inputs/C13-routes.json), plus a
 * few more and any feeds a test gives (path → XML), on 127.0.0.1. It counts requests per path and
 * tracks its open connections.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import zlib from "node:zlib";

/** A 2-item RSS feed behind a UTF-8 BOM, like C10-bom-utf8.xml (invented text). */
export const SMALL_FEED = `\uFEFF<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Redirect target</title>
    <link>https://news.example.org/</link>
    <description>Served by the test server</description>
    <item>
      <title>Ferry timetable changes</title>
      <link>https://news.example.org/2024/05/item-1</link>
      <pubDate>Thu, 02 May 2024 08:00:00 +0000</pubDate>
      <description>Summer schedule starts Monday.</description>
    </item>
    <item>
      <title>Library extends opening hours</title>
      <link>https://news.example.org/2024/05/item-2</link>
      <pubDate>Thu, 02 May 2024 09:30:00 +0000</pubDate>
      <description>Open until 21:00 on weekdays.</description>
    </item>
  </channel>
</rss>
`;

const MiB = 1024 * 1024;
export const HUGE_BYTES = 50 * MiB;
/** The C13 drip is one byte every 2 s; faster here so that many bytes arrive before a short deadline. */
export const DRIP_INTERVAL_MS = 100;

export interface FeedServer {
  url(path: string): string;
  /** Requests received per path. */
  hits: Map<string, number>;
  /** Bytes /huge wrote before the client went away. */
  hugeBytesWritten(): number;
  openConnections(): number;
  close(): Promise<void>;
}

export async function startFeedServer(feeds: Record<string, string> = {}): Promise<FeedServer> {
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();
  let hugeWritten = 0;
  const item = Buffer.from(
    "<item><title>Filler item</title><link>https://news.example.org/filler</link><description>" +
      "x".repeat(900) +
      "</description></item>\n",
  );
  const bomb = zlib.gzipSync(Buffer.alloc(HUGE_BYTES, 0x20));

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    switch (path) {
      case "/hang":
        res.writeHead(200, { "Content-Type": "text/xml" });
        res.write('<?xml version="1.0" encoding="UTF-8"?>');
        return;
      case "/drip": {
        res.writeHead(200, { "Content-Type": "text/xml" });
        const timer = setInterval(() => res.write(" "), DRIP_INTERVAL_MS);
        res.on("close", () => clearInterval(timer));
        return;
      }
      case "/huge": {
        res.writeHead(200, { "Content-Type": "application/rss+xml" });
        res.write('<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>');
        let closed = false;
        res.on("close", () => (closed = true));
        const pump = () => {
          while (!closed && hugeWritten < HUGE_BYTES) {
            hugeWritten += item.length;
            if (!res.write(item)) return void res.once("drain", pump);
          }
          if (!closed) res.end("</channel></rss>");
        };
        return pump();
      }
      case "/bomb":
        res.writeHead(200, { "Content-Type": "text/xml", "Content-Encoding": "gzip" });
        return void res.end(bomb);
      case "/gzip":
        res.writeHead(200, { "Content-Type": "text/xml; charset=utf-8", "Content-Encoding": "gzip" });
        return void res.end(zlib.gzipSync(SMALL_FEED));
      case "/r1":
        res.writeHead(301, { Location: "../sub/r2" });
        return void res.end();
      case "/sub/r2":
        res.writeHead(302, { Location: "/feed.xml" });
        return void res.end();
      case "/feed.xml":
        res.writeHead(200, { "Content-Type": "text/xml" });
        return void res.end(SMALL_FEED);
      case "/loop":
        res.writeHead(302, { Location: "/loop" });
        return void res.end();
      case "/gone":
        res.writeHead(410, { "Content-Type": "text/plain" });
        return void res.end("Gone");
      case "/flaky":
        if (hits.get(path) === 1) {
          res.writeHead(503, { "Content-Type": "text/plain" });
          return void res.end("try again");
        }
        res.writeHead(200, { "Content-Type": "text/xml" });
        return void res.end(SMALL_FEED);
      default:
        if (Object.hasOwn(feeds, path)) {
          res.writeHead(200, { "Content-Type": "application/rss+xml; charset=utf-8" });
          return void res.end(feeds[path]);
        }
        res.writeHead(404);
        return void res.end();
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits,
    hugeBytesWritten: () => hugeWritten,
    openConnections: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 nothing listens on (connections to it are refused). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls until `check` holds or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => boolean, timeoutMs = 1000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
