/**
 * Conflation of a busy feed (pure; time is passed in): at most one emission per key per
 * interval, and the latest state always goes out. A key updated inside its interval is
 * marked pending and comes out of `due` once the interval has passed (the trailing
 * flush), so the last quote of a burst is never lost. The caller keeps the state itself
 * (e.g. the latest book per symbol) and builds what it emits when a key is let through.
 */
export class Conflator {
  private readonly lastEmit = new Map<string, number>();
  private readonly pending = new Set<string>();

  /** `intervalMs` 0 lets every update through. */
  constructor(private readonly intervalMs: number) {
    if (!Number.isInteger(intervalMs) || intervalMs < 0) throw new RangeError(`interval must be a whole number of ms >= 0, got ${intervalMs}`);
  }

  /** An update of `key` at `now`: true when it may go out now, false when it waits (pending). */
  offer(key: string, now: number): boolean {
    const last = this.lastEmit.get(key);
    if (last === undefined || now - last >= this.intervalMs) {
      this.lastEmit.set(key, now);
      this.pending.delete(key);
      return true;
    }
    this.pending.add(key);
    return false;
  }

  /** The pending keys whose interval has passed at `now`, marked as emitted. */
  due(now: number): string[] {
    const out: string[] = [];
    for (const key of this.pending) {
      if (now - (this.lastEmit.get(key) ?? now) >= this.intervalMs) out.push(key);
    }
    for (const key of out) {
      this.pending.delete(key);
      this.lastEmit.set(key, now);
    }
    return out;
  }

  /** When the next pending key becomes due (epoch ms); undefined when none is pending. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const key of this.pending) {
      const at = (this.lastEmit.get(key) ?? 0) + this.intervalMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }
}
