/**
 * Timers are injected like the clock: a service asks its Scheduler for periodic work
 * instead of calling setInterval, so a replay can run that work on simulated time
 * (src/backtest/sim-clock.ts) while live runs keep real timers.
 */

/** Stops a timer; calling it twice is harmless. */
export type Cancel = () => void;

export interface Scheduler {
  /**
   * Calls `fn` every `intervalMs`. When `fn` returns a promise, a simulated scheduler waits
   * for it before moving time on (the real one does not: it never overlaps work anyway,
   * each service guards its own re-entry).
   */
  every(intervalMs: number, fn: () => void | Promise<unknown>): Cancel;
}

/** Real timers (unref'd: they never keep the process alive). The default everywhere outside a backtest. */
export const realScheduler: Scheduler = {
  every(intervalMs, fn) {
    const timer = setInterval(() => void fn(), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};
