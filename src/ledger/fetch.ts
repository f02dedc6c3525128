/**
 * A fetch for ChatOpenAI / OpenAIEmbeddings `configuration.fetch`, so that every HTTP attempt and
 * every embeddings usage block reaches the ledger:
 *  - POST …/embeddings: the call goes through trackEmbeddingCall (budget gate before, `usage`
 *    read from a clone of the JSON response after), attributed to the calling node through the
 *    runnable config in AsyncLocalStorage.
 *  - POST …/chat/completions (and …/responses): each HTTP attempt — the client's own hidden
 *    retries included — is announced to the handler with an HttpAttemptInfo that this wrapper
 *    keeps filling in: status, error code, the response's model as its first chunk names it (the
 *    aggregated message can carry it doubled), usage, provider-reported cost, and whether a
 *    streamed body ended with "[DONE]" or broke off. The response body the client reads is the
 *    server's, byte for byte. Inside a streamed call (`model.stream()`) no run is in scope; the
 *    attempt then goes to the ledger whose call in flight sent that request (announceHttpAttempt).
 * Anything else passes through untouched. The wrapper never makes a call fail: its own errors are
 * swallowed; only the budget gate (a BudgetExceededError before an embeddings call) is thrown.
 */
import { randomUUID } from "node:crypto";
import { announceHttpAttempt, fingerprintOf, trackEmbeddingCall, type EmbeddingCallResult, type HttpAttemptInfo, type RawUsage } from "./events";
import { isBudgetExceeded } from "./budget";
import { estimateEmbeddingTokens } from "./tokens";

export interface LedgerFetchOptions {
  /** The provider name on embedding rows; chat rows take LangChain's ls_provider. Default "openai". */
  provider?: string;
}

type FetchInput = Parameters<typeof fetch>[0];
type FetchInit = Parameters<typeof fetch>[1];

function requestUrl(input: FetchInput): string | null {
  if (typeof input === "string") return input;
  if (input instanceof URL) return input.href;
  if (input && typeof input === "object" && "url" in input) return String((input as { url: unknown }).url);
  return null;
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, "");
  } catch {
    return url.split("?")[0] ?? url;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const int = (v: unknown): number | null => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null);

/** The provider-reported cost as the decimal literal the server wrote (never through a float). */
export function providerCostFromText(text: string): string | undefined {
  const at = text.indexOf('"usage"');
  if (at < 0) return undefined;
  const m = /"cost"\s*:\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/.exec(text.slice(at));
  return m ? m[1] : undefined;
}

function requestFingerprint(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : null;
  if (messages && messages.length > 0) {
    const last = messages[messages.length - 1];
    return fingerprintOf(isObject(last) ? last.content : last);
  }
  return fingerprintOf(body.input ?? body.prompt);
}

/** Reads SSE lines as they pass: the first model, the usage chunk, the cost, the end sentinel. */
class SseScanner {
  private readonly decoder = new TextDecoder();
  private buffer = "";
  constructor(private readonly attempt: HttpAttemptInfo) {}

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, "");
      this.buffer = this.buffer.slice(nl + 1);
      this.line(line);
    }
  }

  end(): void {
    this.buffer += this.decoder.decode();
    if (this.buffer) this.line(this.buffer);
    this.buffer = "";
  }

  private line(line: string): void {
    if (!line.startsWith("data:")) return;
    const payload = line.slice(5).trim();
    if (payload === "[DONE]") {
      this.attempt.sawDone = true;
      return;
    }
    const json = parseJson(payload);
    if (!isObject(json)) return;
    const response = isObject(json.response) ? json.response : undefined;
    const model = str(json.model) ?? str(response?.model);
    if (model && !this.attempt.responseModel) this.attempt.responseModel = model;
    const usage = isObject(json.usage) ? json.usage : isObject(response?.usage) ? response.usage : undefined;
    if (usage) {
      this.attempt.usage = usage as RawUsage;
      const cost = providerCostFromText(payload);
      if (cost) this.attempt.providerCostUsd = cost;
    }
    if (json.type === "response.completed") this.attempt.sawDone = true;
  }
}

async function chatAttempt(base: typeof fetch, input: FetchInput, init: FetchInit, body: Record<string, unknown>, path: string): Promise<Response> {
  const streamOptions = isObject(body.stream_options) ? body.stream_options : undefined;
  const attempt: HttpAttemptInfo = {
    id: randomUUID(),
    path,
    requestModel: str(body.model) ?? null,
    stream: body.stream === true,
    includeUsage: streamOptions?.include_usage === true,
    fingerprint: requestFingerprint(body),
    startedAt: Date.now(),
  };
  // To the run in scope; inside a streamed call there is none, and the ledgers match it by request.
  await announceHttpAttempt(attempt);
  let res: Response;
  try {
    res = await base(input, init);
  } catch (err) {
    attempt.finishedAt = Date.now();
    const e = err as { name?: unknown; message?: unknown };
    attempt.networkError = { name: String(e?.name ?? "Error"), message: String(e?.message ?? err) };
    throw err;
  }
  attempt.status = res.status;
  try {
    if (!res.ok) {
      const json = parseJson(await res.clone().text());
      const error = isObject(json) && isObject(json.error) ? json.error : undefined;
      attempt.errorCode = str(error?.code) ?? str(error?.type);
      attempt.errorMessage = str(error?.message);
      attempt.finishedAt = Date.now();
      return res;
    }
    const streamed = attempt.stream || (res.headers.get("content-type") ?? "").includes("text/event-stream");
    if (!streamed || !res.body) {
      const text = await res.clone().text();
      const json = parseJson(text);
      if (isObject(json)) {
        attempt.responseModel = str(json.model);
        if (isObject(json.usage)) attempt.usage = json.usage as RawUsage;
        attempt.providerCostUsd = providerCostFromText(text);
      }
      attempt.finishedAt = Date.now();
      return res;
    }
    const scanner = new SseScanner(attempt);
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          attempt.streamError = String((err as Error)?.message ?? err);
          attempt.finishedAt = Date.now();
          controller.error(err);
          return;
        }
        if (chunk.done) {
          try {
            scanner.end();
          } catch {
            /* accounting never breaks the call */
          }
          attempt.streamEnded = true;
          attempt.finishedAt = Date.now();
          controller.close();
          return;
        }
        try {
          scanner.push(chunk.value);
        } catch {
          /* accounting never breaks the call */
        }
        controller.enqueue(chunk.value);
      },
      cancel(reason) {
        attempt.streamError ??= "cancelled by the reader";
        attempt.finishedAt ??= Date.now();
        return reader.cancel(reason);
      },
    });
    const wrapped = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    Object.defineProperty(wrapped, "url", { value: res.url });
    return wrapped;
  } catch {
    // Reading the clone failed: hand the client the response untouched.
    attempt.finishedAt ??= Date.now();
    return res;
  }
}

async function embeddingsCall(
  base: typeof fetch,
  input: FetchInput,
  init: FetchInit,
  body: Record<string, unknown>,
  provider: string,
): Promise<Response> {
  const model = str(body.model) ?? "unknown";
  let estimated = 0;
  try {
    estimated = estimateEmbeddingTokens(body.input, model);
  } catch {
    estimated = Math.ceil(JSON.stringify(body.input ?? "").length / 4);
  }
  try {
    return await trackEmbeddingCall({ model, provider, estimatedInputTokens: estimated }, () => sendEmbeddings(base, input, init));
  } catch (err) {
    if (!isBudgetExceeded(err)) throw err;
    // The budget refused the call before it was sent. An error thrown from fetch would reach the
    // caller wrapped as the SDK's APIConnectionError ("Connection error.", retried by the client);
    // an error raised while the SDK reads the body reaches it as itself. So: a response whose body
    // fails with the BudgetExceededError (stamped non-retryable), and nothing was sent.
    return new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.error(err);
        },
      }),
      { status: 200, headers: { "content-type": "application/json", "x-newsledger": "budget-refused" } },
    );
  }
}

async function sendEmbeddings(base: typeof fetch, input: FetchInput, init: FetchInit): Promise<EmbeddingCallResult<Response>> {
  const res = await base(input, init);
  let inputTokens: number | null = null;
  let responseModel: string | undefined;
  let providerCostUsd: string | undefined;
  let errorCode: string | undefined;
  try {
    const text = await res.clone().text();
    const json = parseJson(text);
    if (isObject(json)) {
      if (res.ok) {
        const usage = isObject(json.usage) ? json.usage : undefined;
        inputTokens = int(usage?.prompt_tokens) ?? int(usage?.total_tokens) ?? int(usage?.input_tokens);
        responseModel = str(json.model);
        providerCostUsd = providerCostFromText(text);
      } else if (isObject(json.error)) {
        errorCode = str(json.error.code) ?? str(json.error.type);
      }
    }
  } catch {
    /* no usage readable: recorded as missing */
  }
  return { value: res, inputTokens, responseModel, httpStatus: res.status, providerCostUsd, errorCode };
}

export function ledgerFetch(base: typeof fetch = fetch, options: LedgerFetchOptions = {}): typeof fetch {
  const provider = options.provider ?? "openai";
  const wrapped = async (input: FetchInput, init?: FetchInit): Promise<Response> => {
    const url = requestUrl(input);
    const method = (init?.method ?? (typeof input === "object" && input && "method" in input ? String(input.method) : "GET")).toUpperCase();
    const body = typeof init?.body === "string" ? parseJson(init.body) : undefined;
    if (method !== "POST" || !url || !isObject(body)) return base(input, init);
    const path = pathOf(url);
    if (/\/embeddings$/.test(path)) return embeddingsCall(base, input, init, body, provider);
    if (/\/(chat\/completions|responses|completions)$/.test(path)) return chatAttempt(base, input, init, body, path);
    return base(input, init);
  };
  return wrapped as typeof fetch;
}
