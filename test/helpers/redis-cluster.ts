/**
 * A private Redis Cluster for tests and the benchmark: three masters (and, by default, one
 * replica each) started with `redis-server --cluster-enabled yes` on free ports, joined
 * with `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, ready once every
 * node reports cluster_state:ok. Nothing is written outside a temporary folder (nodes.conf
 * only: no RDB, no AOF), and destroy() removes it. Start one per test file (beforeAll).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { freePorts } from './ports.js';
import { waitFor } from './redis.js';

const run = promisify(execFile);

export interface ClusterNode {
  port: number;
  url: string;
}

export interface PrivateCluster {
  /** Seed URLs of every node (redis_cluster_nodes). */
  urls: string[];
  nodes: ClusterNode[];
  /** One command on one node (by port), raw RESP2 reply. */
  command<T = unknown>(port: number, args: string[]): Promise<T>;
  /** The port of the master serving `slot` now (CLUSTER SLOTS). */
  masterOf(slot: number): Promise<number>;
  /** A replica of the master on `port` (CLUSTER REPLICAS). */
  replicaOf(masterPort: number): Promise<number>;
  /** CLUSTER FAILOVER on a replica of the master serving `slot`; resolves once the replica serves it. */
  failover(slot: number): Promise<{ from: number; to: number }>;
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  masters?: number;
  /** Replicas per master (0 or 1). Default 1. */
  replicas?: number;
}

/** Whether redis-server and redis-cli are installed (tests fail, never skip, when they are). */
export async function clusterToolsPresent(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return true;
  } catch {
    return false;
  }
}

async function withClient<T>(port: number, fn: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
  client.on('error', () => undefined); // the awaited commands reject with the cause
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

type RawSlots = [start: number, end: number, master: [host: string, port: number, id: string], ...replicas: unknown[]][];

export async function startPrivateCluster({ masters = 3, replicas = 1 }: ClusterOptions = {}): Promise<PrivateCluster> {
  const count = masters * (1 + replicas);
  const ports = await freePorts(count);
  const dir = mkdtempSync(join(tmpdir(), 'qt-cluster-'));
  const children: ChildProcess[] = [];
  const destroy = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const args = [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000',
        '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
      ];
      const child = spawn('redis-server', args, { stdio: 'ignore' });
      let spawnError: Error | null = null;
      child.once('error', (error) => (spawnError = error));
      children.push(child);
      await waitFor(
        async () => {
          if (spawnError) throw new Error(`cannot start redis-server: ${(spawnError as Error).message}`);
          return withClient(port, async (client) => (await client.sendCommand<string>(['PING'])) === 'PONG');
        },
        { timeoutMs: 10_000, what: `cluster node on port ${port}` },
      );
    }
    await run('redis-cli', [
      '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes',
    ]);
    await waitFor(
      async () => {
        for (const port of ports) {
          const info = await withClient(port, (client) => client.sendCommand<string>(['CLUSTER', 'INFO']));
          if (!info.includes('cluster_state:ok')) return false;
        }
        // Every replica has synced with its master (the failover test needs one ready).
        for (const port of ports) {
          const role = await withClient(port, (client) => client.sendCommand<string>(['INFO', 'replication']));
          if (role.includes('role:slave') && !role.includes('master_link_status:up')) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'cluster_state:ok on every node' },
    );
  } catch (error) {
    await destroy();
    throw error;
  }

  const command = <T>(port: number, args: string[]): Promise<T> => withClient(port, (client) => client.sendCommand<T>(args));
  const masterOf = async (slot: number): Promise<number> => {
    for (const port of ports) {
      try {
        const slots = await command<RawSlots>(port, ['CLUSTER', 'SLOTS']);
        const range = slots.find(([start, end]) => slot >= start && slot <= end);
        if (range) return Number(range[2][1]);
      } catch {
        // try the next node
      }
    }
    throw new Error(`no node serves slot ${slot}`);
  };
  const nodeId = (port: number): Promise<string> => command<string>(port, ['CLUSTER', 'MYID']);
  const replicaOf = async (masterPort: number): Promise<number> => {
    const id = await nodeId(masterPort);
    const lines = await command<string[]>(masterPort, ['CLUSTER', 'REPLICAS', id]);
    const first = lines[0];
    if (!first) throw new Error(`the master on port ${masterPort} has no replica`);
    // "<id> 127.0.0.1:<port>@<bus port> slave <master id> …"
    const match = /:(\d+)@/.exec(first);
    return Number(match?.[1]);
  };
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`),
    nodes: ports.map((port) => ({ port, url: `redis://127.0.0.1:${port}` })),
    command,
    masterOf,
    replicaOf,
    failover: async (slot) => {
      const from = await masterOf(slot);
      const to = await replicaOf(from);
      await command(to, ['CLUSTER', 'FAILOVER']);
      await waitFor(async () => (await masterOf(slot)) === to && (await command<string>(from, ['ROLE'])).toString().startsWith('slave'), {
        timeoutMs: 20_000,
        intervalMs: 50,
        what: `the replica on port ${to} to take over slot ${slot}`,
      });
      return { from, to };
    },
    destroy,
  };
}
