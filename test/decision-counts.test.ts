/**
 * trade.signal.decisions (issue 20): the monitor counts decisions per source from the risk
 * service's per-batch counts, and GET /sources shows exactly what counting every entry of
 * trade.signal.safe / .rejected gives, on both buses, through approvals, rejections with
 * several reasons, HOLDs, POST /close, a protective exit, POST /halt's flatten and a
 * rebuild without a snapshot. On Redis: the upgrade from a monitor that had groups on
 * trade.signal.safe / .rejected counts what they had not read and removes them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import type { EventBus } from '../src/bus/bus.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { DecisionCounts, RiskApprovedSignal, RiskRejection, SCHEMA_VERSION } from '../src/core/messages.js';
import { snapshotKey } from '../src/services/common/host.js';
import { MonitorState } from '../src/services/monitor/state.js';
import { redisUrl, waitFor } from './helpers/redis.js';
import { approval, capturingLogger, isSettled, readPayloads, testConfig, testScope, tick, type TestScope } from './helpers/services.js';

interface Counted {
  approved: number;
  rejected: number;
  rejected_by_reason: Record<string, number>;
}

/** The figures the monitor used to count: one per approval, one per rejection and one per reason it carries. */
async function countedFromStreams(bus: EventBus): Promise<Record<string, Counted>> {
  const out: Record<string, Counted> = {};
  const of = (source: string) => (out[source] ??= { approved: 0, rejected: 0, rejected_by_reason: {} });
  for (const a of await readPayloads(bus, TOPICS.safe, RiskApprovedSignal)) of(a.source).approved += 1;
  for (const r of await readPayloads(bus, TOPICS.rejected, RiskRejection)) {
    const c = of(r.source);
    c.rejected += 1;
    for (const reason of r.reasons) c.rejected_by_reason[reason] = (c.rejected_by_reason[reason] ?? 0) + 1;
  }
  return out;
}

function decisionFigures(sources: readonly { source: string; approved: number; rejected: number; signals: number; rejected_by_reason: Record<string, number> }[]) {
  const out: Record<string, Counted> = {};
  for (const s of sources) {
    if (s.approved + s.rejected === 0) continue; // a source with round trips only
    expect(s.signals).toBe(s.approved + s.rejected);
    out[s.source] = { approved: s.approved, rejected: s.rejected, rejected_by_reason: s.rejected_by_reason };
  }
  return out;
}

/** Reasons sorted, as GET /sources shows them. */
function sortedReasons(counted: Record<string, Counted>): Record<string, Counted> {
  return Object.fromEntries(
    Object.entries(counted).map(([source, c]) => [source, { ...c, rejected_by_reason: Object.fromEntries(Object.entries(c.rejected_by_reason).sort(([a], [b]) => (a < b ? -1 : 1))) }]),
  );
}

describe.each([
  { kind: 'embedded', embedded: true },
  { kind: 'redis', embedded: false },
])('decision counts on the $kind bus', ({ embedded }) => {
  let scope: TestScope;
  afterEach(async () => scope?.teardown());

  let ts = Date.now();
  const nextTs = () => (ts = Math.max(ts + 1, Date.now()));

  async function settled(bus: EventBus): Promise<void> {
    await waitFor(
      async () =>
        (await isSettled(bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution, TOPICS.signal])) &&
        (await isSettled(bus, GROUPS.execution, [TOPICS.tick, TOPICS.safe])) &&
        (await isSettled(bus, GROUPS.monitor, [TOPICS.tick, TOPICS.execution, TOPICS.exitLevels, TOPICS.decisions])),
      { what: 'all three services to settle' },
    );
  }

  it('GET /sources equals the figures counted from trade.signal.safe / .rejected, also after a rebuild', async () => {
    scope = testScope(`decisions-${embedded ? 'embedded' : 'redis'}`);
    const bus = await scope.openBus(undefined, { embedded });
    const config = testConfig({ risk: { cooldown_minutes: 0, max_daily_entries: 1000, min_confidence: 0.65 } });
    const risk = await scope.launch('risk', { bus, config });
    await scope.launch('execution', { bus, config });
    let monitor = await scope.launch('monitor', { bus, config });
    for (const [symbol, price] of [['SOLUSDT', 150], ['BTCUSDT', 60_000], ['ETHUSDT', 3000]] as const) {
      await bus.publish(TOPICS.tick, tick(symbol, price, nextTs()));
    }
    await settled(bus);

    // A mixed stream in one go (several signals per batch): entries, low confidence, low
    // confidence on a stale signal (two reasons), an unknown symbol, HOLDs, exits.
    const stale = Date.now() - 10 * 60_000;
    const signals = [
      { symbol: 'SOLUSDT', action: 'BUY', confidence: 0.8, source: 'alpha', stop_loss: 140 },
      { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.5, source: 'alpha' },
      { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.5, source: 'beta', ts: stale },
      { symbol: 'ETHUSDT', action: 'HOLD', confidence: 0.9, source: 'beta' },
      { symbol: 'ETHUSDT', action: 'BUY', confidence: 0.9, source: 'beta' },
      { symbol: 'DOGEUSDT', action: 'BUY', confidence: 0.9, source: 'gamma' },
      { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.9, source: 'gamma' },
      { symbol: 'BTCUSDT', action: 'SELL', confidence: 0.3, source: 'gamma', ts: stale },
    ];
    for (const [i, s] of signals.entries()) await bus.publish(TOPICS.signal, { signal_id: `mix-${i}-${nextTs()}`, ...s });
    await settled(bus);
    const open = monitor.service.positions().map((p) => p.symbol);
    expect(open).toContain('SOLUSDT');
    const manual = open.find((symbol) => symbol !== 'SOLUSDT');
    expect(manual, 'a second open position').toBeDefined();

    // A protective exit (a tick through the stop), a manual close, the kill switch's flatten.
    await bus.publish(TOPICS.tick, tick('SOLUSDT', 139, nextTs()));
    await waitFor(() => monitor.service.positions().every((p) => p.symbol !== 'SOLUSDT'), { what: 'the stop-loss close' });
    await settled(bus);
    expect((await monitor.service.close(manual!)).kind).toBe('filled');
    await settled(bus);
    await bus.publish(TOPICS.signal, { signal_id: `again-${nextTs()}`, symbol: manual, action: 'BUY', confidence: 0.9, source: 'delta' });
    await waitFor(() => monitor.service.positions().length > 0, { what: 'a position for the flatten' });
    await settled(bus);
    await risk.service.halt('test', true);
    await waitFor(() => monitor.service.positions().length === 0, { what: 'the flatten' });
    await bus.publish(TOPICS.signal, { signal_id: `halted-${nextTs()}`, symbol: 'SOLUSDT', action: 'BUY', confidence: 0.4, source: 'alpha' });
    await settled(bus);

    const rejections = await readPayloads(bus, TOPICS.rejected, RiskRejection);
    expect(rejections.some((r) => r.reasons.length >= 2), 'a rejection with several reasons').toBe(true);
    const approvals = await readPayloads(bus, TOPICS.safe, RiskApprovedSignal);
    expect(new Set(approvals.map((a) => a.origin))).toEqual(new Set(['signal', 'protective_exit', 'manual_close']));
    expect(approvals.filter((a) => a.exit_reason === 'kill_switch')).toHaveLength(1);

    const expected = sortedReasons(await countedFromStreams(bus));
    const shown = monitor.service.sources().sources;
    expect(decisionFigures(shown)).toEqual(expected);
    // Fewer messages than decisions: one per batch at most, and one per publication between batches.
    const messages = await readPayloads(bus, TOPICS.decisions, DecisionCounts);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.length).toBeLessThan(approvals.length + rejections.length);

    // Without a snapshot the monitor folds trade.signal.decisions: the same figures, the same report.
    await monitor.stop();
    await bus.setValue(snapshotKey('monitor'), 'not json');
    monitor = await scope.launch('monitor', { bus, config });
    expect(monitor.service.sources().sources).toEqual(shown);
  });
});

describe('upgrading from a monitor with groups on trade.signal.safe / .rejected (Redis)', () => {
  let scope: TestScope;
  afterEach(async () => scope?.teardown());

  const rejection = (source: string, reasons: RiskRejection['reasons']): RiskRejection => {
    const a = approval({ source });
    return {
      schema_version: SCHEMA_VERSION,
      signal_id: `${a.signal_id}-r`,
      symbol: a.symbol,
      action: a.action,
      confidence: a.confidence,
      source,
      ts: a.approved_ts,
      signal_ts: a.ts,
      reasons,
      checks: [],
      sizing: null,
    };
  };

  it.each([
    { from: 'the snapshot', snapshot: true },
    { from: 'a rebuild', snapshot: false },
  ])('counts what the old groups had not finished, removes them, and reads the decisions after the cut (state from $from)', async ({ snapshot }) => {
    scope = testScope('decisions-upgrade');
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix);
    const config = testConfig();
    const client = createClient({ url: redisUrl() });
    await client.connect();
    scope.defer(() => client.destroy());
    const key = (topic: string) => `${prefix}${topic}`;

    // What an older loop left: approvals and rejections, an old monitor that acknowledged
    // some (in its snapshot), holds one pending and never read the rest.
    const a = [approval({ source: 'alpha' }), approval({ source: 'alpha' }), approval({ source: 'beta' })];
    const r = [rejection('beta', ['LOW_CONFIDENCE', 'STALE_SIGNAL']), rejection('alpha', ['COOLDOWN'])];
    for (const payload of a) await bus.publish(TOPICS.safe, payload);
    for (const payload of r) await bus.publish(TOPICS.rejected, payload);
    for (const topic of [TOPICS.safe, TOPICS.rejected]) await client.sendCommand(['XGROUP', 'CREATE', key(topic), GROUPS.monitor, '0']);
    const read = async (topic: string, count: number) =>
      (await client.sendCommand(['XREADGROUP', 'GROUP', GROUPS.monitor, 'old-1', 'COUNT', String(count), 'STREAMS', key(topic), '>'])) as [string, [string, string[]][]][];
    const safeRead = await read(TOPICS.safe, 2); // a[0] acknowledged, a[1] pending, a[2] unread
    await client.sendCommand(['XACK', key(TOPICS.safe), GROUPS.monitor, safeRead[0]![1][0]![0]]);
    const rejectedRead = await read(TOPICS.rejected, 1); // r[0] acknowledged, r[1] unread
    await client.sendCommand(['XACK', key(TOPICS.rejected), GROUPS.monitor, rejectedRead[0]![1][0]![0]]);
    const old = new MonitorState(config.account.initial_balance_usd);
    old.onApproved(a[0]!);
    old.onRejected(r[0]!);
    await bus.setValue(snapshotKey('monitor'), snapshot ? old.snapshotJson() : 'not json');
    // A newer risk service already wrote counts for a[2] with it: before the cut, not counted again.
    await bus.publish(TOPICS.decisions, { schema_version: 1, sources: [{ source: 'beta', approved: 1, rejected: 0, rejected_by_reason: {} }], ts: Date.now() });

    const { logger, lines } = capturingLogger();
    const monitor = await scope.launch('monitor', { bus, config, logger });
    for (const topic of [TOPICS.safe, TOPICS.rejected]) {
      expect((await bus.info(topic)).groups.map((g) => g.name)).not.toContain(GROUPS.monitor);
    }
    const upgrade = lines.filter((l) => String(l.msg).startsWith('upgrade:'));
    expect(upgrade).toHaveLength(1);
    expect(upgrade[0]).toMatchObject({ counted: snapshot ? 3 : 2, retired_groups: [TOPICS.safe, TOPICS.rejected] });

    // Counts after the cut are read.
    await bus.publish(TOPICS.decisions, { schema_version: 1, sources: [{ source: 'gamma', approved: 2, rejected: 1, rejected_by_reason: { RATE_LIMIT: 1 } }], ts: Date.now() });
    await waitFor(() => isSettled(bus, GROUPS.monitor, [TOPICS.decisions]), { what: 'the monitor to read the counts' });
    expect(decisionFigures(monitor.service.sources().sources)).toEqual({
      alpha: { approved: 2, rejected: 1, rejected_by_reason: { COOLDOWN: 1 } },
      beta: { approved: 1, rejected: 1, rejected_by_reason: { LOW_CONFIDENCE: 1, STALE_SIGNAL: 1 } },
      gamma: { approved: 2, rejected: 1, rejected_by_reason: { RATE_LIMIT: 1 } },
    });

    // Saved with the upgrade: a restart finds nothing more to do and the same figures.
    await monitor.stop();
    const again = capturingLogger();
    const restarted = await scope.launch('monitor', { bus, config, logger: again.logger });
    expect(again.lines.filter((l) => String(l.msg).startsWith('upgrade:'))).toHaveLength(0);
    expect(decisionFigures(restarted.service.sources().sources)).toEqual(decisionFigures(monitor.service.sources().sources));
  });
  it('when its group on trade.signal.decisions has already read counts, it only removes the old groups (nothing counted twice)', async () => {
    scope = testScope('decisions-upgrade-read');
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix);
    const config = testConfig();
    const client = createClient({ url: redisUrl() });
    await client.connect();
    scope.defer(() => client.destroy());
    await bus.publish(TOPICS.safe, approval({ source: 'alpha' }));
    await client.sendCommand(['XGROUP', 'CREATE', `${prefix}${TOPICS.safe}`, GROUPS.monitor, '0']);
    const counts = { schema_version: 1, sources: [{ source: 'alpha', approved: 1, rejected: 0, rejected_by_reason: {} }], ts: Date.now() };
    await bus.publish(TOPICS.decisions, counts);
    await client.sendCommand(['XGROUP', 'CREATE', `${prefix}${TOPICS.decisions}`, GROUPS.monitor, '0']);
    const read = (await client.sendCommand(['XREADGROUP', 'GROUP', GROUPS.monitor, 'm-1', 'STREAMS', `${prefix}${TOPICS.decisions}`, '>'])) as [string, [string, string[]][]][];
    await client.sendCommand(['XACK', `${prefix}${TOPICS.decisions}`, GROUPS.monitor, read[0]![1][0]![0]]);
    const state = new MonitorState(config.account.initial_balance_usd);
    state.onDecisions(counts);

    for (const snapshot of [state.snapshotJson(), 'not json']) {
      await bus.setValue(snapshotKey('monitor'), snapshot);
      if (snapshot === 'not json') await client.sendCommand(['XGROUP', 'CREATE', `${prefix}${TOPICS.safe}`, GROUPS.monitor, '0']);
      const { logger, lines } = capturingLogger();
      const monitor = await scope.launch('monitor', { bus, config, logger });
      expect(lines.filter((l) => String(l.msg).startsWith('upgrade:'))).toEqual([expect.objectContaining({ counted: 0 })]);
      expect((await bus.info(TOPICS.safe)).groups).toEqual([]);
      expect(decisionFigures(monitor.service.sources().sources)).toEqual({ alpha: { approved: 1, rejected: 0, rejected_by_reason: {} } });
      await monitor.stop();
    }
  });
});
