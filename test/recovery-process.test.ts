/**
 * Recovery without a snapshot with the services as processes on Redis (issue #11 item 5):
 * the monitor restarted after its snapshot was deleted shows the same /portfolio and
 * /positions as before, and says so in one log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { RedisBus } from '../src/bus/redis.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { snapshotKey } from '../src/services/common/host.js';
import { ensureBuilt, getJson, newDeployment, postJson, startServices, tearDownDeployment, type Services } from './helpers/processes.js';
import { redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';
import { isSettled } from './helpers/services.js';

const prefix = uniquePrefix('recovery-process');
let services: Services | null = null;

beforeAll(async () => {
  await ensureBuilt();
}, 240_000);

afterAll(async () => {
  await tearDownDeployment(services, prefix);
}, 60_000);

describe('the monitor as a process, restarted without its snapshot', () => {
  it('rebuilds the same portfolio from trade.execution.res and market.tick', async () => {
    const deployment = await newDeployment(prefix, {
      execution: { price_interval_ms: 0 },
      monitor: { mark_interval_ms: 0 },
      risk: { cooldown_minutes: 0 },
    });
    services = await startServices(deployment);
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined, trimIntervalMs: 0 });
    try {
      await postJson(`${services.url('execution')}/prices/BTCUSDT`, { price: 64_000 });
      const signals = [
        ['BTCUSDT', 'BUY'],
        ['ETHUSDT', 'BUY'],
        ['SOLUSDT', 'SELL'],
        ['ETHUSDT', 'CLOSE'],
      ].map(([symbol, action], i) => ({
        schema_version: 1, signal_id: `recovery-${i}`, symbol, action, confidence: 0.9, source: 'recovery-test', ts: Date.now(),
      }));
      for (const signal of signals) {
        await bus.publish(TOPICS.signal, signal);
        await waitFor(
          async () =>
            (await isSettled(bus, GROUPS.risk, [TOPICS.signal])) &&
            (await isSettled(bus, GROUPS.execution, [TOPICS.safe])) &&
            (await isSettled(bus, GROUPS.monitor, [TOPICS.execution, TOPICS.tick])),
          { timeoutMs: 30_000, what: 'the loop to settle' },
        );
      }
      const portfolio = await getJson(`${services.url('monitor')}/portfolio`);
      const positions = await getJson<{ positions: Array<Record<string, unknown>> }>(`${services.url('monitor')}/positions`);
      expect(positions.positions.length).toBeGreaterThan(0);

      await services.procs.monitor.stop();
      const client = createClient({ url: redisUrl() });
      await client.connect();
      await client.del(prefix + snapshotKey('monitor'));
      client.destroy();

      const revived = await services.restart('monitor');
      await revived.waitForOutput(/no snapshot: state rebuilt from the streams/);
      expect(await getJson(`${services.url('monitor')}/portfolio`)).toEqual(portfolio);
      const strip = (body: unknown) => JSON.parse(JSON.stringify(body).replace(/"ts":\d+/g, '"ts":0')) as unknown;
      expect(strip(await getJson(`${services.url('monitor')}/positions`))).toEqual(strip(positions));
    } finally {
      await bus.close();
    }
  }, 180_000);
});
