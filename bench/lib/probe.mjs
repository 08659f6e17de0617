// A diagnostic preload for a service process (`--node-args="--import <repo>/bench/lib/probe.mjs"`,
// or node --import): one stderr line per GC pause and per event-loop stall, stamped with
// the wall clock (ms since the epoch, fractional) so bench/latency-trace.ts can line them
// up with slow signals; and every QT_PROBE_MEMORY_MS (default 5000) the memory breakdown.
import { PerformanceObserver, performance, constants } from 'node:perf_hooks';
import { setInterval } from 'node:timers';
import v8 from 'node:v8';

const origin = performance.timeOrigin;
const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
};
const out = (line) => process.stderr.write(`PROBE ${line}\n`);

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind ?? entry.kind] ?? 'gc';
    out(`gc ${kind} at=${(origin + entry.startTime).toFixed(3)} ms=${entry.duration.toFixed(3)}`);
  }
}).observe({ entryTypes: ['gc'] });

// A timer every 2 ms: a late tick means the thread was busy (a long batch, a pause, a timer's work).
const STALL_MS = Number(process.env.QT_PROBE_STALL_MS ?? 3);
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - last - 2;
  if (late > STALL_MS) out(`stall at=${(origin + last + 2).toFixed(3)} ms=${late.toFixed(3)}`);
  last = now;
}, 2).unref();

const mb = (x) => Math.round(x / 1048576);
setInterval(() => {
  const m = process.memoryUsage();
  const spaces = v8
    .getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => `${s.space_name.replace('_space', '')}=${mb(s.space_size)}`)
    .join(' ');
  out(`memory at=${Date.now()} rss=${mb(m.rss)} heapTotal=${mb(m.heapTotal)} heapUsed=${mb(m.heapUsed)} external=${mb(m.external)} limit=${mb(v8.getHeapStatistics().heap_size_limit)} ${spaces}`);
}, Number(process.env.QT_PROBE_MEMORY_MS ?? 5000)).unref();
