/**
 * Nothing unread is trimmed (issue #11 item 4), on the services with Redis: with
 * `streams.maxlen` 1000 and the execution service stopped, every one of 2,119 approvals
 * is still there when it comes back and gets its result; with the risk service stopped,
 * every one of 2,500 signals is decided. Meanwhile the upstream service's /health warns
 * (still 200) and /metrics shows the backlog per stream and group.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { runTrim } from '../src/cli/tools.js';
import { formatReport } from '../src/cli/validate-checks.js';
import { defaultConfig, type Config } from '../src/platform/config.js';
import { redisUrl, waitFor } from './helpers/redis.js';
import { approval, metricValue, readPayloads, request, testConfig, testScope, uniqueId, waitForSettled } from './helpers/services.js';

const scope = testScope('trim-unread');
afterEach(() => scope.teardown());

const MAXLEN = 1000;
const config = testConfig({ streams: { maxlen: MAXLEN } });

async function publishInChunks(bus: Awaited<ReturnType<typeof scope.openBus>>, topic: string, payloads: unknown[]): Promise<void> {
  for (let i = 0; i < payloads.length; i += 500) await bus.publishMany(payloads.slice(i, i + 500).map((payload) => ({ topic, payload })));
}

describe('trimming never removes unread entries', () => {
  it('keeps all 2,119 approvals while execution is stopped, warns on risk /health and /metrics, and fills each once it is back', async () => {
    const prefix = scope.newPrefix();
    const execBus = await scope.openBus(prefix, { maxlen: MAXLEN, trimIntervalMs: 0 });
    const execution = await scope.launch('execution', { bus: execBus, config });
    await waitFor(async () => (await execBus.info(TOPICS.safe)).groups.length > 0, { what: 'the execution group' });
    await execution.stop(); // its group exists; it is away

    const riskBus = await scope.openBus(prefix, { maxlen: MAXLEN, trimIntervalMs: 0 });
    const risk = await scope.launch('risk', { bus: riskBus, config });
    const approvals = Array.from({ length: 2119 }, () => approval({ signal_id: uniqueId() }));
    await publishInChunks(riskBus, TOPICS.safe, approvals);

    const safe = (await riskBus.trimNow()).find((r) => r.topic === TOPICS.safe);
    expect(safe).toMatchObject({ removed: 0, length: 2119 });
    expect(safe?.keptBecause).toMatch(/group execution/);
    expect(await riskBus.length(TOPICS.safe)).toBe(2119);

    const health = await request<{ warnings: string[] }>(risk.app, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.warnings).toEqual([expect.stringContaining('group execution is 2119 entries behind on trade.signal.safe')]);
    const metrics = (await request(risk.app, 'GET', '/metrics')).text;
    expect(metricValue(metrics, 'qt_stream_backlog_entries', { topic: TOPICS.safe, group: GROUPS.execution })).toBe(2119);

    const execBus2 = await scope.openBus(prefix, { maxlen: MAXLEN, trimIntervalMs: 0 });
    await scope.launch('execution', { bus: execBus2, config });
    await waitForSettled(execBus2, GROUPS.execution, [TOPICS.safe], { timeoutMs: 60_000 });
    const results = (await readPayloads(execBus2, TOPICS.execution)) as Array<{ signal_id: string }>;
    expect(new Set(results.map((r) => r.signal_id))).toEqual(new Set(approvals.map((a) => a.signal_id)));
    expect(results).toHaveLength(2119);

    // Handled: now the stream is cut back to maxlen, and the warning is gone.
    const after = (await riskBus.trimNow()).find((r) => r.topic === TOPICS.safe);
    expect(after).toMatchObject({ removed: 2119 - MAXLEN, length: MAXLEN, keptBecause: null });
    // (The monitor never ran here: its group on trade.execution.res is reported instead.)
    const warnings = (await request<{ warnings: string[] }>(risk.app, 'GET', '/health')).body.warnings;
    expect(warnings.filter((w) => w.includes(TOPICS.safe))).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining(`group ${GROUPS.monitor} is 2119 entries behind on ${TOPICS.execution}`)]);
  });

  it('decides all 2,500 signals published while risk was stopped', async () => {
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix, { maxlen: MAXLEN, trimIntervalMs: 0 });
    const risk = await scope.launch('risk', { bus, config });
    await risk.stop();
    const signals = Array.from({ length: 2500 }, (_, i) => ({
      schema_version: 1,
      signal_id: uniqueId(),
      symbol: 'BTCUSDT',
      action: 'BUY',
      confidence: 0.5, // rejected LOW_CONFIDENCE: each decision is one output
      source: 'trim-test',
      ts: Date.now() + i,
    }));
    await publishInChunks(bus, TOPICS.signal, signals);
    expect((await bus.trimNow()).find((r) => r.topic === TOPICS.signal)).toMatchObject({ removed: 0, length: 2500 });

    const risk2 = await scope.launch('risk', { bus: await scope.openBus(prefix, { trimIntervalMs: 0 }), config });
    await waitForSettled(bus, GROUPS.risk, [TOPICS.signal], { timeoutMs: 60_000 });
    expect(risk2.service.stats().counts.received).toBe(2500);
    expect(await bus.length(TOPICS.rejected)).toBe(2500);
  });

  it('quantum streams trim trims exactly to --maxlen behind the groups and says what it kept and why', async () => {
    const prefix = scope.newPrefix();
    const bus = await scope.openBus(prefix, { trimIntervalMs: 0 });
    await bus.ensureGroup(TOPICS.signal, GROUPS.risk, '0');
    await publishInChunks(bus, TOPICS.rejected, Array.from({ length: 1500 }, (_, n) => ({ n })));
    await publishInChunks(bus, TOPICS.signal, Array.from({ length: 1500 }, (_, n) => ({ n })));
    await publishInChunks(bus, TOPICS.execution, Array.from({ length: 1500 }, (_, n) => ({ n })));
    await publishInChunks(bus, TOPICS.exitLevels, Array.from({ length: 1500 }, (_, n) => ({ n })));
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      const config = defaultConfig({ redis_url: redisUrl(), stream_prefix: prefix }) as Config & { redis_url: string };
      expect(await runTrim(config, { maxlen: 1000 })).toBe(0);
    } finally {
      log.mockRestore();
    }
    expect(lines).toContain(`${TOPICS.rejected}: removed 500, 1000 left`);
    expect(lines.find((l) => l.startsWith(`${TOPICS.signal}:`))).toMatch(/removed 0, 1500 left; 500 more than --maxlen kept: group risk-safety has not read the rest yet/);
    expect(lines.find((l) => l.startsWith(`${TOPICS.execution}:`))).toMatch(/removed 0, 1500 left; 500 more than --maxlen kept: group risk-safety does not exist yet/);
    expect(lines.find((l) => l.startsWith(`${TOPICS.exitLevels}:`))).toMatch(/removed 0, 1500 left; 500 more than --maxlen kept: group position-monitor does not exist yet/);
    expect(await bus.length(TOPICS.rejected)).toBe(1000);
    expect(await bus.length(TOPICS.signal)).toBe(1500);
  });

  it('quantum validate prints backlog warnings after the checks, not as a 14th check', () => {
    const text = formatReport([], ['group execution is 2119 entries behind on trade.signal.safe (streams.maxlen 1000): ...']);
    expect(text).toContain('Warnings (not checks):');
    expect(text).toContain('⚠️  group execution is 2119 entries behind');
  });
});
