/**
 * Protective exits on both buses (embedded and Redis), with the three services launched
 * in process: a stop fires once and the position ends flat; a restart of the risk
 * service mid-trail keeps the trail's high-water mark; POST /positions/{symbol}/exits
 * follows the token rule. (Services as processes, kill -9 included: exits.e2e.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, ExitLevels, RiskApprovedSignal } from '../src/core/messages.js';
import { waitFor } from './helpers/redis.js';
import { isSettled, readPayloads, request, testConfig, testScope, tick, type TestScope } from './helpers/services.js';

const SYMBOL = 'SOLUSDT';

describe.each([
  { kind: 'embedded', embedded: true },
  { kind: 'redis', embedded: false },
])('protective exits on the $kind bus', ({ embedded }) => {
  let scope: TestScope;
  afterEach(async () => scope?.teardown());

  let ts = Date.now();
  const nextTs = () => (ts = Math.max(ts + 1, Date.now()));

  async function settled(bus: EventBus): Promise<void> {
    await waitFor(
      async () =>
        (await isSettled(bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution, TOPICS.signal])) &&
        (await isSettled(bus, GROUPS.execution, [TOPICS.tick, TOPICS.safe])) &&
        (await isSettled(bus, GROUPS.monitor, [TOPICS.tick, TOPICS.execution, TOPICS.exitLevels])),
      { what: 'all three services to settle' },
    );
  }

  async function start(config = testConfig({ risk: { cooldown_minutes: 0 } })) {
    scope = testScope(`exits-${embedded ? 'embedded' : 'redis'}`);
    const bus = await scope.openBus(undefined, { embedded });
    const risk = await scope.launch('risk', { bus, config });
    const execution = await scope.launch('execution', { bus, config });
    const monitor = await scope.launch('monitor', { bus, config });
    return { bus, risk, execution, monitor, config };
  }

  async function price(bus: EventBus, value: number): Promise<void> {
    await bus.publish(TOPICS.tick, tick(SYMBOL, value, nextTs()));
    await settled(bus);
  }

  async function openLong(bus: EventBus, levels: Record<string, number>): Promise<void> {
    await price(bus, 150);
    await bus.publish(TOPICS.signal, { signal_id: `entry-${nextTs()}`, symbol: SYMBOL, action: 'BUY', confidence: 0.85, source: 'test', ...levels });
    await waitFor(async () => (await readPayloads(bus, TOPICS.execution, ExecutionResult)).length === 1, { what: 'the entry fill' });
    await settled(bus);
  }

  async function closes(bus: EventBus): Promise<ExecutionResult[]> {
    return (await readPayloads(bus, TOPICS.execution, ExecutionResult)).filter((r) => r.reduce_only);
  }

  it('a stop fires once, whatever the ticks after it, and the position ends flat', async () => {
    const { bus, monitor, risk } = await start();
    await openLong(bus, { stop_loss: 140 });
    expect(monitor.service.positions()[0]).toMatchObject({ symbol: SYMBOL, stop_loss: 140 });
    await price(bus, 139);
    await price(bus, 130);
    await price(bus, 120);
    const all = await closes(bus);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ status: 'FILLED', origin: 'protective_exit', exit_reason: 'stop_loss', side: 'SELL' });
    const approvals = (await readPayloads(bus, TOPICS.safe, RiskApprovedSignal)).filter((a) => a.origin === 'protective_exit');
    expect(approvals).toHaveLength(1);
    expect(monitor.service.positions()).toEqual([]);
    expect(risk.service.stats().exits_by_reason).toEqual({ stop_loss: 1 });
    const levels = await readPayloads(bus, TOPICS.exitLevels, ExitLevels);
    expect(levels.map((l) => l.cause)).toEqual(['armed', 'triggered', 'cleared']);
  });

  it('every close carries its exit_reason: an opposite signal is `signal`, POST /close is `manual`', async () => {
    const { bus, monitor } = await start();
    await openLong(bus, {});
    await bus.publish(TOPICS.signal, { signal_id: `against-${nextTs()}`, symbol: SYMBOL, action: 'SELL', confidence: 0.9, source: 'test' });
    await waitFor(async () => (await closes(bus)).length === 1, { what: 'the signal close' });
    await settled(bus);
    await bus.publish(TOPICS.signal, { signal_id: `again-${nextTs()}`, symbol: SYMBOL, action: 'BUY', confidence: 0.85, source: 'test' });
    await waitFor(async () => monitor.service.positions().length === 1, { what: 'the second entry' });
    await settled(bus);
    const manual = await monitor.service.close(SYMBOL);
    expect(manual.kind).toBe('filled');
    expect((await closes(bus)).map((c) => [c.origin, c.exit_reason])).toEqual([
      ['signal', 'signal'],
      ['manual_close', 'manual'],
    ]);
  });

  it('a restart of the risk service mid-trail keeps the high-water mark', async () => {
    const { bus, risk, config } = await start();
    await openLong(bus, { trailing_stop_pct: 0.1 });
    await price(bus, 200); // trail at 180
    await risk.stop();
    const restarted = await scope.launch('risk', { bus, config });
    expect(restarted.service.exitLevels()[0]).toMatchObject({ high_water_mark: 200, trailing_stop: 180 });
    await price(bus, 181); // above the trail: a trail restarted from the entry (135) would hold here too
    expect(await closes(bus)).toHaveLength(0);
    await price(bus, 179);
    const all = await closes(bus);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ origin: 'protective_exit', exit_reason: 'trailing_stop' });
  });

  it('POST /positions/{symbol}/exits needs the token like every POST', async () => {
    scope = testScope('exits-token');
    const bus = await scope.openBus(undefined, { embedded });
    const config = testConfig({ api_token: 'secret-token-1' });
    const guarded = await scope.launch('risk', { bus, config });
    const denied = await request(guarded.app, 'POST', `/positions/${SYMBOL}/exits`, { body: { stop_loss: 1 } });
    expect(denied.status).toBe(401);
    const allowed = await request(guarded.app, 'POST', `/positions/${SYMBOL}/exits`, {
      body: { stop_loss: 1 },
      headers: { authorization: 'Bearer secret-token-1' },
    });
    expect(allowed.status).toBe(404); // flat: nothing to protect
    const bad = await request(guarded.app, 'POST', `/positions/${SYMBOL}/exits`, {
      body: { trailing_stop_pct: 2 },
      headers: { authorization: 'Bearer secret-token-1' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/trailing_stop_pct/);
  });
});
