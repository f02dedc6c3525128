/**
 * What a node tells the ledger about the fate of its calls' results. By default a node loses its
 * work when an attempt fails: every call that attempt made successfully is re-marked (parse_error
 * / node_error) and counted as wasted ("retry") tokens. A node that keeps each call's result as it
 * returns (it persists it, and a retried attempt skips what is done) declares so with its node
 * metadata; a failed attempt then leaves its successful calls ok, and the node names the replies
 * it could not use with rejectReply, which makes exactly those calls parse_error and wasted.
 *
 *   graph.addNode("summarize", fn, { retryPolicy, metadata: keepsResults() });
 *   ...
 *   const reply = await model.invoke(messages);
 *   try { return schema.parse(JSON.parse(reply.text)); }
 *   catch (err) { await rejectReply(reply, err); throw err; }
 */
import { describeError } from "./errors";
import { dispatchLedgerEvent, fingerprintOf, REPLY_REJECTED, type ReplyRejectedEvent } from "./events";

/** The node-metadata key by which a node declares that it keeps its calls' results. */

/**
 * Call metadata: the caller knows this call will be served by its response cache (it looked);
 * the budget gate lets it start without a reservation, since a hit bills nothing.
 */
export const EXPECTED_CACHE_HIT_METADATA = "newsledger_expected_cache_hit";

export const KEEPS_RESULTS_METADATA = "newsledger_keeps_results";

/** Node metadata declaring that the node keeps each call's result: `addNode(name, fn, { metadata: keepsResults() })`. */
export function keepsResults(): Record<string, unknown> {
  return { [KEEPS_RESULTS_METADATA]: true };
}

/** The parts of a chat model's reply message that identify it (an AIMessage or AIMessageChunk). */
export interface ReplyMessage {
  id?: string | null;
  text?: string;
  content?: unknown;
}

function messageText(message: ReplyMessage): string {
  try {
    if (typeof message.text === "string") return message.text;
  } catch {
    /* a getter that throws: fall back to the content */
  }
  return fingerprintOf(message.content);
}

/**
 * Tells the run's ledger that the node rejected this reply (it did not parse, or failed the
 * node's checks): the call that produced it becomes `parse_error`, and its tokens count as
 * wasted. The call is found by the message's id (the provider's response id, or LangChain's
 * "run-<call id>"), among the calls of the node attempt in scope; the text tells apart calls
 * whose provider repeats ids. Call it from inside the node, before throwing. Never throws.
 */
export async function rejectReply(message: ReplyMessage, reason: unknown): Promise<void> {
  try {
    const id = typeof message?.id === "string" && message.id !== "" ? message.id : undefined;
    const event: ReplyRejectedEvent = {
      messageIds: id ? [id] : [],
      fingerprint: fingerprintOf(messageText(message ?? {})),
      reason: typeof reason === "string" ? reason : describeError(reason),
      status: "parse_error",
    };
    await dispatchLedgerEvent(REPLY_REJECTED, event);
  } catch {
    /* accounting never breaks the node */
  }
}
