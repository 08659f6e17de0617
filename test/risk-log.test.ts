/**
 * The risk service's log stays bounded at any signal rate: rejections, the frequent event,
 * are one warning per interval with their counts by reason (each is still on
 * trade.signal.rejected and in /metrics); rare events stay one line each. Risk on Redis,
 * in process, with a ManualClock and a scheduler fired by hand.
 */
import { Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { createBus } from '../src/bus/factory.js';
import { publishTradeSignal } from '../src/bus/publish.js';
import { TOPICS } from '../src/bus/topics.js';
import { ManualClock } from '../src/core/clock.js';
import { defaultConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import type { Scheduler } from '../src/platform/scheduler.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { REJECTION_LOG_INTERVAL_MS } from '../src/services/risk/service.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';

const url = redisUrl();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** 2026-11-24 12:00:00 UTC. */
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

/** Timers the test fires itself, on the manual clock. */
function handScheduler(): Scheduler & { fire(): Promise<void> } {
  const jobs: Array<() => void | Promise<unknown>> = [];
  return {
    every(_intervalMs, fn) {
      jobs.push(fn);
      return () => jobs.splice(jobs.indexOf(fn), 1);
    },
    async fire() {
      for (const job of [...jobs]) await job();
    },
  };
}

it('logs rejections as one warning per interval with counts by reason, not one line per signal', async () => {
  const prefix = uniquePrefix('risk-log');
  const bus: EventBus = await createBus({ redisUrl: url, prefix, onError: () => undefined });
  cleanups.push(() => cleanupPrefix(url, prefix), () => bus.close());
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const clock = new ManualClock(T0);
  const scheduler = handScheduler();
  // The real cooldown, daily limit and expiry stay on (defaults).
  const risk: Launched<'risk'> = await launchService('risk', { bus, config: defaultConfig({}), clock, logger: createLogger({ destination: sink }), scheduler });
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await risk.stop();
  });
  await bus.publish(TOPICS.tick, { schema_version: 1, symbol: 'BTCUSDT', price: 65_000, ts: T0, source: 'manual' });

  // 40 signals below min_confidence (LOW_CONFIDENCE) and 1 approved.
  for (let i = 0; i < 40; i++) await publishTradeSignal(bus, 'BTCUSDT', 'BUY', 0.3, 'weak-model', { signal_id: `weak-${i}` }, clock);
  await publishTradeSignal(bus, 'BTCUSDT', 'BUY', 0.9, 'good-model', { signal_id: 'good-1' }, clock);
  await waitFor(async () => (await bus.length(TOPICS.rejected)) === 40 && (await bus.length(TOPICS.safe)) === 1, { what: 'the 41 decisions' });

  const rejectionLines = () => lines.filter((l) => typeof l.msg === 'string' && /rejected/.test(l.msg as string) && (l.level as number) >= 40);
  // Nothing per signal at warn; the interval is not over yet.
  await scheduler.fire();
  expect(rejectionLines()).toEqual([]);

  clock.advance(REJECTION_LOG_INTERVAL_MS);
  await scheduler.fire();
  expect(rejectionLines()).toHaveLength(1);
  expect(rejectionLines()[0]).toMatchObject({ event: 'rejections', rejected: 40, by_reason: { LOW_CONFIDENCE: 40 }, interval_s: 60, msg: '40 signals rejected in the last 60 s' });

  // A quiet interval writes nothing; what is left at stop is written then.
  clock.advance(REJECTION_LOG_INTERVAL_MS);
  await scheduler.fire();
  expect(rejectionLines()).toHaveLength(1);
  await publishTradeSignal(bus, 'BTCUSDT', 'BUY', 0.3, 'weak-model', { signal_id: 'weak-last' }, clock);
  await waitFor(async () => (await bus.length(TOPICS.rejected)) === 41, { what: 'the last rejection' });
  clock.advance(5_000);
  await risk.stop();
  stopped = true;
  expect(rejectionLines()).toHaveLength(2);
  expect(rejectionLines()[1]).toMatchObject({ rejected: 1, by_reason: { LOW_CONFIDENCE: 1 }, msg: '1 signal rejected in the last 5 s' });
  // Every line the service wrote: start, two summaries, nothing per signal above debug.
  expect(lines.filter((l) => (l.level as number) >= 30).length).toBeLessThan(8);
});
