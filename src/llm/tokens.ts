/**
 * Local token counting with js-tiktoken's full build (bundled ranks). Never the models'
 * getNumTokens: that path downloads ranks from a CDN and hangs offline.
 */
import { getEncoding, type Tiktoken } from "js-tiktoken";

export const TOKEN_ENCODING = "o200k_base";

let encoder: Tiktoken | undefined;

/** Building the encoder takes about half a second, so it is built once, on first use. */
function tokenizer(): Tiktoken {
  encoder ??= getEncoding(TOKEN_ENCODING);
  return encoder;
}

/** Special-token text such as "<|endoftext|>" in an article is counted as plain text, not refused. */
function encode(text: string): number[] {
  return tokenizer().encode(text, [], []);
}

export function countTokens(text: string): number {
  return encode(text).length;
}

/** The text cut to at most `maxTokens` tokens, on a token boundary. */
export function truncateToTokens(text: string, maxTokens: number): string {
  const tokens = encode(text);
  if (tokens.length <= maxTokens) return text;
  // A cut can split a multi-byte character between two tokens; drop the half character.
  return tokenizer().decode(tokens.slice(0, maxTokens)).replace(/\uFFFD+$/, "");
}
