/**
 * The three services on the embedded bus, where one decoded message is shared by every
 * group that reads it and the snapshots are made when read (SPEC §7: in embedded mode
 * state lives in the process): no service changes a message it was handed (the bus
 * deep-freezes them here, so one that did would throw), and a loop stopped and started
 * again on the same bus ends exactly where an uninterrupted one does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Outbound } from '../src/bus/bus.js';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { TOPICS, dlqTopic } from '../src/bus/topics.js';
import { ManualClock } from '../src/core/clock.js';
import { silentLogger } from '../src/platform/logger.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { snapshotKey } from '../src/services/common/host.js';
import { testConfig, tick } from './helpers/services.js';

const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
const START = Date.UTC(2026, 10, 24, 12);
const config = testConfig({ risk: { cooldown_minutes: 0, max_daily_entries: 1000 } });

/** Round `round` of inputs: a tick per symbol, then a BUY or SELL per symbol, some below the confidence floor. */
function inputs(round: number, ts: number): Outbound[] {
  const out: Outbound[] = SYMBOLS.map((symbol, i) => ({ topic: TOPICS.tick, payload: tick(symbol, [60_000, 3_000, 150][i]! * (1 + round / 100), ts) }));
  for (const [i, symbol] of SYMBOLS.entries()) {
    const action = round % 2 === 0 ? 'BUY' : 'SELL';
    const confidence = (round + i) % 5 === 4 ? 0.5 : 0.8;
    out.push({ topic: TOPICS.signal, payload: { signal_id: `r${round}-${symbol}`, symbol, action, confidence, source: `s${i % 2}`, ts } });
  }
  return out;
}

interface Run {
  bus: EmbeddedBus;
  clock: ManualClock;
  services: Launched[];
}

const runs: Run[] = [];
afterEach(async () => {
  for (const run of runs.splice(0)) {
    for (const s of run.services.splice(0).reverse()) await s.stop();
    await run.bus.close();
  }
});

async function startServices(run: Run): Promise<void> {
  for (const name of ['risk', 'execution', 'monitor'] as const) {
    run.services.push(await launchService(name, { bus: run.bus, config, clock: run.clock, logger: silentLogger }));
  }
}

async function stopServices(run: Run): Promise<void> {
  for (const s of run.services.splice(0).reverse()) await s.stop();
}

async function newRun(): Promise<Run> {
  const clock = new ManualClock(START);
  const run: Run = { bus: new EmbeddedBus({ clock, trimIntervalMs: 0, freezeMessages: true }), clock, services: [] };
  runs.push(run);
  await startServices(run);
  return run;
}

async function feed(run: Run, rounds: number[]): Promise<void> {
  for (const round of rounds) {
    run.clock.advance(1000);
    await run.bus.publishMany(inputs(round, run.clock.now()));
    await run.bus.whenSettled();
  }
}

/** Everything the loop wrote, as stored, plus each service's view and snapshot. */
async function outcome(run: Run) {
  const streams: Record<string, string[]> = {};
  for (const topic of [TOPICS.safe, TOPICS.rejected, TOPICS.execution, TOPICS.position]) {
    streams[topic] = (await run.bus.readAfter(topic, '0', 10_000)).map((entry) => entry.fields.payload ?? '');
  }
  const deadLetters = await Promise.all(Object.values(TOPICS).map((topic) => run.bus.length(dlqTopic(topic))));
  const snapshots = await Promise.all((['risk', 'execution', 'monitor'] as const).map((name) => run.bus.getValue(snapshotKey(name))));
  // The monitor counts the ticks it has seen, and a service starting publishes ticks of its
  // own: a run with restarts sees more (the same with a snapshot written per batch).
  const monitor = JSON.parse(snapshots[2] ?? 'null') as { counters: { ticks?: number } };
  delete monitor.counters.ticks;
  return { streams, deadLetters, snapshots: [snapshots[0], snapshots[1], monitor] };
}

describe('the loop on the embedded bus (shared, frozen messages; snapshots made when read)', () => {
  it('handles a mix of entries, exits and rejections without touching a message, and a restart on the same bus changes nothing', async () => {
    const reference = await newRun();
    await feed(reference, [0, 1, 2, 3, 4, 5, 6, 7]);
    const expected = await outcome(reference);
    expect(expected.deadLetters.every((n) => n === 0)).toBe(true);
    expect(expected.streams[TOPICS.execution]!.length).toBeGreaterThan(8);
    expect(expected.streams[TOPICS.rejected]!.length).toBeGreaterThan(0);
    expect(expected.snapshots.every((snapshot) => snapshot !== null)).toBe(true);

    const restarted = await newRun();
    await feed(restarted, [0, 1, 2]);
    await stopServices(restarted);
    await feed(restarted, [3]); // published while every service is down
    await startServices(restarted);
    await restarted.bus.whenSettled();
    await feed(restarted, [4, 5]);
    await stopServices(restarted);
    await startServices(restarted);
    await feed(restarted, [6, 7]);
    expect(await outcome(restarted)).toEqual(expected);
  });

  it('a snapshot read between batches is the one a stopped service leaves', async () => {
    const run = await newRun();
    await feed(run, [0, 1, 2]);
    const live = await Promise.all((['risk', 'execution', 'monitor'] as const).map((name) => run.bus.getValue(snapshotKey(name))));
    await stopServices(run);
    const stopped = await Promise.all((['risk', 'execution', 'monitor'] as const).map((name) => run.bus.getValue(snapshotKey(name))));
    expect(stopped).toEqual(live);
  });
});
