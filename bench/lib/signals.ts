/**
 * The benchmark's signal mix: what a model trading five symbols sends, with most signals
 * reaching a fill.
 *
 * Signals go round-robin over the five default symbols; each symbol walks the same
 * cycle of ten: BUY/SELL pairs (an entry, then its close) at confidences 0.70–0.90,
 * one low-confidence BUY while flat (rejected LOW_CONFIDENCE) and one HOLD (skipped).
 * So 8 in 10 signals are approved and filled, 1 is rejected, 1 is skipped. Every phase
 * sends a whole number of cycles (a multiple of CYCLE_SIGNALS), so each ends flat and
 * the next starts from the same book.
 */
export const BENCH_SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT'] as const;

interface Step {
  action: 'BUY' | 'SELL' | 'HOLD';
  confidence: number;
}

const CYCLE: readonly Step[] = [
  { action: 'BUY', confidence: 0.8 },
  { action: 'SELL', confidence: 0.75 },
  { action: 'BUY', confidence: 0.85 },
  { action: 'SELL', confidence: 0.7 },
  { action: 'BUY', confidence: 0.55 }, // flat, so an entry: rejected LOW_CONFIDENCE
  { action: 'BUY', confidence: 0.9 },
  { action: 'SELL', confidence: 0.8 },
  { action: 'HOLD', confidence: 0.6 }, // skipped
  { action: 'BUY', confidence: 0.72 },
  { action: 'SELL', confidence: 0.88 },
];

/** Signals in one full cycle over every symbol. */
export const CYCLE_SIGNALS = CYCLE.length * BENCH_SYMBOLS.length;

/** The fraction of signals the risk gate approves with this mix (checked against /stats). */
export const EXPECTED_APPROVED_FRACTION = 0.8;

/** `count` rounded up to whole cycles. */
export function wholeCycles(count: number): number {
  return Math.max(CYCLE_SIGNALS, Math.ceil(count / CYCLE_SIGNALS) * CYCLE_SIGNALS);
}

/** Signal ids are `<run>-<index>`, so a tail reader maps a fill back to its send time. */
export function signalId(run: string, index: number): string {
  return `${run}-${index}`;
}

/** The index from a signal id of this run, or -1. */
export function signalIndex(run: string, id: string): number {
  if (!id.startsWith(run) || id.charCodeAt(run.length) !== 45 /* - */) return -1;
  const index = Number(id.slice(run.length + 1));
  return Number.isInteger(index) ? index : -1;
}

/** Signal `index` as a producer publishes it (id, timestamp and version optional on the wire). */
export function signalMessage(run: string, index: number, ts: number) {
  const step = CYCLE[Math.floor(index / BENCH_SYMBOLS.length) % CYCLE.length] as Step;
  return {
    signal_id: signalId(run, index),
    symbol: BENCH_SYMBOLS[index % BENCH_SYMBOLS.length] as string,
    action: step.action,
    confidence: step.confidence,
    source: 'bench',
    ts,
  };
}

/** The JSON payload of signal `index`, as a producer in any language would write it. */
export function signalPayload(run: string, index: number, ts: number): string {
  return JSON.stringify(signalMessage(run, index, ts));
}

/**
 * The configuration of the loop under test (services and embedded alike): the default
 * risk rules, with the daily entry limit and the cooldown lifted, no price steps, no
 * mark-to-market timer. Fees, slippage and the simulator's synthetic spread are 0 so a
 * round trip at an unchanged price nets exactly 0: with any cost every round trip loses,
 * and after ten losing round trips the gate (rightly) finds no edge (NEGATIVE_EDGE) and
 * stops approving entries. The fill and fee models still run on every order.
 */
export const BENCH_CONFIG = {
  risk: { max_daily_entries: 1_000_000_000, cooldown_minutes: 0 },
  execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 },
  monitor: { mark_interval_ms: 0 },
  market: { simulator_spread_pct: 0 },
} as const;
