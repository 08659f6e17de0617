/**
 * Embedded runs in one process, for profiling and A/B checks on a busy machine
 * (`node --cpu-prof --import tsx bench/embedded-once.ts [signals] [runs]`): the loop of
 * `npm run bench -- --only embedded`, `runs` times (default 1), each on a fresh bus,
 * printing signals/s and CPU µs a signal of each run and the lowest CPU figure.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEmbedded } from './lib/embedded.js';

const total = Number(process.argv[2] ?? 100_000);
const runs = Number(process.argv[3] ?? 1);
const tmpDir = mkdtempSync(join(tmpdir(), 'qt-embedded-'));
const cpu: number[] = [];
for (let i = 0; i < runs; i += 1) {
  const result = await runEmbedded({ total, warmup: 5_000, tmpDir });
  cpu.push(result.cpu_us_per_signal);
  console.log(JSON.stringify({ run: i + 1, signals_per_s: result.signals_per_s, cpu_us_per_signal: result.cpu_us_per_signal }));
}
console.log(JSON.stringify({ min_cpu_us_per_signal: Math.min(...cpu) }));
