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
 *
 * It holds ids per second × the window (600,000 at 10,000 signals/s and a minute), so it
 * is kept compact: the queue is a key array beside a Float64Array of times, and the map
 * holds each key's last queue position (a small integer, stored unboxed) instead of a
 * time (a boxed double) and a {key, until} object per add: ~40 bytes a key instead of ~110.
 */
export class TimedSet {
  /** Key → sequence number of its latest queue slot (the one that decides when it goes). */
  private readonly latest = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private untils = new Float64Array(64);
  /** Sequence number of slot 0, of the oldest slot still queued, and of the next slot. */
  private base = 0;
  private head = 0;
  private tail = 0;

  has(key: string): boolean {
    return this.latest.has(key);
  }

  /** Remembers `key` until `until` (extended when it is already known with an earlier time). */
  add(key: string, until: number): void {
    const known = this.latest.get(key);
    // A key in the map has its latest slot still queued (evict deletes it with that slot).
    if (known !== undefined && (this.untils[known - this.base] as number) >= until) return;
    if (this.tail - this.base === this.untils.length) this.makeRoom();
    const slot = this.tail - this.base;
    this.keys[slot] = key;
    this.untils[slot] = until;
    this.latest.set(key, this.tail);
    this.tail += 1;
  }

  /** Forgets every key whose time has passed (oldest first, see the class comment). */
  evict(now: number): void {
    while (this.head < this.tail) {
      const slot = this.head - this.base;
      if ((this.untils[slot] as number) > now) break;
      const key = this.keys[slot] as string;
      if (this.latest.get(key) === this.head) this.latest.delete(key);
      this.keys[slot] = undefined;
      this.head += 1;
    }
  }

  get size(): number {
    return this.latest.size;
  }

  clear(): void {
    this.latest.clear();
    this.keys = [];
    this.untils = new Float64Array(64);
    this.base = this.head = this.tail = 0;
  }

  /** The queue is full: drop the evicted slots in front, and grow when over half is in use. */
  private makeRoom(): void {
    const from = this.head - this.base;
    const used = this.tail - this.head;
    if (used * 2 > this.untils.length) {
      const grown = new Float64Array(this.untils.length * 2);
      grown.set(this.untils.subarray(from, from + used));
      this.untils = grown;
    } else {
      this.untils.copyWithin(0, from, from + used);
    }
    this.keys = this.keys.slice(from, from + used);
    this.base = this.head;
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
