/**
 * `quantum route`'s service on the shared Redis (unique prefixes): forwards by source to
 * the selected accounts, unrouted signals to trade.signal.v5.unrouted, acknowledges only
 * after the forwards; a router that delivers again (its group rewound, as after a crash
 * between forward and ack) forwards the same signal_id, and each account's real risk
 * service decides it once.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { RedisBus } from '../src/bus/redis.js';
import { ROUTER, TOPICS } from '../src/bus/topics.js';
import { systemClock } from '../src/platform/clock.js';
import { defaultConfig } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { RouterService } from '../src/services/router/service.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';

const url = redisUrl();
const prefixes: string[] = [];
const buses: EventBus[] = [];
const risks: Launched<'risk'>[] = [];
afterAll(async () => {
  for (const risk of risks) await risk.stop();
  for (const bus of buses) await bus.close();
  for (const prefix of prefixes) await cleanupPrefix(url, prefix);
});

async function bus(prefix: string): Promise<RedisBus> {
  prefixes.push(prefix);
  const created = await RedisBus.connect({ url, prefix, trimIntervalMs: 0 });
  buses.push(created);
  return created;
}

describe('the signal router', () => {
  it('forwards by source, keeps signal_id across a redelivery, and each account decides a signal once', async () => {
    // The "shared" input under a unique prefix of its own (the real one is unprefixed).
    const input = await bus(uniquePrefix('router-in'));
    const accounts = new Map<string, EventBus>([
      ['a', await bus(uniquePrefix('router-a'))],
      ['b', await bus(uniquePrefix('router-b'))],
    ]);
    const config = defaultConfig({ execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 }, market: { simulator_spread_pct: 0 } });
    for (const [, accountBus] of accounts) {
      risks.push(await launchService('risk', { bus: accountBus, config: { ...config, stream_prefix: accountBus.prefix }, clock: systemClock, logger: silentLogger }));
    }
    const routes = [
      { source: 'model-a', accounts: ['a'] },
      { source: 'both', accounts: ['a', 'b'] },
    ];
    const start = async (consumer: string) => {
      const router = new RouterService({ input, accounts, routes, logger: silentLogger, consumer, logIntervalMs: 0 });
      await router.start();
      return router;
    };
    const ts = Date.now();
    const signal = (symbol: string, source: string) => ({ symbol, action: 'BUY', confidence: 0.8, source, ts });
    // No signal_id: the router fills in sig-<shared entry id>, stable across redeliveries.
    const ids = await input.publishMany([
      { topic: TOPICS.signal, payload: signal('BTCUSDT', 'model-a') },
      { topic: TOPICS.signal, payload: signal('ETHUSDT', 'both') },
      { topic: TOPICS.signal, payload: signal('SOLUSDT', 'stranger') },
    ]);
    let router = await start(`router-${randomBytes(2).toString('hex')}`);
    const forwarded = async (name: string) =>
      (await accounts.get(name)!.readAfter(TOPICS.signal, '0', 100)).map((e) => JSON.parse(e.fields.payload!) as { signal_id: string; symbol: string });
    await waitFor(async () => (await input.info(TOPICS.signal)).groups[0]?.pending === 0 && (await input.info(TOPICS.signal)).groups[0]?.lag === 0, {
      what: 'the router to acknowledge all three',
    });
    expect((await forwarded('a')).map((s) => [s.symbol, s.signal_id])).toEqual([['BTCUSDT', `sig-${ids[0]}`], ['ETHUSDT', `sig-${ids[1]}`]]);
    expect((await forwarded('b')).map((s) => [s.symbol, s.signal_id])).toEqual([['ETHUSDT', `sig-${ids[1]}`]]);
    const unrouted = await input.readAfter(ROUTER.unrouted, '0', 10);
    expect(unrouted.map((e) => JSON.parse(e.fields.payload!).symbol)).toEqual(['SOLUSDT']);
    expect(router.counts).toEqual({ received: 3, routed: 2, unrouted: 1, forwarded: { a: 2, b: 1 } });
    await router.stop();

    // As after a crash between the forwards and the ack: the group hands everything out again.
    const admin = createClient({ url });
    await admin.connect();
    await admin.sendCommand(['XGROUP', 'SETID', input.prefix + TOPICS.signal, ROUTER.group, '0']);
    admin.destroy();
    router = await start(`router-${randomBytes(2).toString('hex')}`);
    await waitFor(async () => (await forwarded('a')).length === 4, { what: 'the second forwarding' });
    expect(new Set((await forwarded('a')).map((s) => s.signal_id))).toEqual(new Set([`sig-${ids[0]}`, `sig-${ids[1]}`]));
    await router.stop();

    // Each account's risk service decided each signal once.
    await waitFor(async () => (await accounts.get('a')!.info(TOPICS.signal)).groups.find((g) => g.name === 'risk-safety')?.lag === 0, { what: 'a to read all four copies' });
    await waitFor(async () => (await accounts.get('a')!.info(TOPICS.signal)).groups.find((g) => g.name === 'risk-safety')?.pending === 0, { what: 'a to finish all four copies' });
    // Four copies read, two decisions: one per signal_id (approved or rejected, each once).
    const decisions = async (name: string) => (await accounts.get(name)!.length(TOPICS.safe)) + (await accounts.get(name)!.length(TOPICS.rejected));
    expect(risks[0]!.service.stats().counts).toMatchObject({ received: 2, duplicates: 2 });
    expect(await decisions('a')).toBe(2);
    await waitFor(async () => (await decisions('b')) === 1, { what: 'b to decide its signal' });
    expect(risks[1]!.service.stats().counts.received).toBe(1);
  });
});
