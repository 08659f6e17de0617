/**
 * A set that remembers the most recent `capacity` keys: the idempotency guards
 * (decided signal ids, filled signal ids, applied order ids) must not grow without
 * bound. A duplicate older than `capacity` keys back is not recognised; the services
 * document their bound.
 *
 * The insertion order is kept in a ring of `capacity` slots, so forgetting the oldest
 * key is O(1). (Taking it from the Set's own iterator is not: a Set keeps the slots of
 * deleted keys until it is rehashed, and an iterator walks past every one of them, so a
 * full guard spent up to ~200 µs per add, more the longer the service had run.)
 */
export class RecentSet {
  private readonly keys = new Set<string>();
  /** Keys in insertion order, oldest at `head` once the ring is full. */
  private readonly ring: string[] = [];
  private head = 0;
  private readonly slots: number;

  /** `capacity`: how many keys are remembered (a fraction is rounded down, to at least 1). */
  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError('capacity must be positive');
    this.slots = Math.max(1, Math.floor(capacity));
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Adds `key`; returns false when it was already present. */
  add(key: string): boolean {
    // One hash lookup, not two: Set.add of a present key leaves the size as it was.
    const before = this.keys.size;
    this.keys.add(key);
    if (this.keys.size === before) return false;
    if (this.ring.length < this.slots) {
      this.ring.push(key);
    } else {
      this.keys.delete(this.ring[this.head] as string);
      this.ring[this.head] = key;
      this.head = (this.head + 1) % this.slots;
    }
    return true;
  }

  get size(): number {
    return this.keys.size;
  }

  clear(): void {
    this.keys.clear();
    this.ring.length = 0;
    this.head = 0;
  }

  /** Oldest first. */
  values(): string[] {
    return [...this.keys];
  }
}

/**
 * Keys remembered until a time each carries (`until`, epoch ms): an idempotency window by
 * time rather than by count. Forgetting is in insertion order (`evict(now)` drops keys
 * from the oldest while their time has passed), so a key added with a later `until` than
 * the ones after it holds those back until its own time: callers bound `until` (at most
 * two windows ahead), which bounds memory by ids per second × that horizon.
 */
export class TimedSet {
  private readonly until = new Map<string, number>();
  private queue: Array<{ key: string; until: number }> = [];
  private head = 0;

  has(key: string): boolean {
    return this.until.has(key);
  }

  /** Remembers `key` until `until` (extended when it is already known with an earlier time). */
  add(key: string, until: number): void {
    const known = this.until.get(key);
    if (known !== undefined && known >= until) return;
    this.until.set(key, until);
    this.queue.push({ key, until });
  }

  /** Forgets every key whose time has passed (oldest first, see the class comment). */
  evict(now: number): void {
    while (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      if (item.until > now) break;
      if (this.until.get(item.key) === item.until) this.until.delete(item.key);
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.until.size;
  }

  clear(): void {
    this.until.clear();
    this.queue = [];
    this.head = 0;
  }
}

/**
 * An idempotency guard: a key is known while it is among the last `capacity` keys added
 * (the count window every guard had) or, when it was added with a time, until that time
 * (the time window). The time window is what makes "once per id" hold whatever the rate.
 */
export class DuplicateGuard {
  private readonly recent: RecentSet;
  private readonly timed = new TimedSet();

  constructor(capacity: number) {
    this.recent = new RecentSet(capacity);
  }

  has(key: string): boolean {
    return this.recent.has(key) || this.timed.has(key);
  }

  /** Adds `key`; with `until`, it is also kept until then whatever the count. */
  add(key: string, until?: number): void {
    this.recent.add(key);
    if (until !== undefined) this.timed.add(key, until);
  }

  evict(now: number): void {
    this.timed.evict(now);
  }

  /** Keys kept by the time window (for /stats and the memory bound). */
  get timedSize(): number {
    return this.timed.size;
  }
}
