/**
 * A local OpenAI-compatible server for tests (node:http on 127.0.0.1, a random port):
 * POST /v1/chat/completions and POST /v1/embeddings.
 *
 * A test scripts each response in turn (status, headers such as retry-after, a JSON body, an SSE
 * body served verbatim — cut streams included —, a delay, a socket destroyed mid-body), or lets
 * the default responder answer: a completion (JSON, or SSE with a usage chunk when the request
 * asks for stream_options.include_usage) with fixed or seeded-random usage including cached and
 * reasoning details; embeddings as float arrays, or base64 float32 when encoding_format is
 * "base64". Every request is recorded (path, body, status, time) with the usage it billed, so
 * a test can compare the ledger's sums with what the server charged.
 */
import { afterAll, beforeAll, beforeEach } from "vitest";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";

export type Endpoint = "chat" | "embeddings";

export interface ScriptedReply {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** A JSON body. */
  json?: unknown;
  /** A text/event-stream body, written verbatim. */
  sse?: string;
  /** Any other body, written verbatim (set content-type in headers). */
  raw?: string;
  /** Wait before answering (ms). */
  delayMs?: number;
  /** For sse: write event by event with this pause between them (ms). */
  chunkDelayMs?: number;
  /** Destroy the socket after writing the body instead of ending the response (a cut connection). */
  destroy?: boolean;
}

export interface Billed {
  input: number;
  cached: number;
  output: number;
  reasoning: number;
  total: number;
}

export interface RecordedRequest {
  index: number;
  endpoint: Endpoint | "other";
  path: string;
  body: any;
  /** The raw request body text. */
  text: string;
  status: number;
  /** performance.now() when the request arrived. */
  at: number;
  /** What this response billed (0s for errors and responses without usage). */
  billed: Billed;
  scripted: boolean;
}

export interface DefaultUsage {
  prompt: number;
  completion: number;
  cached?: number;
  reasoning?: number;
}

export interface FakeOpenAIOptions {
  /** "fixed" (default) uses `fixed`; "random" draws usage from a seeded generator. */
  usage?: "fixed" | "random";
  fixed?: DefaultUsage;
  seed?: number;
  /** The model the default responder names in its reply (default: the requested one). */
  responseModel?: (requested: string) => string;
  /** The assistant text of default completions. */
  content?: (body: any) => string;
  embeddingDimensions?: number;
}

const ZERO: Billed = { input: 0, cached: 0, output: 0, reasoning: 0, total: 0 };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Usage as OpenAI reports it, from a usage block (chat or embeddings) of any shape. */
export function billedFrom(usage: any): Billed {
  if (!usage || typeof usage !== "object") return { ...ZERO };
  const input = Number(usage.prompt_tokens ?? 0);
  const output = Number(usage.completion_tokens ?? 0);
  return {
    input,
    output,
    cached: Number(usage.prompt_tokens_details?.cached_tokens ?? 0),
    reasoning: Number(usage.completion_tokens_details?.reasoning_tokens ?? 0),
    total: Number(usage.total_tokens ?? input + output),
  };
}

/** The usage chunk of an SSE body, if any (the last non-null "usage"). */
function billedFromSse(sse: string): Billed {
  let found: Billed = { ...ZERO };
  for (const line of sse.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(5).trim();
    if (payload === "[DONE]") continue;
    try {
      const json = JSON.parse(payload);
      if (json && json.usage) found = billedFrom(json.usage);
    } catch {
      /* not JSON */
    }
  }
  return found;
}

export class FakeOpenAI {
  readonly requests: RecordedRequest[] = [];
  private readonly queues: Record<Endpoint, ScriptedReply[]> = { chat: [], embeddings: [] };
  private readonly responders: Partial<Record<Endpoint, (body: any, request: RecordedRequest) => ScriptedReply | undefined>> = {};
  private readonly random: () => number;
  private readonly options: FakeOpenAIOptions;
  private completionCounter = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    options: FakeOpenAIOptions,
  ) {
    this.options = options;
    this.random = mulberry32(options.seed ?? 42);
  }

  static async start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
    let instance: FakeOpenAI | undefined;
    const server = createServer((req, res) => {
      instance!.handle(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: String(err) } }));
      });
    });
    // Idle sockets outlive a slow test step: with Node's 5 s default the server may close one just
    // as the client reuses it (ECONNRESET on a loaded machine). close() ends them all anyway.
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    instance = new FakeOpenAI(server, (server.address() as AddressInfo).port, options);
    return instance;
  }

  /** The base URL for `configuration.baseURL`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** Queues replies for an endpoint; each request takes the next one, then the default responder. */
  script(endpoint: Endpoint, ...replies: ScriptedReply[]): this {
    this.queues[endpoint].push(...replies);
    return this;
  }

  /**
   * Answers by looking at the request (for concurrent calls, whose order is not fixed). Used after
   * the queue is empty; returning undefined falls back to the default responder.
   */
  respondWith(endpoint: Endpoint, responder: ((body: any, request: RecordedRequest) => ScriptedReply | undefined) | undefined): this {
    this.responders[endpoint] = responder;
    return this;
  }

  /** Replies still queued. */
  queued(endpoint: Endpoint): number {
    return this.queues[endpoint].length;
  }

  hits(endpoint?: Endpoint): number {
    return endpoint ? this.requests.filter((r) => r.endpoint === endpoint).length : this.requests.length;
  }

  /** The sum of what the server billed. */
  billed(endpoint?: Endpoint): Billed {
    const sum = { ...ZERO };
    for (const r of this.requests) {
      if (endpoint && r.endpoint !== endpoint) continue;
      sum.input += r.billed.input;
      sum.cached += r.billed.cached;
      sum.output += r.billed.output;
      sum.reasoning += r.billed.reasoning;
      sum.total += r.billed.total;
    }
    return sum;
  }

  reset(): void {
    this.requests.length = 0;
    this.queues.chat.length = 0;
    this.queues.embeddings.length = 0;
    this.responders.chat = undefined;
    this.responders.embeddings = undefined;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: any = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const path = (req.url ?? "").split("?")[0]!;
    const endpoint: Endpoint | "other" =
      req.method === "POST" && path.endsWith("/chat/completions") ? "chat" : req.method === "POST" && path.endsWith("/embeddings") ? "embeddings" : "other";
    const record: RecordedRequest = { index: this.requests.length, endpoint, path, body, text, status: 0, at, billed: { ...ZERO }, scripted: false };
    this.requests.push(record);

    if (endpoint === "other") {
      record.status = 404;
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}`, type: "invalid_request_error" } }));
      return;
    }
    const scripted = this.queues[endpoint].shift() ?? this.responders[endpoint]?.(body, record);
    const reply = scripted ?? (endpoint === "chat" ? this.defaultChat(body) : this.defaultEmbeddings(body));
    record.scripted = scripted !== undefined;
    await this.send(res, reply, record);
  }

  private async send(res: ServerResponse, reply: ScriptedReply, record: RecordedRequest): Promise<void> {
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const status = reply.status ?? 200;
    record.status = status;
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    if (reply.sse !== undefined) {
      headers["content-type"] ??= "text/event-stream";
      headers["cache-control"] ??= "no-cache";
      if (status < 400) record.billed = billedFromSse(reply.sse);
      res.writeHead(status, headers);
      if (reply.chunkDelayMs) {
        const events = reply.sse.split(/(?<=\n\n)/);
        for (const event of events) {
          res.write(event);
          await new Promise((r) => setTimeout(r, reply.chunkDelayMs));
        }
      } else {
        res.write(reply.sse);
      }
      if (reply.destroy) {
        // Let the bytes leave, then cut the connection without finishing the chunked body.
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      }
      res.end();
      return;
    }
    const payload = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.raw ?? "");
    if (reply.json !== undefined) {
      headers["content-type"] ??= "application/json";
      if (status < 400) record.billed = billedFrom((reply.json as any)?.usage);
    }
    res.writeHead(status, headers);
    if (reply.destroy) {
      res.write(payload.slice(0, Math.floor(payload.length / 2)));
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return;
    }
    res.end(payload);
  }

  private nextUsage(): { prompt_tokens: number; completion_tokens: number; total_tokens: number; prompt_tokens_details: any; completion_tokens_details: any } {
    let u: Required<DefaultUsage>;
    if (this.options.usage === "random") {
      const prompt = 20 + Math.floor(this.random() * 1980);
      const completion = 5 + Math.floor(this.random() * 495);
      u = { prompt, completion, cached: Math.floor(this.random() * prompt), reasoning: Math.floor(this.random() * completion) };
    } else {
      const f = this.options.fixed ?? { prompt: 100, completion: 10 };
      u = { prompt: f.prompt, completion: f.completion, cached: f.cached ?? 0, reasoning: f.reasoning ?? 0 };
    }
    return {
      prompt_tokens: u.prompt,
      completion_tokens: u.completion,
      total_tokens: u.prompt + u.completion,
      prompt_tokens_details: { cached_tokens: u.cached, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: u.reasoning, audio_tokens: 0 },
    };
  }

  private defaultChat(body: any): ScriptedReply {
    const requested = String(body?.model ?? "gpt-4o-mini");
    const model = this.options.responseModel ? this.options.responseModel(requested) : requested;
    const content = this.options.content ? this.options.content(body) : "Summary: the harbour reopened.";
    const id = `chatcmpl-fake-${++this.completionCounter}`;
    const created = 1730000000;
    const usage = this.nextUsage();
    if (body?.stream) {
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, usage: null, ...extra })}\n\n`;
      let sse = chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
      for (const piece of content.match(/\S+\s*/g) ?? [content]) {
        sse += chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
      }
      sse += chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
      if (body?.stream_options?.include_usage) sse += chunk([], { usage });
      sse += "data: [DONE]\n\n";
      return { sse };
    }
    return {
      json: {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage,
        system_fingerprint: "fp_fake",
      },
    };
  }

  private defaultEmbeddings(body: any): ScriptedReply {
    const inputs: unknown[] = Array.isArray(body?.input) && !body.input.every((x: unknown) => typeof x === "number") ? body.input : [body?.input];
    const dims = this.options.embeddingDimensions ?? 8;
    let tokens = 0;
    const data = inputs.map((input, index) => {
      const text = typeof input === "string" ? input : JSON.stringify(input);
      tokens += Array.isArray(input) ? input.length : Math.max(1, Math.ceil(text.length / 4));
      const vector = Array.from({ length: dims }, (_, i) => Math.sin(text.length + i * 0.7 + index));
      const embedding =
        body?.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector.map((v) => Math.round(v * 1e6) / 1e6);
      return { object: "embedding", index, embedding };
    });
    return {
      json: {
        object: "list",
        data,
        model: String(body?.model ?? "text-embedding-3-small"),
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      },
    };
  }
}

export function startOpenAIServer(options?: FakeOpenAIOptions): Promise<FakeOpenAI> {
  return FakeOpenAI.start(options);
}

/** A scripted non-streaming completion with the given usage. */
export function chatCompletion(options: { model?: string; content?: string; usage: DefaultUsage; finishReason?: string }): ScriptedReply {
  const { usage } = options;
  return {
    json: {
      id: `chatcmpl-scripted-${Math.random().toString(36).slice(2, 10)}`,
      object: "chat.completion",
      created: 1730000000,
      model: options.model ?? "gpt-4o-mini-2024-07-18",
      choices: [
        { index: 0, message: { role: "assistant", content: options.content ?? "ok", refusal: null }, logprobs: null, finish_reason: options.finishReason ?? "stop" },
      ],
      usage: {
        prompt_tokens: usage.prompt,
        completion_tokens: usage.completion,
        total_tokens: usage.prompt + usage.completion,
        prompt_tokens_details: { cached_tokens: usage.cached ?? 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0, audio_tokens: 0 },
      },
    },
  };
}

/**
 * One server for a whole test file: started before its tests, reset before each, closed after.
 * The returned object stands for the running server.
 */
export function useOpenAIServer(options?: FakeOpenAIOptions): FakeOpenAI {
  let current: FakeOpenAI | undefined;
  beforeAll(async () => {
    current = await startOpenAIServer(options);
  });
  afterAll(async () => {
    await current?.close();
  });
  beforeEach(() => current?.reset());
  return new Proxy({} as FakeOpenAI, {
    get(_target, key) {
      if (!current) throw new Error("the test OpenAI server is used before beforeAll started it");
      const value = (current as unknown as Record<PropertyKey, unknown>)[key];
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}
