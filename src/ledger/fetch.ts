// PLACEHOLDER (the ledger helper replaces this): wraps fetch for ChatOpenAI / OpenAIEmbeddings
// `configuration.fetch`, so that every HTTP attempt and every embeddings usage block reaches the ledger.
export function ledgerFetch(base: typeof fetch = fetch): typeof fetch {
  return base;
}
