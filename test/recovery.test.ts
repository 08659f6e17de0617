/**
 * Recovery without a snapshot (issue #11 item 5): a service with no snapshot, a corrupt
 * one or one of another version rebuilds its state from the streams and says so in one
 * log line; the monitor then shows the same portfolio as before, the risk gate the same
 * books, whatever happened to the snapshot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import type { EventBus } from '../src/bus/bus.js';
import { publishTradeSignal } from '../src/bus/publish.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { snapshotKey } from '../src/services/common/host.js';
import { redisUrl } from './helpers/redis.js';
import { capturingLogger, request, testConfig, testScope, uniqueId, waitForSettled } from './helpers/services.js';

const scope = testScope('recovery');
afterEach(() => scope.teardown());

async function rawRedis<T>(fn: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ url: redisUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** What the snapshot is replaced with before the restart. */
const DAMAGE = {
  deleted: null,
  'corrupt JSON': '{"version":1,"ledger":',
  'an older version': JSON.stringify({ version: 0, balance: '10000' }),
  'a version-1 snapshot that does not fit': JSON.stringify({ version: 1, ledger: { nope: true } }),
} as const;

const config = testConfig();

/** The loop in-process on one prefix, with some fills: three entries and one exit (a loss: the cooldown starts). */
async function tradedLoop(bus: EventBus, config = testConfig()) {
  const risk = await scope.launch('risk', { bus, config });
  const execution = await scope.launch('execution', { bus, config });
  const monitor = await scope.launch('monitor', { bus, config });
  const signals: Array<[string, string]> = [
    ['BTCUSDT', 'BUY'],
    ['ETHUSDT', 'BUY'],
    ['SOLUSDT', 'BUY'],
    ['BTCUSDT', 'CLOSE'],
  ];
  for (const [symbol, action] of signals) {
    await publishTradeSignal(bus, symbol, action, 0.9, 'recovery-test', { signal_id: uniqueId() });
    await waitForSettled(bus, GROUPS.risk, [TOPICS.signal]);
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);
  }
  return { risk, execution, monitor };
}

describe('a service without a usable snapshot rebuilds its state from the streams', () => {
  for (const [damage, replacement] of Object.entries(DAMAGE)) {
    it(`monitor and risk, snapshot ${damage}: the same portfolio and books as before, said in one log line`, async () => {
      const prefix = scope.newPrefix();
      const bus = await scope.openBus(prefix);
      const { risk, monitor } = await tradedLoop(bus);
      const portfolio = (await request(monitor.app, 'GET', '/portfolio')).body;
      const positions = (await request(monitor.app, 'GET', '/positions')).body;
      expect(portfolio.open_positions).toBe(2);
      const riskBooks = (({ confirmed_balance_usd, exposure_usd, open_positions, entries_today }) => ({
        confirmed_balance_usd,
        exposure_usd,
        open_positions,
        entries_today,
      }))(risk.service.stats());
      await monitor.stop();
      await risk.stop();

      for (const service of ['monitor', 'risk'] as const) {
        await rawRedis(async (client) => {
          const key = prefix + snapshotKey(service);
          if (replacement === null) await client.del(key);
          else await client.set(key, replacement);
        });
      }

      const monitorLog = capturingLogger();
      const riskLog = capturingLogger();
      const monitor2 = await scope.launch('monitor', { bus, config, logger: monitorLog.logger });
      const risk2 = await scope.launch('risk', { bus, config, logger: riskLog.logger });
      expect((await request(monitor2.app, 'GET', '/portfolio')).body).toEqual(portfolio);
      const normalizeTs = (body: unknown) => JSON.parse(JSON.stringify(body).replace(/"ts":\d+/g, '"ts":0')) as unknown;
      expect(normalizeTs((await request(monitor2.app, 'GET', '/positions')).body)).toEqual(normalizeTs(positions));
      expect(risk2.service.stats()).toMatchObject(riskBooks);

      for (const { lines } of [monitorLog, riskLog]) {
        const said = lines.filter((line) => String(line.msg).includes('state rebuilt from the streams'));
        expect(said).toHaveLength(1);
        expect(said[0]).toMatchObject({ restored: false });
        expect(String(said[0]?.msg)).toMatch(replacement === null ? /^no snapshot/ : /^the snapshot/);
        // No raw validation dump: one short line.
        expect(String(said[0]?.msg)).not.toContain('\n');
        expect(String(said[0]?.msg).length).toBeLessThan(400);
      }
    });
  }

  it('execution folds its own positions, the monitor its exit levels; a tick the gate refused stays refused', async () => {
    const armed = testConfig({ exits: { stop_loss_pct: 0.05 } });
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix);
    const { risk, execution, monitor } = await tradedLoop(bus, armed);
    // A tick an hour ahead: every gate refuses it (FUTURE_TS), so it is in market.tick but applied nowhere.
    await bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'ETHUSDT', price: 1, ts: Date.now() + 3_600_000, source: 'manual' });
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.tick, TOPICS.exitLevels]);
    await waitForSettled(bus, GROUPS.execution, [TOPICS.tick]);
    const netPositions = execution.service.state.netPositions();
    expect(Object.keys(netPositions).sort()).toEqual(['ETHUSDT', 'SOLUSDT']);
    const positions = (await request<{ positions: Array<{ stop_loss?: number }> }>(monitor.app, 'GET', '/positions')).body;
    expect(positions.positions.map((p) => p.stop_loss !== undefined)).toEqual([true, true]);
    const marks = (await request(monitor.app, 'GET', '/prices')).body;
    const prices = execution.service.state.prices();
    await Promise.all([risk.stop(), execution.stop(), monitor.stop()]);
    await rawRedis(async (client) => {
      for (const service of ['execution', 'monitor'] as const) await client.del(prefix + snapshotKey(service));
    });

    const execution2 = await scope.launch('execution', { bus, config: armed });
    const monitor2 = await scope.launch('monitor', { bus, config: armed });
    expect(execution2.service.state.netPositions()).toEqual(netPositions);
    expect(execution2.service.state.prices()).toEqual(prices);
    const normalizeTs = (body: unknown) => JSON.parse(JSON.stringify(body).replace(/"ts":\d+/g, '"ts":0')) as unknown;
    expect(normalizeTs((await request(monitor2.app, 'GET', '/positions')).body)).toEqual(normalizeTs(positions));
    expect((await request(monitor2.app, 'GET', '/prices')).body).toEqual(marks);
  });

  it('applies a fill that arrived while the monitor was down exactly once', async () => {
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix);
    const { monitor } = await tradedLoop(bus);
    await monitor.stop();
    await rawRedis((client) => client.del(prefix + snapshotKey('monitor')));
    await publishTradeSignal(bus, 'ETHUSDT', 'CLOSE', 0.9, 'recovery-test', { signal_id: uniqueId() });
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    const monitor2 = await scope.launch('monitor', { bus, config });
    await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);
    const stats = monitor2.service.state.statistics();
    expect(stats.duplicates).toBe(0);
    expect((await request(monitor2.app, 'GET', '/portfolio')).body).toMatchObject({ open_positions: 1, closed_trades: 2 });
  });
});
