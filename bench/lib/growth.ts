/**
 * The growth figures (issue 20): cost per signal with 5, 50 and 500 instruments holding an
 * open position, the three services as processes on the bench's private Redis.
 *
 * For each N the services start afresh with a config of the five bench symbols plus N
 * generated instruments ("held" instruments), then one BUY per held instrument opens a
 * position in each (checked on the monitor's /positions and risk's /stats), and then the
 * usual sustained load runs: the five-symbol cycle of bench/lib/signals.ts, identical for
 * every N. So the signal mix, its sizing and the approved fraction do not change with N;
 * only the book the loop carries does (N open positions, N + 5 prices, tick-gate entries,
 * sources, ...), which is what the cost per signal must not depend on. Each cycle ends
 * flat, so N positions stay open throughout (checked again after the runs).
 *
 * Config changes against BENCH_CONFIG, so that N positions really open at the same size
 * as the five traded symbols: initial balance 1,000,000 USDT and max_position_pct 0.001
 * (1,000 USDT a position, the same notional the default bench trades at 10,000 × 10 %),
 * max_exposure_pct 0.9 (505 positions × 1,000 USDT = 50.5 % of equity).
 */
import { DEFAULT_INSTRUMENTS } from '../../src/platform/config.js';
import { GROUPS, TOPICS, type ServiceName } from '../../src/bus/topics.js';
import { waitDrained, type RedisClient, type Stage } from './drive.js';
import { LOOP_STAGES } from './embedded.js';
import { BENCH_CONFIG, EXPECTED_APPROVED_FRACTION } from './signals.js';
import { maxThroughput, startServices, type LoopContext, type MaxResult, type RunningServices } from './services.js';
import type { EventBus } from '../../src/bus/bus.js';
import { readSnapshotText } from '../../src/services/common/host.js';

export const GROWTH_COUNTS = [5, 50, 500] as const;

/** A plausible instrument: start prices spread log-uniformly over 0.01–50,000 USDT, tick and step sizes to match. */
export function heldInstrument(index: number, count: number) {
  const exponent = -2 + (Math.log10(50_000) + 2) * (count <= 1 ? 0 : index / (count - 1));
  const magnitude = Math.floor(exponent);
  // Four significant digits, on the tick grid (tick = 1e-4 of the price's magnitude).
  const tick = 10 ** (magnitude - 3);
  const start = Math.round(10 ** exponent / tick) * tick;
  // A step worth ~0.1–1 USDT at the start price.
  const step = 10 ** Math.floor(Math.log10(1 / start) - 0);
  return {
    symbol: `H${String(index).padStart(4, '0')}USDT`,
    tick_size: Number(tick.toPrecision(1)),
    step_size: Number(step.toPrecision(1)),
    min_notional_usd: 10,
    start_price: Number(start.toPrecision(4)),
  };
}

export function growthConfig(n: number) {
  return {
    ...BENCH_CONFIG,
    account: { initial_balance_usd: 1_000_000 },
    risk: { ...BENCH_CONFIG.risk, max_position_pct: 0.001, max_exposure_pct: 0.9 },
    instruments: [...DEFAULT_INSTRUMENTS, ...Array.from({ length: n }, (_, i) => heldInstrument(i, n))],
  };
}

export interface GrowthRow {
  instruments_with_open_positions: number;
  open_positions: { monitor: number; risk: number; after_runs: number };
  snapshot_bytes: Record<string, number | null>;
  /** Snapshot commits (one per batch) per 1,000 signals of the measured runs, by service. */
  commits_per_1k_signals: Record<string, number | null>;
  /** Bytes Redis read from its clients (INFO total_net_input_bytes) per signal of the measured runs: messages, commits, snapshots. */
  redis_input_bytes_per_signal: number;
  signals_per_s: number | null;
  cpu_us_per_signal: number | null;
  cpu_us_per_signal_by_process: Record<string, number | null>;
  approved_fraction: number | null;
  runs: MaxResult[];
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as T;
}

async function openPositions(services: RunningServices): Promise<{ monitor: number; risk: number }> {
  const positions = await getJson<{ positions: unknown[] }>(`http://127.0.0.1:${services.services.monitor.port}/positions`);
  const stats = await getJson<{ open_positions: number }>(`http://127.0.0.1:${services.services.risk.port}/stats`);
  return { monitor: positions.positions.length, risk: stats.open_positions };
}

/** Each service's count of snapshot commits so far (qt_snapshot_commit_duration_seconds_count). */
async function commitCounts(services: RunningServices): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  for (const name of ['risk', 'execution', 'monitor'] as const) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${services.services[name].port}/metrics`)).text();
      let total = 0;
      for (const match of text.matchAll(/^qt_snapshot_commit_duration_seconds_count(?:\{[^}]*\})? (\d+)/gm)) total += Number(match[1]);
      out[name] = total;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

const ALL_STAGES: readonly Stage[] = [...LOOP_STAGES, { topic: TOPICS.execution, group: GROUPS.risk }];

export interface GrowthOptions {
  repo: string;
  tmpDir: string;
  redisUrl: string;
  /** Extra node arguments per service and N (e.g. --cpu-prof). */
  nodeArgs: (service: ServiceName, n: number) => string[];
  bus: (prefix: string) => Promise<EventBus>;
  producer: RedisClient;
  tail: RedisClient;
  redisPid: number | null;
  prefix: string;
  counts: readonly number[];
  warmup: number;
  size: number;
  repeat: number;
  window: number;
  log: (message: string) => void;
}

/** One row per N: services started with N held instruments, N positions opened, then the sustained runs. */
export async function runGrowth(options: GrowthOptions): Promise<GrowthRow[]> {
  const rows: GrowthRow[] = [];
  for (const n of options.counts) {
    const prefix = `${options.prefix}g${n}.`;
    const bus = await options.bus(prefix);
    const services = await startServices({
      repo: options.repo,
      tmpDir: options.tmpDir,
      redisUrl: options.redisUrl,
      prefix,
      nodeArgs: (service) => options.nodeArgs(service, n),
      config: growthConfig(n),
    });
    try {
      const ctx: LoopContext = { services, bus, producer: options.producer, tail: options.tail, prefix, redisPid: options.redisPid, benchPid: process.pid };
      // One BUY per held instrument, in one pipeline.
      const pipeline = options.producer.multi();
      const ts = Date.now();
      for (let i = 0; i < n; i++) {
        const signal = { signal_id: `hold-${i}`, symbol: heldInstrument(i, n).symbol, action: 'BUY', confidence: 0.8, source: 'bench-hold', ts };
        pipeline.addCommand(['XADD', prefix + TOPICS.signal, '*', 'payload', JSON.stringify(signal)]);
      }
      await pipeline.execAsPipeline();
      await waitDrained(bus, ALL_STAGES, 60_000);
      const open = await openPositions(services);
      if (open.monitor !== n || open.risk !== n) throw new Error(`${n} held instruments: ${open.monitor} positions open in the monitor, ${open.risk} in risk`);
      const warm = await maxThroughput(ctx, 'w', options.warmup, options.window);
      if (Math.abs(warm.approved_fraction - EXPECTED_APPROVED_FRACTION) > 0.01) {
        throw new Error(`N=${n}: the risk gate approved ${warm.approved_fraction} of the warm-up signals, expected ${EXPECTED_APPROVED_FRACTION}`);
      }
      const runs: MaxResult[] = [];
      const commits0 = await commitCounts(services);
      const input0 = await netInputBytes(options.producer);
      for (let i = 0; i < options.repeat; i++) {
        const run = await maxThroughput(ctx, `m${i}`, options.size, options.window);
        runs.push(run);
        const by = Object.entries(run.cpu_us_per_signal_by_process).map(([k, v]) => `${k} ${v}`).join(', ');
        options.log(`growth N=${n} run ${i + 1}: ${run.signals_per_s} signals/s, ${run.cpu_us_per_signal} µs CPU/signal (${by})`);
      }
      const commits1 = await commitCounts(services);
      const measured = runs.reduce((sum, r) => sum + r.signals, 0);
      const commits_per_1k_signals: Record<string, number | null> = {};
      for (const name of Object.keys(commits1)) {
        const a = commits0[name];
        const b = commits1[name];
        commits_per_1k_signals[name] = a == null || b == null ? null : Math.round(((b - a) / measured) * 10_000) / 10;
      }
      const after = await openPositions(services);
      const snapshot_bytes: Record<string, number | null> = {};
      for (const name of ['risk', 'execution', 'monitor'] as const) {
        // The snapshot's JSON as restored (stored by parts: put together from its hash).
        const text = await readSnapshotText(bus, name).catch(() => null);
        snapshot_bytes[name] = text ? Buffer.byteLength(text) : null;
      }
      const redis_input_bytes_per_signal = Math.round(((await netInputBytes(options.producer)) - input0) / measured);
      rows.push({ ...summarize(n, { ...open, after_runs: after.monitor }, snapshot_bytes, runs), commits_per_1k_signals, redis_input_bytes_per_signal });
      options.log(
        `growth N=${n}: snapshot bytes ${JSON.stringify(snapshot_bytes)}, commits per 1k signals ${JSON.stringify(commits_per_1k_signals)}, bytes into Redis per signal ${redis_input_bytes_per_signal}`,
      );
    } finally {
      await services.stop();
      await bus.close().catch(() => undefined);
    }
  }
  return rows;
}

/** Redis's total_net_input_bytes (INFO stats). */
async function netInputBytes(client: RedisClient): Promise<number> {
  const info = await client.sendCommand<string>(['INFO', 'stats']);
  return Number(/total_net_input_bytes:(\d+)/.exec(info)?.[1] ?? NaN);
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function summarize(n: number, open: GrowthRow['open_positions'], snapshot_bytes: GrowthRow['snapshot_bytes'], runs: MaxResult[]): Omit<GrowthRow, 'commits_per_1k_signals' | 'redis_input_bytes_per_signal'> {
  const med = (pick: (r: MaxResult) => number | null | undefined) => {
    const m = median(runs.map(pick).filter((v): v is number => typeof v === 'number'));
    return m === null ? null : Math.round(m * 10) / 10;
  };
  const by: Record<string, number | null> = {};
  for (const name of ['risk', 'execution', 'monitor', 'redis', 'producer']) by[name] = med((r) => r.cpu_us_per_signal_by_process[name]);
  return {
    instruments_with_open_positions: n,
    open_positions: open,
    snapshot_bytes,
    signals_per_s: med((r) => r.signals_per_s),
    cpu_us_per_signal: med((r) => r.cpu_us_per_signal),
    cpu_us_per_signal_by_process: by,
    approved_fraction: med((r) => r.approved_fraction),
    runs,
  };
}

/** CPU per signal at the largest N over the smallest, total and per process (the issue's ≤ 1.2×). */
export function growthRatios(rows: readonly GrowthRow[]): Record<string, number | null> {
  const first = rows[0];
  const last = rows.at(-1);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((b / a) * 100) / 100 : null);
  const out: Record<string, number | null> = { total: ratio(first?.cpu_us_per_signal, last?.cpu_us_per_signal) };
  for (const name of ['risk', 'execution', 'monitor', 'redis']) out[name] = ratio(first?.cpu_us_per_signal_by_process[name], last?.cpu_us_per_signal_by_process[name]);
  out.signals_per_s = ratio(last?.signals_per_s, first?.signals_per_s);
  return out;
}
