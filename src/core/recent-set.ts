/**
 * A set that remembers the most recent `capacity` keys: the idempotency guards
 * (decided signal ids, filled signal ids, applied order ids) must not grow without
 * bound. A duplicate older than `capacity` keys back is not recognised; the services
 * document their bound.
 */
export class RecentSet {
  private readonly keys = new Set<string>();

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError('capacity must be positive');
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Adds `key`; returns false when it was already present. */
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.keys.size;
  }

  clear(): void {
    this.keys.clear();
  }

  /** Oldest first. */
  values(): string[] {
    return [...this.keys];
  }
}
