/**
 * `quantum validate` (SPEC §9) as an operator runs it: a child process with the
 * deployment's environment, against the three services running as separate processes
 * on Redis. A healthy loop with a crafted signal mix passes all 13 checks and says
 * CORE LOOP OK (exit 0); with the execution service stopped it fails, naming the
 * execution checks, and exits non-zero.
 *
 * The fill-rate check counts every filled approval and an unfilled one only once it is
 * older than 5 s (younger ones may still be in flight), so a validator run right after
 * the burst already passes.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus } from '../src/bus/redis.js';
import { TOPICS } from '../src/bus/topics.js';
import type { TradeSignal } from '../src/core/messages.js';
import {
  ensureBuilt,
  getJson,
  newDeployment,
  runQuantum,
  startServices,
  type Services,
  tearDownDeployment,
} from './helpers/processes.js';
import { redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';

interface Report {
  ok: boolean;
  passed: number;
  total: number;
  checks: Array<{ id: number; name: string; passed: boolean; detail: string }>;
}

const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT'];
/** The units are not installed here; where systemd runs, its checks would judge them. */
const SYSTEMD_ARGS = existsSync('/run/systemd/system') ? ['--no-systemd'] : [];

/**
 * 5 entries approved (one BUY at 0.90 per symbol: 10 % each, 50 % in total), then 10
 * rejected (BUY at 0.80 on symbols already at their limit), and 5 HOLDs: approval rate
 * 5/15 = 33 %, average BUY confidence (5 × 0.90 + 10 × 0.80) / 15 = 0.83, two actions.
 */
function craftedSignals(): TradeSignal[] {
  const ts = Date.now();
  const signal = (i: number, symbol: string, action: 'BUY' | 'HOLD', confidence: number): TradeSignal => ({
    schema_version: 1,
    signal_id: `validate-${i}`,
    symbol,
    action,
    confidence,
    source: 'validate-test',
    ts,
  });
  const list: TradeSignal[] = [];
  SYMBOLS.forEach((s) => list.push(signal(list.length, s, 'BUY', 0.9)));
  for (let round = 0; round < 2; round++) SYMBOLS.forEach((s) => list.push(signal(list.length, s, 'BUY', 0.8)));
  SYMBOLS.forEach((s) => list.push(signal(list.length, s, 'HOLD', 0.6)));
  return list;
}

describe('quantum validate against a running deployment', () => {
  const prefix = uniquePrefix('validate');
  let services: Services;

  beforeAll(async () => {
    await ensureBuilt();
    const deployment = await newDeployment(prefix, {});
    services = await startServices(deployment);
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined });
    try {
      const signals = craftedSignals();
      await bus.publishMany(signals.map((payload) => ({ topic: TOPICS.signal, payload })));
      await waitFor(
        async () => {
          const stats = await getJson<{ counts: { received: number }; inflight_orders: number }>(`${services.url('risk')}/stats`);
          return stats.counts.received === signals.length && stats.inflight_orders === 0;
        },
        { timeoutMs: 30_000, what: 'risk to decide every signal and see every fill' },
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${services.describe()}`);
      });
    } finally {
      await bus.close();
    }
  }, 240_000);

  afterAll(async () => {
    await tearDownDeployment(services, prefix);
  }, 60_000);

  const validate = (...args: string[]) => runQuantum(['validate', ...SYSTEMD_ARGS, ...args], services.env);

  it('a healthy loop: all 13 checks pass, CORE LOOP OK, exit 0; --json says ok with 13 checks', async () => {
    const stats = await getJson<{ counts: { approved: number; rejected: number; skipped: number } }>(`${services.url('risk')}/stats`);
    expect(stats.counts).toMatchObject({ approved: 5, rejected: 10, skipped: 5 });

    // Right after the burst (every approval younger than the 5 s grace, all filled): the
    // filled ones count, so the first run already passes.
    const run = await validate('--json');
    const last = JSON.parse(run.stdout) as Report;
    expect(last.checks.filter((c) => !c.passed), run.stderr).toEqual([]);
    expect(run.code).toBe(0);
    expect(last.checks.find((c) => c.name === 'fill rate >= 95%')?.detail).toContain('5/5');
    expect(last).toMatchObject({ ok: true, passed: 13, total: 13 });
    expect(last.checks).toHaveLength(13);
    expect(last.checks.every((c) => c.passed)).toBe(true);
    expect(last.checks.find((c) => c.name === 'approval rate 20-50%')?.detail).toContain('33.3%');

    const text = await validate();
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toContain('Checks passed: 13/13');
    expect(text.stdout).toContain('CORE LOOP OK');
    expect(text.stdout).not.toContain('NOT OK');
  });

  it('with the execution service stopped: exit non-zero, naming the execution checks', async () => {
    const exit = await services.procs.execution.stop();
    expect(exit.code).toBe(0);

    const text = await validate();
    expect(text.code).not.toBe(0);
    expect(text.stdout).toContain('Checks passed: 11/13');
    expect(text.stdout).toContain('CORE LOOP NOT OK');
    expect(text.stdout).not.toContain('CORE LOOP OK');
    expect(text.stdout).toMatch(/Failed checks:[\s\S]*execution running: execution: NOT LISTENING/);
    expect(text.stdout).toMatch(/Failed checks:[\s\S]*execution \/health: execution: \/health did not answer/);

    const json = await validate('--json');
    expect(json.code).not.toBe(0);
    const report = JSON.parse(json.stdout) as Report;
    expect(report.ok).toBe(false);
    expect(report.checks).toHaveLength(13);
    expect(report.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual(['execution running', 'execution /health']);
  });
});
