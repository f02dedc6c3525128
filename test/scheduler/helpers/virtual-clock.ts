/**
 * A clock for scheduler tests: time moves only when the test says so. `advanceTo` fires due
 * timers in order, each at its own instant, and lets promise chains settle between them;
 * `block` moves time on without firing anything, as a blocked event loop does, so timers due
 * meanwhile fire late, all at once, on the next advance.
 */
import type { Clock } from "../../../src/scheduler";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Lets pending promise reactions run (several rounds, as chains schedule more). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();
  private readonly settle: () => Promise<void>;

  constructor(startMs: number, options: { settle?: () => Promise<void> } = {}) {
    this.t = startMs;
    this.settle = options.settle ?? flushMicrotasks;
  }

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, delayMs: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.t + Math.max(0, delayMs), fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** A promise that resolves after `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(resolve, ms));
  }

  /** The event loop is blocked for `ms`: time passes, no timer fires. */
  block(ms: number): void {
    this.t += ms;
  }

  pendingTimers(): number {
    return this.timers.size;
  }

  async advanceTo(target: number): Promise<void> {
    await this.settle();
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.timers.values()) {
        if (timer.at <= Math.max(target, this.t) && (!next || timer.at < next.at || (timer.at === next.at && timer.id < next.id))) next = timer;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = Math.max(this.t, next.at); // late when the loop was blocked past it
      next.fn();
      await this.settle();
    }
    this.t = Math.max(this.t, target);
    await this.settle();
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.t + ms);
  }
}
