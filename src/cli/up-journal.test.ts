import { describe, expect, it } from 'vitest';
import { UpJournal, type ActivityTotals } from './up-journal.js';
import { upLogger } from './up.js';

function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = upLogger({ write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

const totalsAt = (s: number): ActivityTotals => ({
  received: 200 * s,
  skipped: 20 * s,
  approved: Math.floor(s / 10),
  rejected: 180 * s - Math.floor(s / 10),
  rejectedByReason: { POSITION_LIMIT: 150 * s, COOLDOWN: 40 * s },
  fills: Math.floor(s / 10),
  orderRejects: 0,
  closes: Math.floor(s / 30),
});

describe('quantum up log (UpJournal)', () => {
  it('records start, stop, every state change and bus change one by one, and activity as one line a minute', () => {
    const { logger, lines } = memoryLogger();
    const journal = new UpJournal(logger, 60_000);
    journal.started(0, { bus: 'embedded' }, totalsAt(0));
    for (let s = 1; s <= 600; s++) {
      // 200 signals/s for ten minutes, a cooldown every 100 s, one bus outage.
      const state = s % 100 < 10 ? 'COOLDOWN until 12:01' : 'ACTIVE';
      const change = s === 300 ? 'down' : s === 320 ? 'up' : null;
      journal.observe(s * 1000, totalsAt(s), state, { change, label: change === 'down' ? 'DOWN since 12:05:00' : 'connected' });
    }
    journal.stopped(600_500, totalsAt(600), 'SIGINT');
    const messages = lines.map((l) => String(l.msg));
    expect(messages[0]).toBe('quantum up started');
    expect(messages.at(-1)).toBe('quantum up stopped');
    const activity = lines.filter((l) => String(l.msg).startsWith('activity over'));
    expect(activity).toHaveLength(11); // ten full minutes and the last half second
    expect(activity[0]).toMatchObject({ interval_s: 60, received: 12_000, rejected_by_reason: { POSITION_LIMIT: 9000, COOLDOWN: 2400 } });
    expect(messages.filter((m) => m.startsWith('trading state: COOLDOWN'))).toHaveLength(7);
    expect(messages).toContain('bus DOWN since 12:05:00');
    expect(messages).toContain('bus connected');
    // Bounded: 120,000 signals made fewer than 40 lines.
    expect(lines.length).toBeLessThan(40);
  });

  it('folds the per-signal rejection warnings into the activity lines; other warnings pass one by one', () => {
    const { logger, lines } = memoryLogger();
    const child = logger.child({ service: 'risk' });
    for (let i = 0; i < 1000; i++) child.warn({ signal_id: `s${i}`, reasons: ['COOLDOWN'] }, 'signal rejected');
    child.warn({ signal_id: 'x' }, 'approved order got no execution result in time; it no longer counts as in flight');
    expect(lines.map((l) => l.msg)).toEqual(['approved order got no execution result in time; it no longer counts as in flight']);
  });
});
