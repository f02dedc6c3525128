/**
 * The benchmark's model server: OpenAI-compatible (POST /v1/chat/completions, POST /v1/embeddings)
 * on node:http, answering every request after a set latency. Replies are the offline provider's
 * (it reads the same `Task: <stage>` line), vectors are its hashed embeddings, and usage is
 * counted with the project's tokenizer, so the figures are those a real endpoint would bill for
 * these prompts. GET /bench/stats returns what it billed per stage; POST /bench/reset clears it.
 * Run it in its own process (server-process.ts) so its work never slows the pipeline measured.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HumanMessage, SystemMessage, type BaseMessage } from "@langchain/core/messages";
import { countTextTokens, estimateMessagesTokens } from "../ledger/tokens";
import { readTask } from "../llm/markup";
import { answerPrompt, hashVector } from "../llm/offline";

export interface StageStats {
  calls: number;
  input: number;
  output: number;
  total: number;
}

export type ServerStats = Record<string, StageStats>;

export interface BenchServer {
  url: string;
  close(): Promise<void>;
}

const EMBEDDING_DIMENSIONS = 256;

function toMessages(raw: unknown): BaseMessage[] {
  const list = Array.isArray(raw) ? (raw as { role?: string; content?: unknown }[]) : [];
  return list.map((m) => {
    const content = typeof m.content === "string" ? m.content : JSON.stringify(m.content ?? "");
    return m.role === "system" ? new SystemMessage(content) : new HumanMessage(content);
  });
}

function add(stats: ServerStats, stage: string, input: number, output: number): void {
  const s = (stats[stage] ??= { calls: 0, input: 0, output: 0, total: 0 });
  s.calls += 1;
  s.input += input;
  s.output += output;
  s.total += input + output;
}

function chatReply(body: any, stats: ServerStats): unknown {
  const model = String(body?.model ?? "gpt-4o-mini");
  const messages = toMessages(body?.messages);
  const system = messages.find((m) => m.type === "system");
  const stage = (system && readTask(system.text)) ?? "chat";
  const content = answerPrompt(messages);
  // OpenAI's own accounting: per-message overhead plus the text, with the model's encoding.
  const prompt = estimateMessagesTokens(body?.messages ?? [], model);
  const completion = countTextTokens(content, model);
  add(stats, stage, prompt, completion);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
  };
  const id = `chatcmpl-bench-${Math.random().toString(36).slice(2, 12)}`;
  if (body?.stream) {
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: 1730000000, model, choices, usage: null, ...extra })}\n\n`;
    let sse = chunk([{ index: 0, delta: { role: "assistant", content }, finish_reason: null }]);
    sse += chunk([{ index: 0, delta: {}, finish_reason: "stop" }]);
    if (body?.stream_options?.include_usage) sse += chunk([], { usage });
    return { sse: `${sse}data: [DONE]\n\n` };
  }
  return {
    json: {
      id,
      object: "chat.completion",
      created: 1730000000,
      model,
      choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage,
    },
  };
}

function embeddingsReply(body: any, stats: ServerStats): unknown {
  const model = String(body?.model ?? "text-embedding-3-small");
  const inputs: string[] = (Array.isArray(body?.input) ? body.input : [body?.input]).map((x: unknown) => (typeof x === "string" ? x : JSON.stringify(x)));
  let tokens = 0;
  const data = inputs.map((text, index) => {
    tokens += countTextTokens(text, model);
    const vector = hashVector(text, EMBEDDING_DIMENSIONS);
    const embedding = body?.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
    return { object: "embedding", index, embedding };
  });
  add(stats, "embedding", tokens, 0);
  return { json: { object: "list", data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } } };
}

export async function startBenchServer(options: { latencyMs: number; port?: number }): Promise<BenchServer> {
  let stats: ServerStats = {};
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const arrived = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? "").split("?")[0]!;
    if (path === "/bench/stats") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats));
      return;
    }
    if (path === "/bench/reset") {
      stats = {};
      res.writeHead(204).end();
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    let reply: any;
    if (req.method === "POST" && path.endsWith("/chat/completions")) reply = chatReply(body, stats);
    else if (req.method === "POST" && path.endsWith("/embeddings")) reply = embeddingsReply(body, stats);
    else {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${path}` } }));
      return;
    }
    // The latency is the whole time to answer: the work above counts toward it.
    const wait = options.latencyMs - (Date.now() - arrived);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (reply.sse !== undefined) res.writeHead(200, { "content-type": "text/event-stream" }).end(reply.sse);
    else res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reply.json));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: String(err), type: "server_error" } }));
    });
  });
  // Many requests at once from the naive pipeline: no keep-alive limit surprises.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The server's counters, read over HTTP (it runs in another process). */
export async function readStats(baseUrl: string): Promise<ServerStats> {
  const res = await fetch(`${baseUrl.replace(/\/v1$/, "")}/bench/stats`);
  return (await res.json()) as ServerStats;
}

export async function resetStats(baseUrl: string): Promise<void> {
  await fetch(`${baseUrl.replace(/\/v1$/, "")}/bench/reset`, { method: "POST" });
}

export function totalOf(stats: ServerStats): StageStats {
  const sum: StageStats = { calls: 0, input: 0, output: 0, total: 0 };
  for (const s of Object.values(stats)) {
    sum.calls += s.calls;
    sum.input += s.input;
    sum.output += s.output;
    sum.total += s.total;
  }
  return sum;
}
