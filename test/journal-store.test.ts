/**
 * The journal's contract, run against both databases: SQLite in a temporary folder and
 * PostgreSQL (127.0.0.1:5432, or QT_TEST_POSTGRES_URL) in a schema of its own, dropped
 * afterwards.
 *
 *  - migrations from an empty database and from the previous version;
 *  - idempotent writes (a row written twice changes nothing);
 *  - a failed write rolls back and the batch comes again (nothing lost, nothing doubled);
 *  - the journal's rows equal the streams' content for a run of 1,000 signals through
 *    the three services on the embedded bus, round trips with the monitor's PnL;
 *  - the example SQL of docs/journal.md runs and answers.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { RedisBus } from '../src/bus/redis.js';
import { ALL_TOPICS, dlqTopic, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, PositionUpdate, RiskApprovedSignal, RiskRejection } from '../src/core/messages.js';
import { systemClock } from '../src/platform/clock.js';
import { silentLogger } from '../src/platform/logger.js';
import { LATEST_VERSION } from '../src/services/journal/migrations.js';
import { PostgresStore } from '../src/services/journal/postgres-store.js';
import { readView } from '../src/services/journal/reader.js';
import { decimal, emptyBatch, type Row, type RowBatch } from '../src/services/journal/rows.js';
import { JournalService } from '../src/services/journal/service.js';
import { SqliteStore } from '../src/services/journal/sqlite-store.js';
import type { JournalStore } from '../src/services/journal/store.js';
import { startLoop, type Loop } from '../src/services/loop.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';
import { testConfig } from './helpers/services.js';
import { JOURNAL_EXAMPLE_QUERIES, POSTGRES_URL, PRICES, postgresAvailable, seededSignals } from './helpers/journal.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface Backend {
  name: 'sqlite' | 'postgres';
  open(): Promise<JournalStore>;
}

const WITH_POSTGRES = await postgresAvailable('journal-store.test');

const ALL_BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'qt-journal-'));
      const store = SqliteStore.open(join(dir, 'journal.sqlite'));
      cleanups.push(async () => {
        await store.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      });
      return store;
    },
  },
  {
    name: 'postgres',
    async open() {
      const schema = `journal_test_${randomBytes(4).toString('hex')}`;
      const store = await PostgresStore.open(POSTGRES_URL, schema);
      cleanups.push(async () => {
        await store.dropSchema();
        await store.close();
      });
      return store;
    },
  },
];

function fillRowFor(orderId: string, fee: string): Row {
  return {
    order_id: orderId, signal_id: `s-${orderId}`, symbol: 'BTCUSDT', side: 'BUY', quantity: '0.00123', reference_price: '65000.1',
    fill_price: '65010.25', slippage_pct: '0.000157', fee_usd: fee, fee_rate: '0.0004', notional_usd: '79.96', status: 'FILLED',
    reject_reason: null, signal_ts: 1_700_000_000_000, ts: 1_700_000_000_050, reduce_only: false, origin: 'signal',
    exit_reason: null, entry_id: '1700000000050-0',
  };
}

function batchOf(patch: Partial<RowBatch>): RowBatch {
  return { ...emptyBatch(), ...patch };
}

async function payloads<T>(bus: EventBus, topic: string, schema: { parse(v: unknown): T }): Promise<Array<{ id: string; value: T }>> {
  const entries = await bus.readAfter(topic, '0', 1_000_000);
  return entries.map((e) => ({ id: e.id, value: schema.parse(JSON.parse(e.fields.payload ?? 'null')) }));
}

/** Every group on every topic has read and acknowledged everything. */
async function settled(bus: EventBus): Promise<boolean> {
  for (const topic of [...ALL_TOPICS, ...ALL_TOPICS.map(dlqTopic)]) {
    const info = await bus.info(topic);
    if (info.groups.some((g) => g.pending > 0 || g.lag !== 0)) return false;
  }
  return true;
}

const RUN_CONFIG = {
  // Frozen prices make every round trip lose its fees; with fees and slippage, b from ten losing
  // round trips is 0 and entries stop (NEGATIVE_EDGE). Free fills keep the run trading.
  execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 },
  monitor: { mark_interval_ms: 0 },
  risk: { cooldown_minutes: 0, max_daily_entries: 1_000_000, inflight_timeout_ms: 600_000 },
};

const BACKENDS = ALL_BACKENDS.filter((b) => b.name === 'sqlite' || WITH_POSTGRES);

describe.each([
  { name: 'embedded', open: async () => new EmbeddedBus({ onError: () => undefined }) as EventBus },
  {
    name: 'redis',
    open: async () => {
      const prefix = uniquePrefix('journal-before-commit');
      cleanups.push(() => cleanupPrefix(redisUrl(), prefix));
      return RedisBus.connect({ url: redisUrl(), prefix, onError: () => undefined }) as Promise<EventBus>;
    },
  },
])("the bus's beforeCommit ($name), which the journal commits its database in", ({ open }) => {
  it('runs once per batch before the acknowledgements; when it throws, the batch is delivered again', async () => {
    const bus = await open();
    const seen: string[] = [];
    const committed: string[][] = [];
    let batch: string[] = [];
    let failures = 1;
    for (let n = 0; n < 5; n += 1) await bus.publish(TOPICS.signal, { n });
    const subscription = bus.subscribe<unknown>({
      topic: TOPICS.signal,
      group: 'journal-test',
      consumer: 'c1',
      decode: (fields) => fields.payload,
      handler: (delivery) => {
        seen.push(delivery.id);
        batch.push(delivery.id);
      },
      beforeCommit: async () => {
        const ids = batch;
        batch = [];
        if (failures-- > 0) throw new Error('database went away');
        committed.push(ids);
      },
      retryDelayMs: 10,
    });
    try {
      await waitFor(async () => subscription.acknowledged === 5, { what: 'five entries acknowledged after the retry' });
      const ids = (await bus.readAfter(TOPICS.signal, '0', 10)).map((e) => e.id);
      expect(committed.flat()).toEqual(ids);
      expect(seen.length).toBe(10); // every entry handled twice: once before the failed commit, once after
      const group = (await bus.info(TOPICS.signal)).groups.find((g) => g.name === 'journal-test');
      expect(group?.pending).toBe(0);
    } finally {
      await subscription.close();
      await bus.close();
    }
  });
});

describe.each(BACKENDS)('journal store contract: $name', (backend) => {
  it('migrates an empty database to the latest version, once', async () => {
    const store = await backend.open();
    expect(await store.version()).toBe(0);
    expect(await store.migrate()).toEqual([1, 2]);
    expect(await store.version()).toBe(LATEST_VERSION);
    expect(await store.migrate()).toEqual([]);
    const versions = await store.query('SELECT version, name FROM schema_version ORDER BY version');
    expect(versions.map((v) => Number(v.version))).toEqual([1, 2]);
    for (const table of ['decisions', 'fills', 'round_trips', 'equity', 'dead_letters']) {
      expect(await store.query(`SELECT COUNT(*) AS n FROM ${table}`)).toEqual([{ n: expect.anything() }]);
    }
  });

  it('migrates a version-1 database with rows in it to the latest version, keeping the rows', async () => {
    const store = await backend.open();
    expect(await store.migrate(1)).toEqual([1]);
    // A fill as version 1 stored it (no exit_reason column yet).
    await store.query(
      'INSERT INTO fills (order_id, signal_id, symbol, side, quantity, reference_price, fill_price, slippage_pct, fee_usd, fee_rate, ' +
        "notional_usd, status, reject_reason, signal_ts, ts, reduce_only, origin, entry_id) VALUES ('PAPER-00000000000a', 's1', 'BTCUSDT', " +
        "'BUY', '0.001', '65000', '65001.5', '0.00002', '0.0260006', '0.0004', '65.0015', 'FILLED', NULL, 1, 2, ?, 'signal', '2-0')",
      [false],
    );
    expect(await store.migrate()).toEqual([2]);
    expect(await store.version()).toBe(2);
    const [old] = await store.query("SELECT order_id, fee_usd, exit_reason FROM fills WHERE order_id = 'PAPER-00000000000a'");
    expect(old).toEqual({ order_id: 'PAPER-00000000000a', fee_usd: '0.0260006', exit_reason: null });
    await store.write(batchOf({ fills: [{ ...fillRowFor('PAPER-00000000000b', '0.031'), exit_reason: 'stop_loss' }] }), null);
    const [fresh] = await store.query("SELECT exit_reason FROM fills WHERE order_id = 'PAPER-00000000000b'");
    expect(fresh).toEqual({ exit_reason: 'stop_loss' });
  });

  it('writes idempotently: a row written twice, or again with other values, changes nothing', async () => {
    const store = await backend.open();
    await store.migrate();
    const batch = batchOf({ fills: [fillRowFor('PAPER-0000000000a1', '0.0319841'), fillRowFor('PAPER-0000000000a2', '0.05')] });
    await store.write(batch, '{"v":1}');
    await store.write(batch, '{"v":2}');
    await store.write(batchOf({ fills: [fillRowFor('PAPER-0000000000a1', '999')] }), null);
    const rows = await store.query('SELECT order_id, fee_usd, quantity FROM fills ORDER BY order_id');
    expect(rows).toEqual([
      { order_id: 'PAPER-0000000000a1', fee_usd: '0.0319841', quantity: '0.00123' },
      { order_id: 'PAPER-0000000000a2', fee_usd: '0.05', quantity: '0.00123' },
    ]);
    expect(await store.loadState()).toBe('{"v":2}');
  });

  it("a failed write acknowledges nothing: the batch comes again and is written once", async () => {
    const inner = await backend.open();
    let failures = 1;
    const flaky: JournalStore = Object.assign(Object.create(inner) as JournalStore, {
      write: async (batch: RowBatch, state: string | null) => {
        if (batch.fills.length > 0 && failures > 0) {
          failures -= 1;
          throw new Error('database went away');
        }
        return inner.write(batch, state);
      },
    });
    const bus = new EmbeddedBus({});
    const config = testConfig(RUN_CONFIG);
    const journal = new JournalService({ bus, config, clock: systemClock, logger: silentLogger, store: flaky });
    await journal.start();
    try {
      const base = { schema_version: 1, symbol: 'BTCUSDT', quantity: 0.001, reference_price: 65000, slippage_pct: 0, fee_rate: 0.0004,
        status: 'FILLED' as const, signal_ts: 1, reduce_only: false, origin: 'signal' as const };
      await bus.publish(TOPICS.execution, { ...base, order_id: 'PAPER-000000000001', signal_id: 'a', side: 'BUY', fill_price: 65000, fee_usd: 0.026, notional_usd: 65, ts: 10 });
      await bus.publish(TOPICS.execution, { ...base, order_id: 'PAPER-000000000002', signal_id: 'b', side: 'SELL', fill_price: 65100, fee_usd: 0.02604, notional_usd: 65.1, ts: 20 });
      await waitFor(() => journal.caughtUp(), { what: 'the journal to catch up after the failed write' });
      expect(failures).toBe(0);
      const fills = await inner.query('SELECT order_id FROM fills ORDER BY order_id');
      expect(fills.map((r) => r.order_id)).toEqual(['PAPER-000000000001', 'PAPER-000000000002']);
      // Folded once: gross 0.1, fees 0.05204 → net 0.04796.
      const trips = await inner.query('SELECT trade_id, gross_pnl_usd, fees_usd, realized_pnl_usd, hold_ms, open_signal_id FROM round_trips');
      expect(trips).toEqual([
        { trade_id: 'PAPER-000000000002', gross_pnl_usd: '0.1', fees_usd: '0.05204', realized_pnl_usd: '0.04796', hold_ms: 10, open_signal_id: 'a' },
      ]);
    } finally {
      await journal.stop();
      await bus.close();
    }
  });

  it("the journal's rows equal the streams' content for a run of 1,000 signals", { timeout: 120_000 }, async () => {
    const store = await backend.open();
    const bus = new EmbeddedBus({});
    const config = testConfig(RUN_CONFIG);
    const journal = new JournalService({ bus, config, clock: systemClock, logger: silentLogger, store });
    await journal.start();
    let loop: Loop | undefined;
    try {
      loop = await startLoop({ bus, config, clock: systemClock, logger: silentLogger, listen: false, demo: false });
      for (const [symbol, price] of Object.entries(PRICES)) await loop.execution.service.setPrice(symbol, price);
      const signals = seededSignals(1000, `rows-${backend.name}`);
      for (let i = 0; i < signals.length; i += 50) {
        await bus.publishMany(signals.slice(i, i + 50).map((payload) => ({ topic: TOPICS.signal, payload })));
      }
      // A malformed signal: risk dead-letters it, the journal records the dead letter.
      await bus.publishRaw(TOPICS.signal, { payload: '{"symbol":"BTCUSDT","action":"BUY"' });
      await waitFor(() => settled(bus), { timeoutMs: 90_000, what: 'every group to finish the run' });

      const approved = await payloads(bus, TOPICS.safe, RiskApprovedSignal);
      const rejected = await payloads(bus, TOPICS.rejected, RiskRejection);
      const results = await payloads(bus, TOPICS.execution, ExecutionResult);
      const updates = await payloads(bus, TOPICS.position, PositionUpdate);
      expect(approved.length).toBeGreaterThan(50);
      expect(rejected.length).toBeGreaterThan(50);

      // decisions: one row per decided signal (approved, rejected, and the skipped HOLDs).
      const decisions = await store.query('SELECT signal_id, outcome, source, reasons, ts, record FROM decisions ORDER BY signal_id');
      const holds = signals.filter((s) => s.action === 'HOLD');
      const expected = new Map<string, string>();
      for (const a of approved) expected.set(a.value.signal_id, 'approved');
      for (const r of rejected) expected.set(r.value.signal_id, 'rejected');
      for (const h of holds) expected.set(h.signal_id, 'skipped');
      expect(expected.size).toBe(signals.length);
      expect(new Map(decisions.map((d) => [String(d.signal_id), String(d.outcome)]))).toEqual(expected);
      const rejectedRow = decisions.find((d) => d.signal_id === rejected[0]!.value.signal_id)!;
      expect(JSON.parse(String(rejectedRow.reasons))).toEqual(rejected[0]!.value.reasons);
      expect(JSON.parse(String(rejectedRow.record))).toEqual(rejected[0]!.value);
      expect(rejectedRow.ts).toBe(rejected[0]!.value.ts);

      // fills: exactly one row per ExecutionResult, values exact.
      const fills = await store.query('SELECT * FROM fills ORDER BY entry_id');
      expect(fills.length).toBe(results.length);
      const byOrder = new Map(fills.map((f) => [String(f.order_id), f]));
      expect(byOrder.size).toBe(results.length);
      for (const { id, value } of results) {
        const row = byOrder.get(value.order_id)!;
        expect(row.entry_id).toBe(id);
        expect(row.status).toBe(value.status);
        expect(row.fill_price).toBe(decimal(value.fill_price));
        expect(row.fee_usd).toBe(decimal(value.fee_usd));
        expect(row.quantity).toBe(decimal(value.quantity));
      }

      // round_trips: one per close the monitor published, with the monitor's PnL.
      const closes = updates.filter((u) => u.value.cause === 'close');
      const trips = await store.query('SELECT trade_id, symbol, realized_pnl_usd, fees_usd FROM round_trips');
      expect(closes.length).toBeGreaterThan(10);
      expect(trips.length).toBe(closes.length);
      expect(trips.length).toBe(loop.monitor.service.state.portfolio().closed_trades);
      const tripByOrder = new Map(trips.map((t) => [String(t.trade_id), t]));
      for (const close of closes) {
        const trip = tripByOrder.get(close.value.order_id!)!;
        expect(trip, close.value.order_id).toBeDefined();
        expect(trip.symbol).toBe(close.value.symbol);
        expect(Number(trip.realized_pnl_usd)).toBe(close.value.realized_pnl_usd);
        expect(Number(trip.fees_usd)).toBe(close.value.fees_usd);
      }

      // equity: the first update of each symbol in each second.
      const firsts = new Map<string, PositionUpdate>();
      for (const { value } of updates) {
        const key = `${value.symbol}@${Math.floor(value.ts / 1000)}`;
        if (!firsts.has(key)) firsts.set(key, value);
      }
      const equity = await store.query('SELECT symbol, second, ts, equity_usd, cause FROM equity');
      expect(equity.length).toBe(firsts.size);
      for (const row of equity) {
        const first = firsts.get(`${String(row.symbol)}@${Number(row.second)}`)!;
        expect(row.ts).toBe(first.ts);
        expect(row.equity_usd).toBe(decimal(first.portfolio.equity_usd));
      }

      // dead_letters: the malformed signal, with the error.
      const dead = await store.query('SELECT topic, dlq_group, dlq_error, payload FROM dead_letters');
      expect(dead).toEqual([
        { topic: TOPICS.signal, dlq_group: 'risk-safety', dlq_error: expect.stringContaining('not valid JSON'), payload: '{"symbol":"BTCUSDT","action":"BUY"' },
      ]);

      // The readers: trades carry the opening signal's source.
      const trades = await readView(store, 'trades', {});
      expect(trades.length).toBe(trips.length);
      expect(new Set(trades.map((t) => t.source))).toEqual(new Set(['model-a', 'model-b']));
      const modelA = await readView(store, 'trades', { source: 'model-a' });
      expect(modelA.length).toBeGreaterThan(0);
      expect(modelA.every((t) => t.source === 'model-a')).toBe(true);
      const btc = await readView(store, 'decisions', { symbol: 'BTCUSDT' });
      expect(btc.length).toBe(decisions.filter((d) => JSON.parse(String(d.record)).symbol === 'BTCUSDT').length);

      // The example SQL of docs/journal.md answers on this database.
      const examples = JOURNAL_EXAMPLE_QUERIES[backend.name];
      expect(Object.keys(examples).sort()).toEqual(['pnl_per_day', 'rejection_reasons', 'win_rate_per_source']);
      for (const [name, sql] of Object.entries(examples)) {
        const rows = await store.query(sql);
        expect(rows.length, name).toBeGreaterThan(0);
      }
      const winRates = await store.query(examples.win_rate_per_source ?? '');
      const total = winRates.reduce((n, r) => n + Number(r.trades), 0);
      expect(total).toBe(trips.length);
    } finally {
      await loop?.stop();
      await journal.stop();
      await bus.close();
    }
  });
});
