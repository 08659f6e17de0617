/**
 * `npm run bench` (quick, about a minute: the CI smoke test) and `npm run bench -- --full`.
 *
 * In one run on one machine, against a private redis-server it starts itself:
 *  1. embedded: `quantum up`'s in-process loop, signals/s;
 *  2. baseline: a bare 3-hop XREADGROUP → XADD → XACK relay (bench/relay-hop.ts);
 *  3. Redis: the three services as separate processes: sustained signals/s (and its
 *     ratio to the baseline), CPU per signal over every process including
 *     redis-server, signal-to-fill latency at 1,000 and 5,000 signals/s, peak RSS;
 *     with --full also RSS after 100k and after 1M signals;
 *  3b. growth: the same with 5, 50 and 500 instruments holding an open position
 *     (bench/lib/growth.ts): signals/s and CPU per signal per process for each, and the
 *     ratio 500 / 5 (target ≤ 1.2×);
 *  4. backtest: `quantum backtest`'s replay (bench/lib/backtest.ts, in a child process):
 *     1-minute bars of five symbols in the Binance kline format, one signal per symbol per
 *     hour, through the whole loop; bars/s and seconds (quick: a week; --full: a year,
 *     2.6M bars, target < 60 s).
 * Prints a table and writes bench/results/latest.json. Everything it starts it stops,
 * also on failure or Ctrl-C; a watchdog bounds the whole run.
 *
 * Separately, `--only cluster` (never part of the default run: it starts a six-node Redis
 * Cluster and takes a few minutes): total signals/s for 1, 2 and 4 accounts on one Redis
 * and on a private Redis Cluster (bench/lib/cluster.ts), written to bench/results/cluster.json.
 *
 * Options: --full; --profile (services and the backtest run with --cpu-prof, profiles summarised at the
 * end; see bench/profile.ts); --only embedded,baseline,redis,growth,backtest; --repeat N; --keep (keep the
 * temp folder with every process' log); --node-args "..." (extra node flags for the services).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { RedisBus } from '../src/bus/redis.js';
import { median, round3, type RedisClient } from './lib/drive.js';
import type { BacktestBenchResult } from './lib/backtest.js';
import { runEmbedded, type EmbeddedResult, type HopSizes } from './lib/embedded.js';
import { killAllNow, stopAll } from './lib/processes.js';
import { startBenchRedis, type BenchRedis } from './lib/redis-server.js';
import { runRelay, type RelayResult } from './lib/relay.js';
import {
  SERVICE_NAMES,
  latencyAt,
  maxThroughput,
  serviceMemory,
  startServices,
  type LatencyResult,
  type LoopContext,
  type MaxResult,
  type RunningServices,
} from './lib/services.js';
import { EXPECTED_APPROVED_FRACTION } from './lib/signals.js';
import { summarizeProfile, formatProfile } from './profile.js';
import { formatClusterRows, runClusterBench } from './lib/cluster.js';
import { GROWTH_COUNTS, growthRatios, runGrowth, type GrowthRow } from './lib/growth.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(REPO, 'bench', 'results');

const { values: args } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    only: { type: 'string' },
    repeat: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'node-args': { type: 'string' },
  },
});
const mode = args.full ? 'full' : 'quick';
const phases = new Set((args.only ?? 'embedded,baseline,redis,growth,backtest').split(',').map((s) => s.trim()));

const PLAN = {
  // backtestDays: 1-minute bars of five symbols (quick: a week, ~50k bars, seconds; full: the year of issue 15, 2.6M bars).
  // watchdogS (quick): 420 since the growth section (three service starts and ~100k signals more).
  quick: { embedded: 100_000, relay: 50_000, max: 50_000, repeat: 3, warmup: 5_000, latency1k: 5, latency5k: 3, watchdogS: 420, backtestDays: 7 },
  // full: the sustained runs split what is left of one million signals (see below).
  full: { embedded: 200_000, relay: 200_000, max: 0, repeat: 5, warmup: 20_000, latency1k: 30, latency5k: 30, watchdogS: 3600, backtestDays: 365 },
}[mode];
const repeat = args.repeat ? Math.max(1, Number(args.repeat)) : PLAN.repeat;
/** Signals the producer keeps ahead of the first stage at most. */
const WINDOW = 10_000;
const BATCH = 256; // the bus' default batch size (SUBSCRIBE_DEFAULTS.batchSize)
/** Payload sizes of the real hops (measured by the embedded phase), used when it is skipped. */
const DEFAULT_SIZES: HopSizes = { risk: 925, execution: 329, monitor: 401 };

/** Issue 20's targets (the second speed round); the table marks each figure ok or MISS against them. */
const TARGETS = {
  redisPerS: 40_000,
  ratio: 0.3,
  cpuUs: 35,
  p99Ms1k: 2,
  p99Ms5k: 5,
  embeddedPerS: 150_000,
  rssMb: 120,
  growthPct: 10,
  /** Growth: CPU per signal with 500 instruments holding open positions over that with 5. */
  growthCostRatio: 1.2,
};
/** The growth section (bench/lib/growth.ts): per N, a warm-up and `repeat` sustained runs of `size` signals. */
const GROWTH_PLAN = { quick: { warmup: 5_000, size: 15_000, repeat: 2 }, full: { warmup: 10_000, size: 100_000, repeat: 3 } }[mode];

// -- housekeeping ------------------------------------------------------------------

const tmpDir = mkdtempSync(join(tmpdir(), 'qt-bench-'));
let keepTmp = args.keep;
const errors: string[] = [];

function log(message: string): void {
  console.log(`bench: ${message}`);
}

function emergencyExit(reason: string): never {
  console.error(`bench: ${reason}; stopping everything`);
  killAllNow();
  console.error(`bench: logs kept in ${tmpDir}`);
  process.exit(1);
}

const watchdog = setTimeout(() => emergencyExit(`watchdog: still running after ${PLAN.watchdogS} s`), PLAN.watchdogS * 1000);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => emergencyExit(`${signal} received`));
process.once('uncaughtException', (err) => emergencyExit(`uncaught: ${err.stack ?? err.message}`));

/** Rebuilds dist/ when any source file is newer (the services run from dist/). */
function ensureBuilt(): void {
  const newest = (dir: string): number => {
    let latest = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) latest = Math.max(latest, newest(path));
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
    }
    return latest;
  };
  let built = 0;
  try {
    built = statSync(join(REPO, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    // not built
  }
  if (built >= newest(join(REPO, 'src'))) return;
  log('dist/ is missing or older than src/: building (npm run build)');
  const out = spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: REPO,
    stdio: 'inherit',
  });
  if (out.status !== 0) throw new Error('the build failed');
}

async function phase<T>(name: string, run: () => Promise<T>): Promise<T | null> {
  if (!phases.has(name)) return null;
  const t0 = performance.now();
  try {
    const result = await run();
    log(`${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return result;
  } catch (err) {
    errors.push(`${name}: ${(err as Error).message}`);
    console.error(`bench: ${name} failed: ${(err as Error).stack ?? err}`);
    keepTmp = true;
    return null;
  }
}

async function connectClient(url: string): Promise<RedisClient> {
  const client = createClient({ url });
  client.on('error', (err: Error) => console.error(`bench: redis: ${err.message}`));
  await client.connect();
  return client;
}

// -- the run ---------------------------------------------------------------------

interface RedisFigures {
  max: MaxResult[];
  latency1k: LatencyResult | null;
  latency5k: LatencyResult | null;
  memory: Record<string, ReturnType<typeof serviceMemory> & { signals: number }>;
  /** RSS (MB) of each service after each sustained run, by signals sent so far. */
  samples: MemorySample[];
  rss: ReturnType<typeof serviceMemory>;
}

interface MemorySample {
  signals: number;
  risk: number | null;
  execution: number | null;
  monitor: number | null;
}

function memorySample(services: RunningServices, signals: number): MemorySample {
  const now = serviceMemory(services);
  return { signals, risk: now.risk?.rss_mb ?? null, execution: now.execution?.rss_mb ?? null, monitor: now.monitor?.rss_mb ?? null };
}

async function mainCluster(): Promise<number> {
  const started = new Date();
  ensureBuilt();
  const redis = await startBenchRedis(tmpDir);
  try {
    log(`redis ${redis.version} at ${redis.url}${redis.child ? ' (private)' : ''}`);
    const rows = await runClusterBench({
      redisUrl: redis.url,
      tmpDir,
      perAccount: mode === 'full' ? 50_000 : 10_000,
      warmup: 2_000,
      counts: [1, 2, 4],
      log,
    });
    console.log(`\n${formatClusterRows(rows)}\n`);
    mkdirSync(RESULTS, { recursive: true });
    const result = { started: started.toISOString(), mode, cpus: cpus().length, node: process.version, redis: redis.version, rows };
    writeFileSync(join(RESULTS, 'cluster.json'), `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${join('bench', 'results', 'cluster.json')}`);
    return 0;
  } finally {
    await redis.stop();
    await stopAll();
  }
}

async function main(): Promise<number> {
  if (phases.has('cluster')) return mainCluster();
  const started = new Date();
  log(`${mode} mode, ${repeat} repeat(s); temp folder ${tmpDir}`);
  ensureBuilt();
  let redis: BenchRedis | null = null;
  let bus: RedisBus | null = null;
  const clients: RedisClient[] = [];
  let embedded: EmbeddedResult[] | null = null;
  let relay: RelayResult[] | null = null;
  let figures: RedisFigures | null = null;
  let backtest: BacktestBenchResult | null = null;
  let growth: GrowthRow[] | null = null;
  let profiles: Record<string, string> = {};
  try {
    redis = await startBenchRedis(tmpDir);
    log(`redis ${redis.version} at ${redis.url}${redis.child ? ' (private)' : ''}`);
    const prefix = `bench.${process.pid}.${Date.now().toString(36)}:`;
    bus = await RedisBus.connect({ url: redis.url, prefix });
    const producer = await connectClient(redis.url);
    const tail = await connectClient(redis.url);
    clients.push(producer, tail);
    const redisPid = redis.child?.pid ?? null;

    embedded = await phase('embedded', async () => {
      const runs: EmbeddedResult[] = [];
      for (let i = 0; i < repeat; i++) {
        const run = await runEmbedded({ total: PLAN.embedded, warmup: PLAN.warmup, tmpDir });
        // A gate that rejects everything is fast and measures nothing: hold it to the mix.
        if (Math.abs(run.approved_fraction - EXPECTED_APPROVED_FRACTION) > 0.01) {
          throw new Error(`the risk gate approved ${run.approved_fraction} of the embedded signals, expected ${EXPECTED_APPROVED_FRACTION}`);
        }
        runs.push(run);
        log(`embedded run ${i + 1}: ${run.signals_per_s} signals/s, ${run.cpu_us_per_signal} µs CPU a signal`);
      }
      return runs;
    });
    const sizes = embedded?.[0]?.sizes ?? DEFAULT_SIZES;

    relay = await phase('baseline', async () => {
      const runs: RelayResult[] = [];
      for (let i = 0; i < repeat; i++) {
        runs.push(
          await runRelay({
            repo: REPO, tmpDir, redisUrl: redis!.url, redisPid, bus: bus!, producer, prefix: `${prefix}r${i}.`,
            total: PLAN.relay, warmup: PLAN.warmup, window: WINDOW, batch: BATCH, sizes,
          }),
        );
        log(`baseline run ${i + 1}: ${runs.at(-1)?.relay_3hop_per_s} signals/s`);
      }
      return runs;
    });

    figures = await phase('redis', async () => {
      const profileDir = RESULTS;
      if (args.profile) mkdirSync(profileDir, { recursive: true });
      const services: RunningServices = await startServices({
        repo: REPO,
        tmpDir,
        redisUrl: redis!.url,
        prefix,
        nodeArgs: (name) => [
          ...(args['node-args'] ?? '').split(' ').filter(Boolean),
          ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
        ],
      });
      if (args.profile) profiles = Object.fromEntries(SERVICE_NAMES.map((name) => [name, join(profileDir, `${name}.cpuprofile`)]));
      try {
        const ctx: LoopContext = { services, bus: bus!, producer, tail, prefix, redisPid, benchPid: process.pid };
        let sent = 0;
        const warm = await maxThroughput(ctx, 'w', PLAN.warmup, WINDOW);
        sent += warm.signals;
        if (Math.abs(warm.approved_fraction - EXPECTED_APPROVED_FRACTION) > 0.01) {
          throw new Error(`the risk gate approved ${warm.approved_fraction} of the warm-up signals, expected ${EXPECTED_APPROVED_FRACTION}`);
        }
        const memory: RedisFigures['memory'] = {};
        const max: MaxResult[] = [];
        const samples: MemorySample[] = [];
        const maxRuns = async (size: number): Promise<void> => {
          for (let i = 0; i < repeat; i++) {
            const run = await maxThroughput(ctx, `m${i}`, size, WINDOW);
            max.push(run);
            sent += run.signals;
            samples.push(memorySample(services, sent));
            const by = Object.entries(run.cpu_us_per_signal_by_process).map(([k, v]) => `${k} ${v}`).join(', ');
            log(`redis run ${i + 1}: ${run.signals_per_s} signals/s, ${run.cpu_us_per_signal} µs CPU/signal (${by})`);
          }
        };
        const latencies = async () => {
          const l1 = await latencyAt(ctx, 'l1', 1000, PLAN.latency1k);
          sent += l1.signals;
          log(`latency at 1k/s: p50 ${l1.p50_ms} ms, p99 ${l1.p99_ms} ms, p99.9 ${l1.p999_ms} ms (${l1.samples} fills)`);
          const l5 = await latencyAt(ctx, 'l5', 5000, PLAN.latency5k);
          sent += l5.signals;
          log(`latency at 5k/s: p50 ${l5.p50_ms} ms, p99 ${l5.p99_ms} ms, p99.9 ${l5.p999_ms} ms (${l5.samples} fills)`);
          return [l1, l5] as const;
        };
        let latency1k: LatencyResult;
        let latency5k: LatencyResult;
        if (mode === 'quick') {
          await maxRuns(PLAN.max);
          [latency1k, latency5k] = await latencies();
        } else {
          // One million signals in all: RSS after the first 100k and at the end; the
          // sustained runs share what the latency phases leave of the million.
          await maxThroughput(ctx, 'to100k', 100_000 - sent, WINDOW).then((r) => (sent += r.signals));
          memory['100k'] = { ...serviceMemory(services), signals: sent };
          samples.push(memorySample(services, sent));
          [latency1k, latency5k] = await latencies();
          await maxRuns(Math.floor((1_000_000 - sent) / repeat));
          memory['1m'] = { ...serviceMemory(services), signals: sent };
        }
        log(`${sent} signals through the services in all`);
        return { max, latency1k, latency5k, memory, samples, rss: serviceMemory(services) };
      } finally {
        await services.stop();
      }
    });
    growth = await phase('growth', async () => {
      if (args.profile) mkdirSync(RESULTS, { recursive: true });
      const profiled = (name: string, n: number) => `growth${n}-${name}.cpuprofile`;
      const rows = await runGrowth({
        repo: REPO, tmpDir, redisUrl: redis!.url, redisPid, producer, tail, prefix: `${prefix}growth.`,
        bus: (p) => RedisBus.connect({ url: redis!.url, prefix: p }),
        nodeArgs: (name, n) => [
          ...(args['node-args'] ?? '').split(' ').filter(Boolean),
          ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${RESULTS}`, `--cpu-prof-name=${profiled(name, n)}`] : []),
        ],
        counts: GROWTH_COUNTS, warmup: GROWTH_PLAN.warmup, size: GROWTH_PLAN.size, repeat: args.repeat ? repeat : GROWTH_PLAN.repeat, window: WINDOW, log,
      });
      // The largest N's profiles are summarised (the others stay in bench/results for comparison).
      const top = GROWTH_COUNTS.at(-1) as number;
      if (args.profile) for (const name of SERVICE_NAMES) profiles[`growth${top}-${name}`] = join(RESULTS, profiled(name, top));
      return rows;
    });
    backtest = await phase('backtest', async () => {
      const profileArgs = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${RESULTS}`, '--cpu-prof-name=backtest.cpuprofile'] : [];
      if (args.profile) mkdirSync(RESULTS, { recursive: true });
      const child = spawnSync(process.execPath, [...profileArgs, '--import', 'tsx', join(REPO, 'bench', 'lib', 'backtest.ts'), String(PLAN.backtestDays)], {
        cwd: REPO,
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
        timeout: PLAN.watchdogS * 1000,
      });
      if (child.status !== 0) throw new Error(`the backtest run failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
      const run = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as BacktestBenchResult;
      if (args.profile) profiles = { ...profiles, backtest: join(RESULTS, 'backtest.cpuprofile') };
      log(`backtest: ${run.bars.toLocaleString('en-US')} bars in ${run.seconds} s (${run.bars_per_s.toLocaleString('en-US')} bars/s; ${run.published_ticks.toLocaleString('en-US')} of ${run.ticks.toLocaleString('en-US')} ticks published, ${run.trades} trades, peak RSS ${run.peak_rss_mb} MB)`);
      return run;
    });
  } finally {
    for (const client of clients) if (client.isOpen) client.destroy();
    await bus?.close().catch(() => undefined);
    await redis?.stop();
    await stopAll();
  }

  const result = report(started, { redisVersion: redis?.version ?? null, embedded, relay, figures, backtest, growth });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${join('bench', 'results', 'latest.json')}`);

  for (const [name, file] of Object.entries(profiles)) {
    try {
      console.log(`\n== ${name}: top self time (${file})\n${formatProfile(summarizeProfile(file), 15)}`);
    } catch (err) {
      console.error(`bench: profile of ${name}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) {
    console.error(`bench: ${errors.length} phase(s) failed:\n  ${errors.join('\n  ')}`);
    return 1;
  }
  return 0;
}

// -- results ----------------------------------------------------------------------

function report(
  started: Date,
  data: {
    redisVersion: string | null;
    embedded: EmbeddedResult[] | null;
    relay: RelayResult[] | null;
    figures: RedisFigures | null;
    backtest: BacktestBenchResult | null;
    growth: GrowthRow[] | null;
  },
) {
  const { embedded, relay, figures } = data;
  const med = (values: (number | null | undefined)[]): number | null => {
    const present = values.filter((v): v is number => typeof v === 'number');
    const m = median(present);
    return m === null ? null : Math.round(m);
  };
  const relayPerS = relay ? med(relay.map((r) => r.relay_3hop_per_s)) : null;
  const maxPerS = figures ? med(figures.max.map((r) => r.signals_per_s)) : null;
  const cpu = figures ? med(figures.max.map((r) => r.cpu_us_per_signal)) : null;
  const cpuBy: Record<string, number | null> = {};
  for (const name of ['risk', 'execution', 'monitor', 'redis', 'producer']) {
    cpuBy[name] = figures ? med(figures.max.map((r) => r.cpu_us_per_signal_by_process[name])) : null;
  }
  const lat = (l: LatencyResult | null | undefined) =>
    l ? { p50_ms: l.p50_ms, p99_ms: l.p99_ms, p999_ms: l.p999_ms, max_ms: l.max_ms, samples: l.samples, rate_per_s: l.rate_per_s, seconds: l.seconds } : null;
  const rss = figures ? Object.fromEntries(SERVICE_NAMES.map((n) => [n, figures.rss[n]?.hwm_mb ?? null])) : null;
  const memory =
    figures && figures.memory['100k'] && figures.memory['1m']
      ? (() => {
          const at = (key: string) => Object.fromEntries(SERVICE_NAMES.map((n) => [n, figures.memory[key]?.[n]?.rss_mb ?? null]));
          const a = at('100k');
          const b = at('1m');
          const growth = Object.fromEntries(
            SERVICE_NAMES.map((n) => [n, a[n] && b[n] ? round3(((b[n] as number) / (a[n] as number) - 1) * 100) : null]),
          );
          return {
            rss_mb_100k: a,
            rss_mb_1m: b,
            growth_pct: growth,
            signals_at: { rss_mb_100k: figures.memory['100k']?.signals ?? null, rss_mb_1m: figures.memory['1m']?.signals ?? null },
            samples: figures.samples,
          };
        })()
      : undefined;
  const result = {
    date: started.toISOString(),
    mode,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? null, node: process.version, redis: data.redisVersion },
    settings: { repeat, window: WINDOW, batch: BATCH, warmup: PLAN.warmup },
    baseline: { relay_3hop_per_s: relayPerS, cpu_us_per_signal: relay ? med(relay.map((r) => r.cpu_us_per_signal)) : null, payload_bytes: relay?.[0]?.payload_bytes ?? null, runs: relay?.map((r) => r.relay_3hop_per_s) ?? [] },
    redis: {
      max_signals_per_s: maxPerS,
      ratio_to_baseline: maxPerS !== null && relayPerS ? round3(maxPerS / relayPerS) : null,
      cpu_us_per_signal: cpu,
      cpu_us_per_signal_by_process: cpuBy,
      approved_fraction: figures ? (median(figures.max.map((r) => r.approved_fraction)) ?? null) : null,
      latency_1k: lat(figures?.latency1k),
      latency_5k: lat(figures?.latency5k),
      rss_mb: rss,
      runs: figures?.max.map((r) => r.signals_per_s) ?? [],
    },
    embedded: {
      signals_per_s: embedded ? med(embedded.map((r) => r.signals_per_s)) : null,
      cpu_us_per_signal: embedded ? med(embedded.map((r) => r.cpu_us_per_signal)) : null,
      runs: embedded?.map((r) => r.signals_per_s) ?? [],
    },
    ...(memory ? { memory } : {}),
    backtest: data.backtest,
    growth: data.growth ? { rows: data.growth.map(({ runs, ...row }) => ({ ...row, runs: runs.map((r) => r.signals_per_s) })), ratio_last_to_first: growthRatios(data.growth) } : null,
    errors,
  };
  printTable(result);
  return result;
}

function printTable(r: {
  baseline: { relay_3hop_per_s: number | null };
  redis: {
    max_signals_per_s: number | null;
    ratio_to_baseline: number | null;
    cpu_us_per_signal: number | null;
    approved_fraction: number | null;
    latency_1k: { p50_ms: number | null; p99_ms: number | null; p999_ms: number | null } | null;
    latency_5k: { p50_ms: number | null; p99_ms: number | null; p999_ms: number | null } | null;
    rss_mb: Record<string, number | null> | null;
  };
  embedded: { signals_per_s: number | null };
  memory?: { rss_mb_100k: Record<string, number | null>; rss_mb_1m: Record<string, number | null>; growth_pct: Record<string, number | null> };
  backtest?: BacktestBenchResult | null;
  growth?: { rows: Omit<GrowthRow, 'runs'>[]; ratio_last_to_first: Record<string, number | null> } | null;
}): void {
  const rows: [string, string, string, string][] = [];
  const fmt = (v: number | null | undefined, unit = ''): string => (v === null || v === undefined ? 'n/a' : `${v.toLocaleString('en-US')}${unit}`);
  const check = (v: number | null | undefined, ok: (x: number) => boolean): string => (v === null || v === undefined ? '?' : ok(v) ? 'ok' : 'MISS');
  const { redis } = r;
  rows.push(['baseline: bare 3-hop relay', fmt(r.baseline.relay_3hop_per_s, ' /s'), '', '']);
  rows.push(['redis: sustained signals', fmt(redis.max_signals_per_s, ' /s'), `>= ${TARGETS.redisPerS.toLocaleString('en-US')} /s`, check(redis.max_signals_per_s, (v) => v >= TARGETS.redisPerS)]);
  rows.push(['redis: ratio to baseline', fmt(redis.ratio_to_baseline), `>= ${TARGETS.ratio}`, check(redis.ratio_to_baseline, (v) => v >= TARGETS.ratio)]);
  rows.push(['redis: CPU per signal (all procs)', fmt(redis.cpu_us_per_signal, ' µs'), `<= ${TARGETS.cpuUs} µs`, check(redis.cpu_us_per_signal, (v) => v <= TARGETS.cpuUs)]);
  rows.push(['redis: approved fraction', fmt(redis.approved_fraction), '', '']);
  for (const [label, l, p99Target] of [['1k/s', redis.latency_1k, TARGETS.p99Ms1k], ['5k/s', redis.latency_5k, TARGETS.p99Ms5k]] as const) {
    rows.push([`latency @${label} p50`, fmt(l?.p50_ms, ' ms'), '', '']);
    rows.push([`latency @${label} p99`, fmt(l?.p99_ms, ' ms'), `<= ${p99Target} ms`, check(l?.p99_ms, (v) => v <= p99Target)]);
    rows.push([`latency @${label} p99.9`, fmt(l?.p999_ms, ' ms'), '', '']);
  }
  for (const name of SERVICE_NAMES) {
    const v = redis.rss_mb?.[name];
    rows.push([`peak RSS ${name}`, fmt(v, ' MB'), `<= ${TARGETS.rssMb} MB`, check(v, (x) => x <= TARGETS.rssMb)]);
  }
  rows.push(['embedded: signals', fmt(r.embedded.signals_per_s, ' /s'), `>= ${TARGETS.embeddedPerS.toLocaleString('en-US')} /s`, check(r.embedded.signals_per_s, (v) => v >= TARGETS.embeddedPerS)]);
  if (r.memory) {
    for (const name of SERVICE_NAMES) {
      const g = r.memory.growth_pct[name];
      rows.push([
        `RSS ${name} 100k → 1M`,
        `${fmt(r.memory.rss_mb_100k[name], ' MB')} → ${fmt(r.memory.rss_mb_1m[name], ' MB')} (${g === null || g === undefined ? '?' : `${g > 0 ? '+' : ''}${g}%`})`,
        `<= +${TARGETS.growthPct}%`,
        check(g, (x) => x <= TARGETS.growthPct),
      ]);
    }
  }
  if (r.backtest) {
    const b = r.backtest;
    const year = b.days >= 365;
    rows.push([`backtest: bars (${b.days} days x 5 symbols)`, fmt(b.bars), '', '']);
    rows.push(['backtest: bars/s', fmt(b.bars_per_s, ' /s'), '', '']);
    rows.push(['backtest: seconds', fmt(b.seconds, ' s'), year ? '< 60 s' : '(a year: --full)', year ? check(b.seconds, (v) => v < 60) : '']);
    rows.push(['backtest: peak RSS', fmt(b.peak_rss_mb, ' MB'), '', '']);
  }
  if (r.growth) {
    for (const row of r.growth.rows) {
      const by = row.cpu_us_per_signal_by_process;
      rows.push([
        `growth: ${row.instruments_with_open_positions} open positions`,
        `${fmt(row.signals_per_s, ' /s')}, ${fmt(row.cpu_us_per_signal, ' µs')} (r ${fmt(by.risk)}, e ${fmt(by.execution)}, m ${fmt(by.monitor)}, redis ${fmt(by.redis)})`,
        '',
        '',
      ]);
    }
    const ratio = r.growth.ratio_last_to_first;
    const first = r.growth.rows[0]?.instruments_with_open_positions;
    const last = r.growth.rows.at(-1)?.instruments_with_open_positions;
    rows.push([
      `growth: CPU/signal ${last} / ${first}`,
      `${fmt(ratio.total, 'x')} (r ${fmt(ratio.risk)}, e ${fmt(ratio.execution)}, m ${fmt(ratio.monitor)}, redis ${fmt(ratio.redis)})`,
      `<= ${TARGETS.growthCostRatio}x`,
      check(ratio.total, (v) => v <= TARGETS.growthCostRatio),
    ]);
  }
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i]!.length), ['figure', 'value', 'target', ''][i]!.length));
  const line = (row: readonly string[]) => row.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  console.log(`\n${line(['figure', 'value', 'target', ''])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows) console.log(line(row));
  console.log('');
}

const code = await main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  keepTmp = true;
  return 1;
});
clearTimeout(watchdog);
if (keepTmp) console.error(`bench: logs kept in ${tmpDir}`);
else rmSync(tmpDir, { recursive: true, force: true });
process.exit(code);
