/** Records what a schedule did, in seconds from a reference instant, for exact assertions. */
import type { ScheduleEvent } from "../../../src/scheduler";

export interface Recorder {
  events: ScheduleEvent[];
  onEvent: (event: ScheduleEvent) => void;
  /** Seconds (from t0) of the events of one type, by when they happened. */
  at(type: ScheduleEvent["type"]): number[];
  /** Seconds (from t0) of the slots the events of one type were for. */
  slots(type: ScheduleEvent["type"]): number[];
  reasons(type: ScheduleEvent["type"]): string[];
}

export function recorder(t0: number): Recorder {
  const events: ScheduleEvent[] = [];
  const sec = (d: Date) => (d.getTime() - t0) / 1000;
  return {
    events,
    onEvent: (event) => events.push(event),
    at: (type) => events.filter((e) => e.type === type).map((e) => sec(e.at)),
    slots: (type) => events.filter((e) => e.type === type).map((e) => sec(e.scheduledAt)),
    reasons: (type) => events.filter((e) => e.type === type).map((e) => ("reason" in e ? e.reason : "")),
  };
}

/** Counts jobs running at once, across any number of schedules. */
export function concurrency() {
  let active = 0;
  let max = 0;
  return {
    enter() {
      active++;
      max = Math.max(max, active);
    },
    leave() {
      active--;
    },
    get max() {
      return max;
    },
    get active() {
      return active;
    },
  };
}
