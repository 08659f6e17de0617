/**
 * The risk service's decisions counted per source, for trade.signal.decisions
 * (docs/feedback.md): the figures the monitor's GET /sources shows, exactly as counting
 * every approval and rejection would give them, in one small message per batch instead of
 * the monitor reading ~1 KB of decision record per signal. Deterministic, no I/O.
 */
import { DECISION_COUNTS_MAX_SOURCES, SCHEMA_VERSION, type DecisionCounts, type ReasonCode, type SourceDecisions } from './messages.js';

export class DecisionTally {
  /** Insertion order is the order of each source's first decision (kept in the message). */
  readonly #sources = new Map<string, SourceDecisions>();

  #of(source: string): SourceDecisions {
    let counts = this.#sources.get(source);
    if (counts === undefined) {
      counts = { source, approved: 0, rejected: 0, rejected_by_reason: {} };
      this.#sources.set(source, counts);
    }
    return counts;
  }

  approved(source: string): void {
    this.#of(source).approved += 1;
  }

  /** A rejection counts once, and once for each of its reasons. */
  rejected(source: string, reasons: readonly ReasonCode[]): void {
    const counts = this.#of(source);
    counts.rejected += 1;
    for (const reason of reasons) counts.rejected_by_reason[reason] = (counts.rejected_by_reason[reason] ?? 0) + 1;
  }

  get empty(): boolean {
    return this.#sources.size === 0;
  }

  /**
   * The counts so far as messages stamped `now` (none when nothing was decided; more than
   * one only past DECISION_COUNTS_MAX_SOURCES sources), and starts again from zero.
   */
  drain(now: number): DecisionCounts[] {
    if (this.#sources.size === 0) return [];
    const all = [...this.#sources.values()];
    this.#sources.clear();
    const messages: DecisionCounts[] = [];
    for (let i = 0; i < all.length; i += DECISION_COUNTS_MAX_SOURCES) {
      messages.push({ schema_version: SCHEMA_VERSION, sources: all.slice(i, i + DECISION_COUNTS_MAX_SOURCES), ts: now });
    }
    return messages;
  }
}
