/**
 * Local token estimates for budget reservations and for calls whose provider reported no usage.
 * js-tiktoken's full build (bundled ranks): never a model's getNumTokens, which fetches ranks
 * from a CDN and hangs offline. Encoders are built once per encoding (about 0.5 s each).
 */
import { getEncoding, type Tiktoken, type TiktokenEncoding } from "js-tiktoken";

const encoders = new Map<TiktokenEncoding, Tiktoken>();

/** o200k_base for the gpt-4o / 4.1 / 5 / o-series families and unknown models; cl100k_base for older ones and embeddings. */
export function encodingFor(model: string | null | undefined): TiktokenEncoding {
  const m = (model ?? "").toLowerCase();
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o\d)/.test(m)) return "o200k_base";
  if (/^(gpt-4|gpt-3\.5|text-embedding|text-davinci|davinci|babbage)/.test(m)) return "cl100k_base";
  return "o200k_base";
}

/** The shared encoder for a model's encoding (built on first use). */
export function tokenizerFor(model?: string | null): Tiktoken {
  return encoder(encodingFor(model));
}

function encoder(encoding: TiktokenEncoding): Tiktoken {
  let e = encoders.get(encoding);
  if (!e) {
    e = getEncoding(encoding);
    encoders.set(encoding, e);
  }
  return e;
}

/** Special-token text ("<|endoftext|>") is counted as plain text, never refused. */
export function countTextTokens(text: string, model?: string | null): number {
  if (text === "") return 0;
  return encoder(encodingFor(model)).encode(text, [], []).length;
}

/** Text of a message content: a string, or the text parts of a content array. Other parts count as 85 tokens each. */
export function contentText(content: unknown): { text: string; otherParts: number } {
  if (typeof content === "string") return { text: content, otherParts: 0 };
  if (!Array.isArray(content)) return { text: content == null ? "" : JSON.stringify(content), otherParts: 0 };
  let text = "";
  let otherParts = 0;
  for (const part of content) {
    if (typeof part === "string") text += part;
    else if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") text += (part as { text: string }).text;
    else otherParts += 1;
  }
  return { text, otherParts };
}

interface MessageLike {
  content?: unknown;
  name?: string;
  tool_calls?: unknown[];
  additional_kwargs?: Record<string, unknown>;
  _getType?: () => string;
  type?: string;
  role?: string;
}

/**
 * Input tokens of a chat request, OpenAI-style: 3 per message + role + content (+ name, tool
 * calls), + 3 to prime the reply. `extra` is JSON counted as well (tool definitions).
 */
export function estimateMessagesTokens(messages: readonly unknown[], model?: string | null, extra?: unknown): number {
  let total = 3;
  for (const raw of messages) {
    const m = (raw ?? {}) as MessageLike;
    const { text, otherParts } = contentText(m.content);
    total += 4 + countTextTokens(text, model) + otherParts * 85;
    if (typeof m.name === "string" && m.name) total += 1 + countTextTokens(m.name, model);
    const toolCalls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0 ? m.tool_calls : m.additional_kwargs?.tool_calls;
    if (Array.isArray(toolCalls) && toolCalls.length > 0) total += countTextTokens(JSON.stringify(toolCalls), model);
  }
  if (extra !== undefined && extra !== null) total += countTextTokens(JSON.stringify(extra), model);
  return total;
}

/** Tokens of embedding inputs (strings; token arrays count their length). */
export function estimateEmbeddingTokens(input: unknown, model?: string | null): number {
  const items = Array.isArray(input) && !input.every((x) => typeof x === "number") ? input : [input];
  let total = 0;
  for (const item of items) {
    if (typeof item === "string") total += countTextTokens(item, model);
    else if (Array.isArray(item)) total += item.length;
    else if (typeof item === "number") total += 1;
  }
  return total;
}
