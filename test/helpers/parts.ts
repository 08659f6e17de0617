/**
 * A snapshot stored by parts, mirrored in memory for the state tests: each `commit` builds
 * the change against the last landed commit, lands it or (at `failRate`) drops it as a
 * failed MULTI would, and on landing checks that the stored parts put together give
 * exactly the snapshot text.
 */
import { expect } from 'vitest';
import { PartsTracker, assembleState, changeBytes } from '../../src/core/snapshot-parts.js';

export class PartsMirror {
  readonly tracker = new PartsTracker();
  readonly fields = new Map<string, string>();
  commits = 0;
  failures = 0;
  replaces = 0;
  bytes = 0;

  constructor(
    private readonly random: () => number,
    private readonly failRate = 0.2,
  ) {}

  commit(json: () => string): void {
    const change = this.tracker.build(json);
    if (this.random() < this.failRate) {
      this.failures += 1;
      return; // not applied, not landed: the next build must still carry every change since the last landed one
    }
    if (change.replace) {
      this.fields.clear();
      this.replaces += 1;
    }
    for (const field of change.del) this.fields.delete(field);
    for (let i = 0; i < change.set.length; i += 2) this.fields.set(change.set[i]!, change.set[i + 1]!);
    this.tracker.landed();
    this.commits += 1;
    this.bytes += changeBytes(change);
    expect(assembleState({ fields: this.fields })).toBe(json());
  }
}
