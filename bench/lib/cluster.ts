/**
 * `npm run bench -- --only cluster`: total signals/s for 1, 2 and 4 accounts, each account's
 * three services in this process (as `quantum up` with `accounts` runs them, no HTTP), on
 * one private redis-server and on a private Redis Cluster (three masters, one replica
 * each), in one run. Each account gets its own prefix (a hash tag on the cluster, chosen so
 * the accounts spread over the masters) and is driven at once with the same signal mix;
 * the figure is every account's signals over the time until every account's loop drained.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldNow } from 'node:timers/promises';
import type { EventBus, Outbound } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/factory.js';
import { keySlot } from '../../src/bus/slot.js';
import { TOPICS } from '../../src/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { defaultConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logger.js';
import { startLoop, type Loop } from '../../src/services/loop.js';
import { startPrivateCluster, type PrivateCluster } from '../../test/helpers/redis-cluster.js';
import { finishedBy, produceWindowed, waitDrained, type Stage } from './drive.js';
import { LOOP_STAGES } from './embedded.js';
import { BENCH_CONFIG, signalMessage, wholeCycles } from './signals.js';

export interface ClusterRow {
  target: 'redis' | 'cluster';
  accounts: number;
  signals: number;
  seconds: number;
  signals_per_s: number;
  /** On the cluster: how many masters the accounts' slots landed on. */
  masters: number | null;
}

/** Hash tags for `n` accounts, spread round-robin over the cluster's masters. */
async function spreadTags(cluster: PrivateCluster, n: number, stem: string): Promise<{ tags: string[]; masters: number }> {
  const byMaster = new Map<number, string[]>();
  for (let i = 0; i < 200 && [...byMaster.values()].reduce((s, l) => s + l.length, 0) < n * 3; i++) {
    const tag = `{${stem}${i}}`;
    const master = await cluster.masterOf(keySlot(tag));
    const list = byMaster.get(master) ?? [];
    if (list.length < n) list.push(tag);
    byMaster.set(master, list);
  }
  const lists = [...byMaster.values()];
  const tags: string[] = [];
  for (let round = 0; tags.length < n; round++) for (const list of lists) if (tags.length < n && list[round]) tags.push(list[round]!);
  const masters = new Set<number>();
  for (const tag of tags) masters.add(await cluster.masterOf(keySlot(tag)));
  return { tags, masters: masters.size };
}

async function runOnce(options: {
  target: 'redis' | 'cluster';
  connect: (prefix: string) => Promise<EventBus>;
  prefixes: string[];
  perAccount: number;
  warmup: number;
  tmpDir: string;
}): Promise<{ signals: number; seconds: number }> {
  const config = defaultConfig(structuredClone(BENCH_CONFIG) as Record<string, unknown>);
  const logger = createLogger({ destination: createWriteStream(join(options.tmpDir, `cluster-${options.target}.log`), { flags: 'a' }) });
  const buses: EventBus[] = [];
  const loops: Loop[] = [];
  try {
    for (const prefix of options.prefixes) {
      const bus = await options.connect(prefix);
      buses.push(bus);
      loops.push(await startLoop({ bus, config: { ...config, stream_prefix: prefix }, clock: systemClock, logger, listen: false, demo: false }));
    }
    const drive = async (bus: EventBus, run: string, total: number): Promise<void> => {
      const first = LOOP_STAGES[0] as Stage;
      await produceWindowed({
        send: (from, count) => {
          const ts = Date.now();
          const items: Outbound[] = [];
          for (let i = from; i < from + count; i++) items.push({ topic: TOPICS.signal, payload: signalMessage(run, i, ts) });
          return bus.publishMany(items);
        },
        total,
        window: 10_000,
        chunk: 500,
        finished: async (sent) => {
          await yieldNow();
          return finishedBy(bus, first, sent);
        },
      });
      await waitDrained(bus, LOOP_STAGES, 300_000, 5);
    };
    await Promise.all(buses.map((bus, i) => drive(bus, `cw${i}`, wholeCycles(options.warmup))));
    const total = wholeCycles(options.perAccount);
    const t0 = performance.now();
    await Promise.all(buses.map((bus, i) => drive(bus, `cm${i}`, total)));
    const seconds = (performance.now() - t0) / 1000;
    return { signals: total * buses.length, seconds };
  } finally {
    for (const loop of loops) await loop.stop().catch(() => undefined);
    for (const bus of buses) await bus.close().catch(() => undefined);
  }
}

export async function runClusterBench(options: {
  redisUrl: string;
  tmpDir: string;
  perAccount: number;
  warmup: number;
  counts: readonly number[];
  log: (message: string) => void;
}): Promise<ClusterRow[]> {
  const rows: ClusterRow[] = [];
  const stem = `b${process.pid}x`;
  const cluster = await startPrivateCluster();
  options.log(`private Redis Cluster: ${cluster.urls.join(', ')}`);
  try {
    for (const accounts of options.counts) {
      const single = Array.from({ length: accounts }, (_, i) => `bench.${stem}.${accounts}.${i}:`);
      const one = await runOnce({
        target: 'redis',
        connect: (prefix) => createBus({ redisUrl: options.redisUrl, prefix, trimIntervalMs: 0 }),
        prefixes: single,
        perAccount: options.perAccount,
        warmup: options.warmup,
        tmpDir: options.tmpDir,
      });
      rows.push({ target: 'redis', accounts, ...one, signals_per_s: Math.round(one.signals / one.seconds), masters: null });
      options.log(`one Redis, ${accounts} account(s): ${rows.at(-1)!.signals_per_s} signals/s`);
      const { tags, masters } = await spreadTags(cluster, accounts, `${stem}${accounts}-`);
      const many = await runOnce({
        target: 'cluster',
        connect: (prefix) => createBus({ clusterNodes: cluster.urls, prefix, trimIntervalMs: 0 }),
        prefixes: tags.map((tag) => `${tag}:`),
        perAccount: options.perAccount,
        warmup: options.warmup,
        tmpDir: options.tmpDir,
      });
      rows.push({ target: 'cluster', accounts, ...many, signals_per_s: Math.round(many.signals / many.seconds), masters });
      options.log(`cluster (${masters} master(s)), ${accounts} account(s): ${rows.at(-1)!.signals_per_s} signals/s`);
    }
  } finally {
    await cluster.destroy();
  }
  return rows;
}

export function formatClusterRows(rows: readonly ClusterRow[]): string {
  const lines = ['accounts  one Redis (signals/s)  cluster (signals/s)  cluster masters used'];
  for (const accounts of [...new Set(rows.map((r) => r.accounts))]) {
    const one = rows.find((r) => r.accounts === accounts && r.target === 'redis');
    const many = rows.find((r) => r.accounts === accounts && r.target === 'cluster');
    lines.push(`${String(accounts).padStart(8)}  ${String(one?.signals_per_s ?? '-').padStart(20)}  ${String(many?.signals_per_s ?? '-').padStart(19)}  ${String(many?.masters ?? '-').padStart(20)}`);
  }
  return lines.join('\n');
}
