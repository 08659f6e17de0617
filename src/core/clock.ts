/** Time is injected: services get a Clock, the pure core gets `now` as an argument. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private current = 0) {}
  now(): number {
    return this.current;
  }
  set(ms: number): void {
    this.current = ms;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}
