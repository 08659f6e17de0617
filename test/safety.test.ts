/**
 * Issue #11's reproductions, run against `quantum risk`, `quantum execution` and
 * `quantum monitor` as three processes on Redis. Each ended unsafely before the fix:
 * - one bad tick (sub-tick price, two minutes in the future) made risk size at 0.004
 *   and execution fill that quantity at ~600: a $134M fill on a $10k account;
 * - with execution down, an approval stopped counting after the in-flight timeout, so a
 *   second CLOSE ended SHORT and one BUY per timeout went past the 10 % cap.
 * Nothing sleeps: every wait polls with a deadline.
 */
import { describe, expect, it } from 'vitest';
import { publishTradeSignal } from '../src/bus/publish.js';
import { TOPICS, dlqTopic } from '../src/bus/topics.js';
import { ExecutionResult, RiskApprovedSignal, type PositionView } from '../src/core/messages.js';
import { getJson, servicesOnRedis, waitForHealth } from './helpers/processes.js';

const TIMEOUT_MS = 30_000;

describe('safety promises, three processes on Redis', () => {
  const loop = servicesOnRedis('safety', {
    execution: { price_interval_ms: 0 },
    monitor: { mark_interval_ms: 0 },
    // Short expiry so the outage test waits seconds, not 30 s; cooldown off so closes do not block entries.
    risk: { cooldown_minutes: 0, max_daily_entries: 1000, inflight_timeout_ms: 4000 },
  }, { timeoutMs: TIMEOUT_MS, intervalMs: 50 });
  const poll = loop.poll;

  async function findPayload(topic: string, signalId: string): Promise<Record<string, unknown> | undefined> {
    for (const entry of await loop.bus.readLatest(topic, 1000)) {
      const payload = JSON.parse(entry.fields.payload ?? '{}') as Record<string, unknown>;
      if (payload.signal_id === signalId) return payload;
    }
    return undefined;
  }

  async function approvalOf(signalId: string): Promise<RiskApprovedSignal> {
    return RiskApprovedSignal.parse(
      await poll(async () => {
        const rejected = await findPayload(TOPICS.rejected, signalId);
        if (rejected) throw new Error(`${signalId} was rejected: ${JSON.stringify(rejected.reasons)}`);
        return findPayload(TOPICS.safe, signalId);
      }, `the approval of ${signalId}`),
    );
  }

  async function resultOf(signalId: string): Promise<ExecutionResult> {
    return ExecutionResult.parse(await poll(() => findPayload(TOPICS.execution, signalId), `the execution result of ${signalId}`));
  }

  async function positions(): Promise<PositionView[]> {
    return (await getJson<{ positions: PositionView[] }>(`${loop.services.url('monitor')}/positions`)).positions;
  }

  async function riskStats(): Promise<{ inflight_orders: number; equity_usd: number }> {
    return getJson(`${loop.services.url('risk')}/stats`);
  }

  it('a sub-tick, future-dated tick is dead-lettered by every service and a BUY fills at the real price', async () => {
    const before = await getJson<{ prices: Record<string, number>; quotes: Record<string, { bid: number; ask: number }> }>(`${loop.services.url('execution')}/prices`);
    const real = before.prices.BNBUSDT!;
    // Risk sizes a BUY at the ask it will pay (the simulator's synthetic quote around the real price).
    const realAsk = before.quotes.BNBUSDT!.ask;
    expect(Math.abs(realAsk - real) / real).toBeLessThanOrEqual(0.001);
    // The XADD, and the 1e-300 tick that half-updated risk's state and threw.
    await loop.bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'BNBUSDT', price: 0.004, ts: Date.now() + 120_000, source: 'feed' });
    await loop.bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'BNBUSDT', price: 1e-300, ts: Date.now(), source: 'feed' });
    const dead = await poll(async () => {
      const entries = await loop.bus.readAfter(dlqTopic(TOPICS.tick), '0', 100);
      return entries.length >= 6 ? entries.map((e) => e.fields) : null;
    }, 'six dead letters on market.tick.dlq (two ticks × three groups)');
    expect(new Set(dead.map((d) => d.dlq_group))).toEqual(new Set(['risk-safety', 'execution', 'position-monitor']));
    for (const d of dead) expect(d.dlq_error).toMatch(/^BAD_PRICE/);

    const signal = await publishTradeSignal(loop.bus, 'BNBUSDT', 'BUY', 0.95, 'safety');
    const approval = await approvalOf(signal.signal_id);
    expect(approval.reference_price).toBe(realAsk);
    const fill = await resultOf(signal.signal_id);
    expect(fill.status).toBe('FILLED');
    expect(Math.abs(fill.fill_price - approval.reference_price) / approval.reference_price).toBeLessThanOrEqual(0.05);
    expect(fill.notional_usd).toBeLessThanOrEqual(0.1 * 10_000 * 1.01);
    // Every service still marks at the real price.
    const monitorPrices = await getJson<{ prices: Record<string, number> }>(`${loop.services.url('monitor')}/prices`);
    expect(monitorPrices.prices.BNBUSDT).toBe(real);
  });

  it('a future-dated tick at a valid price is refused too and never freezes prices', async () => {
    await loop.bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'SOLUSDT', price: 151, ts: Date.now() + 120_000, source: 'feed' });
    await poll(async () => {
      const entries = await loop.bus.readAfter(dlqTopic(TOPICS.tick), '0', 100);
      return entries.filter((e) => /^FUTURE_TS/.test(e.fields.dlq_error ?? '')).length >= 3 ? true : null;
    }, 'three FUTURE_TS dead letters');
    await loop.bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'SOLUSDT', price: 152, ts: Date.now(), source: 'feed' });
    for (const key of ['execution', 'monitor'] as const) {
      await poll(async () => {
        const { prices } = await getJson<{ prices: Record<string, number> }>(`${loop.services.url(key)}/prices`);
        return prices.SOLUSDT === 152 ? true : null;
      }, `${key} to mark SOLUSDT at 152`);
    }
  });

  it('a FILLED result the ledger cannot apply (price 0, or 1e-300) is dead-lettered by risk and the monitor; the books do not move', async () => {
    const before = await getJson<{ balance_usd: number }>(`${loop.services.url('monitor')}/portfolio`);
    let n = 0;
    const result = (over: Record<string, unknown>) => ({
      schema_version: 1,
      order_id: `PAPER-${(0xbad000 + ++n).toString(16).padStart(12, '0')}`,
      signal_id: `bad-fill-${n}`,
      symbol: 'XRPUSDT',
      side: 'BUY',
      quantity: 100,
      reference_price: 0.6,
      fill_price: 0.6,
      slippage_pct: 0,
      fee_usd: 0,
      fee_rate: 0,
      notional_usd: 60,
      status: 'FILLED',
      signal_ts: Date.now(),
      ts: Date.now(),
      reduce_only: false,
      origin: 'signal',
      ...over,
    });
    const zero = await loop.bus.publish(TOPICS.execution, result({ fill_price: 0, notional_usd: 0 }));
    const tiny = await loop.bus.publish(TOPICS.execution, result({ fill_price: 1e-300 }));
    const dead = await poll(async () => {
      const entries = (await loop.bus.readAfter(dlqTopic(TOPICS.execution), '0', 100)).map((e) => e.fields);
      return entries.length >= 4 ? entries : null;
    }, 'four dead letters on trade.execution.res.dlq');
    const of = (id: string) => dead.filter((d) => d.dlq_source_id === id);
    expect(new Set(of(zero).map((d) => d.dlq_group))).toEqual(new Set(['risk-safety', 'position-monitor']));
    for (const d of of(zero)) expect(d.dlq_error).toMatch(/fill_price: must be positive when status is FILLED/);
    expect(new Set(of(tiny).map((d) => d.dlq_group))).toEqual(new Set(['risk-safety', 'position-monitor']));
    for (const d of of(tiny)) expect(d.dlq_error).toMatch(/^LEDGER: fill price must be positive/);
    for (const d of dead) expect(d.dlq_attempts).toBe('1');
    const after = await getJson<{ balance_usd: number }>(`${loop.services.url('monitor')}/portfolio`);
    expect(after.balance_usd).toBe(before.balance_usd);
    expect((await positions()).some((p) => p.symbol === 'XRPUSDT')).toBe(false);
  });

  it('a signal whose metadata is over the limits is dead-lettered naming metadata, and refused by the publisher', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'x'.repeat(200)]));
    const id = await loop.bus.publish(TOPICS.signal, { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.9, source: 'safety', metadata });
    const dead = await poll(async () => {
      const entries = await loop.bus.readAfter(dlqTopic(TOPICS.signal), '0', 100);
      return entries.find((e) => e.fields.dlq_source_id === id)?.fields ?? null;
    }, 'the oversized metadata dead letter');
    expect(dead.dlq_error).toMatch(/metadata/);
    await expect(publishTradeSignal(loop.bus, 'BTCUSDT', 'BUY', 0.9, 'safety', { metadata })).rejects.toThrow(/metadata/);
  });

  it('with execution down, a second CLOSE after the expiry never ends SHORT and BUYs never pass the 10% cap', async () => {
    const opened = await publishTradeSignal(loop.bus, 'BTCUSDT', 'BUY', 0.85, 'safety');
    expect((await resultOf(opened.signal_id)).status).toBe('FILLED');
    await poll(async () => ((await positions()).some((p) => p.symbol === 'BTCUSDT' && p.side === 'LONG') ? true : null), 'the BTC position');

    await loop.services.procs.execution.stop();
    const close1 = await publishTradeSignal(loop.bus, 'BTCUSDT', 'CLOSE', 1, 'safety');
    const buy1 = await publishTradeSignal(loop.bus, 'ETHUSDT', 'BUY', 0.85, 'safety');
    expect((await approvalOf(close1.signal_id)).expires_ts).toBeDefined();
    await approvalOf(buy1.signal_id);
    // Risk lets the approvals go only once they expired (execution will not fill them).
    await poll(async () => ((await riskStats()).inflight_orders === 0 ? true : null), 'the first approvals to expire', 30_000);
    const close2 = await publishTradeSignal(loop.bus, 'BTCUSDT', 'CLOSE', 1, 'safety');
    const buy2 = await publishTradeSignal(loop.bus, 'ETHUSDT', 'BUY', 0.85, 'safety');
    await approvalOf(close2.signal_id);
    await approvalOf(buy2.signal_id);

    const proc = loop.services.spawn('execution');
    await waitForHealth(loop.services.url('execution'), proc);
    const results = await Promise.all([close1, buy1, close2, buy2].map((s) => resultOf(s.signal_id)));
    const [r1, b1] = results;
    expect(r1!.status).toBe('REJECTED');
    expect(r1!.reject_reason).toMatch(/^EXPIRED/);
    expect(b1!.status).toBe('REJECTED');
    expect(b1!.reject_reason).toMatch(/^EXPIRED/);

    await poll(async () => {
      const info = (await loop.bus.info(TOPICS.execution)).groups.find((g) => g.name === 'position-monitor');
      return info && info.pending === 0 && info.lag === 0 ? true : null;
    }, 'the monitor to apply every result');
    const open = await positions();
    expect(open.find((p) => p.symbol === 'BTCUSDT')?.side ?? 'FLAT').not.toBe('SHORT');
    const eth = open.find((p) => p.symbol === 'ETHUSDT');
    const equity = (await riskStats()).equity_usd;
    expect((eth?.quantity ?? 0) * (eth?.mark_price ?? 0)).toBeLessThanOrEqual(0.1 * equity * 1.002);
  }, 120_000);
});
