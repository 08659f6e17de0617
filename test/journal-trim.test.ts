/**
 * Redis keeps the working set: with a journal running, trade.execution.res is trimmed
 * down to the working set, but never past what the journal has written, what every
 * other group has acknowledged, or what the monitor's snapshot covers (the one rule of
 * src/bus/trim.ts). Without a journal nothing trims it (on publish it never is).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { executionTrimPoint, trimExecutionToWorkingSet } from '../src/bus/execution-trim.js';
import { GROUPS, StreamNames, TOPICS } from '../src/bus/topics.js';
import { nextId } from '../src/bus/trim.js';
import type { ExecutionResult } from '../src/core/messages.js';
import { systemClock } from '../src/platform/clock.js';
import { silentLogger } from '../src/platform/logger.js';
import { JournalService } from '../src/services/journal/service.js';
import { SqliteStore } from '../src/services/journal/sqlite-store.js';
import { waitFor } from './helpers/redis.js';
import { testConfig } from './helpers/services.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function result(n: number): ExecutionResult {
  return {
    schema_version: 1, order_id: `PAPER-${n.toString(16).padStart(12, '0')}`, signal_id: `trim-${n}`, symbol: 'BTCUSDT', side: 'BUY',
    quantity: 0.001, reference_price: 65000, fill_price: 65000, slippage_pct: 0, fee_usd: 0.026, fee_rate: 0.0004, notional_usd: 65,
    status: 'FILLED', signal_ts: n, ts: n, reduce_only: false, origin: 'signal',
  };
}

const MONITOR_SNAPSHOT = new StreamNames('').snapshot('monitor');

async function ids(bus: EmbeddedBus): Promise<string[]> {
  return (await bus.readAfter(TOPICS.execution, '0', 10_000)).map((e) => e.id);
}

/** The risk and monitor groups read and acknowledge everything there is (as running services would). */
function otherGroupsCatchUp(bus: EmbeddedBus): void {
  for (const group of [GROUPS.risk, GROUPS.monitor]) {
    for (;;) {
      const entries = bus.readGroup(TOPICS.execution, group, `${group}-1`, 1000);
      if (entries.length === 0) break;
      bus.acknowledge(TOPICS.execution, group, entries.map((e) => e.id));
    }
  }
}

describe('trade.execution.res behind the journal', () => {
  it('is trimmed to the working set once journaled and covered, never past the journal, the groups or the snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-journal-trim-'));
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, 'journal.sqlite'));
    const bus = new EmbeddedBus({});
    const config = testConfig();
    // trimIntervalMs very long: the test trims by hand, so it knows when.
    const options = { workingSet: 10, trimIntervalMs: 3_600_000 };
    let journal = new JournalService({ bus, config, clock: systemClock, logger: silentLogger, store }, options);
    await journal.start();
    try {
      const published: string[] = [];
      for (let n = 1; n <= 40; n += 1) published.push(await bus.publish(TOPICS.execution, result(n)));
      await waitFor(() => journal.caughtUp(), { what: 'the journal to write 40 fills' });

      // The risk and monitor groups do not exist yet: their services never read a fill.
      await bus.setValue(MONITOR_SNAPSHOT, JSON.stringify({ last_fill_id: published[39] }));
      expect(await executionTrimPoint(bus)).toBeNull();
      await journal.trimExecution(10);
      expect(await bus.length(TOPICS.execution)).toBe(40);
      await bus.ensureGroup(TOPICS.execution, GROUPS.risk, '0');
      await bus.ensureGroup(TOPICS.execution, GROUPS.monitor, '0');
      otherGroupsCatchUp(bus);

      // No monitor snapshot yet: nothing may go, journaled or not.
      await bus.setValue(MONITOR_SNAPSHOT, '');
      expect(await executionTrimPoint(bus)).toBeNull();
      await journal.trimExecution(10);
      expect(await bus.length(TOPICS.execution)).toBe(40);

      // The snapshot covers the first 25: those go, the rest stays (more than the working set).
      await bus.setValue(MONITOR_SNAPSHOT, JSON.stringify({ last_fill_id: published[24] }));
      expect(await executionTrimPoint(bus)).toBe(nextId(published[24]!));
      await journal.trimExecution(10);
      expect(await ids(bus)).toEqual(published.slice(25));
      // Covered up to the last: down to the working set of 10.
      await bus.setValue(MONITOR_SNAPSHOT, JSON.stringify({ last_fill_id: published[39] }));
      await journal.trimExecution(10);
      expect(await ids(bus)).toEqual(published.slice(30));
      expect(journal.counts.trimmed).toBe(30);

      // The journal stops; 20 more fills arrive. Every other group reads them and the
      // snapshot covers them, but the journal's group has not read them: they stay,
      // however small the working set.
      await journal.stop();
      for (let n = 41; n <= 60; n += 1) published.push(await bus.publish(TOPICS.execution, result(n)));
      otherGroupsCatchUp(bus);
      await bus.setValue(MONITOR_SNAPSHOT, JSON.stringify({ last_fill_id: published[59] }));
      expect(await executionTrimPoint(bus)).toBe(nextId(published[39]!));
      await trimExecutionToWorkingSet(bus, 0);
      expect(await ids(bus)).toEqual(published.slice(40));

      // Back again, it writes them all: every fill in the journal, none lost to trimming.
      journal = new JournalService({ bus, config, clock: systemClock, logger: silentLogger, store }, options);
      await journal.start();
      await waitFor(() => journal.caughtUp(), { what: 'the journal to write the 20 new fills' });
      const rows = await store.query('SELECT COUNT(*) AS n FROM fills');
      expect(Number(rows[0]!.n)).toBe(60);
    } finally {
      await journal.stop();
      await bus.close();
      await store.close();
    }
  });
});
