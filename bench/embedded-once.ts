/**
 * One embedded run, for profiling (`node --cpu-prof --import tsx bench/embedded-once.ts [signals]`):
 * the same loop as `npm run bench -- --only embedded`, once, printing signals/s.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEmbedded } from './lib/embedded.js';

const total = Number(process.argv[2] ?? 100_000);
const tmpDir = mkdtempSync(join(tmpdir(), 'qt-embedded-'));
const started = process.cpuUsage();
const result = await runEmbedded({ total, warmup: 5_000, tmpDir, snapshots: process.env.QT_BENCH_SNAPSHOTS !== '0' });
const cpu = process.cpuUsage(started);
console.log(JSON.stringify({ signals_per_s: result.signals_per_s, cpu_us_per_signal: result.cpu_us_per_signal, seconds: Math.round(result.seconds * 100) / 100, whole_process_cpu_s: Math.round((cpu.user + cpu.system) / 1e4) / 100 }));
