// PLACEHOLDER (the ledger helper replaces the body, keeping the signature): embeddings fire no
// LangChain callbacks, so every embeddings HTTP call (remote, via ledgerFetch) or offline batch
// goes through trackEmbeddingCall, which tells the run's ledger handler before the call (so a
// budget can refuse it) and after (with the usage), via dispatchCustomEvent.
export interface EmbeddingCallInfo {
  model: string;
  provider: string;
  /** Tokens counted locally before the call (for the budget reservation). */
  estimatedInputTokens: number;
}

export interface EmbeddingCallResult<T> {
  value: T;
  /** Tokens the provider billed; null when it reported none. */
  inputTokens: number | null;
  responseModel?: string;
  httpStatus?: number;
}

export async function trackEmbeddingCall<T>(
  _info: EmbeddingCallInfo,
  send: () => Promise<EmbeddingCallResult<T>>,
): Promise<T> {
  return (await send()).value;
}
