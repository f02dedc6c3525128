import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config";
import { createModels } from "../../src/llm/factory";
import { OfflineChatModel, OfflineHashEmbeddings } from "../../src/llm/offline";
import { complete } from "../../src/llm/reply";

// Count the HTTP calls that go through the ledger's fetch wrapper.
const wrapped = vi.hoisted(() => ({ requests: 0 }));
vi.mock("../../src/ledger/fetch", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/ledger/fetch")>();
  return {
    ledgerFetch: (base?: typeof fetch) => {
      const inner = original.ledgerFetch(base);
      return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        wrapped.requests += 1;
        return inner(input, init);
      }) as typeof fetch;
    },
  };
});

interface Received {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

const received: Received[] = [];
const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw = "";
  for await (const chunk of req) raw += chunk;
  return JSON.parse(raw) as Record<string, unknown>;
}

/** A small OpenAI-compatible server: chat completions (plain or SSE) and embeddings. */
const server: Server = createServer(async (req, res) => {
  const body = await readBody(req);
  received.push({ path: req.url ?? "", authorization: req.headers.authorization, body });
  if (req.url === "/v1/embeddings") {
    const inputs = body.input as unknown[];
    // The client asks for base64 (packed float32) by default.
    const vector = [0.6, 0.8];
    const embedding = body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ object: "list", model: body.model, data: inputs.map((_, index) => ({ object: "embedding", index, embedding })), usage: { prompt_tokens: 5, total_tokens: 5 } }));
    return;
  }
  const base = { id: "c1", created: 1, model: body.model };
  if (body.stream) {
    res.setHeader("content-type", "text/event-stream");
    for (const content of ['{"summary": ', '"Ferries stopped."}']) {
      res.write(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`);
    }
    res.write(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage })}\n\n`);
    res.end("data: [DONE]\n\n");
    return;
  }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ ...base, object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: '{"summary": "Ferries stopped."}' }, finish_reason: "stop" }], usage }));
});

let baseURL = "";
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const messages = [new SystemMessage("Task: summarize\nSummarise."), new HumanMessage("<article></article>")];

describe("createModels", () => {
  it("builds the offline provider's models, one name per stage", () => {
    const models = createModels(loadConfig({ NEWSLEDGER_PROVIDER: "offline" }));
    expect(models.provider).toBe("offline");
    expect(models.chat("summarize")).toBeInstanceOf(OfflineChatModel);
    expect(models.embeddings).toBeInstanceOf(OfflineHashEmbeddings);
    expect([models.chatModelName("summarize"), models.chatModelName("generate_social"), models.chatModelName("validate"), models.embeddingModelName]).toEqual([
      "offline-extractive-1",
      "offline-template-1",
      "offline-rules-1",
      "offline-hash-embed-1",
    ]);
  });

  it("builds ChatOpenAI per stage from the config, with the limits set and no `streaming` flag", () => {
    const config = loadConfig({ OPENAI_BASE_URL: baseURL, NEWSLEDGER_SUMMARIZE_MODEL: "local-summarizer", NEWSLEDGER_HTTP_RETRIES: "0" });
    const models = createModels(config);
    const chat = models.chat("summarize") as ChatOpenAI;
    expect(models.provider).toBe("openai-compatible");
    expect(chat).toBeInstanceOf(ChatOpenAI);
    expect([chat.model, (models.chat("validate") as ChatOpenAI).model]).toEqual(["local-summarizer", "gpt-4o-mini"]);
    expect({ maxTokens: chat.maxTokens, timeout: chat.timeout, streamUsage: chat.streamUsage, streaming: chat.streaming }).toEqual({
      maxTokens: 400,
      timeout: 60_000,
      streamUsage: true,
      streaming: false,
    });
    expect(models.embeddings).toBeInstanceOf(OpenAIEmbeddings);
    expect(models.embeddingModelName).toBe("text-embedding-3-small");
  });

  it("talks to an OpenAI-compatible server through the ledger's fetch, with a placeholder key when only a base URL is set", async () => {
    received.length = 0;
    wrapped.requests = 0;
    const models = createModels(loadConfig({ OPENAI_BASE_URL: baseURL, NEWSLEDGER_SUMMARIZE_MODEL: "local-summarizer", NEWSLEDGER_HTTP_RETRIES: "0" }));

    const reply = await models.chat("summarize").invoke(messages);
    expect(reply.text).toBe('{"summary": "Ferries stopped."}');
    expect(reply.usage_metadata?.total_tokens).toBe(18);
    const vectors = await models.embeddings.embedDocuments(["a", "b"]);
    expect(vectors.map((v) => v.map((x) => Math.round(x * 1e6) / 1e6))).toEqual([
      [0.6, 0.8],
      [0.6, 0.8],
    ]);

    expect(received.map((r) => r.path)).toEqual(["/v1/chat/completions", "/v1/embeddings"]);
    expect(received.map((r) => r.authorization)).toEqual(["Bearer not-needed", "Bearer not-needed"]);
    expect(received[0]!.body).toMatchObject({ model: "local-summarizer", max_tokens: 400 });
    expect(received[0]!.body.stream).toBeFalsy();
    expect(received[1]!.body).toMatchObject({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(wrapped.requests).toBe(2);
  });

  it("streams with the usage option when asked to stream, and joins the chunks", async () => {
    received.length = 0;
    const config = loadConfig({ OPENAI_BASE_URL: baseURL, OPENAI_API_KEY: "sk-test", NEWSLEDGER_STREAM: "true", NEWSLEDGER_HTTP_RETRIES: "0" });
    const text = await complete(createModels(config).chat("generate_social"), messages, { stream: config.stream });
    expect(text).toBe('{"summary": "Ferries stopped."}');
    expect(received).toHaveLength(1);
    expect(received[0]!.authorization).toBe("Bearer sk-test");
    expect(received[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });
});
