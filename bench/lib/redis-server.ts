/**
 * The Redis the benchmark runs against: a private redis-server on a free port (no
 * persistence, its own temp folder) when `redis-server` is installed, so the figures
 * never compete with other users of the shared Redis; else the one at REDIS_URL.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createClient } from 'redis';
import { freePort, startChild, stopChild, waitUntil, type Child } from './processes.js';

export interface BenchRedis {
  url: string;
  /** The private server's process (null when an external REDIS_URL is used). */
  child: Child | null;
  version: string;
  stop(): Promise<void>;
}

function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
}

async function ping(url: string): Promise<string | null> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.sendCommand<string>(['INFO', 'server']);
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    return null;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

export async function startBenchRedis(tmpDir: string): Promise<BenchRedis> {
  if (!hasRedisServer()) {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const version = await ping(url);
    if (version === null) throw new Error(`redis-server is not installed and nothing answers at ${url} (set REDIS_URL)`);
    console.warn(`bench: redis-server not installed; using ${url} (its other users will disturb the figures)`);
    return { url, child: null, version, stop: async () => undefined };
  }
  const port = await freePort();
  const child = startChild(
    'redis-server',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpDir, '--daemonize', 'no'],
    { cwd: tmpDir, env: process.env, logFile: join(tmpDir, 'redis.log') },
  );
  const url = `redis://127.0.0.1:${port}`;
  let version: string | null = null;
  await waitUntil('the private redis-server', async () => (version = await ping(url)) !== null, 10_000);
  return { url, child, version: version ?? 'unknown', stop: () => stopChild(child) };
}
