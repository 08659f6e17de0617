/**
 * Simulated time for a replay: a Clock the driver moves with the data, and a Scheduler
 * whose periodic work (risk's in-flight sweep and exit time limits, the monitor's marks)
 * fires at its due instants as that clock passes them, in time order, each awaited and
 * followed by the loop settling, so cooldowns, daily limits, expiries, marks and
 * protective exits all run on the data's time and a run is deterministic.
 */
import type { Clock } from '../core/clock.js';
import type { Cancel, Scheduler } from '../platform/scheduler.js';

export class SimClock implements Clock {
  #now: number;

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward (never back: a replay's inputs come in time order). */
  set(ms: number): void {
    if (ms > this.#now) this.#now = ms;
  }
}

interface Timer {
  readonly id: number;
  readonly intervalMs: number;
  readonly fn: () => void | Promise<unknown>;
  due: number;
  cancelled: boolean;
}

export class SimScheduler implements Scheduler {
  readonly #clock: SimClock;
  readonly #timers: Timer[] = [];
  #nextId = 0;
  /** Timer callbacks run so far (for the report's counts and tests). */
  fired = 0;

  constructor(clock: SimClock) {
    this.#clock = clock;
  }

  every(intervalMs: number, fn: () => void | Promise<unknown>): Cancel {
    if (!(intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    const timer: Timer = { id: this.#nextId++, intervalMs, fn, due: this.#clock.now() + intervalMs, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
      const at = this.#timers.indexOf(timer);
      if (at !== -1) this.#timers.splice(at, 1);
    };
  }

  /** The earliest due instant, or Infinity with no timers. */
  nextDue(): number {
    let due = Number.POSITIVE_INFINITY;
    for (const timer of this.#timers) if (timer.due < due) due = timer.due;
    return due;
  }

  /**
   * Fires every timer due at or before `until`, earliest first (ties: the one created
   * first), with the clock set to each due instant; `afterEach` runs after every callback
   * (the driver waits there for the loop to settle). Leaves the clock at `until`.
   */
  async advanceTo(until: number, afterEach: () => Promise<void> | void | undefined): Promise<void> {
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.#timers) {
        if (timer.due <= until && (next === undefined || timer.due < next.due || (timer.due === next.due && timer.id < next.id))) next = timer;
      }
      if (next === undefined) break;
      this.#clock.set(next.due);
      next.due += next.intervalMs;
      this.fired += 1;
      const returned = next.fn();
      if (returned !== undefined) await returned;
      const settled = afterEach();
      if (settled !== undefined) await settled;
    }
    this.#clock.set(until);
  }
}
