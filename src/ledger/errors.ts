/**
 * Classifies a model-call error into the ledger's status vocabulary. LangChain wraps provider
 * errors (ContextOverflowError keeps the HTTP error only as `cause`; the AsyncCaller renames
 * 429s to InsufficientQuotaError / RateLimitCapacityError), so the whole cause chain is read.
 */
import { isBudgetExceeded } from "./budget";

export type ErrorClass =
  | "context_overflow"
  | "quota"
  | "timeout"
  | "aborted"
  | "budget_refused"
  | "parse_error"
  | `http_${number}`
  | "error";

export interface ClassifiedError {
  status: ErrorClass;
  httpStatus: number | null;
  /** A short text for the error column. */
  message: string;
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  status?: unknown;
  statusCode?: unknown;
  code?: unknown;
  type?: unknown;
  lc_error_code?: unknown;
  response?: { status?: unknown };
  error?: { code?: unknown; type?: unknown; message?: unknown };
  cause?: unknown;
}

function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let current: unknown = err;
  for (let i = 0; i < 6 && current && typeof current === "object"; i++) {
    out.push(current as ErrorLike);
    current = (current as ErrorLike).cause;
  }
  return out;
}

const str = (v: unknown) => (typeof v === "string" ? v : "");

/** The HTTP status carried anywhere in the cause chain. */
export function httpStatusOf(err: unknown): number | null {
  for (const e of chain(err)) {
    for (const v of [e.status, e.statusCode, e.response?.status]) {
      const n = typeof v === "number" ? v : typeof v === "string" && /^\d{3}$/.test(v) ? Number(v) : NaN;
      if (Number.isInteger(n) && n >= 100 && n <= 599) return n;
    }
  }
  return null;
}

export function describeError(err: unknown, max = 500): string {
  let text: string;
  if (err instanceof Error || (err && typeof err === "object" && "message" in err)) {
    const e = err as ErrorLike;
    const message = str(e.message).split("\n\nTroubleshooting URL")[0]!.trim();
    text = `${str(e.name) || "Error"}: ${message}`;
  } else text = String(err);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function classifyError(err: unknown): ClassifiedError {
  const links = chain(err);
  const httpStatus = httpStatusOf(err);
  const message = describeError(err);
  const names = links.map((e) => str(e.name));
  const codes = links.flatMap((e) => [str(e.code), str(e.error?.code), str(e.type), str(e.error?.type), str(e.lc_error_code)]);
  const texts = links.map((e) => str(e.message)).join("\n");
  const status = ((): ErrorClass => {
    if (isBudgetExceeded(err) || names.includes("BudgetExceededError")) return "budget_refused";
    if (names.includes("ContextOverflowError") || codes.includes("context_length_exceeded") || /maximum context length|context window|context_length_exceeded/i.test(texts)) {
      return "context_overflow";
    }
    if (
      names.includes("InsufficientQuotaError") ||
      names.includes("RateLimitQuotaExhaustedError") ||
      codes.includes("insufficient_quota") ||
      (httpStatus === 429 && /exceeded your current quota|insufficient[_ ]quota/i.test(texts))
    ) {
      return "quota";
    }
    if (
      names.some((n) => n === "TimeoutError" || n === "APIConnectionTimeoutError" || n === "NodeTimeoutError") ||
      codes.some((c) => c === "ETIMEDOUT" || c === "UND_ERR_HEADERS_TIMEOUT" || c === "UND_ERR_BODY_TIMEOUT") ||
      /request timed out|timeout exceeded/i.test(texts)
    ) {
      return "timeout";
    }
    if (names.some((n) => n === "AbortError" || n === "ModelAbortError" || n === "APIUserAbortError") || /^(AbortError|Cancel)/.test(str(links[0]?.message))) {
      return "aborted";
    }
    if (httpStatus !== null && httpStatus >= 400) return `http_${httpStatus}`;
    if (names.some((n) => n === "SyntaxError" || n === "OutputParserException" || n === "ZodError")) return "parse_error";
    return "error";
  })();
  return { status, httpStatus, message };
}

/**
 * The status given to a call that succeeded inside a node attempt that then failed: its tokens
 * were billed and its result thrown away. parse_error when the node could not parse the reply
 * (JSON.parse, an output parser), interrupted for an interrupt(), node_error otherwise.
 */
export function nodeFailureClass(err: unknown): string {
  const names = chain(err).map((e) => str(e.name));
  if (names.includes("GraphInterrupt") || names.includes("NodeInterrupt")) return "interrupted";
  if (names.some((n) => n === "SyntaxError" || n === "OutputParserException" || n === "ZodError")) return "parse_error";
  return "node_error";
}
