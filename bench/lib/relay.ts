/**
 * The baseline: a bare 3-hop relay (three processes, XREADGROUP → XADD → XACK, see
 * relay-hop.ts) over the same private Redis, fed by the same producer with the same
 * window, payload sizes matching the real hops' messages. Its rate is the machine's
 * limit for this shape of work; the loop's figures are reported as a ratio to it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from '../../src/bus/bus.js';
import { finishedBy, produceWindowed, redisSender, waitDrained, type RedisClient, type Stage } from './drive.js';
import type { HopSizes } from './embedded.js';
import { GiveUp, cpuMicrosOf, isRunning, startChild, stopChild, waitUntil, type Child } from './processes.js';
import { wholeCycles } from './signals.js';

export interface RelayResult {
  relay_3hop_per_s: number;
  signals: number;
  seconds: number;
  /** CPU of the three hops and redis-server per signal (null when redis-server is not ours). */
  cpu_us_per_signal: number | null;
  payload_bytes: HopSizes;
}

export interface RelayOptions {
  repo: string;
  tmpDir: string;
  redisUrl: string;
  redisPid: number | null;
  /** Control connection (XINFO) under the run's prefix. */
  bus: EventBus;
  producer: RedisClient;
  prefix: string;
  total: number;
  warmup: number;
  window: number;
  batch: number;
  sizes: HopSizes;
}

export async function runRelay(options: RelayOptions): Promise<RelayResult> {
  const { bus, prefix, sizes } = options;
  const topics = ['relay.0', 'relay.1', 'relay.2', 'relay.3'];
  const stages: Stage[] = [1, 2, 3].map((hop) => ({ topic: topics[hop - 1] as string, group: `relay-${hop}` }));
  for (const stage of stages) await bus.ensureGroup(stage.topic, stage.group, '0');
  const hopSizes = [sizes.risk, sizes.execution, sizes.monitor];
  const hops: Child[] = stages.map((stage, i) =>
    startChild(
      `relay-${i + 1}`,
      process.execPath,
      [
        '--import', 'tsx', join(options.repo, 'bench', 'relay-hop.ts'),
        options.redisUrl, prefix + stage.topic, prefix + (topics[i + 1] as string), stage.group,
        String(hopSizes[i]), String(options.batch),
      ],
      { cwd: options.repo, env: { ...process.env, NODE_OPTIONS: '' }, logFile: join(options.tmpDir, `relay-${i + 1}.log`) },
    ),
  );
  try {
    await waitUntil(
      'the relay hops to connect',
      () => hops.every((hop) => {
        if (!isRunning(hop)) throw new GiveUp(`${hop.name} exited (see ${hop.logFile})`);
        return readFileSync(hop.logFile, 'utf8').includes('ready');
      }),
      20_000,
    );
    const key = prefix + (topics[0] as string);
    const drive = async (run: string, total: number) => {
      const first = stages[0] as Stage;
      const pids = [...hops.map((hop) => hop.pid), ...(options.redisPid === null ? [] : [options.redisPid])];
      const cpu0 = cpuMicrosOf(pids);
      const t0 = performance.now();
      await produceWindowed({
        send: redisSender(options.producer, key, run, 100_000),
        total,
        window: options.window,
        chunk: 1000,
        finished: (sent) => finishedBy(bus, first, sent),
      });
      const t1 = await waitDrained(bus, stages, 120_000);
      const cpu1 = cpuMicrosOf(pids);
      return { seconds: (t1 - t0) / 1000, cpu: cpu0 === null || cpu1 === null || options.redisPid === null ? null : cpu1 - cpu0 };
    };
    await drive('rw', wholeCycles(options.warmup));
    const total = wholeCycles(options.total);
    const { seconds, cpu } = await drive('rm', total);
    return {
      relay_3hop_per_s: Math.round(total / seconds),
      signals: total,
      seconds,
      cpu_us_per_signal: cpu === null ? null : Math.round(cpu / total),
      payload_bytes: sizes,
    };
  } finally {
    for (const hop of hops) await stopChild(hop, 3000);
  }
}
