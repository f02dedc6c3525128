/**
 * The alert rules as pure functions: a node's spike against its own history, and the forecast of
 * today's and this month's spend with the date a budget would be crossed.
 */

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface SpikeRule {
  /** Current tokens must exceed factor × median. */
  factor: number;
  /** Runs of history compared against (the most recent). */
  runs: number;
  /** Fewer runs of history than this: no judgement (a new node has no "usual"). */
  minRuns: number;
}

export interface Spike {
  node: string;
  tokens: number;
  median: number;
  /** tokens ÷ median, rounded to one decimal. */
  ratio: number;
  historyRuns: number;
}

/**
 * Nodes whose tokens in this run exceed `factor` × their median over their last `runs` runs.
 * `history` lists each node's tokens per earlier run, newest first.
 */
export function findSpikes(current: ReadonlyMap<string, number>, history: ReadonlyMap<string, readonly number[]>, rule: SpikeRule): Spike[] {
  const spikes: Spike[] = [];
  for (const [node, tokens] of current) {
    const past = (history.get(node) ?? []).slice(0, rule.runs);
    if (past.length < rule.minRuns) continue;
    const m = median(past);
    if (m === null || m <= 0 || tokens <= rule.factor * m) continue;
    spikes.push({ node, tokens, median: m, ratio: Math.round((tokens / m) * 10) / 10, historyRuns: past.length });
  }
  return spikes.sort((a, b) => b.ratio - a.ratio);
}

export interface ForecastInput {
  /** Spent so far today and this month (tokens, or USD as a number of units). */
  today: number;
  month: number;
  /** The mean spend of one run over recent runs. */
  perRun: number;
  /** Scheduled runs still to come today, as instants. */
  firesLeftToday: readonly Date[];
  /** Spend per day over the recent days before today (oldest first; days without runs are 0). */
  recentDays: readonly number[];
  /** Calendar days of this month after today. */
  daysLeftInMonth: number;
  /** Today's date (YYYY-MM-DD) in the zone; month dates are counted from it. */
  todayDate: string;
  dayLimit?: number;
  monthLimit?: number;
}

export interface Forecast {
  today: number;
  month: number;
  /** When today's spend would pass the day limit: the scheduled run that would, or null. */
  dayLimitCrossedAt: Date | null;
  /** The date (YYYY-MM-DD) the month's spend would pass the month limit, or null. */
  monthLimitCrossedOn: string | null;
  /** The spend per day the month forecast assumes. */
  perDay: number;
}

/**
 * Today: what is spent plus one mean run per scheduled run left. The month: that, plus the
 * recent mean per day (today's forecast when there is no history yet) for each day left.
 */
export function forecast(input: ForecastInput): Forecast {
  const today = input.today + input.perRun * input.firesLeftToday.length;
  const history = input.recentDays.filter((d) => d > 0).length > 0 ? input.recentDays : [today];
  const perDay = history.reduce((a, b) => a + b, 0) / history.length;
  const month = input.month + (today - input.today) + perDay * input.daysLeftInMonth;

  let dayLimitCrossedAt: Date | null = null;
  if (input.dayLimit !== undefined && input.perRun > 0) {
    let spent = input.today;
    for (const fire of input.firesLeftToday) {
      spent += input.perRun;
      if (spent > input.dayLimit) {
        dayLimitCrossedAt = fire;
        break;
      }
    }
  }
  let monthLimitCrossedOn: string | null = null;
  if (input.monthLimit !== undefined) {
    let spent = input.month + (today - input.today);
    if (spent > input.monthLimit) monthLimitCrossedOn = input.todayDate;
    else if (perDay > 0) {
      for (let d = 1; d <= input.daysLeftInMonth; d++) {
        spent += perDay;
        if (spent > input.monthLimit) {
          monthLimitCrossedOn = addDays(input.todayDate, d);
          break;
        }
      }
    }
  }
  return { today, month, dayLimitCrossedAt, monthLimitCrossedOn, perDay };
}

/** YYYY-MM-DD plus n days (calendar arithmetic, no zone involved). */
export function addDays(date: string, n: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Days of the month after `date` (YYYY-MM-DD). */
export function daysLeftInMonth(date: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return last - d;
}
