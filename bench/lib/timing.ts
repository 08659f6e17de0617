/**
 * The in-process micro-benchmarks' timers (bench/hotpath.ts, bench/encode.ts,
 * bench/snapshot-growth.ts, bench/snapshot-parts.ts).
 */

/**
 * Lowest CPU ns (this process' user + system time, not wall time: the machine is shared)
 * per call of `fn` over `rounds` timed loops of `n` calls, after one warm loop.
 */
export function lowestCpuNs(rounds: number, n: number, fn: (i: number) => void): number {
  for (let i = 0; i < n; i++) fn(i);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const d = process.cpuUsage(t0);
    best = Math.min(best, ((d.user + d.system) * 1000) / n);
  }
  return best;
}

/** Median µs of a call of `fn` over `rounds` calls (after 20 untimed), each after a `before()` that is not timed (the median: the machine is shared). */
export function medianMicros(rounds: number, before: () => void, fn: () => unknown): number {
  const samples: number[] = [];
  for (let i = 0; i < rounds + 20; i++) {
    before();
    const t0 = performance.now();
    fn();
    if (i >= 20) samples.push(performance.now() - t0);
  }
  return (samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number) * 1000;
}
