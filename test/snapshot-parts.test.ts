/**
 * Snapshots stored by parts (issue 20; core/snapshot-parts.ts) with the services on Redis:
 * a snapshot stored whole (a string: every build before parts) is restored, not rebuilt,
 * and the first commit after it stores it by parts; a restart from the parts restores the
 * same state; a state change from HTTP (host.emit / mutate) is stored by parts too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { publishTradeSignal } from '../src/bus/publish.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import type { Logger } from '../src/platform/logger.js';
import { readSnapshotText, snapshotKey } from '../src/services/common/host.js';
import { capturingLogger, request, testConfig, testScope, uniqueId, waitForSettled } from './helpers/services.js';

const scope = testScope('snapshot-parts');
afterEach(() => scope.teardown());

const config = testConfig();
const SERVICES = ['risk', 'execution', 'monitor'] as const;

async function trade(bus: EventBus, symbol: string, action: string): Promise<void> {
  await publishTradeSignal(bus, symbol, action, 0.9, 'parts-test', { signal_id: uniqueId() });
  await waitForSettled(bus, GROUPS.risk, [TOPICS.signal]);
  await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
  await waitForSettled(bus, GROUPS.monitor, [TOPICS.execution]);
}

async function launchAll(bus: EventBus, loggers?: Record<(typeof SERVICES)[number], Logger>) {
  const risk = await scope.launch('risk', { bus, config, logger: loggers?.risk });
  const execution = await scope.launch('execution', { bus, config, logger: loggers?.execution });
  const monitor = await scope.launch('monitor', { bus, config, logger: loggers?.monitor });
  return { risk, execution, monitor };
}

describe('snapshots stored by parts', () => {
  it('a snapshot stored whole is restored, the next commit stores it by parts, and a restart from the parts restores the same state', async () => {
    const bus = await scope.openBus(scope.newPrefix());
    let loop = await launchAll(bus);
    for (const [symbol, action] of [
      ['BTCUSDT', 'BUY'],
      ['ETHUSDT', 'BUY'],
      ['BTCUSDT', 'CLOSE'],
    ] as const)
      await trade(bus, symbol, action);
    for (const service of SERVICES) expect(await bus.getState(snapshotKey(service))).toHaveProperty('fields');
    const portfolio = (await request(loop.monitor.app, 'GET', '/portfolio')).body;
    for (const service of Object.values(loop)) await service.stop();

    // The format before parts: the whole JSON as a string at the key.
    const texts = new Map<string, string>();
    for (const service of SERVICES) {
      const text = (await readSnapshotText(bus, service))!;
      texts.set(service, text);
      await bus.setValue(snapshotKey(service), text);
    }
    const logs = { risk: capturingLogger(), execution: capturingLogger(), monitor: capturingLogger() };
    loop = await launchAll(bus, { risk: logs.risk.logger, execution: logs.execution.logger, monitor: logs.monitor.logger });
    for (const service of SERVICES) {
      expect(logs[service].lines.filter((line) => line.msg === 'state loaded from the snapshot')).toHaveLength(1);
      expect(logs[service].lines.filter((line) => String(line.msg).includes('rebuilt'))).toEqual([]);
    }
    expect((await request(loop.monitor.app, 'GET', '/portfolio')).body).toEqual(portfolio);
    for (const service of SERVICES) expect(loop[service].service.state.snapshotJson()).toBe(texts.get(service));

    await trade(bus, 'ETHUSDT', 'CLOSE'); // approved (it reduces an open position): each service commits a batch
    for (const service of SERVICES) expect(await bus.getState(snapshotKey(service)), service).toHaveProperty('fields');
    const after = (await request(loop.monitor.app, 'GET', '/portfolio')).body;
    const stored = new Map<string, string | null>();
    for (const service of SERVICES) stored.set(service, await readSnapshotText(bus, service));
    for (const service of Object.values(loop)) await service.stop();

    const again = { risk: capturingLogger(), execution: capturingLogger(), monitor: capturingLogger() };
    loop = await launchAll(bus, { risk: again.risk.logger, execution: again.execution.logger, monitor: again.monitor.logger });
    for (const service of SERVICES) expect(again[service].lines.filter((line) => line.msg === 'state loaded from the snapshot')).toHaveLength(1);
    expect((await request(loop.monitor.app, 'GET', '/portfolio')).body).toEqual(after);
    // Restored from the parts, each service's snapshot is the text they held.
    for (const service of SERVICES) expect(loop[service].service.state.snapshotJson()).toBe(stored.get(service));
  });

  it('a price set over HTTP is stored by parts and restored', async () => {
    const bus = await scope.openBus(scope.newPrefix());
    const first = await scope.launch('execution', { bus, config });
    const res = await request(first.app, 'POST', '/prices/BTCUSDT', { body: { price: 51_234 } });
    expect(res.status).toBe(200);
    expect(await bus.getState(snapshotKey('execution'))).toHaveProperty('fields');
    await first.stop();
    const second = await scope.launch('execution', { bus, config });
    const prices = (await request<{ prices: Record<string, number> }>(second.app, 'GET', '/prices')).body.prices;
    expect(prices.BTCUSDT).toBe(51_234);
  });
});
