/**
 * What the services' memory is made of over a long run: `npx tsx bench/memory-trace.ts
 * [signals=1000000] [--step 100000] [--node-args="..."] [--snapshot] [--keep]`.
 * Runs the three services as processes (as `npm run bench` does) with bench/lib/probe.mjs
 * preloaded and sends signals as fast as they are taken; after every step prints each
 * service's RSS and its V8 heap (used / committed, from the probe) and the CPU per signal
 * of the step. --snapshot writes a heap snapshot of each service at the end (into the
 * kept temp folder; open in Chrome DevTools).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { RedisBus } from '../src/bus/redis.js';
import type { RedisClient } from './lib/drive.js';
import { killAllNow, memoryMap, stopAll, waitUntil } from './lib/processes.js';
import { startBenchRedis } from './lib/redis-server.js';
import { SERVICE_NAMES, maxThroughput, serviceMemory, startServices, type LoopContext } from './lib/services.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'node-args': { type: 'string' },
    step: { type: 'string' },
    snapshot: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const total = Number(positionals[0] ?? 1_000_000);
const step = Number(args.step ?? 100_000);
const tmpDir = mkdtempSync(join(tmpdir(), 'qt-memory-'));

async function connect(url: string): Promise<RedisClient> {
  const client = createClient({ url });
  client.on('error', (err: Error) => console.error(`memory: redis: ${err.message}`));
  await client.connect();
  return client;
}

/** The probe's last memory line in a service's log, and its GC pauses since `since` (epoch ms). */
function lastProbe(logFile: string, since: number): string {
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const m = /heapTotal=(\d+) heapUsed=(\d+).*?(new=\d+).*?(old=\d+)/.exec(lines.filter((line) => line.startsWith('PROBE memory')).at(-1) ?? '');
  let minor = 0;
  let major = 0;
  for (const line of lines) {
    const gc = /^PROBE gc (\S+) at=([\d.]+) ms=([\d.]+)/.exec(line);
    if (!gc || Number(gc[2]) < since) continue;
    if (gc[1] === 'scavenge') minor += Number(gc[3]);
    else major += Number(gc[3]);
  }
  return `${m ? `heap ${m[2]}/${m[1]} ${m[3]} ${m[4]}` : ''} gc ${minor.toFixed(0)}+${major.toFixed(0)} ms`;
}

async function main(): Promise<void> {
  const redis = await startBenchRedis(tmpDir);
  const prefix = `memory.${process.pid}:`;
  const bus = await RedisBus.connect({ url: redis.url, prefix });
  const producer = await connect(redis.url);
  const tail = await connect(redis.url);
  const extra = (args['node-args'] ?? '').split(' ').filter(Boolean);
  const services = await startServices({
    repo: REPO,
    tmpDir,
    redisUrl: redis.url,
    prefix,
    nodeArgs: () => [
      '--import', join(REPO, 'bench', 'lib', 'probe.mjs'),
      ...(args.snapshot ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${tmpDir}`] : []),
      ...extra,
    ],
  });
  const ctx: LoopContext = { services, bus, producer, tail, prefix, redisPid: redis.child?.pid ?? null, benchPid: process.pid };
  try {
    const mem = serviceMemory(services);
    console.log(`start: ${SERVICE_NAMES.map((n) => `${n} ${mem[n]?.rss_mb} MB`).join(', ')}`);
    let sent = 0;
    while (sent < total) {
      const since = Date.now();
      const run = await maxThroughput(ctx, `s${sent}`, Math.min(step, total - sent), 10_000);
      sent += run.signals;
      // The probe writes every QT_PROBE_MEMORY_MS: let it catch up with the step's end.
      await new Promise((r) => setTimeout(r, 1100));
      const now = serviceMemory(services);
      const by = run.cpu_us_per_signal_by_process;
      console.log(
        `${String(sent).padStart(8)} signals, ${String(run.signals_per_s).padStart(6)}/s, CPU µs/signal risk ${by.risk} execution ${by.execution} monitor ${by.monitor} redis ${by.redis} | ` +
          SERVICE_NAMES.map((n) => {
            const map = memoryMap(services.services[n].pid);
            const parts = map ? ` [file ${map.file} malloc ${map.malloc} anon ${map.anon}]` : '';
            return `${n} rss ${now[n]?.rss_mb} (hwm ${now[n]?.hwm_mb})${parts} ${lastProbe(services.services[n].logFile, since)}`;
          }).join(' | '),
      );
    }
    if (args.snapshot) {
      for (const name of SERVICE_NAMES) {
        const pid = services.services[name].pid;
        const file = () => readdirSync(tmpDir).find((f) => f.endsWith(`.${pid}.0.001.heapsnapshot`));
        process.kill(pid, 'SIGUSR2');
        // Written by the service's main thread: done once the file exists and its size holds still.
        let size = -1;
        await waitUntil(`${name}'s heap snapshot`, () => {
          const found = file();
          const now = found ? statSync(join(tmpDir, found)).size : -1;
          const still = now > 0 && now === size;
          size = now;
          return still;
        }, 300_000, 2000);
        console.log(`${name}: heap snapshot ${file()}`);
      }
    }
  } finally {
    await services.stop();
    producer.destroy();
    tail.destroy();
    await bus.close();
    await redis.stop();
    await stopAll();
    if (args.keep || args.snapshot) console.log(`logs in ${tmpDir}`);
    else rmSync(tmpDir, { recursive: true, force: true });
  }
}

process.env.QT_PROBE_MEMORY_MS ??= '1000';
process.once('SIGINT', () => {
  killAllNow();
  process.exit(1);
});
await main();
