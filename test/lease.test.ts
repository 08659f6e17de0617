/**
 * One active instance per service and account (issue #11 item 3), with the services as
 * processes on Redis: a second `quantum risk` waits as a hot standby (503 "standby")
 * while the first holds the lease, and takes over after the first is killed with -9;
 * every signal is decided exactly once, every approval filled once, the monitor's books
 * equal the fills, and no position passes its cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus } from '../src/bus/redis.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { fx, toNumber } from '../src/core/fixed.js';
import { Ledger, ledgerFillOf } from '../src/core/ledger.js';
import { ExecutionResult, RiskApprovedSignal, RiskRejection, type TradeSignal } from '../src/core/messages.js';
import {
  deploymentEnv,
  ensureBuilt,
  freePorts,
  getJson,
  http,
  newDeployment,
  postJson,
  runQuantum,
  spawnQuantum,
  startJournal,
  startServices,
  JOURNAL_READY,
  waitForHealth,
  type Services,
  tearDownDeployment,
} from './helpers/processes.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';
import { isSettled, readPayloads } from './helpers/services.js';

const PRICES: Record<string, number> = { BTCUSDT: 64_250.5, ETHUSDT: 3_412.37, SOLUSDT: 143.87 };
const SYMBOLS = Object.keys(PRICES);
const CONFIG = {
  execution: { price_interval_ms: 0 },
  monitor: { mark_interval_ms: 0 },
  risk: { cooldown_minutes: 0, max_daily_entries: 1_000_000, inflight_timeout_ms: 600_000 },
  lease: { ttl_ms: 2000 },
};

const prefix = uniquePrefix('lease');
let services: Services | null = null;
let deploymentEnvForUp: NodeJS.ProcessEnv | null = null;

beforeAll(async () => {
  await ensureBuilt();
}, 240_000);

afterAll(async () => {
  await tearDownDeployment(services, prefix);
}, 60_000);

function signals(from: number, count: number): TradeSignal[] {
  const actions = ['BUY', 'BUY', 'SELL', 'CLOSE'] as const;
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return {
      schema_version: 1,
      signal_id: `lease-${String(i).padStart(4, '0')}`,
      symbol: SYMBOLS[i % SYMBOLS.length]!,
      action: actions[Math.floor(i / SYMBOLS.length) % actions.length]!,
      confidence: 0.7 + (i % 5) * 0.05,
      source: 'lease-test',
      ts: Date.now(),
    };
  });
}

describe('one active instance per service', () => {
  it('a second risk instance waits as a hot standby and takes over after kill -9 of the active one: nothing lost or doubled', async () => {
    const deployment = await newDeployment(prefix, CONFIG);
    services = await startServices(deployment);
    const [upRisk = 0, upExecution = 0, upMonitor = 0] = await freePorts(3);
    deploymentEnvForUp = deploymentEnv(deployment, {
      QT_RISK_PORT: String(upRisk),
      QT_EXECUTION_PORT: String(upExecution),
      QT_MONITOR_PORT: String(upMonitor),
    });
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined, trimIntervalMs: 0 });
    try {
      for (const [symbol, price] of Object.entries(PRICES)) await postJson(`${services.url('execution')}/prices/${symbol}`, { price });
      await waitFor(async () => {
        const { prices } = await getJson<{ prices: Record<string, number> }>(`${services!.url('monitor')}/prices`);
        return SYMBOLS.every((s) => prices[s] === PRICES[s]);
      }, { what: 'the monitor to hold the prices' });

      // The second instance, on a port of its own: a standby, not a second consumer.
      const [standbyPort = 0] = await freePorts(1);
      const standby = spawnQuantum(['risk'], deploymentEnv(deployment, { QT_RISK_PORT: String(standbyPort) }), 'risk-standby');
      const standbyUrl = `http://127.0.0.1:${standbyPort}`;
      const reply = await waitFor(() => http<{ status: string }>('GET', `${standbyUrl}/health`, undefined, 2000), {
        timeoutMs: 30_000,
        what: 'the standby to answer',
      });
      expect(reply.status).toBe(503);
      expect(reply.body.status).toBe('standby');
      await standby.waitForOutput(/hot standby/);

      const first = signals(0, 60);
      await bus.publishMany(first.map((payload) => ({ topic: TOPICS.signal, payload })));
      // The active one decides; the standby never joins the group while it waits.
      await waitFor(() => isSettled(bus, GROUPS.risk, [TOPICS.signal]), { timeoutMs: 30_000, what: 'risk to decide the first signals' });
      const consumers = (await bus.info(TOPICS.signal)).groups.find((g) => g.name === GROUPS.risk)?.consumers;
      expect(consumers).toBe(1);

      // Kill the active one mid-stream; the next signals wait for the standby.
      const second = signals(60, 60);
      await bus.publishMany(second.slice(0, 30).map((payload) => ({ topic: TOPICS.signal, payload })));
      expect((await services.procs.risk.kill()).signal).toBe('SIGKILL');
      await bus.publishMany(second.slice(30).map((payload) => ({ topic: TOPICS.signal, payload })));
      await waitForHealth(standbyUrl, standby, 30_000);
      await standby.waitForOutput(/lease taken/);

      await waitFor(
        async () =>
          (await isSettled(bus, GROUPS.risk, [TOPICS.signal])) &&
          (await isSettled(bus, GROUPS.execution, [TOPICS.safe])) &&
          (await isSettled(bus, GROUPS.monitor, [TOPICS.execution])),
        { timeoutMs: 60_000, what: 'the loop to settle after the takeover' },
      );

      // The killed instance's consumer (nothing pending any more) is dropped from the group.
      await waitFor(
        async () => (await bus.info(TOPICS.signal)).groups.find((g) => g.name === GROUPS.risk)?.consumers === 1,
        { timeoutMs: 30_000, what: "the killed instance's consumer to be removed" },
      );

      const published = [...first, ...second].map((s) => s.signal_id);
      const approvals = await readPayloads(bus, TOPICS.safe, RiskApprovedSignal);
      const rejections = await readPayloads(bus, TOPICS.rejected, RiskRejection);
      const decided = [...approvals, ...rejections].map((d) => d.signal_id);
      // Each signal decided exactly once (CLOSE of a flat position is skipped: no output).
      expect(approvals.length).toBeGreaterThan(10);
      expect(new Set(decided).size).toBe(decided.length);
      for (const id of decided) expect(published).toContain(id);
      const riskStats = await getJson<{ counts: { received: number; duplicates: number } }>(`${standbyUrl}/stats`);
      expect(riskStats.counts.duplicates).toBe(0);

      // Each approval has exactly one result.
      const results = await readPayloads(bus, TOPICS.execution, ExecutionResult);
      expect(results.map((r) => r.signal_id).sort()).toEqual(approvals.map((a) => a.signal_id).sort());

      // The monitor's books are the fills', and no position is past its cap.
      const ledger = new Ledger(fx(10_000));
      for (const result of results) if (result.status === 'FILLED') ledger.applyFill(ledgerFillOf(result));
      for (const [symbol, price] of Object.entries(PRICES)) ledger.setMark(symbol, fx(price));
      const portfolio = await getJson<{ balance_usd: number; open_positions: number }>(`${services.url('monitor')}/portfolio`);
      expect(portfolio.balance_usd).toBeCloseTo(toNumber(ledger.balance()), 8);
      expect(portfolio.open_positions).toBe(ledger.openPositionCount());
      const equity = toNumber(ledger.equity());
      for (const view of ledger.openPositionViews(0)) {
        expect(view.quantity * view.mark_price, `${view.symbol} notional`).toBeLessThanOrEqual(equity * 0.1 * 1.01);
      }
    } finally {
      await bus.close();
    }
  }, 180_000);

  it('quantum up on the same Redis account refuses to start while the services run (one line, exit 1)', async () => {
    expect(deploymentEnvForUp).not.toBeNull();
    const result = await runQuantum(['up', '--no-demo', '--plain', '--no-dashboard'], deploymentEnvForUp!, 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^quantum up: (risk|execution|monitor) is already running on this account \(another instance holds lease:\w+\); stop it or use another stream_prefix$/);
  }, 90_000);
});

describe('quantum journal', () => {
  it('a second journal on the account waits as a standby and takes over once the first stops', async () => {
    const journalPrefix = uniquePrefix('lease-journal');
    try {
      const env = deploymentEnv(await newDeployment(journalPrefix, CONFIG));
      const first = await startJournal(env, 'journal-1');
      const second = spawnQuantum(['journal'], env, 'journal-2');
      await second.waitForOutput(/another journal holds this account's lease; waiting as a standby/, 45_000);
      expect((await first.stop()).code).toBe(0); // a clean stop frees the lease at once
      await second.waitForOutput(JOURNAL_READY, 45_000);
      expect((await second.stop()).code).toBe(0);
    } finally {
      await cleanupPrefix(redisUrl(), journalPrefix);
    }
  }, 120_000);
});
