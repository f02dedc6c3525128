/** Calling a chat model for a JSON reply, and checking that reply against the stage's schema. */
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { AIMessageChunk, BaseMessage } from "@langchain/core/messages";
import { z } from "zod";

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
 * One chat call, returning the reply text. Streaming goes through `.stream()` and joins the
 * chunks (the last one carries the usage); never `streaming: true` with invoke, which makes
 * the client count tokens through a remote download.
 */
export async function complete(model: BaseChatModel, messages: BaseMessage[], options: { stream: boolean }): Promise<string> {
  if (!options.stream) return (await model.invoke(messages)).text;
  let reply: AIMessageChunk | undefined;
  for await (const chunk of await model.stream(messages)) reply = reply ? reply.concat(chunk) : chunk;
  return reply?.text ?? "";
}
