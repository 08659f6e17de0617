/**
 * The Redis figures: the three services as separate processes (`node bin/quantum.js
 * risk|execution|monitor`, built from dist/), on the private Redis under a unique
 * stream prefix, fed by this process.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus } from '../../src/bus/bus.js';
import { GROUPS, TOPICS, type ServiceName } from '../../src/bus/topics.js';
import {
  finishedBy,
  percentiles,
  produceWindowed,
  producePaced,
  redisSender,
  round3,
  waitDrained,
  TailReader,
  type Percentiles,
  type RedisClient,
  type Stage,
} from './drive.js';
import { LOOP_STAGES } from './embedded.js';
import { GiveUp, cpuMicros, freePort, isRunning, memoryStatus, startChild, stopChild, waitUntil, type Child } from './processes.js';
import { BENCH_CONFIG, signalIndex, wholeCycles } from './signals.js';

export const SERVICE_NAMES: readonly ServiceName[] = ['risk', 'execution', 'monitor'];

/** Every group of the loop on its stream, for "everything is done" between phases. */
const ALL_STAGES: readonly Stage[] = [...LOOP_STAGES, { topic: TOPICS.execution, group: GROUPS.risk }];

/** Stream length kept by the producer's approximate trimming, like the bus' default. */
const PRODUCER_MAXLEN = 100_000;

export interface RunningServices {
  services: Record<ServiceName, Child & { port: number }>;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  repo: string;
  tmpDir: string;
  redisUrl: string;
  prefix: string;
  /** Extra node arguments per service (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs: (service: ServiceName) => string[];
  /** The services' config file contents (default BENCH_CONFIG). */
  config?: object;
}

export async function startServices(options: ServiceOptions): Promise<RunningServices> {
  const configFile = join(options.tmpDir, 'bench-config.json');
  writeFileSync(configFile, JSON.stringify(options.config ?? BENCH_CONFIG, null, 2));
  const ports = { risk: await freePort(), execution: await freePort(), monitor: await freePort(), dashboard: await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: options.redisUrl,
    QT_STREAM_PREFIX: options.prefix,
    QT_CONFIG: configFile,
    QT_RISK_PORT: String(ports.risk),
    QT_EXECUTION_PORT: String(ports.execution),
    QT_MONITOR_PORT: String(ports.monitor),
    QT_DASHBOARD_PORT: String(ports.dashboard),
  };
  const services = {} as RunningServices['services'];
  const stop = async () => {
    // Producers first, so in-flight work drains (the systemd order reversed).
    for (const name of [...SERVICE_NAMES].reverse()) if (services[name]) await stopChild(services[name]);
  };
  try {
    for (const name of SERVICE_NAMES) {
      const child = startChild(name, process.execPath, [...options.nodeArgs(name), join(options.repo, 'bin', 'quantum.js'), name], {
        cwd: options.tmpDir,
        env: { ...env, NODE_OPTIONS: '' },
        logFile: join(options.tmpDir, `${name}.log`),
      });
      services[name] = Object.assign(child, { port: ports[name] });
    }
    for (const name of SERVICE_NAMES) {
      const service = services[name];
      await waitUntil(
        `${name} /health`,
        async () => {
          if (!isRunning(service)) throw new GiveUp(`${name} exited (see ${service.logFile})`);
          return (await fetch(`http://127.0.0.1:${service.port}/health`)).ok;
        },
        30_000,
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { services, stop };
}

interface RiskCounts {
  received: number;
  approved: number;
  rejected: number;
  skipped: number;
}

export async function riskCounts(services: RunningServices): Promise<RiskCounts> {
  const response = await fetch(`http://127.0.0.1:${services.services.risk.port}/stats`);
  if (!response.ok) throw new Error(`risk /stats answered ${response.status}`);
  return ((await response.json()) as { counts: RiskCounts }).counts;
}

export interface LoopContext {
  services: RunningServices;
  bus: EventBus;
  producer: RedisClient;
  /** A connection of its own for the tail reader (it blocks). */
  tail: RedisClient;
  prefix: string;
  redisPid: number | null;
  benchPid: number;
}

export interface MaxResult {
  signals: number;
  seconds: number;
  signals_per_s: number;
  approved_fraction: number;
  /** Services and redis-server together; null when redis-server is not ours. */
  cpu_us_per_signal: number | null;
  cpu_us_per_signal_by_process: Record<string, number | null>;
}

function cpuSnapshot(ctx: LoopContext): Record<string, number | null> {
  const { services } = ctx.services;
  return {
    risk: cpuMicros(services.risk.pid),
    execution: cpuMicros(services.execution.pid),
    monitor: cpuMicros(services.monitor.pid),
    redis: ctx.redisPid === null ? null : cpuMicros(ctx.redisPid),
    producer: cpuMicros(ctx.benchPid),
  };
}

/** Sends `total` signals as fast as the loop takes them; timed until the monitor applied every fill. */
export async function maxThroughput(ctx: LoopContext, run: string, total: number, window: number): Promise<MaxResult> {
  total = wholeCycles(total);
  await waitDrained(ctx.bus, ALL_STAGES, 60_000);
  const counts0 = await riskCounts(ctx.services);
  const cpu0 = cpuSnapshot(ctx);
  const t0 = performance.now();
  await produceWindowed({
    send: redisSender(ctx.producer, ctx.prefix + TOPICS.signal, run, PRODUCER_MAXLEN),
    total,
    window,
    chunk: 1000,
    finished: (sent) => finishedBy(ctx.bus, LOOP_STAGES[0] as Stage, sent),
  });
  const t1 = await waitDrained(ctx.bus, LOOP_STAGES, Math.max(60_000, total / 2));
  const cpu1 = cpuSnapshot(ctx);
  const counts1 = await riskCounts(ctx.services);
  const byProcess: Record<string, number | null> = {};
  for (const name of Object.keys(cpu0)) {
    const a = cpu0[name];
    const b = cpu1[name];
    byProcess[name] = a == null || b == null ? null : Math.round((b - a) / total);
  }
  const loopCpu = ['risk', 'execution', 'monitor', 'redis'].map((name) => byProcess[name]);
  const seconds = (t1 - t0) / 1000;
  return {
    signals: total,
    seconds: round3(seconds),
    signals_per_s: Math.round(total / seconds),
    approved_fraction: round3((counts1.approved - counts0.approved) / Math.max(1, counts1.received - counts0.received)),
    cpu_us_per_signal: loopCpu.some((v) => v == null) ? null : loopCpu.reduce((sum: number, v) => sum + (v as number), 0),
    cpu_us_per_signal_by_process: byProcess,
  };
}

export interface LatencyResult extends Percentiles {
  rate_per_s: number;
  seconds: number;
  signals: number;
  /** Fills seen by the tail reader; the rest of the signals were rejected or skipped. */
  fills: number;
}

/**
 * Sends signals at a steady `rate` for `seconds`; latency is from each signal's send
 * (performance.now() just before its XADD) to the moment a tail reader (XREAD BLOCK,
 * no group) received its ExecutionResult.
 */
export async function latencyAt(ctx: LoopContext, run: string, rate: number, seconds: number): Promise<LatencyResult> {
  const total = wholeCycles(rate * seconds);
  await waitDrained(ctx.bus, ALL_STAGES, 60_000);
  const sentAt = new Float64Array(total).fill(Number.NaN);
  const latencies: number[] = [];
  const tail = new TailReader(ctx.tail, ctx.prefix + TOPICS.execution, (payload, receivedAt) => {
    const match = /"signal_id":"([^"]+)"/.exec(payload);
    const index = match ? signalIndex(run, match[1] as string) : -1;
    const sent = index >= 0 ? (sentAt[index] as number) : Number.NaN;
    if (!Number.isNaN(sent)) latencies.push(receivedAt - sent);
  });
  await tail.start();
  try {
    const t0 = performance.now();
    await producePaced({ send: redisSender(ctx.producer, ctx.prefix + TOPICS.signal, run, PRODUCER_MAXLEN), total, rate, sentAt });
    const sendSeconds = (performance.now() - t0) / 1000;
    await waitDrained(ctx.bus, LOOP_STAGES, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 150)); // the tail's last read
    return { rate_per_s: rate, seconds: round3(sendSeconds), signals: total, fills: latencies.length, ...percentiles(latencies) };
  } finally {
    await tail.stop();
  }
}

/** Resident and peak resident memory of each service now, MB. */
export function serviceMemory(services: RunningServices): Record<ServiceName, { rss_mb: number; hwm_mb: number } | null> {
  const out = {} as Record<ServiceName, { rss_mb: number; hwm_mb: number } | null>;
  for (const name of SERVICE_NAMES) {
    const status = memoryStatus(services.services[name].pid);
    out[name] = status ? { rss_mb: Math.round(status.rssMb * 10) / 10, hwm_mb: Math.round(status.hwmMb * 10) / 10 } : null;
  }
  return out;
}
