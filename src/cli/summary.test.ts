import { describe, expect, it } from 'vitest';
import { BusWatch } from '../core/bus-watch.js';
import { renderSummary, renderSummaryLine, type SummaryFigures } from './summary.js';
import { describeBus, timeOfDay } from './up.js';

function figures(patch: Partial<SummaryFigures> = {}): SummaryFigures {
  return {
    uptimeS: 180,
    bus: 'embedded',
    urls: { risk: 'http://127.0.0.1:8003', execution: 'http://127.0.0.1:8002', monitor: 'http://127.0.0.1:8004' },
    signals: { received: 358, skipped: 28, approved: 9, rejected: 321, approvalRate: 9 / 330 },
    topReasons: [
      ['COOLDOWN', 289],
      ['POSITION_LIMIT', 167],
    ],
    tradingState: 'COOLDOWN until 14:05',
    busState: 'connected',
    fills: { orders: 9, fills: 9, rejects: 0, fillRate: 1, avgSlippagePct: 0.0005 },
    portfolio: { equity: 9990, balance: 9990, realized: -10, unrealized: 0, fees: 4, drawdownPct: 0.001, exposurePct: 0, winRate: 0, closedTrades: 1 },
    positions: [],
    demo: true,
    ...patch,
  };
}

describe('quantum up screen', () => {
  it('names the state that blocks entries and the bus, and labels the reasons as counts of reasons', () => {
    const text = renderSummary(figures({ profile: 'demo profile: cooldown 1 min' }));
    expect(text).toContain('Trading   [COOLDOWN until 14:05]   bus connected');
    expect(text).toContain('Rejected  reasons (a rejection may have several): COOLDOWN 289 · POSITION_LIMIT 167');
    expect(text).toContain('demo profile: cooldown 1 min');
    expect(renderSummaryLine(figures({ tradingState: 'DAILY LIMIT (until 00:00 UTC)' }))).toContain('DAILY LIMIT (until 00:00 UTC) · bus connected');
  });

  it('says when the bus is down, since when, and when it came back', () => {
    const watch = new BusWatch();
    const down = Date.UTC(2026, 0, 5, 12, 3, 4);
    watch.observe(false, down);
    expect(describeBus(watch.status)).toBe(`DOWN since ${timeOfDay(down, true)} (retrying; figures may be stale)`);
    watch.observe(true, down + 66_000);
    expect(describeBus(watch.status)).toBe(`connected, back since ${timeOfDay(down + 66_000, true)} (was down 1m06s)`);
    expect(renderSummary(figures({ busState: describeBus(watch.status) }))).toContain('(was down 1m06s)');
  });
});
