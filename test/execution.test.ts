/**
 * The paper Execution service (SPEC §5) on a real Redis: approvals published by hand to
 * trade.signal.safe, results read back from trade.execution.res, HTTP through `inject`.
 * Every test has its own stream prefix; nothing sleeps: tests poll with a deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, PriceTick, type RiskApprovedSignal } from '../src/core/messages.js';
import type { Launched } from '../src/services/launch.js';
import { readSnapshotText } from '../src/services/common/host.js';
import { startPrivateRedis, uniquePrefix, waitFor } from './helpers/redis.js';
import {
  approval,
  metricValue,
  openBus,
  readDeadLetters,
  readPayloads,
  request,
  testConfig,
  testScope,
  waitForPayloads,
  waitForSettled,
} from './helpers/services.js';

const ORDER_ID = /^PAPER-[0-9a-f]{12}$/;
const FEE_RATE = 0.0004;
const TOKEN = 'exec-test-token-42';

const scope = testScope('execution');
afterEach(() => scope.teardown());

type Execution = Launched<'execution'>;

async function setPrice(exec: Execution, symbol: string, price: number): Promise<void> {
  const res = await request(exec.app, 'POST', `/prices/${symbol}`, { body: { price } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** Results for these signals, once each has one (waits until they all have). */
async function resultsFor(bus: EventBus, orders: readonly RiskApprovedSignal[]): Promise<Map<string, ExecutionResult>> {
  const ids = new Set(orders.map((o) => o.signal_id));
  const results = await waitForPayloads(bus, TOPICS.execution, ExecutionResult, ids.size, (r) => ids.has(r.signal_id));
  return new Map(results.map((r) => [r.signal_id, r]));
}

/** |a − b| <= 1e-8 (money and prices to the cent of a cent of a cent). */
function expectClose(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-8);
}

/** Checks a FILLED result against the fill rules: mark × (1 ± s), s in [0, 0.1 %], on the tick, taker fee. */
function expectValidFill(result: ExecutionResult, order: RiskApprovedSignal, mark: number): void {
  expect(result).toMatchObject({
    status: 'FILLED',
    signal_id: order.signal_id,
    symbol: order.symbol,
    side: order.side,
    quantity: order.quantity,
    reference_price: mark,
    fee_rate: FEE_RATE,
    signal_ts: order.ts,
    reduce_only: order.reduce_only,
    origin: order.origin,
  });
  expect(result.reject_reason).toBeUndefined();
  expect(result.order_id).toMatch(ORDER_ID);
  if (order.side === 'BUY') {
    expect(result.fill_price).toBeGreaterThanOrEqual(mark);
    expect(result.fill_price).toBeLessThanOrEqual(mark * 1.001);
  } else {
    expect(result.fill_price).toBeLessThanOrEqual(mark);
    expect(result.fill_price).toBeGreaterThanOrEqual(mark * 0.999);
  }
  // On the 0.01 tick of the default instruments.
  expectClose(Math.round(result.fill_price * 100) / 100, result.fill_price, 'fill price on the tick');
  expectClose(result.notional_usd, result.fill_price * result.quantity, 'notional = fill × quantity');
  expectClose(result.fee_usd, result.notional_usd * FEE_RATE, 'fee = notional × 0.0004');
  expectClose(result.slippage_pct, Math.abs(result.fill_price - mark) / mark, 'slippage_pct');
}

describe('Execution service: fills', () => {
  it('fills an approved BUY once at the mark plus adverse slippage, drops a duplicate, fills a SELL at or below the mark', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec, 'BTCUSDT', 50_000);

    const buy = approval({ side: 'BUY', quantity: 0.01 });
    await bus.publish(TOPICS.safe, buy);
    const [result] = await waitForPayloads(bus, TOPICS.execution, ExecutionResult, 1);
    expectValidFill(result!, buy, 50_000);
    expect(result!.fill_price).toBeGreaterThanOrEqual(50_000);
    expect(result!.fill_price).toBeLessThanOrEqual(50_050);

    // The same approval again (a producer retrying): acknowledged, counted, not filled.
    await bus.publish(TOPICS.safe, buy);
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    expect(exec.service.state.statistics().duplicates).toBe(1);
    const afterDuplicate = await readPayloads(bus, TOPICS.execution, ExecutionResult);
    expect(afterDuplicate.filter((r) => r.signal_id === buy.signal_id)).toHaveLength(1);
    expect(afterDuplicate).toHaveLength(1);

    const sell = approval({ side: 'SELL', quantity: 0.02 });
    await bus.publish(TOPICS.safe, sell);
    const sold = (await resultsFor(bus, [sell])).get(sell.signal_id)!;
    expectValidFill(sold, sell, 50_000);
    expect(sold.fill_price).toBeLessThanOrEqual(50_000);
    expect(sold.order_id).not.toBe(result!.order_id);

    const stats = (await request(exec.app, 'GET', '/stats')).body;
    expect(stats).toMatchObject({ orders: 2, fills: 2, rejects: 0, duplicates: 1, fill_rate: 1 });
    expectClose(stats.volume_usd as number, result!.notional_usd + sold.notional_usd, 'volume');
    expectClose(stats.fees_usd as number, result!.fee_usd + sold.fee_usd, 'fees');
    expectClose(stats.avg_slippage_pct as number, (result!.slippage_pct + sold.slippage_pct) / 2, 'average slippage');
  });

  it('fills every approval exactly once across a restart in the middle of the stream, with the same fills as an uninterrupted run', async () => {
    const prefix = scope.newPrefix();
    const orders = [
      approval({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.01 }),
      approval({ symbol: 'ETHUSDT', side: 'BUY', quantity: 0.5, reference_price: 3000 }),
      approval({ symbol: 'BTCUSDT', side: 'SELL', quantity: 0.004 }),
      approval({ symbol: 'ETHUSDT', side: 'SELL', quantity: 0.25, reference_price: 3000 }),
      approval({ symbol: 'BTCUSDT', side: 'BUY', quantity: 0.02 }),
      approval({ symbol: 'ETHUSDT', side: 'BUY', quantity: 1, reference_price: 3000 }),
    ];
    const marks: Record<string, number> = { BTCUSDT: 50_000, ETHUSDT: 3000 };

    const bus1 = await scope.openBus(prefix);
    const first = await scope.launch('execution', { bus: bus1 });
    await setPrice(first, 'BTCUSDT', marks.BTCUSDT!);
    await setPrice(first, 'ETHUSDT', marks.ETHUSDT!);
    for (const order of orders.slice(0, 3)) await bus1.publish(TOPICS.safe, order);
    await resultsFor(bus1, orders.slice(0, 3));
    await first.stop();

    // While it is down: three more approvals, and one of the first three again.
    for (const order of orders.slice(3)) await bus1.publish(TOPICS.safe, order);
    await bus1.publish(TOPICS.safe, orders[0]);
    const snapshot = JSON.parse((await readSnapshotText(bus1, 'execution')) ?? 'null') as { stats: { orders: number; fills: number } };
    expect(snapshot.stats).toMatchObject({ orders: 3, fills: 3 });

    // A new instance, on a connection of its own (a new process).
    const bus2 = await scope.openBus(prefix);
    const second = await scope.launch('execution', { bus: bus2 });
    await waitForSettled(bus2, GROUPS.execution, [TOPICS.safe]);
    const results = await readPayloads(bus2, TOPICS.execution, ExecutionResult);
    expect(results.map((r) => r.signal_id).sort()).toEqual(orders.map((o) => o.signal_id).sort());
    for (const order of orders) expectValidFill(results.find((r) => r.signal_id === order.signal_id)!, order, marks[order.symbol]!);
    const stats = second.service.state.statistics();
    expect(stats).toMatchObject({ orders: 6, fills: 6, rejects: 0, duplicates: 1 });
    expectClose(stats.volume_usd, results.reduce((sum, r) => sum + r.notional_usd, 0), 'volume across the restart');
    expectClose(stats.fees_usd, results.reduce((sum, r) => sum + r.fee_usd, 0), 'fees across the restart');

    // The same approvals, uninterrupted, on another prefix: identical fills (seeded per signal).
    const bus3 = await scope.openBus();
    const reference = await scope.launch('execution', { bus: bus3 });
    await setPrice(reference, 'BTCUSDT', marks.BTCUSDT!);
    await setPrice(reference, 'ETHUSDT', marks.ETHUSDT!);
    for (const order of orders) await bus3.publish(TOPICS.safe, order);
    const uninterrupted = await resultsFor(bus3, orders);
    const essentials = (r: ExecutionResult) => [r.order_id, r.fill_price, r.quantity, r.fee_usd, r.notional_usd, r.slippage_pct];
    for (const r of results) expect(essentials(r), r.signal_id).toEqual(essentials(uninterrupted.get(r.signal_id)!));
  });

  it('answers orders it cannot fill with a REJECTED result and its reason', async () => {
    const config = testConfig({
      instruments: [
        { symbol: 'BTCUSDT', tick_size: 0.01, step_size: 0.00001, min_notional_usd: 10, start_price: 50_000 },
        // A price of one tick: a SELL has no positive price to fill at (the simulator's NO_PRICE case).
        { symbol: 'PENNYUSDT', tick_size: 0.01, step_size: 1, min_notional_usd: 0, start_price: 0.01 },
      ],
    });
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus, config });
    const unknown = approval({ symbol: 'DOGEUSDT' });
    const belowStep = approval({ quantity: 0.000004 });
    const noPrice = approval({ symbol: 'PENNYUSDT', side: 'SELL', quantity: 100, reference_price: 0.01 });
    const belowMinNotional = approval({ quantity: 0.0001 }); // 5 USD < 10 USD
    const good = approval({ quantity: 0.001 });
    const orders = [unknown, belowStep, noPrice, belowMinNotional, good];
    for (const order of orders) await bus.publish(TOPICS.safe, order);
    const results = await resultsFor(bus, orders);

    const expected: [RiskApprovedSignal, RegExp][] = [
      [unknown, /^UNKNOWN_SYMBOL: DOGEUSDT is not a configured instrument/],
      [belowStep, /^BAD_QUANTITY: quantity 0\.000004 rounds down to 0 at step size 0\.00001/],
      [noPrice, /^NO_PRICE: price 0\.01 for PENNYUSDT is too small to sell/],
      [belowMinNotional, /^MIN_NOTIONAL: notional 5\.\d+ USD is below the minimum 10 USD for BTCUSDT/],
    ];
    for (const [order, reason] of expected) {
      const result = results.get(order.signal_id)!;
      expect(result, order.symbol).toMatchObject({
        status: 'REJECTED',
        signal_id: order.signal_id,
        symbol: order.symbol,
        side: order.side,
        quantity: order.quantity,
        fill_price: 0,
        fee_usd: 0,
        notional_usd: 0,
      });
      expect(result.order_id).toMatch(ORDER_ID);
      expect(result.reject_reason).toMatch(reason);
    }
    expect(results.get(good.signal_id)!.status).toBe('FILLED');
    expect(exec.service.state.statistics()).toMatchObject({
      orders: 5,
      fills: 1,
      rejects: 4,
      rejects_by_reason: { UNKNOWN_SYMBOL: 1, BAD_QUANTITY: 1, NO_PRICE: 1, MIN_NOTIONAL: 1 },
      fill_rate: 0.2,
    });
  });

  it('sends malformed entries to trade.signal.safe.dlq and keeps filling', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec, 'BTCUSDT', 50_000); // the approvals' reference price
    const notJson = await bus.publishRaw(TOPICS.safe, { payload: '{"symbol": "BTCUSDT", "side": ' });
    const badSchema = await bus.publish(TOPICS.safe, { ...approval(), quantity: -1, side: 'LONG' });
    const noPayload = await bus.publishRaw(TOPICS.safe, { data: 'hello' });
    const next = approval();
    await bus.publish(TOPICS.safe, next);

    expect((await resultsFor(bus, [next])).get(next.signal_id)!.status).toBe('FILLED');
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    expect(await readPayloads(bus, TOPICS.execution)).toHaveLength(1);
    const dead = await readDeadLetters(bus, TOPICS.safe);
    expect(dead.map((d) => d.dlq_source_id)).toEqual([notJson, badSchema, noPayload]);
    for (const d of dead) expect(d).toMatchObject({ dlq_group: GROUPS.execution, dlq_attempts: '1' });
    expect(dead[0]).toMatchObject({ payload: '{"symbol": "BTCUSDT", "side": ', dlq_error: expect.stringMatching(/not valid JSON/) });
    expect(dead[1]!.dlq_error).toMatch(/quantity/);
    expect(dead[1]!.dlq_error).toMatch(/side/);
    expect(dead[2]!.dlq_error).toMatch(/missing "payload"/);

    const metrics = (await request(exec.app, 'GET', '/metrics')).text;
    expect(metricValue(metrics, 'qt_messages_total', { topic: TOPICS.safe, direction: 'dlq' })).toBe(3);
    expect(metricValue(metrics, 'qt_messages_total', { topic: TOPICS.safe, direction: 'in' })).toBe(1);
  });
});

describe('Execution service: what an approval must carry', () => {
  it('fills an approval published without the decision record (checks, sizing): SPEC §2 does not require them', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec, 'BTCUSDT', 50_000);
    const { checks: _checks, sizing: _sizing, ...bare } = approval({ side: 'BUY', quantity: 0.01 });
    const noSizing = { ...approval({ side: 'SELL', quantity: 0.01 }), sizing: undefined };
    await bus.publish(TOPICS.safe, bare);
    await bus.publish(TOPICS.safe, noSizing);
    const results = await waitForPayloads(bus, TOPICS.execution, ExecutionResult, 2);
    expect(results.map((r) => [r.signal_id, r.status])).toEqual([
      [bare.signal_id, 'FILLED'],
      [noSizing.signal_id, 'FILLED'],
    ]);
    expect(await readDeadLetters(bus, TOPICS.safe)).toEqual([]);
  });
});

describe('Execution service: market simulator', () => {
  it('publishes every price at start and moves each by at most price_step_pct per step', async () => {
    const stepPct = 0.002;
    const config = testConfig({ execution: { price_interval_ms: 50, price_step_pct: stepPct } });
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus, config });
    const symbols = config.instruments.map((i) => i.symbol);

    const ticks = await waitFor(
      async () => {
        const all = await readPayloads(bus, TOPICS.tick, PriceTick);
        const moved = new Set(all.slice(symbols.length).map((t) => t.symbol));
        return all.length >= symbols.length + 20 && moved.size === symbols.length ? all : null;
      },
      { what: 'simulated ticks for every symbol' },
    );
    await exec.stop();

    // Start-up: every configured price once, at its start price.
    expect(ticks.slice(0, symbols.length)).toEqual(
      config.instruments.map((i) => expect.objectContaining({ symbol: i.symbol, price: i.start_price, source: 'simulator' })),
    );
    const last = new Map<string, PriceTick>();
    for (const t of ticks) {
      expect(t.source).toBe('simulator');
      const previous = last.get(t.symbol);
      if (previous) {
        expect(t.ts).toBeGreaterThanOrEqual(previous.ts);
        expect(t.price).not.toBe(previous.price);
        expect(Math.abs(t.price - previous.price) / previous.price, `${t.symbol} ${previous.price} → ${t.price}`).toBeLessThanOrEqual(stepPct);
      }
      last.set(t.symbol, t);
    }
    // The service's own prices are the last ones it published.
    await waitFor(
      async () => {
        const published = new Map((await readPayloads(bus, TOPICS.tick, PriceTick)).map((t) => [t.symbol, t.price]));
        const prices = exec.service.state.prices();
        return symbols.every((s) => prices[s] === published.get(s));
      },
      { what: 'the published prices to match the service' },
    );
  });
});

describe('Execution service: HTTP', () => {
  it('serves /health, /stats, /prices, POST /prices and POST /reset', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    const { app } = exec;

    const health = await request(app, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', service: 'execution', mode: 'paper', bus: { kind: 'redis', connected: true }, fill_rate: null });

    const prices = await request<{ prices: Record<string, number> }>(app, 'GET', '/prices');
    expect(prices.status).toBe(200);
    expect(prices.body.prices).toEqual({ BTCUSDT: 65_000, ETHUSDT: 3500, BNBUSDT: 600, SOLUSDT: 150, XRPUSDT: 0.6 });

    // Rounded to the tick, applied at once, published as a manual tick.
    const set = await request(app, 'POST', '/prices/BTCUSDT', { body: { price: 50_000.004 } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ symbol: 'BTCUSDT', price: 50_000, tick: { symbol: 'BTCUSDT', price: 50_000, source: 'manual' } });
    expect((await request<{ prices: Record<string, number> }>(app, 'GET', '/prices')).body.prices.BTCUSDT).toBe(50_000);
    const ticks = await readPayloads(bus, TOPICS.tick, PriceTick);
    expect(ticks[ticks.length - 1]).toMatchObject({ symbol: 'BTCUSDT', price: 50_000, source: 'manual' });

    const order = approval({ quantity: 0.01 });
    await bus.publish(TOPICS.safe, order);
    const fill = (await resultsFor(bus, [order])).get(order.signal_id)!;
    const stats = await request(app, 'GET', '/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toEqual({
      orders: 1,
      fills: 1,
      rejects: 0,
      rejects_by_reason: {},
      duplicates: 0,
      fill_rate: 1,
      volume_usd: fill.notional_usd,
      fees_usd: fill.fee_usd,
      avg_slippage_pct: fill.slippage_pct,
    });
    expect((await request(app, 'GET', '/health')).body.fill_rate).toBe(1);

    const reset = await request(app, 'POST', '/reset');
    expect(reset.status).toBe(200);
    const zero = { orders: 0, fills: 0, rejects: 0, rejects_by_reason: {}, duplicates: 0, fill_rate: null, volume_usd: 0, fees_usd: 0, avg_slippage_pct: 0 };
    expect(reset.body).toEqual({ reset: true, stats: zero });
    expect((await request(app, 'GET', '/stats')).body).toEqual(zero);
    // Prices and the fill guard stay: the same approval again is still a duplicate.
    expect((await request<{ prices: Record<string, number> }>(app, 'GET', '/prices')).body.prices.BTCUSDT).toBe(50_000);
    await bus.publish(TOPICS.safe, order);
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    expect((await request(app, 'GET', '/stats')).body).toMatchObject({ orders: 0, duplicates: 1 });
    expect(await readPayloads(bus, TOPICS.execution)).toHaveLength(1);
  });

  it('refuses bad POST /prices requests: 404 unknown symbol, 400 naming the field', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('execution', { bus });

    const unknown = await request(app, 'POST', '/prices/DOGEUSDT', { body: { price: 1 } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'unknown_symbol', message: expect.stringContaining('DOGEUSDT') });

    const badSymbol = await request(app, 'POST', '/prices/btc-usdt', { body: { price: 1 } });
    expect(badSymbol.status).toBe(400);
    expect(badSymbol.body.message).toMatch(/^symbol: /);

    const badBodies: [string, unknown][] = [
      ['negative', { price: -5 }],
      ['zero', { price: 0 }],
      ['a string', { price: '50000' }],
      ['missing', {}],
      ['below half a tick', { price: 0.004 }],
    ];
    for (const [what, body] of badBodies) {
      const res = await request(app, 'POST', '/prices/BTCUSDT', { body });
      expect(res.status, what).toBe(400);
      expect(res.body.error, what).toBe('bad_request');
      expect(res.body.message, what).toMatch(/\bprice\b/);
    }
    // Nothing changed, nothing was published but the start-up ticks.
    expect((await request<{ prices: Record<string, number> }>(app, 'GET', '/prices')).body.prices.BTCUSDT).toBe(65_000);
    expect((await readPayloads(bus, TOPICS.tick, PriceTick)).every((t) => t.source === 'simulator')).toBe(true);
  });

  it('serves Swagger UI at /docs, the OpenAPI document with the message schemas, and Prometheus /metrics', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec, 'BTCUSDT', 50_000);
    await bus.publish(TOPICS.safe, approval());
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);

    const docs = await request(exec.app, 'GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
    expect(docs.text).toMatch(/swagger-ui/i);

    const openapi = await request<{ openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(
      exec.app,
      'GET',
      '/docs/json',
    );
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toMatch(/^3\./);
    for (const name of ['RiskApprovedSignal', 'ExecutionResult', 'PriceTick', 'TradeSignal', 'PositionUpdate']) {
      expect(openapi.body.components.schemas, name).toHaveProperty(name);
    }
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/health', '/stats', '/prices', '/prices/{symbol}', '/reset', '/metrics']));

    const metrics = await request(exec.app, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^# TYPE qt_messages_total counter$/m);
    expect(metricValue(metrics.text, 'qt_messages_total', { service: 'execution', topic: TOPICS.safe, direction: 'in' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_messages_total', { topic: TOPICS.execution, direction: 'out' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_outcomes_total', { outcome: 'filled' })).toBe(1);
    expect(metricValue(metrics.text, 'qt_signal_to_fill_seconds_count')).toBe(1);
    expect(metricValue(metrics.text, 'qt_consumer_lag_entries', { topic: TOPICS.safe })).toBe(0);
  });

  it('with api_token set, refuses every POST without the bearer token (401) and accepts it with the token', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('execution', { bus, config: testConfig({ api_token: TOKEN }) });
    const posts: [string, unknown][] = [
      ['/prices/BTCUSDT', { price: 51_000 }],
      ['/reset', {}],
    ];
    for (const [url, body] of posts) {
      const none = await request(app, 'POST', url, { body });
      expect(none.status, url).toBe(401);
      expect(none.body).toEqual({ error: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
      expect((await request(app, 'POST', url, { body, token: 'wrong-token-123' })).status, url).toBe(401);
      expect((await request(app, 'POST', url, { body, headers: { authorization: TOKEN } })).status, url).toBe(401);
      expect((await request(app, 'POST', url, { body, token: TOKEN })).status, url).toBe(200);
    }
    expect((await request<{ prices: Record<string, number> }>(app, 'GET', '/prices')).body.prices.BTCUSDT).toBe(51_000);
    // GETs need no token.
    for (const url of ['/health', '/stats', '/prices', '/metrics', '/docs/json']) expect((await request(app, 'GET', url)).status, url).toBe(200);
  });

  it('answers /health with 503 once its bus is closed', async () => {
    const bus = await scope.openBus();
    const { app } = await scope.launch('execution', { bus });
    await bus.close();
    const health = await request(app, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'degraded', bus: { kind: 'redis', connected: false } });
  });

  it('answers /health with 503 while Redis is down and 200 once it is back, then fills again', async () => {
    const redis = await startPrivateRedis();
    scope.defer(() => redis.destroy());
    const bus = await openBus(uniquePrefix('execution'), { url: redis.url });
    scope.defer(() => bus.close());
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec, 'BTCUSDT', 50_000);
    expect((await request(exec.app, 'GET', '/health')).status).toBe(200);

    await redis.stop();
    const down = await waitFor(
      async () => {
        const res = await request(exec.app, 'GET', '/health');
        return res.status === 503 ? res : null;
      },
      { what: '/health to answer 503 while Redis is down' },
    );
    expect(down.body).toMatchObject({ status: 'degraded', bus: { connected: false } });

    await redis.start();
    await waitFor(async () => (await request(exec.app, 'GET', '/health')).status === 200, { what: '/health to answer 200 again' });
    const order = approval();
    await bus.publish(TOPICS.safe, order);
    expect((await resultsFor(bus, [order])).get(order.signal_id)!.status).toBe('FILLED');
  });
});
