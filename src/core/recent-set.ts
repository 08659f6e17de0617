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
    if (this.keys.has(key)) return false;
    this.keys.add(key);
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
