/**
 * The Risk Safety service on Redis (SPEC §4, §7, §8): the real service, launched with
 * `launchService` on a RedisBus with a stream prefix of its own per test, fed through
 * the bus exactly as producers feed it (PriceTicks on market.tick, TradeSignals on
 * trade.signal.v5, ExecutionResults on trade.execution.res), and read back from
 * trade.signal.safe / trade.signal.rejected / the DLQ and over HTTP with `inject`.
 *
 * Decisions take their time from a ManualClock, so the UTC day and the cooldown are
 * tested to the millisecond. Nothing sleeps: every wait polls with a deadline.
 *
 * Ordering used throughout: the service reads its topics in the order tick, execution,
 * signal, and a read returns every entry present at that moment. So a tick or a fill
 * published (awaited) before a signal is always applied before that signal is decided;
 * a tick published after a signal is only guaranteed to come after it once the
 * signal's decision has been seen.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { createBus } from '../src/bus/factory.js';
import { publishTradeSignal, type TradeSignalExtra } from '../src/bus/publish.js';
import { TOPICS, dlqTopic } from '../src/bus/topics.js';
import { ManualClock, type Clock } from '../src/core/clock.js';
import type {
  CheckEntry,
  ExecutionResult,
  OrderSide,
  RiskApprovedSignal,
  RiskRejection,
  TradeSignal,
} from '../src/core/messages.js';
import { systemClock } from '../src/platform/clock.js';
import { defaultConfig } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { readSnapshotText } from '../src/services/common/host.js';
import { cleanupPrefix, redisUrl, startPrivateRedis, uniquePrefix, waitFor, type PrivateRedis } from './helpers/redis.js';

// ---------------------------------------------------------------------------------
// Harness: buses, services and prefixes made by a test are all released after it.

const url = redisUrl();
const prefixes: string[] = [];
const buses: EventBus[] = [];
const launched: Launched[] = [];
const privateRedis: PrivateRedis[] = [];

afterEach(async () => {
  for (const service of launched.splice(0).reverse()) await service.stop();
  for (const bus of buses.splice(0)) await bus.close();
  for (const redis of privateRedis.splice(0)) await redis.destroy();
  await Promise.all(prefixes.splice(0).map((prefix) => cleanupPrefix(url, prefix)));
});

/** A fresh prefix on the shared Redis (cleaned up after the test). */
function newPrefix(name: string): string {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  return prefix;
}

async function openBus(prefix: string, redis = url): Promise<EventBus> {
  const bus = await createBus({ redisUrl: redis, prefix, onError: () => undefined });
  buses.push(bus);
  return bus;
}

type ConfigPatch = Parameters<typeof defaultConfig>[0];

async function startRisk(bus: EventBus, clock: Clock, patch: ConfigPatch = {}): Promise<Launched<'risk'>> {
  const service = await launchService('risk', { bus, config: defaultConfig(patch), clock, logger: silentLogger });
  launched.push(service);
  return service;
}

async function startExecution(bus: EventBus, clock: Clock, patch: ConfigPatch = {}): Promise<Launched<'execution'>> {
  const service = await launchService('execution', {
    bus,
    config: defaultConfig({ ...patch, execution: { price_interval_ms: 0 } }),
    clock,
    logger: silentLogger,
  });
  launched.push(service);
  return service;
}

/** Stops one service started by this test (and forgets it). */
async function stopService(service: Launched): Promise<void> {
  launched.splice(launched.indexOf(service), 1);
  await service.stop();
}

/** 2026-11-24 12:00:00 UTC. */
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const MINUTE = 60_000;

const START_PRICES: Record<string, number> = {
  BTCUSDT: 65_000,
  ETHUSDT: 3_500,
  BNBUSDT: 600,
  SOLUSDT: 150,
  XRPUSDT: 0.6,
};
const SYMBOLS = Object.keys(START_PRICES);

async function tick(bus: EventBus, symbol: string, price: number, ts: number): Promise<void> {
  await bus.publish(TOPICS.tick, { schema_version: 1, symbol, price, ts, source: 'manual' });
}

async function tickAll(bus: EventBus, ts: number): Promise<void> {
  for (const symbol of SYMBOLS) await tick(bus, symbol, START_PRICES[symbol]!, ts);
}

let sequence = 0;
function nextId(label: string): string {
  sequence += 1;
  return `${label}-${sequence}-${randomBytes(3).toString('hex')}`;
}

async function signal(
  bus: EventBus,
  clock: Clock,
  symbol: string,
  action: TradeSignal['action'],
  confidence: number,
  extra: TradeSignalExtra & { source?: string } = {},
): Promise<TradeSignal> {
  const { source = 'test', ...rest } = extra;
  return publishTradeSignal(bus, symbol, action, confidence, source, { signal_id: nextId('sig'), ...rest }, clock);
}

/** An ExecutionResult as the execution service would publish it (fee 0.04%). */
function fillOf(p: { symbol: string; side: OrderSide; quantity: number; price: number; ts: number; signalId?: string }): ExecutionResult {
  const notional = p.quantity * p.price;
  return {
    schema_version: 1,
    order_id: `PAPER-${randomBytes(6).toString('hex')}`,
    signal_id: p.signalId ?? nextId('fill'),
    symbol: p.symbol,
    side: p.side,
    quantity: p.quantity,
    reference_price: p.price,
    fill_price: p.price,
    slippage_pct: 0,
    fee_usd: Math.round(notional * 0.0004 * 1e8) / 1e8,
    fee_rate: 0.0004,
    notional_usd: notional,
    status: 'FILLED',
    signal_ts: p.ts,
    ts: p.ts,
    reduce_only: false,
    origin: 'signal',
  };
}

async function publishFill(bus: EventBus, fill: ExecutionResult): Promise<void> {
  await bus.publish(TOPICS.execution, fill);
}

// -- reading outputs ---------------------------------------------------------------

async function payloadsOf<T>(bus: EventBus, topic: string): Promise<T[]> {
  const entries = await bus.readAfter(topic, '0', 100_000);
  return entries.map((entry) => JSON.parse(entry.fields.payload ?? 'null') as T);
}

type Decision = { kind: 'approved'; message: RiskApprovedSignal } | { kind: 'rejected'; message: RiskRejection };

async function decisionsOf(bus: EventBus, signalId: string): Promise<Decision[]> {
  const [safe, rejected] = await Promise.all([
    payloadsOf<RiskApprovedSignal>(bus, TOPICS.safe),
    payloadsOf<RiskRejection>(bus, TOPICS.rejected),
  ]);
  return [
    ...safe.filter((m) => m.signal_id === signalId).map((message): Decision => ({ kind: 'approved', message })),
    ...rejected.filter((m) => m.signal_id === signalId).map((message): Decision => ({ kind: 'rejected', message })),
  ];
}

async function decisionOf(bus: EventBus, signalId: string): Promise<Decision> {
  const found = await waitFor(async () => (await decisionsOf(bus, signalId))[0], { what: `the decision on ${signalId}` });
  return found;
}

async function approvalOf(bus: EventBus, signalId: string): Promise<RiskApprovedSignal> {
  const decision = await decisionOf(bus, signalId);
  if (decision.kind !== 'approved') throw new Error(`${signalId} was rejected: ${decision.message.reasons.join(', ')}`);
  return decision.message;
}

async function rejectionOf(bus: EventBus, signalId: string): Promise<RiskRejection> {
  const decision = await decisionOf(bus, signalId);
  if (decision.kind !== 'rejected') throw new Error(`${signalId} was approved (${decision.message.intent})`);
  return decision.message;
}

function check(checks: CheckEntry[] | undefined, rule: string): CheckEntry {
  const found = checks?.find((c) => c.rule === rule);
  if (!found) throw new Error(`no "${rule}" check in ${JSON.stringify(checks)}`);
  return found;
}

// -- HTTP --------------------------------------------------------------------------

interface Stats {
  trading_state: 'ACTIVE' | 'HALTED';
  balance_usd: number;
  equity_usd: number;
  peak_equity_usd: number;
  drawdown_pct: number;
  exposure_pct: number;
  win_rate: number;
  closed_trades: number;
  entries_today: number;
  cooldown_until: number | null;
  open_positions: number;
  inflight_orders: number;
  counts: {
    received: number;
    skipped: number;
    approved: number;
    rejected: number;
    rejected_by_reason: Record<string, number>;
    duplicates: number;
    fills_seen: number;
  };
  approval_rate: number | null;
}

async function stats(risk: Launched<'risk'>): Promise<Stats> {
  const res = await risk.app.inject({ method: 'GET', url: '/stats' });
  expect(res.statusCode).toBe(200);
  return res.json<Stats>();
}

async function statsWhen(risk: Launched<'risk'>, ok: (s: Stats) => boolean, what: string): Promise<Stats> {
  return waitFor(async () => {
    const s = await stats(risk);
    return ok(s) ? s : undefined;
  }, { what });
}

/**
 * Waits until `count` decisions are on trade.signal.safe + trade.signal.rejected. The
 * counters in /stats move while a batch is handled, its outputs land when the batch is
 * committed a moment later: read outputs only after this.
 */
async function decisionsPublished(bus: EventBus, count: number): Promise<void> {
  await waitFor(async () => (await bus.length(TOPICS.safe)) + (await bus.length(TOPICS.rejected)) === count, {
    what: `${count} decisions on the output streams`,
  });
}

/** Sums money given with at most 8 decimals exactly (integer units of 1e-8). */
function sumUsd(values: number[]): number {
  return values.reduce((sum, v) => sum + Math.round(v * 1e8), 0) / 1e8;
}

// ---------------------------------------------------------------------------------

describe('Risk Safety service on Redis', () => {
  it('sizes 0.85 → 1,000 USDT and 0.65 → 750, rejects 0.60 LOW_CONFIDENCE with its record, skips HOLD', async () => {
    const bus = await openBus(newPrefix('risk-sizing'));
    const clock = new ManualClock(T0);
    const risk = await startRisk(bus, clock);
    await tickAll(bus, T0);

    const a = await signal(bus, clock, 'BTCUSDT', 'BUY', 0.85);
    const approvedA = await approvalOf(bus, a.signal_id);
    expect(approvedA).toMatchObject({ intent: 'OPEN', side: 'BUY', reduce_only: false, origin: 'signal', reference_price: 65_000 });
    // kelly 0.85 − 0.15/1 = 0.70, × 0.25 = 0.175, capped at 10%: 1,000 USDT, less the step rounding.
    expect(approvedA.kelly_optimal).toBeCloseTo(0.7, 12);
    expect(approvedA.kelly_applied).toBe(0.1);
    expect(approvedA.notional_usd).toBeLessThanOrEqual(1000);
    expect(approvedA.notional_usd).toBeGreaterThan(999);
    expect(approvedA.quantity).toBe(0.01538); // floor(1000 / 65000) to the 0.00001 step
    expect(approvedA.sizing).toMatchObject({ p: 0.85, b: 1, b_source: 'default', equity_usd: 10_000 });

    const b = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.65);
    const approvedB = await approvalOf(bus, b.signal_id);
    // kelly 0.65 − 0.35 = 0.30, × 0.25 = 0.075 of equity (10,000 less the in-flight BTC order's fee and slippage).
    expect(approvedB.kelly_applied).toBeCloseTo(0.075, 12);
    expect(approvedB.notional_usd).toBeLessThanOrEqual(750);
    expect(approvedB.notional_usd).toBeGreaterThan(749);
    expect(check(approvedB.checks, 'confidence')).toMatchObject({ value: 0.65, limit: 0.65, passed: true });

    const c = await signal(bus, clock, 'BNBUSDT', 'BUY', 0.6);
    const rejectedC = await rejectionOf(bus, c.signal_id);
    expect(rejectedC.reasons).toEqual(['LOW_CONFIDENCE']);
    expect(check(rejectedC.checks, 'confidence')).toEqual({ rule: 'confidence', passed: false, value: 0.6, limit: 0.65 });
    expect(rejectedC).toMatchObject({ signal_id: c.signal_id, symbol: 'BNBUSDT', action: 'BUY', confidence: 0.6, signal_ts: T0 });

    const hold = await signal(bus, clock, 'SOLUSDT', 'HOLD', 0.9);
    const after = await signal(bus, clock, 'SOLUSDT', 'BUY', 0.3);
    await rejectionOf(bus, after.signal_id); // decided after the HOLD, so the HOLD was handled
    expect(await decisionsOf(bus, hold.signal_id)).toEqual([]);
    const s = await stats(risk);
    expect(s.counts).toMatchObject({ received: 5, skipped: 1, approved: 2, rejected: 2, rejected_by_reason: { LOW_CONFIDENCE: 2 } });
    expect(s.approval_rate).toBe(0.5);
  });

  it('halts at a 15% drawdown: entries rejected CIRCUIT_BREAKER, an opposite signal still closes, POST /resume re-arms', async () => {
    const bus = await openBus(newPrefix('risk-breaker'));
    const clock = new ManualClock(T0);
    // One large position (90% of equity) so a 20% price drop is an honest 15%+ drawdown;
    // no cooldown, so the losing close does not mask what /resume re-arms.
    const patch = { risk: { max_position_pct: 1, max_exposure_pct: 1, kelly_fraction: 1, cooldown_minutes: 0 } };
    const risk = await startRisk(bus, clock, patch);
    await startExecution(bus, clock, patch); // publishes the start prices (BTCUSDT 65,000)

    const buy = await signal(bus, clock, 'BTCUSDT', 'BUY', 0.95);
    const order = await approvalOf(bus, buy.signal_id);
    expect(order.kelly_applied).toBeCloseTo(0.9, 12);
    expect(order.notional_usd).toBeGreaterThan(8999);
    const filled = await waitFor(async () =>
      (await payloadsOf<ExecutionResult>(bus, TOPICS.execution)).find((r) => r.signal_id === buy.signal_id));
    expect(filled.status).toBe('FILLED');
    await statsWhen(risk, (s) => s.counts.fills_seen === 1 && s.inflight_orders === 0, 'the fill applied by risk');

    clock.advance(1000);
    await tick(bus, 'BTCUSDT', 52_000, clock.now()); // −20% on a 9,000 USDT position
    const halted = await statsWhen(risk, (s) => s.trading_state === 'HALTED', 'the circuit breaker');
    expect(halted.drawdown_pct).toBeGreaterThanOrEqual(0.15);
    expect(halted.peak_equity_usd).toBe(10_000);
    // What the QuantumTradingHalted and QuantumDrawdownNearLimit alerts read.
    const haltedMetrics = (await risk.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(haltedMetrics).toMatch(/^qt_trading_halted\{reason="CIRCUIT_BREAKER",service="risk"\} 1$/m);
    expect(haltedMetrics).toMatch(/^qt_drawdown_limit_ratio\{service="risk"\} 0\.15$/m);
    expect(haltedMetrics).toMatch(/^qt_peak_equity_usd\{service="risk"\} 10000$/m);

    const entry = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.9);
    const refused = await rejectionOf(bus, entry.signal_id);
    expect(refused.reasons).toEqual(['CIRCUIT_BREAKER']);
    expect(check(refused.checks, 'circuit_breaker')).toMatchObject({ passed: false, limit: 0.15 });
    expect(check(refused.checks, 'circuit_breaker').value).toBeGreaterThanOrEqual(0.15);

    // An opposite signal closes the whole position, halted or not, whatever its confidence.
    const sell = await signal(bus, clock, 'BTCUSDT', 'SELL', 0.5);
    const close = await approvalOf(bus, sell.signal_id);
    expect(close).toMatchObject({ intent: 'CLOSE', side: 'SELL', reduce_only: true, quantity: order.quantity, origin: 'signal' });
    const closed = await statsWhen(risk, (s) => s.counts.fills_seen === 2 && s.open_positions === 0, 'the close filled');
    expect(closed.trading_state).toBe('HALTED'); // flat again, still halted until an operator resumes
    expect(closed.closed_trades).toBe(1);

    const stillHalted = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.9);
    expect((await rejectionOf(bus, stillHalted.signal_id)).reasons).toEqual(['CIRCUIT_BREAKER']);

    const resumed = await risk.app.inject({ method: 'POST', url: '/resume' });
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json<Stats>()).toMatchObject({ trading_state: 'ACTIVE', drawdown_pct: 0 });
    expect(resumed.json<Stats>().peak_equity_usd).toBe(resumed.json<Stats>().equity_usd);
    expect((await risk.app.inject({ method: 'GET', url: '/metrics' })).body).toMatch(/^qt_trading_halted\{service="risk"\} 0$/m);

    const again = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.9);
    const reopened = await approvalOf(bus, again.signal_id);
    expect(reopened).toMatchObject({ intent: 'OPEN', side: 'BUY' });
    expect(check(reopened.checks, 'circuit_breaker')).toMatchObject({ passed: true, value: 0 });
  });

  it.each([
    { label: 'default limits (10% per symbol, 50% total)', maxExposure: 0.5 },
    { label: 'a 30% total limit binding before the symbol limits', maxExposure: 0.3 },
  ])('a burst of 200 BUYs before any fill never breaks a limit: $label', async ({ maxExposure }) => {
    const bus = await openBus(newPrefix('risk-burst'));
    const clock = new ManualClock(T0);
    const risk = await startRisk(bus, clock, { risk: { max_daily_entries: 1000, max_exposure_pct: maxExposure } });
    await tickAll(bus, T0);

    const burst: TradeSignal[] = Array.from({ length: 200 }, (_, i) => ({
      schema_version: 1,
      signal_id: `burst-${i}`,
      symbol: SYMBOLS[i % SYMBOLS.length]!,
      action: 'BUY',
      confidence: [0.66, 0.7, 0.75, 0.8, 0.9, 0.95, 0.99][i % 7]!,
      source: 'burst',
      ts: T0,
    }));
    await bus.publishMany(burst.map((payload) => ({ topic: TOPICS.signal, payload })));
    await decisionsPublished(bus, 200);
    const s = await stats(risk);
    expect(s.counts).toMatchObject({ received: 200, duplicates: 0 });

    const approvals = await payloadsOf<RiskApprovedSignal>(bus, TOPICS.safe);
    const rejections = await payloadsOf<RiskRejection>(bus, TOPICS.rejected);
    expect(approvals.length + rejections.length).toBe(200);
    expect(new Set([...approvals, ...rejections].map((m) => m.signal_id)).size).toBe(200);

    const equity = 10_000;
    let total = 0;
    for (const symbol of SYMBOLS) {
      const notional = sumUsd(approvals.filter((a) => a.symbol === symbol).map((a) => a.notional_usd));
      expect(notional, symbol).toBeLessThanOrEqual(0.1 * equity);
      total += notional;
    }
    expect(total).toBeLessThanOrEqual(maxExposure * equity);
    // The limits bind (the burst fills them to within a minimum order), not something else.
    expect(total).toBeGreaterThan(maxExposure * equity - 60);
    expect(s.exposure_pct).toBeLessThanOrEqual(maxExposure);
    for (const r of rejections) {
      expect(r.reasons.every((reason) => reason === 'POSITION_LIMIT' || reason === 'EXPOSURE_LIMIT'), r.reasons.join()).toBe(true);
    }
    if (maxExposure < 0.5) expect(s.counts.rejected_by_reason.EXPOSURE_LIMIT).toBeGreaterThan(0);
    expect(s.inflight_orders).toBe(approvals.length);
    expect(await bus.length(TOPICS.execution)).toBe(0); // nothing was filled: in-flight exposure alone held the limits
  });

  describe('decides once per signal_id', () => {
    it('drops the same signal published twice', async () => {
      const bus = await openBus(newPrefix('risk-dup'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock);
      await tickAll(bus, T0);

      const first = await signal(bus, clock, 'BTCUSDT', 'BUY', 0.85);
      await bus.publish(TOPICS.signal, first);
      const next = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      await approvalOf(bus, next.signal_id);
      expect(await decisionsOf(bus, first.signal_id)).toHaveLength(1);
      expect((await stats(risk)).counts).toMatchObject({ received: 2, approved: 2, duplicates: 1 });
    });

    it('across a restart: every signal decided once, counts continue, decisions equal an uninterrupted run', async () => {
      const clock = new ManualClock(T0);
      // No cooldown: closing an in-flight position is a (projected) losing round trip, and a
      // cooldown would turn most of the plan into COOLDOWN rejections.
      const patch = { risk: { max_daily_entries: 1000, cooldown_minutes: 0 } };
      // 80 signals: HOLDs, low confidence, closes of in-flight positions, limit hits, and three
      // re-published ids (at 15, 50 and 70) of signals handled before the stop: a rejection, a
      // HOLD (skipped: it leaves no output) and an approval.
      const actions: TradeSignal['action'][] = ['BUY', 'BUY', 'HOLD', 'SELL', 'BUY', 'CLOSE', 'BUY', 'SELL'];
      const plan: TradeSignal[] = [];
      for (let i = 0; i < 80; i += 1) {
        const repeat = i === 15 ? 1 : i === 50 ? 2 : i === 70 ? 4 : undefined;
        if (repeat !== undefined) {
          plan.push(plan[repeat]!);
          continue;
        }
        plan.push({
          schema_version: 1,
          signal_id: `restart-${i}`,
          symbol: SYMBOLS[(i * 3) % SYMBOLS.length]!,
          action: actions[i % actions.length]!,
          confidence: [0.9, 0.6, 0.7, 0.8, 0.66][i % 5]!,
          source: 'restart',
          ts: T0,
        });
      }
      const publishAll = async (bus: EventBus, signals: TradeSignal[]) => {
        for (const s of signals) await bus.publish(TOPICS.signal, s);
      };
      const handled = (s: Stats) => s.counts.received + s.counts.duplicates;
      // Between the two halves the market moves, so orders still in flight at the stop were
      // approved (and projected) at other prices than the ones the restarted instance sees.
      const moveMarket = async (bus: EventBus) => {
        const moves = [1.03, 0.97, 1.02, 0.98, 1.01];
        for (const [i, symbol] of SYMBOLS.entries()) await tick(bus, symbol, START_PRICES[symbol]! * moves[i]!, T0 + 1);
      };

      // Uninterrupted run.
      const busB = await openBus(newPrefix('risk-norestart'));
      const riskB = await startRisk(busB, clock, patch);
      await tickAll(busB, T0);
      await publishAll(busB, plan.slice(0, 40));
      await statsWhen(riskB, (s) => handled(s) === 40, 'the first half (uninterrupted)');
      await moveMarket(busB);
      await publishAll(busB, plan.slice(40));
      const statsB = await statsWhen(riskB, (s) => handled(s) === 80, 'the uninterrupted run');

      // The same with a stop in the middle of the second half.
      const prefixA = newPrefix('risk-restart');
      const busA = await openBus(prefixA);
      const first = await startRisk(busA, clock, patch);
      await tickAll(busA, T0);
      await publishAll(busA, plan.slice(0, 40));
      await statsWhen(first, (s) => handled(s) === 40, 'the first half');
      await moveMarket(busA);
      await publishAll(busA, plan.slice(40, 60));
      await statsWhen(first, (s) => handled(s) >= 45, 'the second half under way');
      await stopService(first);
      const snapshot = JSON.parse((await readSnapshotText(busA, 'risk')) ?? 'null') as { counters: Stats['counts'] };
      expect(snapshot.counters).toEqual(first.service.stats().counts); // the snapshot is exactly what was done
      const handledBefore = snapshot.counters.received + snapshot.counters.duplicates;
      expect(handledBefore).toBeGreaterThanOrEqual(45);
      expect(first.service.stats().inflight_orders).toBeGreaterThan(0);

      await publishAll(busA, plan.slice(60));
      const second = await startRisk(busA, clock, patch);
      expect(handled(await stats(second))).toBeGreaterThanOrEqual(handledBefore); // counts continue from the snapshot
      const statsA = await statsWhen(second, (s) => handled(s) === 80, 'the restarted run');

      expect(statsA.counts).toEqual(statsB.counts);
      const distinct = new Set(plan.map((s) => s.signal_id)).size;
      const holds = new Set(plan.filter((s) => s.action === 'HOLD').map((s) => s.signal_id)).size;
      await decisionsPublished(busA, distinct - holds);
      await decisionsPublished(busB, distinct - holds);
      expect(statsA.counts.received).toBe(distinct);
      expect(statsA.counts.duplicates).toBe(80 - distinct);
      expect(statsA.counts.skipped).toBe(holds);

      for (const bus of [busA, busB]) {
        const safe = await payloadsOf<RiskApprovedSignal>(bus, TOPICS.safe);
        const rejected = await payloadsOf<RiskRejection>(bus, TOPICS.rejected);
        const ids = [...safe, ...rejected].map((m) => m.signal_id);
        expect(ids.length).toBe(distinct - holds);
        expect(new Set(ids).size).toBe(ids.length);
      }
      // Same decisions, same sizes, same order (the clock is the same for both runs).
      expect(await payloadsOf(busA, TOPICS.safe)).toEqual(await payloadsOf(busB, TOPICS.safe));
      expect(await payloadsOf(busA, TOPICS.rejected)).toEqual(await payloadsOf(busB, TOPICS.rejected));
      expect(statsA.counts.approved).toBeGreaterThan(5);
      expect(statsA.counts.rejected).toBeGreaterThan(5);
      expect(Object.keys(statsA.counts.rejected_by_reason).length).toBeGreaterThan(1);
    });
  });

  describe('input from producers', () => {
    it('gives a signal without signal_id the id sig-<entry id> and decides it', async () => {
      const bus = await openBus(newPrefix('risk-raw'));
      const clock = new ManualClock(T0);
      // The id (and so the ts) is Redis's real time, not the manual clock's: age check off.
      await startRisk(bus, clock, { risk: { max_signal_age_ms: 0 } });
      await tickAll(bus, T0);
      const id = await bus.publishRaw(TOPICS.signal, {
        payload: JSON.stringify({ symbol: 'BTCUSDT', action: 'BUY', confidence: 0.85, source: 'xgb' }),
      });
      const approved = await approvalOf(bus, `sig-${id}`);
      expect(approved).toMatchObject({ symbol: 'BTCUSDT', action: 'BUY', source: 'xgb', schema_version: 1, intent: 'OPEN' });
      expect(approved.ts).toBe(Number(id.split('-')[0]));
    });

    it('sends malformed signals to trade.signal.v5.dlq naming the field, and goes on deciding', async () => {
      const bus = await openBus(newPrefix('risk-dlq'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock);
      await tickAll(bus, T0);
      const bad = [
        { payload: '{"symbol": "BTCUSDT", "action": "BUY", ' },
        { payload: JSON.stringify({ symbol: 'BTCUSDT', action: 'BUY', confidence: 1.5, source: 'xgb' }) },
        { payload: JSON.stringify({ symbol: 'btcusdt', action: 'BUY', confidence: 0.85, source: 'xgb' }) },
      ];
      const ids: string[] = [];
      for (const fields of bad) ids.push(await bus.publishRaw(TOPICS.signal, fields));
      const good = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      await approvalOf(bus, good.signal_id);

      const dlq = await bus.readAfter(dlqTopic(TOPICS.signal), '0', 100);
      expect(dlq.map((e) => e.fields.dlq_source_id)).toEqual(ids);
      expect(dlq.map((e) => e.fields.payload)).toEqual(bad.map((b) => b.payload));
      expect(dlq[0]!.fields.dlq_error).toMatch(/not valid JSON/);
      expect(dlq[1]!.fields.dlq_error).toMatch(/confidence/);
      expect(dlq[2]!.fields.dlq_error).toMatch(/symbol/);
      for (const entry of dlq) expect(entry.fields.dlq_group).toBe('risk-safety');
      expect((await stats(risk)).counts).toMatchObject({ received: 1, approved: 1, rejected: 0 });
    });
  });

  describe('closes', () => {
    it('closes the whole position even when halted, over the daily limit and cooling down', async () => {
      const bus = await openBus(newPrefix('risk-close-gates'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock, { risk: { max_daily_entries: 1, max_drawdown_pct: 0.05 } });
      await tickAll(bus, T0);

      // The day's one entry, filled.
      const buy = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      const order = await approvalOf(bus, buy.signal_id);
      await publishFill(bus, fillOf({ symbol: 'ETHUSDT', side: 'BUY', quantity: order.quantity, price: 3500, ts: T0, signalId: buy.signal_id }));
      // A losing BTC round trip of −650 USDT and fees: cooldown, and a 6.5% drawdown over the 5% maximum.
      await publishFill(bus, fillOf({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.1, price: 65_000, ts: T0 }));
      await publishFill(bus, fillOf({ symbol: 'BTCUSDT', side: 'SELL', quantity: 0.1, price: 58_500, ts: T0 + 1 }));
      await tick(bus, 'BTCUSDT', 58_500, T0 + 1);
      clock.set(T0 + 2);
      const s = await statsWhen(risk, (x) => x.counts.fills_seen === 3 && x.trading_state === 'HALTED', 'halted after the loss');
      expect(s).toMatchObject({ entries_today: 1, cooldown_until: T0 + 1 + 60 * MINUTE, open_positions: 1, closed_trades: 1 });

      const entry = await signal(bus, clock, 'SOLUSDT', 'BUY', 0.9);
      expect((await rejectionOf(bus, entry.signal_id)).reasons).toEqual(['CIRCUIT_BREAKER', 'COOLDOWN', 'DAILY_LIMIT']);

      const sell = await signal(bus, clock, 'ETHUSDT', 'SELL', 0.2);
      const close = await approvalOf(bus, sell.signal_id);
      expect(close).toMatchObject({ intent: 'CLOSE', side: 'SELL', reduce_only: true, quantity: order.quantity, origin: 'signal' });
      expect(check(close.checks, 'reduce_only_close')).toMatchObject({ passed: true, value: order.quantity });
      expect(close.checks?.map((c) => c.rule)).toEqual(['reduce_only_close']);
    });

    it('CLOSE on a flat symbol is NO_POSITION; two CLOSEs back to back close once; manual_close keeps its origin', async () => {
      const bus = await openBus(newPrefix('risk-close'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock);
      await tickAll(bus, T0);
      await publishFill(bus, fillOf({ symbol: 'SOLUSDT', side: 'BUY', quantity: 5, price: 150, ts: T0 }));
      await publishFill(bus, fillOf({ symbol: 'BNBUSDT', side: 'SELL', quantity: 1.5, price: 600, ts: T0 }));

      const flat = await signal(bus, clock, 'XRPUSDT', 'CLOSE', 1);
      const noPosition = await rejectionOf(bus, flat.signal_id);
      expect(noPosition.reasons).toEqual(['NO_POSITION']);
      expect(check(noPosition.checks, 'open_position')).toMatchObject({ passed: false, value: 0 });

      const c1 = await signal(bus, clock, 'SOLUSDT', 'CLOSE', 1);
      const c2 = await signal(bus, clock, 'SOLUSDT', 'CLOSE', 1);
      const [d1, d2] = [await decisionOf(bus, c1.signal_id), await decisionOf(bus, c2.signal_id)];
      expect(d1).toMatchObject({ kind: 'approved', message: { intent: 'CLOSE', side: 'SELL', quantity: 5, reduce_only: true } });
      expect(d2.kind).toBe('rejected');
      expect(d2.kind === 'rejected' && d2.message.reasons).toEqual(['NO_POSITION']);

      const manual = await signal(bus, clock, 'BNBUSDT', 'CLOSE', 1, { source: 'manual_close' });
      expect(await approvalOf(bus, manual.signal_id)).toMatchObject({
        intent: 'CLOSE',
        side: 'BUY', // closing a SHORT
        quantity: 1.5,
        reduce_only: true,
        origin: 'manual_close',
      });
      expect((await stats(risk)).counts).toMatchObject({ approved: 2, rejected: 2, rejected_by_reason: { NO_POSITION: 2 } });
    });
  });

  describe('time rules (ManualClock)', () => {
    it('the 20th entry of a UTC day passes, the 21st fails DAILY_LIMIT, entries pass again from 00:00 UTC', async () => {
      const bus = await openBus(newPrefix('risk-daily'));
      const dayEnd = Date.UTC(2026, 10, 25); // 2026-11-25 00:00:00.000 UTC
      const clock = new ManualClock(dayEnd - 10_000);
      // Small Kelly (0.7 × 0.01 = 70 USDT an entry) so 21 entries stay clear of the position and exposure
      // limits; no cooldown, because the CLOSE below is a (projected) losing round trip.
      const risk = await startRisk(bus, clock, { risk: { kelly_fraction: 0.01, cooldown_minutes: 0 } });
      await tickAll(bus, clock.now());

      for (let i = 1; i <= 20; i += 1) {
        const s = await signal(bus, clock, SYMBOLS[i % SYMBOLS.length]!, 'BUY', 0.85);
        const order = await approvalOf(bus, s.signal_id);
        expect(check(order.checks, 'daily_entries')).toMatchObject({ passed: true, value: i - 1, limit: 20 });
      }
      expect((await stats(risk)).entries_today).toBe(20);

      clock.set(dayEnd - 1);
      const over = await signal(bus, clock, 'BTCUSDT', 'BUY', 0.85);
      const refused = await rejectionOf(bus, over.signal_id);
      expect(refused.reasons).toEqual(['DAILY_LIMIT']);
      expect(check(refused.checks, 'daily_entries')).toMatchObject({ passed: false, value: 20, limit: 20 });

      // A close is not an entry and is never limited.
      const close = await signal(bus, clock, 'ETHUSDT', 'CLOSE', 1);
      expect((await approvalOf(bus, close.signal_id)).intent).toBe('CLOSE');

      clock.set(dayEnd);
      const nextDay = await signal(bus, clock, 'BTCUSDT', 'BUY', 0.85);
      const order = await approvalOf(bus, nextDay.signal_id);
      expect(check(order.checks, 'daily_entries')).toMatchObject({ passed: true, value: 0 });
      expect((await stats(risk)).entries_today).toBe(1);
    });

    it('after a losing round trip, entries are rejected COOLDOWN until 60 minutes later', async () => {
      const bus = await openBus(newPrefix('risk-cooldown'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock);
      await tickAll(bus, T0);
      const closedAt = T0 + 5 * MINUTE;
      await publishFill(bus, fillOf({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.01, price: 65_000, ts: T0 }));
      await publishFill(bus, fillOf({ symbol: 'BTCUSDT', side: 'SELL', quantity: 0.01, price: 64_000, ts: closedAt }));
      clock.set(closedAt);
      const s = await statsWhen(risk, (x) => x.closed_trades === 1, 'the losing round trip');
      expect(s).toMatchObject({ cooldown_until: closedAt + 60 * MINUTE, win_rate: 0 });

      const during = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      const refused = await rejectionOf(bus, during.signal_id);
      expect(refused.reasons).toEqual(['COOLDOWN']);
      expect(check(refused.checks, 'cooldown')).toMatchObject({ passed: false, value: 0, limit: 60 });

      clock.set(closedAt + 60 * MINUTE - 1);
      const last = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      expect((await rejectionOf(bus, last.signal_id)).reasons).toEqual(['COOLDOWN']);

      clock.set(closedAt + 60 * MINUTE);
      const after = await signal(bus, clock, 'ETHUSDT', 'BUY', 0.85);
      const order = await approvalOf(bus, after.signal_id);
      expect(check(order.checks, 'cooldown')).toMatchObject({ passed: true, value: 60 });
      expect((await stats(risk)).cooldown_until).toBeNull();
    });
  });

  describe('HTTP', () => {
    it('GET /health is 200 on a live bus and 503 when the bus is unreachable, 200 again after', async () => {
      const redis = await startPrivateRedis({ appendonly: false });
      privateRedis.push(redis);
      const bus = await openBus(uniquePrefix('risk-health'), redis.url);
      const risk = await startRisk(bus, systemClock);

      const up = await risk.app.inject({ method: 'GET', url: '/health' });
      expect(up.statusCode).toBe(200);
      expect(up.json()).toMatchObject({ status: 'ok', service: 'risk-safety', bus: { kind: 'redis', connected: true }, trading_state: 'ACTIVE', approval_rate: null });

      await redis.stop();
      const down = await waitFor(async () => {
        const res = await risk.app.inject({ method: 'GET', url: '/health' });
        return res.statusCode === 503 ? res : undefined;
      }, { what: '/health to answer 503' });
      expect(down.json()).toMatchObject({ status: 'degraded', bus: { connected: false } });

      await redis.start();
      await waitFor(async () => (await risk.app.inject({ method: 'GET', url: '/health' })).statusCode === 200, {
        what: '/health to answer 200 after Redis came back',
      });
    });

    it('GET /stats, POST /reset, GET /docs and GET /metrics', async () => {
      const bus = await openBus(newPrefix('risk-http'));
      const clock = new ManualClock(T0);
      const risk = await startRisk(bus, clock);
      await tickAll(bus, T0);
      const sent = [
        await signal(bus, clock, 'BTCUSDT', 'BUY', 0.85),
        await signal(bus, clock, 'ETHUSDT', 'BUY', 0.5),
        await signal(bus, clock, 'BNBUSDT', 'HOLD', 0.9),
        await signal(bus, clock, 'SOLUSDT', 'CLOSE', 1),
        await signal(bus, clock, 'XRPUSDT', 'BUY', 0.7),
      ];
      const s = await statsWhen(risk, (x) => x.counts.received === sent.length, 'five signals');
      expect(s).toMatchObject({
        trading_state: 'ACTIVE',
        balance_usd: expect.any(Number),
        equity_usd: expect.any(Number),
        peak_equity_usd: 10_000,
        drawdown_pct: expect.any(Number),
        win_rate: 0,
        entries_today: 2,
        cooldown_until: null,
        counts: { received: 5, skipped: 1, approved: 2, rejected: 2, rejected_by_reason: { LOW_CONFIDENCE: 1, NO_POSITION: 1 } },
      });
      expect(s.equity_usd).toBeLessThan(10_000); // the in-flight orders' projected fees
      expect(s.approval_rate).toBe(2 / (2 + 2));

      const health = await risk.app.inject({ method: 'GET', url: '/health' });
      expect(health.json()).toMatchObject({ approval_rate: 0.5 });

      const metrics = await risk.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/qt_outcomes_total\{[^}]*outcome="approved"[^}]*\} 2/);
      expect(metrics.body).toMatch(/qt_outcomes_total\{[^}]*outcome="rejected:LOW_CONFIDENCE"[^}]*\} 1/);
      expect(metrics.body).toMatch(/qt_outcomes_total\{[^}]*outcome="rejected:NO_POSITION"[^}]*\} 1/);
      expect(metrics.body).toMatch(/qt_outcomes_total\{[^}]*outcome="skipped"[^}]*\} 1/);

      const reset = await risk.app.inject({ method: 'POST', url: '/reset' });
      expect(reset.statusCode).toBe(200);
      const cleared = reset.json<Stats>();
      expect(cleared.counts).toMatchObject({ received: 0, skipped: 0, approved: 0, rejected: 0, rejected_by_reason: {} });
      expect(cleared.approval_rate).toBeNull();
      expect(cleared.equity_usd).toBe(s.equity_usd); // statistics only: the books stay
      expect(cleared.inflight_orders).toBe(2);

      const docs = await risk.app.inject({ method: 'GET', url: '/docs' });
      expect(docs.statusCode).toBeLessThan(400);
      const spec = await risk.app.inject({ method: 'GET', url: '/docs/json' });
      expect(spec.statusCode).toBe(200);
      const paths = Object.keys(spec.json<{ paths: Record<string, unknown> }>().paths);
      expect(paths).toEqual(expect.arrayContaining(['/health', '/stats', '/reset', '/resume', '/metrics']));
    });

    it('POSTs need the bearer token when api_token is set; GETs do not', async () => {
      const bus = await openBus(newPrefix('risk-token'));
      const token = 'risk-test-token-1';
      const risk = await startRisk(bus, new ManualClock(T0), { api_token: token });
      for (const url of ['/reset', '/resume']) {
        const bare = await risk.app.inject({ method: 'POST', url });
        expect(bare.statusCode, url).toBe(401);
        expect(bare.json()).toMatchObject({ error: 'unauthorized' });
        const wrong = await risk.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}x` } });
        expect(wrong.statusCode, url).toBe(401);
        const right = await risk.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` } });
        expect(right.statusCode, url).toBe(200);
      }
      expect((await risk.app.inject({ method: 'GET', url: '/stats' })).statusCode).toBe(200);
      expect((await risk.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    });
  });
});
