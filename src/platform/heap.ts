/**
 * V8 heap settings of a service process (`quantum risk|execution|monitor`), applied by
 * bin/quantum.js before anything else is loaded, so they hold however the service is
 * started (systemd, docker compose, `npx quantum`, the bench): no NODE_OPTIONS needed.
 *
 * Left alone, V8 sizes its heap for throughput on a big machine: it lets the old space grow
 * to ~4× the live heap before collecting and each semi-space to 16 MB, so a service with
 * ~40 MB live sat at 200–300 MB RSS. A service's live heap is its state plus the idempotency
 * guards; the rest is garbage of batches just handled. So:
 *  - the old generation may grow to live × (1 + growing %) before the next full collection
 *    (V8's own --heap-growing-percent), and
 *  - the new space stops growing at `newSpaceMb` (both semi-spaces together): V8's growth
 *    factor is set to 1 once the new space reached it, back to 2 when V8 shrank it below;
 *  - a scavenge runs on the main thread alone (V8 would share it with helper threads, which
 *    on a machine whose cores the other services and Redis keep busy start late, and the
 *    pause waits for them).
 * These are V8 flags V8 reads at each collection, so they can be set from inside the process;
 * the limits V8 reads only at start (--max-old-space-size, --max-semi-space-size) cannot.
 * Nothing caps the heap: a service whose live data grows is never stopped by these.
 * Measured in docs/performance.md ("Second round (issue 20), second pass — memory and latency").
 *
 * On by default: over a million signals it halves the peak RSS at the same CPU per signal;
 * in a short run (the quick bench, 100k signals) it costs ~15 % more CPU while the live heap
 * is still growing (more full collections on the way up).
 * QT_NODE_HEAP=default keeps V8's own sizing; QT_NODE_HEAP_GROWING_PERCENT and
 * QT_NODE_HEAP_NEW_SPACE_MB change the two sizes; any V8 heap flag of your own (in
 * NODE_OPTIONS or on node's command line) turns all of this off, so yours apply unchanged.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

export const SERVICE_HEAP = {
  /** The old generation grows to live × 1.5 before the next full collection. */
  growingPercent: 50,
  /** Both semi-spaces together, MB (V8: up to 32). */
  newSpaceMb: 16,
  /** One thread per scavenge: helper threads wait for a core the other services hold, and the pause with them. */
  parallelScavenge: false,
} as const;

/** The commands that run one service as a long-lived process. */
export const SERVICE_COMMANDS: ReadonlySet<string> = new Set(['risk', 'execution', 'monitor']);

const OWN_HEAP_FLAG = /--(max-old-space-size|max-semi-space-size|min-semi-space-size|max-heap-size|initial-heap-size|heap-growing-percent|semi-space-growth-factor|(no-)?parallel-scavenge|single-threaded-gc)\b/;

export type HeapChoice = { tune: true } | { tune: false; why: string };

/** Whether to tune: not when the user asked for V8's defaults or set heap flags of their own. */
export function heapChoice(env: NodeJS.ProcessEnv, execArgv: readonly string[]): HeapChoice {
  const setting = (env.QT_NODE_HEAP ?? '').trim().toLowerCase();
  if (setting === 'default') return { tune: false, why: 'QT_NODE_HEAP=default' };
  if (setting !== '' && setting !== 'service') throw new Error(`QT_NODE_HEAP must be "service" or "default", got "${env.QT_NODE_HEAP}"`);
  if (execArgv.some((arg) => OWN_HEAP_FLAG.test(arg))) return { tune: false, why: 'heap flags on the node command line' };
  if (OWN_HEAP_FLAG.test(env.NODE_OPTIONS ?? '')) return { tune: false, why: 'heap flags in NODE_OPTIONS' };
  return { tune: true };
}

function positiveSetting(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number, got "${text}"`);
  return value;
}

/** The first argument that is not an option: the command (`quantum risk --account a` → risk). */
export function commandOf(argv: readonly string[]): string | undefined {
  return argv.slice(2).find((arg) => !arg.startsWith('-'));
}

let tuned = false;

/** Applies SERVICE_HEAP to this process (once); false when heapChoice says not to. */
export function tuneServiceHeap(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  if (tuned) return true;
  if (!heapChoice(env, execArgv).tune) return false;
  tuned = true;
  const growingPercent = positiveSetting(env, 'QT_NODE_HEAP_GROWING_PERCENT', SERVICE_HEAP.growingPercent);
  const newSpaceMb = positiveSetting(env, 'QT_NODE_HEAP_NEW_SPACE_MB', SERVICE_HEAP.newSpaceMb);
  setFlagsFromString(`--heap-growing-percent=${growingPercent}`);
  if (!SERVICE_HEAP.parallelScavenge) setFlagsFromString('--no-parallel-scavenge');
  const capBytes = newSpaceMb * 1024 * 1024;
  // Loading the code and starting up allocate in bursts with no turn of the event loop in
  // between, so the check below would come too late: the new space stays small until the
  // service runs (serviceLoaded(), from src/cli/serve.ts).
  setFlagsFromString('--semi-space-growth-factor=1');
  let growing = false;
  newSpaceCheck = (): void => {
    const size = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
    // V8 doubles it: one more step while that step stays within the cap.
    const grow = size * 2 <= capBytes;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`);
  };
  return true;
}

let newSpaceCheck: (() => void) | null = null;

/** The service is up: from now on the new space may grow up to its cap (checked after each GC). */
export function serviceLoaded(): void {
  const check = newSpaceCheck;
  if (check === null) return;
  newSpaceCheck = null;
  // Growth happens in a scavenge; looking after each batch of GC entries is enough.
  new PerformanceObserver(check).observe({ entryTypes: ['gc'] });
  check();
}
