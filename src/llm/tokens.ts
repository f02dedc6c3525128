/**
 * Token counting for prompts: the ledger's tokenizer (js-tiktoken's full build, o200k_base, one
 * shared encoder), so what a stage cuts to and what the ledger estimates are counted alike.
 */
import { countTextTokens, tokenizerFor } from "../ledger/tokens";

export function countTokens(text: string): number {
  return countTextTokens(text);
}

/** The text cut to at most `maxTokens` tokens, on a token boundary. */
export function truncateToTokens(text: string, maxTokens: number): string {
  const tokenizer = tokenizerFor();
  const tokens = tokenizer.encode(text, [], []);
  if (tokens.length <= maxTokens) return text;
  // A cut can split a multi-byte character between two tokens; drop the half character.
  return tokenizer.decode(tokens.slice(0, maxTokens)).replace(/\uFFFD+$/, "");
}
