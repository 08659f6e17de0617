/**
 * Where the latency tail comes from: `npx tsx bench/latency-trace.ts [rate=1000] [seconds=10]
 * [--node-args="..."]`. Runs the three services as processes (as `npm run bench` does) with
 * bench/lib/probe.mjs preloaded, sends signals at a steady rate, and for every fill slower
 * than the threshold (default 2 ms; QT_TRACE_SLOW_MS) lists what overlapped it: a GC pause
 * or an event-loop stall in a service or in this process (producer and tail reader).
 * Prints percentiles and the attribution; --keep keeps the logs.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { RedisBus } from '../src/bus/redis.js';
import { TOPICS } from '../src/bus/topics.js';
import { TailReader, percentiles, producePaced, redisSender, type RedisClient } from './lib/drive.js';
import { LOOP_STAGES } from './lib/embedded.js';
import { killAllNow, stopAll } from './lib/processes.js';
import { startBenchRedis } from './lib/redis-server.js';
import { SERVICE_NAMES, maxThroughput, startServices, type LoopContext } from './lib/services.js';
import { signalIndex, wholeCycles } from './lib/signals.js';
import { waitDrained } from './lib/drive.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'node-args': { type: 'string' }, keep: { type: 'boolean', default: false }, warmup: { type: 'string' } },
});
const rate = Number(positionals[0] ?? 1000);
const seconds = Number(positionals[1] ?? 10);
const slowMs = Number(process.env.QT_TRACE_SLOW_MS ?? 2);
const tmpDir = mkdtempSync(join(tmpdir(), 'qt-trace-'));

interface Pause {
  who: string;
  what: string;
  start: number;
  end: number;
}

const pauses: Pause[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
    const what = kind === constants.NODE_PERFORMANCE_GC_MINOR ? 'scavenge' : kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 'mark-compact' : 'gc';
    const start = performance.timeOrigin + entry.startTime;
    pauses.push({ who: 'bench', what: `gc ${what}`, start, end: start + entry.duration });
  }
}).observe({ entryTypes: ['gc'] });

function servicePauses(name: string, logFile: string): Pause[] {
  const found: Pause[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = /^PROBE (gc (\S+)|stall) at=([\d.]+) ms=([\d.]+)/.exec(line);
    if (!m) continue;
    const start = Number(m[3]);
    found.push({ who: name, what: m[2] ? `gc ${m[2]}` : 'stall', start, end: start + Number(m[4]) });
  }
  return found;
}

async function connect(url: string): Promise<RedisClient> {
  const client = createClient({ url });
  client.on('error', (err: Error) => console.error(`trace: redis: ${err.message}`));
  await client.connect();
  return client;
}

async function main(): Promise<void> {
  const redis = await startBenchRedis(tmpDir);
  const prefix = `trace.${process.pid}:`;
  const bus = await RedisBus.connect({ url: redis.url, prefix });
  const producer = await connect(redis.url);
  const tailClient = await connect(redis.url);
  const services = await startServices({
    repo: REPO,
    tmpDir,
    redisUrl: redis.url,
    prefix,
    nodeArgs: () => ['--import', join(REPO, 'bench', 'lib', 'probe.mjs'), ...(args['node-args'] ?? '').split(' ').filter(Boolean)],
  });
  try {
    const ctx: LoopContext = { services, bus, producer, tail: tailClient, prefix, redisPid: redis.child?.pid ?? null, benchPid: process.pid };
    await maxThroughput(ctx, 'w', Number(args.warmup ?? 20_000), 10_000);
    await waitDrained(bus, LOOP_STAGES, 60_000);
    const total = wholeCycles(rate * seconds);
    const sentAt = new Float64Array(total).fill(Number.NaN);
    const fills: { sent: number; latency: number }[] = [];
    const run = 'lt';
    const tail = new TailReader(tailClient, prefix + TOPICS.execution, (payload, receivedAt) => {
      const match = /"signal_id":"([^"]+)"/.exec(payload);
      const index = match ? signalIndex(run, match[1] as string) : -1;
      const sent = index >= 0 ? (sentAt[index] as number) : Number.NaN;
      if (!Number.isNaN(sent)) fills.push({ sent: performance.timeOrigin + sent, latency: receivedAt - sent });
    });
    await tail.start();
    await producePaced({ send: redisSender(producer, prefix + TOPICS.signal, run, 100_000), total, rate, sentAt });
    await waitDrained(bus, LOOP_STAGES, 60_000);
    await new Promise((r) => setTimeout(r, 150));
    await tail.stop();
    const p = percentiles(fills.map((f) => f.latency));
    console.log(`rate ${rate}/s for ${seconds} s: ${p.samples} fills, p50 ${p.p50_ms} ms, p99 ${p.p99_ms} ms, p99.9 ${p.p999_ms} ms, max ${p.max_ms} ms`);
    await services.stop();
    for (const name of SERVICE_NAMES) pauses.push(...servicePauses(name, services.services[name].logFile));
    const slow = fills.filter((f) => f.latency > slowMs);
    const blame = new Map<string, number>();
    let unexplained = 0;
    for (const f of slow) {
      const end = f.sent + f.latency;
      const hits = new Set(pauses.filter((x) => x.end > f.sent && x.start < end && x.end - x.start >= 0.5).map((x) => `${x.who} ${x.what}`));
      if (hits.size === 0) unexplained += 1;
      for (const hit of hits) blame.set(hit, (blame.get(hit) ?? 0) + 1);
    }
    console.log(`${slow.length} fills over ${slowMs} ms (${((slow.length / Math.max(1, fills.length)) * 100).toFixed(2)} %); overlapping (a fill may count under several):`);
    for (const [what, n] of [...blame].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(6)}  ${what}`);
    console.log(`  ${String(unexplained).padStart(6)}  nothing recorded`);
    const byWho = new Map<string, { n: number; total: number; max: number }>();
    const t0 = fills[0]?.sent ?? 0;
    const t1 = (fills.at(-1)?.sent ?? 0) + 50;
    for (const x of pauses) {
      if (x.start < t0 || x.start > t1) continue;
      const key = `${x.who} ${x.what}`;
      const s = byWho.get(key) ?? { n: 0, total: 0, max: 0 };
      s.n += 1;
      s.total += x.end - x.start;
      s.max = Math.max(s.max, x.end - x.start);
      byWho.set(key, s);
    }
    console.log('pauses during the run (count, total ms, max ms):');
    for (const [what, s] of [...byWho].sort((a, b) => b[1].total - a[1].total)) {
      console.log(`  ${what.padEnd(28)} ${String(s.n).padStart(6)} ${s.total.toFixed(1).padStart(9)} ${s.max.toFixed(1).padStart(8)}`);
    }
    writeFileSync(join(tmpDir, 'fills.json'), JSON.stringify({ fills, pauses }));
  } finally {
    await services.stop();
    producer.destroy();
    tailClient.destroy();
    await bus.close();
    await redis.stop();
    await stopAll();
    if (args.keep) console.log(`logs in ${tmpDir}`);
    else rmSync(tmpDir, { recursive: true, force: true });
  }
}

process.once('SIGINT', () => {
  killAllNow();
  process.exit(1);
});
await main();
