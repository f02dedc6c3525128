/**
 * Token counting for prompts: the ledger's tokenizer (js-tiktoken's full build, o200k_base, one
 * shared encoder), so what a stage cuts to and what the ledger estimates are counted alike.
 */
import { countTextTokens, tokenizerFor } from "../ledger/tokens";

export function countTokens(text: string): number {
  return countTextTokens(text);
}

/** Characters per token the first window assumes; a window that holds too few tokens doubles. */
const WINDOW_CHARS_PER_TOKEN = 6;
/** Tokens beyond the cut a window must hold, so that its last, cut-off words cannot change the first maxTokens. */
const WINDOW_MARGIN_TOKENS = 32;

/**
 * The text cut to at most `maxTokens` tokens, on a token boundary: the first maxTokens tokens of
 * the whole text, decoded. Only a prefix window is encoded (a 16,000-character body costs ~8 ms
 * to encode whole, on the event loop, once per article).
 */
export function truncateToTokens(text: string, maxTokens: number): string {
  // A token is at least one UTF-8 byte.
  if (Buffer.byteLength(text, "utf8") <= maxTokens) return text;
  const tokenizer = tokenizerFor();
  for (let window = maxTokens * WINDOW_CHARS_PER_TOKEN; ; window *= 2) {
    const whole = window >= text.length;
    const tokens = tokenizer.encode(whole ? text : text.slice(0, window), [], []);
    if (whole && tokens.length <= maxTokens) return text;
    if (whole || tokens.length >= maxTokens + WINDOW_MARGIN_TOKENS) {
      // A cut can split a multi-byte character between two tokens; drop the half character.
      return tokenizer.decode(tokens.slice(0, maxTokens)).replace(/\uFFFD+$/, "");
    }
  }
}
