/**
 * The journal end to end, as real processes:
 *
 *  - on Redis and PostgreSQL: `quantum risk`, `quantum execution`, `quantum monitor` and
 *    `quantum journal`; 400 seeded signals; the journal is killed with SIGKILL mid-run
 *    (while it holds delivered, unacknowledged entries) and started again. Afterwards
 *    `fills` holds exactly one row per execution result (no order_id twice), `decisions`
 *    one row per decided signal, `round_trips` one row per close the monitor published,
 *    with the monitor's PnL; `quantum journal trades --format csv` prints them;
 *  - `quantum up` (embedded bus) writes the same tables to its SQLite file;
 *  - a bad `journal.url` exits 2 naming the key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus } from '../src/bus/redis.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, PositionUpdate, RiskApprovedSignal, RiskRejection } from '../src/core/messages.js';
import { PostgresStore } from '../src/services/journal/postgres-store.js';
import { JOURNAL_TOPICS } from '../src/services/journal/service.js';
import { SqliteStore } from '../src/services/journal/sqlite-store.js';
import {
  deploymentEnv,
  ensureBuilt,
  freePorts,
  getJson,
  http,
  killAll,
  newDeployment,
  postJson,
  removeScratch,
  runQuantum,
  spawnQuantum,
  startJournal,
  startServices,
  waitForHealth,
  writeConfig,
  type QuantumProcess,
  type Services,
} from './helpers/processes.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';
import { POSTGRES_URL, PRICES, postgresAvailable, seededSignals } from './helpers/journal.js';
import type { JournalStore } from '../src/services/journal/store.js';

const SIGNALS = 400;
const KILL_AFTER = 200;
const CHUNK = 25;
const CONFIG = {
  // Free fills: at frozen prices fees make every round trip a loss, and ten losses stop entries (b = 0).
  execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 },
  monitor: { mark_interval_ms: 0 },
  risk: { cooldown_minutes: 0, max_daily_entries: 1_000_000, inflight_timeout_ms: 600_000 },
};

const cleanups: Array<() => Promise<void>> = [];
beforeAll(async () => {
  await ensureBuilt();
}, 240_000);
afterAll(async () => {
  await killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  removeScratch();
}, 60_000);

async function payloads<T>(bus: RedisBus, topic: string, schema: { parse(v: unknown): T }): Promise<T[]> {
  return (await bus.readAfter(topic, '0', 1_000_000)).map((e) => schema.parse(JSON.parse(e.fields.payload ?? 'null')));
}

interface Backend {
  name: 'postgres' | 'sqlite';
  /** The journal's environment, and how the test opens what it wrote. */
  setup(): { env: Record<string, string>; open(): Promise<JournalStore> };
}

const WITH_POSTGRES = await postgresAvailable('journal-e2e.test');
const BACKENDS: Backend[] = [
  {
    name: 'postgres',
    setup() {
      const schema = `journal_e2e_${randomBytes(4).toString('hex')}`;
      return {
        env: { QT_JOURNAL_URL: POSTGRES_URL, QT_JOURNAL_SCHEMA: schema },
        async open() {
          const store = await PostgresStore.open(POSTGRES_URL, schema);
          cleanups.push(async () => {
            await store.dropSchema();
            await store.close();
          });
          return store;
        },
      };
    },
  },
  {
    name: 'sqlite',
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'qt-journal-e2e-'));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'journal.sqlite');
      return {
        env: { QT_JOURNAL_URL: `sqlite:${file}` },
        async open() {
          const store = SqliteStore.open(file);
          cleanups.push(() => store.close());
          return store;
        },
      };
    },
  },
];

describe.each(BACKENDS.filter((b) => b.name === 'sqlite' || WITH_POSTGRES))('quantum journal on Redis and $name', (backend) => {
  it('a run of signals with a kill -9 of the journal in the middle: every row once, round trips with the monitor PnL', { timeout: 300_000 }, async () => {
    const prefix = uniquePrefix(`journal-e2e-${backend.name}`);
    cleanups.push(() => cleanupPrefix(redisUrl(), prefix));
    const deployment = await newDeployment(prefix, CONFIG);
    const target = backend.setup();
    const journalEnv = target.env;
    const services: Services = await startServices(deployment, journalEnv);
    cleanups.push(() => services.stopAll());
    const bus = await RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined });
    cleanups.push(() => bus.close());
    let journal: QuantumProcess = await startJournal(services.env, 'journal#0');
    const fail = (error: unknown): never => {
      throw new Error(`${(error as Error).message}\n${services.describe()}\n${journal.describe()}`);
    };

    for (const [symbol, price] of Object.entries(PRICES)) await postJson(`${services.url('execution')}/prices/${symbol}`, { price });
    await waitFor(
      async () => {
        const { prices } = await getJson<{ prices: Record<string, number> }>(`${services.url('monitor')}/prices`);
        return Object.keys(PRICES).every((s) => prices[s] === PRICES[s]);
      },
      { timeoutMs: 30_000, what: 'the monitor to hold the prices' },
    ).catch(fail);

    const signals = seededSignals(SIGNALS, 'e2e');
    let published = 0;
    let pendingAtKill = 0;
    while (published < signals.length) {
      await waitFor(
        async () => {
          const group = (await bus.info(TOPICS.signal)).groups.find((g) => g.name === GROUPS.risk);
          return group !== undefined && (group.lag ?? 0) + group.pending <= 50;
        },
        { timeoutMs: 60_000, what: 'risk to work off its backlog' },
      ).catch(fail);
      await bus.publishMany(signals.slice(published, published + CHUNK).map((payload) => ({ topic: TOPICS.signal, payload })));
      published += CHUNK;
      if (published === KILL_AFTER) {
        // As close to mid-batch as is visible from outside: entries delivered to the journal, not yet acknowledged.
        await waitFor(
          async () => {
            pendingAtKill = 0;
            for (const topic of JOURNAL_TOPICS) {
              pendingAtKill += (await bus.info(topic)).groups.find((g) => g.name === GROUPS.journal)?.pending ?? 0;
            }
            return pendingAtKill > 0;
          },
          { timeoutMs: 3000, intervalMs: 1 },
        ).catch(() => undefined);
        // Whether the killed journal had committed a fill (and so its round-trip fold) yet:
        // under load it may still be behind on trade.execution.res.
        const probe = await target.open();
        const fillsBeforeKill = Number((await probe.query('SELECT COUNT(*) AS n FROM fills'))[0]?.n ?? 0);
        const exit = await journal.kill();
        expect(exit.signal).toBe('SIGKILL');
        journal = await startJournal(services.env, 'journal#1');
        // The start-up log line goes through pino and can reach stdout after the ready line.
        await journal.waitForOutput(/"restored":(true|false)/, 15_000);
        if (fillsBeforeKill > 0) expect(journal.stdout).toMatch(/"restored":true/);
      }
    }

    // Everything decided, filled, applied and journaled.
    await waitFor(
      async () => {
        const stats = await getJson<{ counts: { received: number }; inflight_orders: number }>(`${services.url('risk')}/stats`);
        if (stats.counts.received !== SIGNALS || stats.inflight_orders !== 0) return false;
        for (const topic of [...JOURNAL_TOPICS, TOPICS.tick]) {
          const info = await bus.info(topic);
          if (info.groups.some((g) => g.pending > 0 || g.lag !== 0)) return false;
        }
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 50, what: 'every group, the journal included, to finish the run' },
    ).catch(fail);

    const approved = await payloads(bus, TOPICS.safe, RiskApprovedSignal);
    const rejected = await payloads(bus, TOPICS.rejected, RiskRejection);
    const results = await payloads(bus, TOPICS.execution, ExecutionResult);
    const closes = (await payloads(bus, TOPICS.position, PositionUpdate)).filter((u) => u.cause === 'close');
    const filled = results.filter((r) => r.status === 'FILLED');
    expect(filled.length).toBeGreaterThan(50);
    expect(closes.length).toBeGreaterThan(5);

    const store = await target.open();
    // fills: one row per result, FILLED ones exactly once each.
    const fills = await store.query('SELECT order_id, status, fee_usd FROM fills');
    expect(fills.length).toBe(results.length);
    expect(new Set(fills.map((f) => f.order_id)).size).toBe(fills.length);
    expect(fills.filter((f) => f.status === 'FILLED').map((f) => f.order_id).sort()).toEqual(filled.map((r) => r.order_id).sort());
    // decisions: one row per decided signal.
    const decisions = await store.query('SELECT signal_id, outcome FROM decisions');
    const holds = signals.filter((s) => s.action === 'HOLD').length;
    expect(decisions.length).toBe(approved.length + rejected.length + holds);
    expect(decisions.length).toBe(SIGNALS);
    expect(decisions.filter((d) => d.outcome === 'approved').length).toBe(approved.length);
    // round_trips: one per close, with the monitor's PnL.
    const trips = await store.query('SELECT trade_id, realized_pnl_usd FROM round_trips');
    expect(trips.length).toBe(closes.length);
    const byTrade = new Map(trips.map((t) => [t.trade_id, Number(t.realized_pnl_usd)]));
    for (const close of closes) expect(byTrade.get(close.order_id ?? '')).toBe(close.realized_pnl_usd);
    const portfolio = await getJson<{ closed_trades: number }>(`${services.url('monitor')}/portfolio`);
    expect(trips.length).toBe(portfolio.closed_trades);
    console.info(`journal e2e (${backend.name}): ${results.length} results, ${trips.length} round trips, ${pendingAtKill} entries pending at the kill`);

    // quantum journal trades --format csv prints them.
    const csv = await runQuantum(['journal', 'trades', '--format', 'csv'], deploymentEnv(deployment, journalEnv));
    expect(csv.stderr).toBe('');
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^trade_id,symbol,side,quantity,entry_price,exit_price,gross_pnl_usd,fees_usd,realized_pnl_usd,/);
    expect(lines.length).toBe(trips.length + 1);
    const pnlColumn = lines[0]!.split(',').indexOf('realized_pnl_usd');
    const printed = new Map(lines.slice(1).map((line) => [line.split(',')[0], Number(line.split(',')[pnlColumn])]));
    for (const close of closes) expect(printed.get(close.order_id)).toBe(close.realized_pnl_usd);

    await journal.stop();
    await services.stopAll();
  });
});

describe('journal.url', () => {
  it('a bad journal.url exits 2 naming the key', async () => {
    const deployment = await newDeployment(uniquePrefix('journal-bad-url'), {});
    const result = await runQuantum(['journal', 'trades'], deploymentEnv(deployment, { QT_JOURNAL_URL: 'mysql://localhost/x' }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('journal.url (from QT_JOURNAL_URL): must be sqlite:PATH or a postgres:// URL');
  });
});

describe('quantum up writes the journal to its SQLite file', () => {
  it('decisions, fills and round trips of the in-process loop, readable with quantum journal trades', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-journal-up-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'journal.sqlite');
    const [risk = 0, execution = 0, monitor = 0, dashboard = 0] = await freePorts(4);
    const deployment = {
      prefix: '',
      ports: { risk, execution, monitor },
      configPath: writeConfig({ ...CONFIG, execution: { price_interval_ms: 200 }, demo: { signals_per_second: 5 } }),
      redis: null,
    };
    const env = deploymentEnv(deployment, { QT_JOURNAL_URL: `sqlite:${file}`, QT_DASHBOARD_PORT: String(dashboard) });
    const up = spawnQuantum(['up', '--plain'], env, 'up');
    await waitForHealth(`http://127.0.0.1:${monitor}`, up);
    await up.waitForOutput(/journal sqlite:/);
    // Once the demo holds a position, close it by hand: a round trip of known PnL. (The demo
    // may close it first, answered 409: then the next position is tried.)
    const closed = await waitFor(
      async () => {
        const { positions } = await getJson<{ positions: Array<{ symbol: string }> }>(`http://127.0.0.1:${monitor}/positions`);
        if (positions.length === 0) return null;
        const reply = await http<{ fill: { order_id: string }; realized_pnl_usd: number }>(
          'POST',
          `http://127.0.0.1:${monitor}/close/${positions[0]!.symbol}`,
          {},
        );
        return reply.status === 200 ? reply.body : null;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: 'a position of the demo to close by hand' },
    );
    const exit = await up.stop(30_000);
    expect(exit.code, up.describe()).toBe(0);

    const store = SqliteStore.open(file);
    try {
      const fills = await store.query("SELECT COUNT(*) AS n FROM fills WHERE status = 'FILLED'");
      expect(Number(fills[0]!.n)).toBeGreaterThanOrEqual(2);
      const decisions = await store.query('SELECT COUNT(*) AS n FROM decisions');
      expect(Number(decisions[0]!.n)).toBeGreaterThanOrEqual(2);
      // At least the second of the opening fill (the close may fall in the same second).
      const equity = await store.query('SELECT COUNT(*) AS n FROM equity');
      expect(Number(equity[0]!.n)).toBeGreaterThanOrEqual(1);
      const [trip] = await store.query('SELECT realized_pnl_usd, exit_reason FROM round_trips WHERE trade_id = ?', [closed.fill.order_id]);
      expect(trip).toEqual({ realized_pnl_usd: expect.any(String), exit_reason: 'manual' });
      expect(Number(trip!.realized_pnl_usd)).toBe(closed.realized_pnl_usd);
    } finally {
      await store.close();
    }
    const csv = await runQuantum(['journal', 'trades', '--format', 'csv'], env);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toContain(closed.fill.order_id);
    expect(csv.stdout.split('\n')[0]).toContain('realized_pnl_usd');
  });
});
