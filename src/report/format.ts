/** Plain-text tables for the terminal. Money shows 8 decimals; unpriced shows as "unpriced". */
import type { CacheSavings, DailyCostRow, NodeCostRow, PromptSizeRow, RunCostRow } from "./queries";

export function usd8(value: string | null): string {
  if (value === null) return "unpriced";
  const [int, frac = ""] = value.split(".");
  return `$${int}.${(frac + "00000000").slice(0, 8)}`;
}

export function table(headers: string[], body: (string | number)[][]): string {
  const cells = [headers, ...body.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** A cost cell: unpriced calls are named, and a total with no usage at all is not "unpriced". */
function costCell(cost: string | null, unpriced: number, missingUsage: number): string {
  if (cost === null && unpriced === 0) return missingUsage > 0 ? `n/a (${missingUsage} without usage)` : "n/a";
  return usd8(cost) + (unpriced ? ` (+${unpriced} unpriced)` : "");
}

export function nodeTable(nodes: NodeCostRow[], run: RunCostRow | null): string {
  const body = nodes.map((n) => [
    n.node,
    n.calls,
    n.retries,
    n.input_tokens,
    n.cached_input_tokens,
    n.output_tokens,
    n.total_tokens,
    costCell(n.cost_usd, n.unpriced_calls, n.missing_usage_calls),
    n.latency_ms_total,
    n.latency_ms_p95 ?? "-",
    n.cache_hits,
    savedUsd(n),
  ]);
  if (run) {
    body.push([
      "TOTAL",
      run.calls,
      run.retries,
      run.input_tokens,
      run.cached_input_tokens,
      run.output_tokens,
      run.total_tokens,
      costCell(run.cost_usd, run.unpriced_calls, run.missing_usage_calls),
      "",
      "",
      run.cache_hits,
      savedUsd(run),
    ]);
  }
  return table(["node", "calls", "retries", "input", "cached", "output", "total", "cost_usd", "latency_ms", "p95_ms", "cache_hits", "saved_usd"], body);
}

/** What cache hits avoided, at today's price; "-" without hits. */
function savedUsd(s: CacheSavings): string {
  return s.cache_hits === 0 ? "-" : usd8(s.avoided_cost_usd);
}

/** One line: what the response cache saved. */
export function savingsLine(s: CacheSavings): string {
  if (s.cache_hits === 0) return "response cache: no hits";
  return `response cache: ${s.cache_hits} hit(s) saved ${s.avoided_tokens} tokens (${usd8(s.avoided_cost_usd)} at today's prices)`;
}

/** Average prompt per node, against the previous run's (a growing prompt shows as +N). */
export function promptSizeTable(sizes: PromptSizeRow[]): string {
  return table(
    ["node", "calls", "avg_input", "max_input", "prev_avg", "change"],
    sizes.map((p) => [
      p.node,
      p.calls,
      p.avg_input_tokens,
      p.max_input_tokens,
      p.prev_avg_input_tokens ?? "-",
      p.prev_avg_input_tokens === null ? "-" : `${p.avg_input_tokens >= p.prev_avg_input_tokens ? "+" : ""}${p.avg_input_tokens - p.prev_avg_input_tokens}`,
    ]),
  );
}

export function dailyTable(days: DailyCostRow[]): string {
  return table(
    ["day", "workflow", "runs", "calls", "total_tokens", "cost_usd", "cache_hits", "saved_tokens", "saved_usd"],
    days.map((d) => [d.day, d.workflow, d.runs, d.calls, d.total_tokens, usd8(d.cost_usd), d.cache_hits, d.avoided_tokens, savedUsd(d)]),
  );
}
