import { describe, expect, it } from 'vitest';
import { MAX_SOURCES, SourceBook } from './analytics/attribution.js';
import { DecisionTally } from './decision-counts.js';
import { DECISION_COUNTS_MAX_SOURCES, DecisionCounts, type ReasonCode } from './messages.js';

const WINDOWS = { referenceTrades: 200, recentTrades: 50, ksAlpha: 0.01 };

type Decision = { source: string; reasons: ReasonCode[] | null };

function decisions(n: number, sources: number): Decision[] {
  const reasons: ReasonCode[][] = [['LOW_CONFIDENCE'], ['STALE_SIGNAL', 'LOW_CONFIDENCE'], ['COOLDOWN']];
  return Array.from({ length: n }, (_, i) => ({ source: `s${(i * 7) % sources}`, reasons: i % 3 === 0 ? null : reasons[i % reasons.length]! }));
}

describe('DecisionTally', () => {
  it('counts per source in the order of first decision, a rejection once and once per reason; drain starts again', () => {
    const tally = new DecisionTally();
    expect(tally.drain(1)).toEqual([]);
    tally.approved('b');
    tally.rejected('a', ['LOW_CONFIDENCE', 'STALE_SIGNAL']);
    tally.rejected('b', ['LOW_CONFIDENCE']);
    tally.approved('b');
    const [message, ...rest] = tally.drain(5);
    expect(rest).toEqual([]);
    expect(DecisionCounts.parse(message)).toEqual({
      schema_version: 1,
      ts: 5,
      sources: [
        { source: 'b', approved: 2, rejected: 1, rejected_by_reason: { LOW_CONFIDENCE: 1 } },
        { source: 'a', approved: 0, rejected: 1, rejected_by_reason: { LOW_CONFIDENCE: 1, STALE_SIGNAL: 1 } },
      ],
    });
    expect(tally.empty).toBe(true);
    expect(tally.drain(6)).toEqual([]);
  });

  it('splits past DECISION_COUNTS_MAX_SOURCES sources, each message within the schema', () => {
    const tally = new DecisionTally();
    for (let i = 0; i < DECISION_COUNTS_MAX_SOURCES + 5; i += 1) tally.approved(`s${i}`);
    const messages = tally.drain(1);
    expect(messages.map((m) => m.sources.length)).toEqual([DECISION_COUNTS_MAX_SOURCES, 5]);
    for (const m of messages) expect(() => DecisionCounts.parse(m)).not.toThrow();
    expect(() => DecisionCounts.parse({ ...messages[0], sources: [...messages[0]!.sources, ...messages[1]!.sources] })).toThrow();
  });

  it('fed to SourceBook.onDecisions batch by batch, gives the report of every decision counted one by one, (other) included', () => {
    const all = decisions(3000, MAX_SOURCES + 40);
    const one = new SourceBook(WINDOWS);
    for (const d of all) {
      if (d.reasons === null) one.onApproved(d.source);
      else one.onRejected(d.source, d.reasons);
    }
    const batched = new SourceBook(WINDOWS);
    for (let i = 0; i < all.length; i += 256) {
      const tally = new DecisionTally();
      for (const d of all.slice(i, i + 256)) {
        if (d.reasons === null) tally.approved(d.source);
        else tally.rejected(d.source, d.reasons);
      }
      for (const message of tally.drain(0)) for (const source of message.sources) batched.onDecisions(source);
    }
    expect(batched.report(0.65)).toEqual(one.report(0.65));
    expect(batched.report(0.65).some((r) => r.source === '(other)')).toBe(true);
  });
});
