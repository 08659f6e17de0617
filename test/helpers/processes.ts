/**
 * The `quantum` command as real processes, for the end-to-end tests: the three services
 * as separate processes on Redis (what systemd runs), `quantum up`, and the one-shot
 * commands (`signal`, `streams`, `validate`). Every child's output is kept (the most
 * recent part) so a failing test can say what the process printed. Nothing sleeps to
 * wait: readiness is a `/health` answer polled with a deadline, exit is an event.
 *
 * The children run the compiled code (bin/quantum.js → dist/); `ensureBuilt()` compiles
 * it once when any source is newer than its output, under a lock shared by every test
 * file, so parallel test files never compile over each other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { RedisBus } from '../../src/bus/redis.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './redis.js';
import { freePorts } from './ports.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const BIN = join(REPO, 'bin', 'quantum.js');
export type ServiceKey = 'risk' | 'execution' | 'monitor';
export const SERVICE_KEYS: readonly ServiceKey[] = ['risk', 'execution', 'monitor'];

/** Output kept per stream of a child; older output is dropped (a 1,000-signal run logs a lot). */
const KEEP_CHARS = 256 * 1024;

// -------------------------------------------------------------------------------------
// Build

/** Source files whose compiled output is missing or older than the source. */
function staleSources(): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(path);
        continue;
      }
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts') || entry.name.endsWith('.d.ts')) continue;
      const out = join(REPO, 'dist', relative(join(REPO, 'src'), path)).replace(/\.ts$/, '.js');
      let outTime: number;
      try {
        outTime = statSync(out).mtimeMs;
      } catch {
        stale.push(path);
        continue;
      }
      if (statSync(path).mtimeMs > outTime) stale.push(path);
    }
  };
  walk(join(REPO, 'src'));
  return stale;
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: process.env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const LOCK = join(tmpdir(), `quantum-build-${createHash('sha1').update(REPO).digest('hex').slice(0, 12)}.lock`);
/** A lock older than this belongs to a build that died; it is broken. */
const STALE_LOCK_MS = 180_000;

async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  await waitFor(
    () => {
      try {
        mkdirSync(LOCK);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        try {
          if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmdirSync(LOCK);
        } catch {
          // another waiter broke it first
        }
        return false;
      }
    },
    { timeoutMs: 240_000, intervalMs: 100, what: `the build lock ${LOCK}` },
  );
  try {
    return await fn();
  } finally {
    rmdirSync(LOCK);
  }
}

/**
 * Compiles src/ to dist/ (`tsc -p tsconfig.build.json`) when any source is newer than
 * its output; a no-op when dist/ is fresh (as after `npm ci`). Fails with the compiler's
 * output when the build fails.
 */
export async function ensureBuilt(): Promise<void> {
  if (staleSources().length === 0) return;
  await withBuildLock(async () => {
    const stale = staleSources();
    if (stale.length === 0) return; // another test file built it while we waited
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const { code, output } = await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], 180_000);
    if (code !== 0) throw new Error(`npm run build failed (exit ${code}):\n${output}`);
  });
}

// -------------------------------------------------------------------------------------
// Ports, config, environment

export { freePorts };

const scratchDirs: string[] = [];

/** Writes a config file (a temporary folder of its own); removed by `removeScratch()`. */
export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'qt-e2e-'));
  scratchDirs.push(dir);
  const path = join(dir, 'quantum.config.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

export function removeScratch(): void {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface Deployment {
  prefix: string;
  ports: Record<ServiceKey, number>;
  /** Config file path (QT_CONFIG). */
  configPath: string;
  /** Redis URL; null = no REDIS_URL in the environment (`quantum up` then uses the embedded bus). */
  redis: string | null;
}

/**
 * The environment of a child: the parent's, without any quantum settings it may carry,
 * plus exactly this deployment's.
 */
export function deploymentEnv(deployment: Deployment, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('QT_') || key === 'REDIS_URL') continue;
    env[key] = value;
  }
  Object.assign(env, {
    QT_STREAM_PREFIX: deployment.prefix,
    QT_CONFIG: deployment.configPath,
    // `quantum up` writes its trade journal: next to the config, never into the repository.
    QT_JOURNAL_URL: `sqlite:${join(dirname(deployment.configPath), 'quantum-journal.sqlite')}`,
    QT_RISK_PORT: String(deployment.ports.risk),
    QT_EXECUTION_PORT: String(deployment.ports.execution),
    QT_MONITOR_PORT: String(deployment.ports.monitor),
    ...extra,
  });
  if (deployment.redis !== null) env.REDIS_URL = deployment.redis;
  return env;
}

/** A deployment on the test Redis: a prefix, a config file and three free ports. */
export async function newDeployment(prefix: string, config: Record<string, unknown>): Promise<Deployment> {
  const [risk = 0, execution = 0, monitor = 0] = await freePorts(3);
  return { prefix, ports: { risk, execution, monitor }, configPath: writeConfig(config), redis: redisUrl() };
}

export function serviceUrl(deployment: Deployment, key: ServiceKey): string {
  return `http://127.0.0.1:${deployment.ports[key]}`;
}

// -------------------------------------------------------------------------------------
// Processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `quantum` command. */
export class QuantumProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #stdout = '';
  #stderr = '';
  #exit: Exit | null = null;

  constructor(
    readonly label: string,
    readonly args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.#stdout = keepTail(this.#stdout + chunk.toString())));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.#stderr = keepTail(this.#stderr + chunk.toString())));
    this.exited = new Promise<Exit>((resolve) => {
      // 'close' (not 'exit'): the output is complete once the pipes closed.
      this.child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
      this.child.once('error', (error) => {
        this.#stderr += `\n[spawn error] ${error.message}`;
        this.#exit = { code: null, signal: null };
        resolve(this.#exit);
      });
    });
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Null while running. */
  get exit(): Exit | null {
    return this.#exit;
  }

  /** What the process printed, for failure messages (the last `chars` of each stream). */
  describe(chars = 4000): string {
    const state = this.#exit ? `exited (code ${this.#exit.code}, signal ${this.#exit.signal})` : 'running';
    return (
      `--- quantum ${this.args.join(' ')} [${this.label}, pid ${this.pid}, ${state}]\n` +
      `--- stdout (tail):\n${this.#stdout.slice(-chars)}\n--- stderr (tail):\n${this.#stderr.slice(-chars)}`
    );
  }

  /** Resolves with `pattern`'s first match in stdout; fails when the deadline passes or the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        const match = this.#stdout.match(pattern);
        if (match) return match;
        if (this.#exit) throw new Error(`process exited before printing ${pattern}\n${this.describe()}`);
        return null;
      },
      { timeoutMs, intervalMs: 50, what: `${this.label} to print ${pattern}` },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${this.describe()}`);
    });
  }

  /** SIGTERM, then waits for the exit; SIGKILL (and an error) when it does not exit within `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<Exit> {
    if (this.#exit) return this.#exit;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const exit = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (exit) return exit;
    this.child.kill('SIGKILL');
    await this.exited;
    throw new Error(`${this.label} did not exit within ${timeoutMs} ms of SIGTERM\n${this.describe()}`);
  }

  /** kill -9, and waits until the process is gone. */
  async kill(): Promise<Exit> {
    if (this.#exit) return this.#exit;
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

function keepTail(text: string): string {
  return text.length > KEEP_CHARS * 2 ? text.slice(-KEEP_CHARS) : text;
}

/** Every child started here and not yet gone, so afterAll can kill what a failing test left behind. */
const running = new Set<QuantumProcess>();

/** Kills (SIGKILL) every child still running; for afterAll/afterEach, even after failures. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.kill()));
}

/** Starts `quantum <args>`. */
export function spawnQuantum(args: readonly string[], env: NodeJS.ProcessEnv, label = args[0] ?? 'quantum'): QuantumProcess {
  return new QuantumProcess(label, args, env);
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs a one-shot `quantum <args>` to its end (SIGKILL after `timeoutMs`, which fails). */
export async function runQuantum(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  const proc = spawnQuantum(args, env);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  const exit = await Promise.race([proc.exited, timedOut]);
  clearTimeout(timer);
  if (!exit) {
    await proc.kill();
    throw new Error(`quantum ${args.join(' ')} did not finish within ${timeoutMs} ms\n${proc.describe()}`);
  }
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr };
}

// -------------------------------------------------------------------------------------
// HTTP

export interface HttpReply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export async function http<T = Record<string, unknown>>(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<HttpReply<T>> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed as T };
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  const reply = await http<T>('GET', url);
  if (reply.status !== 200) throw new Error(`GET ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

export async function postJson<T = Record<string, unknown>>(url: string, body: unknown): Promise<T> {
  const reply = await http<T>('POST', url, body);
  if (reply.status !== 200) throw new Error(`POST ${url}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

/**
 * Polls GET `${baseUrl}/health` until it answers 200. Fails at the deadline, or at once
 * when `proc` exits, with what the process printed.
 */
export async function waitForHealth(baseUrl: string, proc?: QuantumProcess, timeoutMs = 45_000): Promise<void> {
  let outcome: 'healthy' | 'exited';
  try {
    outcome = await waitFor(
      async () => {
        if (proc?.exit) return 'exited' as const;
        const reply = await http('GET', `${baseUrl}/health`, undefined, 2000);
        return reply.status === 200 ? ('healthy' as const) : null;
      },
      { timeoutMs, intervalMs: 100, what: `${baseUrl}/health to answer 200` },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}${proc ? `\n${proc.describe()}` : ''}`);
  }
  if (outcome === 'exited' && proc) throw new Error(`${proc.label} exited before ${baseUrl}/health answered\n${proc.describe()}`);
}

// -------------------------------------------------------------------------------------
// The three services as separate processes

export interface Services {
  deployment: Deployment;
  env: NodeJS.ProcessEnv;
  procs: Record<ServiceKey, QuantumProcess>;
  url(key: ServiceKey): string;
  /** Starts one service again (same consumer name: the default is stable) and waits for /health. */
  restart(key: ServiceKey): Promise<QuantumProcess>;
  /** Spawns one service without waiting for it (it must not be running). */
  spawn(key: ServiceKey): QuantumProcess;
  /** SIGTERM to each, then awaits every exit. */
  stopAll(): Promise<void>;
  /** Everything each process printed, for failure messages. */
  describe(): string;
}

/**
 * Starts `quantum risk`, `quantum execution` and `quantum monitor` as separate processes
 * on the deployment and waits until each /health answers 200. Starting risk first would
 * not matter: each service catches up from the streams (groups start at 0).
 */
export async function startServices(deployment: Deployment, extraEnv: Record<string, string> = {}): Promise<Services> {
  const env = deploymentEnv(deployment, extraEnv);
  const procs = {} as Record<ServiceKey, QuantumProcess>;
  const url = (key: ServiceKey): string => serviceUrl(deployment, key);
  let generation = 0;
  const spawnOne = (key: ServiceKey): QuantumProcess => {
    const proc = spawnQuantum([key], env, `${key}#${generation++}`);
    procs[key] = proc;
    return proc;
  };
  const services: Services = {
    deployment,
    env,
    procs,
    url,
    spawn: spawnOne,
    async restart(key) {
      if (!procs[key].exit) throw new Error(`${key} is still running`);
      const proc = spawnOne(key);
      await waitForHealth(url(key), proc);
      return proc;
    },
    async stopAll() {
      const results = await Promise.allSettled(SERVICE_KEYS.map((key) => procs[key]?.stop()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    describe() {
      return SERVICE_KEYS.map((key) => procs[key]?.describe() ?? `${key}: not started`).join('\n');
    },
  };
  for (const key of SERVICE_KEYS) spawnOne(key);
  try {
    await Promise.all(SERVICE_KEYS.map((key) => waitForHealth(url(key), procs[key])));
  } catch (error) {
    await Promise.all(SERVICE_KEYS.map((key) => procs[key].kill()));
    throw error;
  }
  return services;
}

// -------------------------------------------------------------------------------------
// The trade journal as a process of its own

/** Printed by `quantum journal` once it has migrated its database and is consuming. */
export const JOURNAL_READY = /quantum journal: writing to .+/;

/**
 * Starts `quantum journal` with `env` (a deployment's environment plus QT_JOURNAL_URL /
 * QT_JOURNAL_SCHEMA) and waits until it says it is writing. It has no HTTP port.
 */
export async function startJournal(env: NodeJS.ProcessEnv, label = 'journal'): Promise<QuantumProcess> {
  const proc = spawnQuantum(['journal'], env, label);
  await proc.waitForOutput(JOURNAL_READY, 45_000);
  return proc;
}

/** The three services as processes on Redis for one describe block, and a poll that names them on failure. */
export interface ServicesOnRedis {
  readonly prefix: string;
  /** Set in beforeAll. */
  services: Services;
  /** A client bus on the same prefix, set in beforeAll. */
  bus: RedisBus;
  poll<T>(probe: () => T | Promise<T>, what: string, timeoutMs?: number): Promise<NonNullable<T>>;
}

/**
 * Registers beforeAll/afterAll that start the services under a unique prefix with `config`
 * and stop and clean up everything afterwards.
 */
export function servicesOnRedis(name: string, config: Record<string, unknown>, poll: { timeoutMs: number; intervalMs: number }): ServicesOnRedis {
  const loop = {
    prefix: uniquePrefix(name),
    services: undefined as unknown as Services,
    bus: undefined as unknown as RedisBus,
    async poll<T>(probe: () => T | Promise<T>, what: string, timeoutMs = poll.timeoutMs): Promise<NonNullable<T>> {
      try {
        return await waitFor(probe, { timeoutMs, intervalMs: poll.intervalMs, what });
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${loop.services.describe()}`);
      }
    },
  };
  beforeAll(async () => {
    await ensureBuilt();
    loop.services = await startServices(await newDeployment(loop.prefix, config));
    loop.bus = await RedisBus.connect({ url: redisUrl(), prefix: loop.prefix, onError: () => undefined });
  }, 240_000);
  afterAll(async () => {
    await loop.bus?.close();
    await tearDownDeployment(loop.services, loop.prefix);
  }, 60_000);
  return loop;
}

/** After a suite: stops the services (and any child left running), deletes the prefix's keys and the scratch files. */
export async function tearDownDeployment(services: Services | null | undefined, prefix: string): Promise<void> {
  await services?.stopAll().catch(() => undefined);
  await killAll();
  await cleanupPrefix(redisUrl(), prefix);
  removeScratch();
}
