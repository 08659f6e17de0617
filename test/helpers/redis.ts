/**
 * Redis for tests. Every test gets its own stream prefix, so test files run in parallel
 * against one Redis without seeing each other's data; a test that needs to stop and
 * restart Redis starts a private redis-server. Redis tests never skip: when Redis does
 * not answer they fail, saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { freePort } from './ports.js';

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** e.g. "test:bus-order:3f9a1c2b:" */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Escapes Redis glob characters so the prefix matches literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/** Deletes every key under `prefix`. */
export async function cleanupPrefix(url: string, prefix: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined); // failures surface through the awaited commands
  await client.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.sendCommand<[string, string[]]>([
        'SCAN', cursor, 'MATCH', `${globLiteral(prefix)}*`, 'COUNT', '1000',
      ]);
      if (keys.length > 0) await client.sendCommand(['UNLINK', ...keys]);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.destroy();
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Says what was awaited, for the timeout error. */
  what?: string;
}

/**
 * Polls `probe` until it returns a truthy value (which is returned) or the deadline
 * passes (which throws, with the last probe error if any).
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20, what = 'condition' }: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Answers PING with one raw RESP round trip; false when nothing answers. */
function pingPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}


export interface PrivateRedis {
  url: string;
  port: number;
  /** Shuts the server down (SIGTERM: Redis flushes its append-only file first). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
  /** Stops it and removes its data folder. */
  destroy(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open and nothing answers. */
  pause(): void;
  /** Lets a paused server run again (SIGCONT). */
  resume(): void;
}

export interface PrivateRedisOptions {
  /** Persist through restarts with an append-only file. Default true. */
  appendonly?: boolean;
  /** The port to listen on (default: a free one), e.g. one a service is already trying. */
  port?: number;
}

/** Starts a redis-server of its own on a free port, with a temporary data folder. */
export async function startPrivateRedis({ appendonly = true, port: wantedPort }: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = wantedPort ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'qt-redis-'));
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    if (child) return;
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
    args.push('--appendonly', appendonly ? 'yes' : 'no', '--appendfsync', 'always');
    const spawned = spawn('redis-server', args, { stdio: 'ignore' });
    let spawnError: Error | null = null;
    spawned.once('error', (error) => (spawnError = error));
    child = spawned;
    await waitFor(
      async () => {
        if (spawnError) throw new Error(`cannot start redis-server: ${spawnError.message}`);
        return pingPort(port);
      },
      { timeoutMs: 10_000, what: `a private redis-server on port ${port}` },
    );
  };

  const stop = async (): Promise<void> => {
    const running = child;
    if (!running) return;
    child = null;
    if (running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGCONT');
    running.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
