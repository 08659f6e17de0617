/**
 * Child processes of the benchmark (a private redis-server, the services, the relay
 * hops) and what /proc says about them. Every process started here is registered, so
 * `stopAll` (run in a finally block and on SIGINT/SIGTERM) stops each one, even when a
 * phase failed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<string>;
}

const children = new Set<Child>();

/** Starts `command`, stdout and stderr appended to `logFile`. */
export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
): Child {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`));
    child.once('error', (err) => resolve(`error ${err.message}`));
  });
  const entry: Child = { name, process: child, pid: child.pid, logFile: options.logFile, exited };
  children.add(entry);
  void exited.then(() => children.delete(entry));
  return entry;
}

export function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(child: Child, graceMs = 10_000): Promise<void> {
  if (!isRunning(child)) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  try {
    await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Stops every child still running, in reverse start order. */
export async function stopAll(graceMs?: number): Promise<void> {
  for (const child of [...children].reverse()) await stopChild(child, graceMs);
}

/** Last resort on a crash: SIGKILL every child still running, synchronously. */
export function killAllNow(): void {
  for (const child of children) {
    if (isRunning(child)) child.process.kill('SIGKILL');
  }
}

export { freePort } from '../../test/helpers/ports.js';

/** Thrown by a waitUntil probe to give up at once (e.g. the process it waits for exited). */
export class GiveUp extends Error {}

export async function waitUntil(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

// -- /proc ----------------------------------------------------------------------

let clockTicks: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const value = Number(out.stdout?.trim());
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** utime + stime of a process so far, in microseconds; null when it cannot be read. */
export function cpuMicros(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
    return (ticks * 1e6) / clockTicksPerSecond();
  } catch {
    return null;
  }
}

export interface MemoryStatus {
  /** Resident set now, MB. */
  rssMb: number;
  /** Peak resident set (VmHWM), MB. */
  hwmMb: number;
}

export function memoryStatus(pid: number): MemoryStatus | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** Sums cpuMicros over processes; null when any of them cannot be read. */
export function cpuMicrosOf(pids: readonly number[]): number | null {
  let total = 0;
  for (const pid of pids) {
    const value = cpuMicros(pid);
    if (value === null) return null;
    total += value;
  }
  return total;
}

/** Resident MB of a process by kind of mapping (/proc/<pid>/smaps): what RSS is made of. */
export interface MemoryMap {
  /** Mapped files: the node binary and shared libraries (shared with other node processes). */
  file: number;
  /** The brk heap and glibc's malloc arenas (64 MB reservations): C++ and Buffer memory. */
  malloc: number;
  /** Other anonymous mappings: V8's heap pages, thread stacks. */
  anon: number;
}

export function memoryMap(pid: number): MemoryMap | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const out = { file: 0, malloc: 0, anon: 0 };
  let kind: keyof MemoryMap = 'anon';
  for (const line of text.split('\n')) {
    const region = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (region) {
      const name = region[3] ?? '';
      const size = (parseInt(region[2]!, 16) - parseInt(region[1]!, 16)) / 1048576;
      // glibc arenas reserve 64 MB (HEAP_MAX_SIZE) each, aligned; V8 reserves its cage in GBs.
      kind = name === '[heap]' ? 'malloc' : name.startsWith('/') ? 'file' : name === '' && Math.abs(size - 64) < 0.01 ? 'malloc' : 'anon';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]) / 1024;
  }
  return { file: Math.round(out.file), malloc: Math.round(out.malloc), anon: Math.round(out.anon) };
}
