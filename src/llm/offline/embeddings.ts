/**
 * The offline embeddings: feature-hashed bags of words. Content-word unigrams and bigrams are
 * hashed (FNV-1a) into a fixed number of dimensions with a hash-chosen sign, so collisions
 * cancel out on average, then L2-normalised. Usage goes through trackEmbeddingCall, the same
 * path remote embeddings take, with tokens counted by js-tiktoken.
 */
import { Embeddings, type EmbeddingsParams } from "@langchain/core/embeddings";
import { trackEmbeddingCall } from "../../ledger/events";
import { contentWords, withoutLinks } from "../text";
import { countTokens } from "../tokens";
import { OFFLINE_PROVIDER } from "./chat-model";

export const DEFAULT_DIMENSIONS = 256;
/** A bigram counts half a word: it sharpens similarity without outweighing the words themselves. */
const BIGRAM_WEIGHT = 0.5;

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export function hashVector(text: string, dimensions = DEFAULT_DIMENSIONS): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  const add = (feature: string, weight: number) => {
    const hash = fnv1a(feature);
    // The low bits pick the slot, the top bit the sign.
    vector[hash % dimensions]! += hash >>> 31 ? -weight : weight;
  };
  const terms = contentWords(withoutLinks(text));
  terms.forEach((term, i) => {
    add(term, 1);
    if (i > 0) add(`${terms[i - 1]} ${term}`, BIGRAM_WEIGHT);
  });
  const norm = Math.hypot(...vector);
  return norm === 0 ? vector : vector.map((value) => value / norm);
}

export interface OfflineHashEmbeddingsFields extends EmbeddingsParams {
  model: string;
  dimensions?: number;
}

export class OfflineHashEmbeddings extends Embeddings {
  readonly model: string;
  readonly dimensions: number;

  constructor(fields: OfflineHashEmbeddingsFields) {
    super(fields);
    this.model = fields.model;
    this.dimensions = fields.dimensions ?? DEFAULT_DIMENSIONS;
  }

  async embedDocuments(documents: string[]): Promise<number[][]> {
    const tokens = documents.reduce((sum, document) => sum + countTokens(document), 0);
    return trackEmbeddingCall({ model: this.model, provider: OFFLINE_PROVIDER, estimatedInputTokens: tokens }, async () => ({
      value: documents.map((document) => hashVector(document, this.dimensions)),
      inputTokens: tokens,
      responseModel: this.model,
    }));
  }

  async embedQuery(document: string): Promise<number[]> {
    const [vector] = await this.embedDocuments([document]);
    return vector!;
  }
}
