/**
 * What `quantum up` writes to its log (quantum-up.log on a terminal): start and stop,
 * every change of the trading state and of the bus connection one by one (rare), and the
 * frequent events (signals, approvals, rejections by reason, fills, closes) as one
 * activity line per interval, so the log stays bounded at any signal rate.
 */
import type { Logger } from '../platform/logger.js';
import { REJECTIONS_EVENT } from '../services/risk/service.js';

export interface ActivityTotals {
  received: number;
  skipped: number;
  approved: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  fills: number;
  orderRejects: number;
  closes: number;
}

/** The per-signal log messages `up` folds into the activity lines instead of writing one by one. */
export const FOLDED_MESSAGES: ReadonlySet<string> = new Set(['signal rejected']);

/** The `event`s of the services' periodic counts that `up`'s activity lines already hold (risk's rejections by reason). */
export const FOLDED_EVENTS: ReadonlySet<string> = new Set([REJECTIONS_EVENT]);

export const ACTIVITY_INTERVAL_MS = 60_000;

export class UpJournal {
  private last: ActivityTotals | null = null;
  private lastActivityAt = 0;
  private tradingState: string | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = ACTIVITY_INTERVAL_MS,
  ) {}

  started(now: number, details: Record<string, unknown>, totals: ActivityTotals): void {
    this.last = totals;
    this.lastActivityAt = now;
    this.logger.info(details, 'quantum up started');
  }

  /** Called on every screen refresh: logs what changed, and the activity once per interval. */
  observe(now: number, totals: ActivityTotals, tradingState: string, bus: { change: 'down' | 'up' | null; label: string }): void {
    if (tradingState !== this.tradingState) {
      const level = tradingState === 'ACTIVE' ? 'info' : 'warn';
      this.logger[level]({ trading_state: tradingState, previous: this.tradingState }, `trading state: ${tradingState}`);
      this.tradingState = tradingState;
    }
    if (bus.change === 'down') this.logger.warn({ bus: bus.label }, `bus ${bus.label}`);
    if (bus.change === 'up') this.logger.info({ bus: bus.label }, `bus ${bus.label}`);
    if (now - this.lastActivityAt >= this.intervalMs) this.activity(now, totals);
  }

  stopped(now: number, totals: ActivityTotals, signal: string): void {
    this.activity(now, totals);
    this.logger.info({ signal, totals }, 'quantum up stopped');
  }

  private activity(now: number, totals: ActivityTotals): void {
    const last = this.last ?? zeroTotals();
    const delta = difference(totals, last);
    const seconds = Math.max(0, Math.round((now - this.lastActivityAt) / 1000));
    this.last = totals;
    this.lastActivityAt = now;
    this.logger.info(
      { interval_s: seconds, ...delta },
      `activity over ${seconds} s: ${delta.received} signals, ${delta.approved} approved, ${delta.rejected} rejected, ` +
        `${delta.fills} fills, ${delta.closes} closes`,
    );
  }
}

function zeroTotals(): ActivityTotals {
  return { received: 0, skipped: 0, approved: 0, rejected: 0, rejectedByReason: {}, fills: 0, orderRejects: 0, closes: 0 };
}

function difference(now: ActivityTotals, before: ActivityTotals) {
  const reasons: Record<string, number> = {};
  for (const [reason, n] of Object.entries(now.rejectedByReason)) {
    const d = n - (before.rejectedByReason[reason] ?? 0);
    if (d > 0) reasons[reason] = d;
  }
  return {
    received: now.received - before.received,
    skipped: now.skipped - before.skipped,
    approved: now.approved - before.approved,
    rejected: now.rejected - before.rejected,
    rejected_by_reason: reasons,
    fills: now.fills - before.fills,
    order_rejects: now.orderRejects - before.orderRejects,
    closes: now.closes - before.closes,
  };
}
