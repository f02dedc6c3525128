/** Calling a chat model for a JSON reply, and checking that reply against the stage's schema. */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type AIMessageChunk, type BaseMessage } from "@langchain/core/messages";
import { AsyncLocalStorageProviderSingleton } from "@langchain/core/singletons";
import { z } from "zod";
import { expectsCacheHit, forgetCachedReply } from "../cache/response-cache";
import { EXPECTED_CACHE_HIT_METADATA, rejectReply } from "../ledger/replies";

/** The reply was not the JSON the stage asked for. Thrown so the node's retry policy retries. */
export class ModelReplyError extends Error {
  override name = "ModelReplyError";
}

/** The closing instruction of a system prompt: the reply's shape, as JSON Schema with each field's description. */
export function replyFormat(schema: z.ZodType): string {
  const { $schema: _dialect, ...shape } = z.toJSONSchema(schema) as Record<string, unknown>;
  return `Reply with one JSON object and nothing else, matching this JSON Schema:\n${JSON.stringify(shape)}`;
}

/** The JSON object in a reply; a Markdown code fence or words around it are tolerated. */
function extractJson(reply: string): unknown {
  const start = reply.indexOf("{");
  const end = reply.lastIndexOf("}");
  if (start < 0 || end < start) throw new SyntaxError("no JSON object found");
  return JSON.parse(reply.slice(start, end + 1));
}

/** Parses a reply with the stage's schema; `what` names the item in the error ("summary of article 12"). */
export function parseReply<T>(reply: string, schema: z.ZodType<T>, what: string): T {
  const excerpt = reply.length > 200 ? `${reply.slice(0, 200)}…` : reply;
  let json: unknown;
  try {
    json = extractJson(reply);
  } catch (cause) {
    throw new ModelReplyError(`${what}: the reply is not JSON (${(cause as Error).message}): ${excerpt}`, { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(reply)"}: ${issue.message}`);
    throw new ModelReplyError(`${what}: the reply does not match the expected JSON (${issues.join("; ")}): ${excerpt}`);
  }
  return parsed.data;
}

/**
 * An abort signal for one call, following the node's (from the runnable config in scope). The
 * openai SDK adds an abort listener to the signal of every request it sends and never removes it;
 * with the node's own signal, a node making more than 10 calls trips Node's
 * MaxListenersExceededWarning. A per-call signal carries those listeners away with the call.
 */
function callSignal(): { signal?: AbortSignal; release(): void } {
  const parent = AsyncLocalStorageProviderSingleton.getRunnableConfig()?.signal as AbortSignal | undefined;
  if (!parent) return { release() {} };
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, release() {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { signal: controller.signal, release: () => parent.removeEventListener("abort", onAbort) };
}

/**
 * One chat call, returning the reply message. Streaming goes through `.stream()` and joins the
 * chunks (the last one carries the usage); never `streaming: true` with invoke, which makes
 * the client count tokens through a remote download.
 */
export async function completeMessage(model: BaseChatModel, messages: BaseMessage[], options: { stream: boolean }): Promise<AIMessage | AIMessageChunk> {
  const { signal, release } = callSignal();
  try {
    if (!options.stream) {
      const hit = await expectsCacheHit(model, messages, { signal });
      return await model.invoke(messages, { signal, ...(hit ? { metadata: { [EXPECTED_CACHE_HIT_METADATA]: true } } : {}) });
    }
    let reply: AIMessageChunk | undefined;
    for await (const chunk of await model.stream(messages, { signal })) reply = reply ? reply.concat(chunk) : chunk;
    return reply ?? new AIMessage("");
  } finally {
    release();
  }
}

/** One chat call, returning the reply text (see completeMessage). */
export async function complete(model: BaseChatModel, messages: BaseMessage[], options: { stream: boolean }): Promise<string> {
  return (await completeMessage(model, messages, options)).text;
}

/**
 * One chat call whose reply is parsed with the stage's schema. A reply that does not parse is
 * reported to the ledger (rejectReply: that call's tokens were wasted) before the ModelReplyError
 * is thrown, so a node that keeps its other results loses only this one.
 */
export async function completeJson<T>(
  model: BaseChatModel,
  messages: BaseMessage[],
  schema: z.ZodType<T>,
  what: string,
  options: { stream: boolean },
): Promise<T> {
  const reply = await completeMessage(model, messages, options);
  try {
    return parseReply(reply.text, schema, what);
  } catch (err) {
    if (err instanceof ModelReplyError) {
      await rejectReply(reply, err);
      await forgetCachedReply(model, reply);
    }
    throw err;
  }
}
