import { getEncoding } from "js-tiktoken";
import { describe, expect, it, vi } from "vitest";
import { OfflineHashEmbeddings, hashVector } from "../../src/llm/offline";
import { cosine } from "../../src/pipeline/cluster/algorithm";

// Record what the offline embeddings tell the ledger; the real trackEmbeddingCall still runs.
const tracked = vi.hoisted(() => ({ calls: [] as { info: unknown; inputTokens: number | null; responseModel?: string }[] }));
vi.mock("../../src/ledger/events", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../src/ledger/events")>();
  return {
    ...original,
    trackEmbeddingCall: async <T>(info: Parameters<typeof original.trackEmbeddingCall>[0], send: () => Promise<{ value: T; inputTokens: number | null; responseModel?: string }>) =>
      original.trackEmbeddingCall(info, async () => {
        const result = await send();
        tracked.calls.push({ info, inputTokens: result.inputTokens, responseModel: result.responseModel });
        return result;
      }),
  };
});

const FERRY = "Ferry strike closes Northport harbour. Ferry crews walked out over pay.";
const FERRY_AGAIN = "Northport ferry strike strands commuters as ferry crews walk out.";
const FERRY_TALKS = "Port authority and union meet on Monday to end the harbour dispute over pay.";
const LIBRARY = "City library extends opening hours for students during exams.";

describe("offline hash embeddings", () => {
  const embeddings = new OfflineHashEmbeddings({ model: "offline-hash-embed-1" });

  it("is deterministic, 256-dimensional and unit length", async () => {
    const [a, b] = await embeddings.embedDocuments([FERRY, FERRY]);
    expect(a).toEqual(b);
    expect(a).toEqual(hashVector(FERRY));
    expect(a).toHaveLength(256);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 12);
    expect(await embeddings.embedQuery(FERRY)).toEqual(a);
  });

  it("puts texts on the same story closer than unrelated ones", async () => {
    const [query, ...others] = await embeddings.embedDocuments([FERRY, LIBRARY, FERRY_TALKS, FERRY_AGAIN]);
    const names = ["library", "talks", "again"];
    const ranked = others.map((v, i) => ({ name: names[i], similarity: cosine(query!, v) })).sort((x, y) => y.similarity - x.similarity);
    expect(ranked.map((r) => r.name)).toEqual(["again", "talks", "library"]);
    expect(ranked[0]!.similarity).toBeGreaterThan(0.5);
    expect(Math.abs(ranked[2]!.similarity)).toBeLessThan(0.1);
  });

  it("gives a zero vector for text without words", () => {
    expect(hashVector("— … https://news.example.org/only-a-link")).toEqual(new Array(256).fill(0));
  });

  it("reports each batch through trackEmbeddingCall with js-tiktoken counts, as remote embeddings do", async () => {
    tracked.calls.length = 0;
    await embeddings.embedDocuments([FERRY, LIBRARY]);
    const encoding = getEncoding("o200k_base");
    const expected = encoding.encode(FERRY).length + encoding.encode(LIBRARY).length;
    expect(tracked.calls).toEqual([
      {
        info: { model: "offline-hash-embed-1", provider: "offline", estimatedInputTokens: expected },
        inputTokens: expected,
        responseModel: "offline-hash-embed-1",
      },
    ]);
  });
});
