/**
 * Scale-out on a real, private Redis Cluster (three masters, one replica each; started
 * once for this file): two accounts whose hash tags live on different masters trade end
 * to end through `quantum route` (signals selected by source), `quantum accounts` compares
 * them, a master failover under running services and under a running consumer resumes by
 * itself without losing acknowledged work, and a prefix without a hash tag is refused.
 * Fails (never skips) when redis-server is installed; skips loudly otherwise, failing in CI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { EventBus } from '../src/bus/bus.js';
import { decoderFor } from '../src/bus/codec.js';
import { createBus } from '../src/bus/factory.js';
import { RedisBus } from '../src/bus/redis.js';
import { keySlot } from '../src/bus/slot.js';
import { ROUTER, TOPICS } from '../src/bus/topics.js';
import {
  ensureBuilt,
  freePorts,
  getJson,
  killAll,
  removeScratch,
  runQuantum,
  spawnQuantum,
  waitForHealth,
  writeConfig,
  type QuantumProcess,
} from './helpers/processes.js';
import { clusterToolsPresent, startPrivateCluster, type PrivateCluster } from './helpers/redis-cluster.js';
import { waitFor } from './helpers/redis.js';

const present = await clusterToolsPresent();
if (!present) {
  const message = 'scale-out tests need redis-server and redis-cli (apt-get install redis-server)';
  if (process.env.CI) throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
}
const POLL = { timeoutMs: 30_000, intervalMs: 100 };

/** A hash tag `{<stem>-<n>}` whose slot lives on a master other than those in `avoid`. */
async function tagOnAnotherMaster(cluster: PrivateCluster, stem: string, avoid: readonly number[]): Promise<{ tag: string; master: number }> {
  for (let n = 0; n < 1000; n++) {
    const tag = `{${stem}-${n}}`;
    const master = await cluster.masterOf(keySlot(tag));
    if (!avoid.includes(master)) return { tag, master };
  }
  throw new Error('no hash tag on another master');
}

function envFor(configPath: string, cluster: PrivateCluster): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('QT_') && key !== 'REDIS_URL') env[key] = value;
  return { ...env, QT_CONFIG: configPath, REDIS_CLUSTER_NODES: cluster.urls.join(','), QT_LOG_LEVEL: 'warn' };
}

describe.runIf(present)('scale-out on a three-master Redis Cluster', () => {
  let cluster: PrivateCluster;
  let env: NodeJS.ProcessEnv;
  let alpha: { tag: string; master: number };
  let beta: { tag: string; master: number };
  let ports: { alpha: Record<'risk' | 'execution' | 'monitor', number>; beta: Record<'risk' | 'execution' | 'monitor', number> };
  let up: QuantumProcess;
  let router: QuantumProcess;
  let shared: EventBus;
  let dashboardPort = 0;
  const url = (account: 'alpha' | 'beta', service: 'risk' | 'execution' | 'monitor'): string => `http://127.0.0.1:${ports[account][service]}`;

  beforeAll(async () => {
    await ensureBuilt();
    cluster = await startPrivateCluster();
    const stem = `acct${process.pid}`;
    alpha = await tagOnAnotherMaster(cluster, `${stem}a`, []);
    beta = await tagOnAnotherMaster(cluster, `${stem}b`, [alpha.master]);
    const [a1 = 0, a2 = 0, a3 = 0, b1 = 0, b2 = 0, b3 = 0, d = 0] = await freePorts(7);
    dashboardPort = d;
    ports = { alpha: { risk: a1, execution: a2, monitor: a3 }, beta: { risk: b1, execution: b2, monitor: b3 } };
    const configPath = writeConfig({
      // Frozen prices and no costs: the NEGATIVE_EDGE rule never starts rejecting.
      execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 },
      market: { simulator_spread_pct: 0 },
      monitor: { mark_interval_ms: 0 },
      risk: { cooldown_minutes: 0, max_daily_entries: 1000 },
      ports: { dashboard: dashboardPort },
      accounts: [
        { name: 'alpha', stream_prefix: `${alpha.tag}:`, ports: ports.alpha },
        // The stricter one, marked shadow: refuses what alpha would take below 0.9.
        { name: 'beta', stream_prefix: `${beta.tag}:`, shadow: true, ports: ports.beta, risk: { min_confidence: 0.9 } },
      ],
      routes: [
        { source: 'model-a*', accounts: ['alpha'] },
        { source: 'model-b', accounts: ['beta'] },
      ],
    });
    env = envFor(configPath, cluster);
    up = spawnQuantum(['up', '--no-demo', '--no-journal', '--plain'], env, 'up');
    for (const account of ['alpha', 'beta'] as const) for (const service of ['risk', 'execution', 'monitor'] as const) await waitForHealth(url(account, service), up);
    router = spawnQuantum(['route'], env, 'route');
    await router.waitForOutput(/quantum route: routing/);
    shared = await createBus({ clusterNodes: cluster.urls, prefix: '', spanSlots: true, trimIntervalMs: 0 });
  }, 180_000);

  afterAll(async () => {
    await shared?.close();
    await killAll();
    await cluster?.destroy();
    removeScratch();
  });

  it('puts the two accounts on different masters (CLUSTER KEYSLOT, CLUSTER SLOTS)', async () => {
    const port = cluster.nodes[0]!.port;
    for (const account of [alpha, beta]) {
      const slot = await cluster.command<number>(port, ['CLUSTER', 'KEYSLOT', `${account.tag}:trade.signal.v5`]);
      expect(slot).toBe(keySlot(account.tag));
      expect(await cluster.command<number>(port, ['CLUSTER', 'KEYSLOT', `${account.tag}:snapshot:risk`])).toBe(slot);
      expect(await cluster.masterOf(slot)).toBe(account.master);
    }
    expect(alpha.master).not.toBe(beta.master);
  });

  it('trades both accounts end to end through quantum route, selected by source', async () => {
    const signal = (symbol: string, confidence: string, source: string) =>
      runQuantum(['signal', symbol, 'BUY', confidence, '--source', source], env);
    for (const sent of [
      await signal('BTCUSDT', '0.8', 'model-a1'), // alpha takes it
      await signal('ETHUSDT', '0.95', 'model-b'), // beta takes it
      await signal('SOLUSDT', '0.8', 'model-b'), // beta refuses it: below its 0.9
      await signal('XRPUSDT', '0.8', 'nobody'), // unrouted
    ]) {
      expect(sent.code, sent.stderr).toBe(0);
    }
    const positions = async (account: 'alpha' | 'beta') =>
      (await getJson<{ positions: { symbol: string }[] }>(`${url(account, 'monitor')}/positions`)).positions.map((p) => p.symbol).sort();
    await waitFor(async () => (await positions('alpha')).length === 1 && (await positions('beta')).length === 1, { ...POLL, what: 'one position in each account' });
    expect(await positions('alpha')).toEqual(['BTCUSDT']);
    expect(await positions('beta')).toEqual(['ETHUSDT']);
    const stats = (account: 'alpha' | 'beta') => getJson<{ counts: { received: number; approved: number; rejected: number } }>(`${url(account, 'risk')}/stats`);
    await waitFor(async () => (await stats('beta')).counts.received === 2, { ...POLL, what: 'beta to decide both of its signals' });
    expect((await stats('alpha')).counts).toMatchObject({ received: 1, approved: 1, rejected: 0 });
    expect((await stats('beta')).counts).toMatchObject({ received: 2, approved: 1, rejected: 1 });
    await waitFor(async () => (await shared.length(ROUTER.unrouted)) === 1, { ...POLL, what: 'the unrouted signal' });
    const [unrouted] = await shared.readLatest(ROUTER.unrouted, 1);
    expect(JSON.parse(unrouted!.fields.payload!)).toMatchObject({ symbol: 'XRPUSDT', source: 'nobody' });
    // Everything on the shared stream acknowledged by the router.
    await waitFor(async () => (await shared.info(TOPICS.signal)).groups.find((g) => g.name === ROUTER.group)?.pending === 0, { ...POLL, what: 'the router to ack' });

    // quantum accounts: side by side, from their HTTP APIs.
    const compared = await runQuantum(['accounts'], env);
    expect(compared.code, compared.stderr).toBe(0);
    expect(compared.stdout).toMatch(/account\s+alpha\s+beta \(shadow\)/);
    expect(compared.stdout).toMatch(/trades\s+0\s+0/);
    expect(compared.stdout).toMatch(/signals\s+1\s+2/);
    expect(compared.stdout).toMatch(/approval rate\s+100\.00%\s+50\.00%/);
    expect(compared.stdout).toMatch(/rejected LOW_CONFIDENCE\s+0\s+1/);
    const json = JSON.parse((await runQuantum(['accounts', '--json'], env)).stdout) as { name: string; equity_usd: number; return: number }[];
    expect(json.map((a) => a.name)).toEqual(['alpha', 'beta']);
    expect(json.every((a) => a.equity_usd === 10_000 && a.return === 0)).toBe(true);

    // The dashboard's accounts view serves the same comparison.
    const view = await getJson<{ accounts: { name: string; shadow: boolean; received: number; rejected_by_reason: Record<string, number> }[] }>(
      `http://127.0.0.1:${dashboardPort}/api/accounts`,
    );
    expect(view.accounts.map((a) => [a.name, a.shadow, a.received])).toEqual([['alpha', false, 1], ['beta', true, 2]]);
    expect(view.accounts[1]!.rejected_by_reason).toMatchObject({ LOW_CONFIDENCE: 1 });
    const page = await fetch(`http://127.0.0.1:${dashboardPort}/accounts`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/assets/accounts.js');
  });

  it("a master failover under the running services: the account's loop resumes by itself", async () => {
    const slot = keySlot(alpha.tag);
    const { from, to } = await cluster.failover(slot);
    expect(await cluster.masterOf(slot)).toBe(to);
    expect(to).not.toBe(from);
    const sent = await runQuantum(['signal', 'BNBUSDT', 'BUY', '0.8', '--source', 'model-a2'], env);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor(
      async () => (await getJson<{ positions: { symbol: string }[] }>(`${url('alpha', 'monitor')}/positions`)).positions.length === 2,
      { ...POLL, timeoutMs: 45_000, what: 'alpha to trade after the failover' },
    );
    // The state acknowledged before the failover is still there: the first position and its count.
    const counts = (await getJson<{ counts: { received: number; approved: number } }>(`${url('alpha', 'risk')}/stats`)).counts;
    expect(counts).toMatchObject({ received: 2, approved: 2 });
    expect(up.exit).toBeNull();
    expect(router.exit).toBeNull();
  });

  it('quantum halt acts on one account with --account, on every account without it; quantum resume likewise', async () => {
    const state = async (account: 'alpha' | 'beta') =>
      (await getJson<{ kill_switch: { reason: string } | null }>(`${url(account, 'risk')}/health`)).kill_switch?.reason ?? null;
    const one = await runQuantum(['halt', '--account', 'beta', '--reason', 'beta only'], env);
    expect(one.code, one.stderr).toBe(0);
    expect(await state('beta')).toBe('beta only');
    expect(await state('alpha')).toBeNull();
    const all = await runQuantum(['halt', '--reason', 'everyone'], env);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/account alpha:[\s\S]*HALTED[\s\S]*account beta:[\s\S]*HALTED/);
    expect([await state('alpha'), await state('beta')]).toEqual(['everyone', 'everyone']);
    const resumed = await runQuantum(['resume'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect([await state('alpha'), await state('beta')]).toEqual([null, null]);
  });

  it('refuses a prefix without a hash tag at start-up (exit 2, naming stream_prefix)', async () => {
    const plain = { ...env, QT_CONFIG: writeConfig({}), QT_STREAM_PREFIX: 'acct7:' };
    const result = await runQuantum(['risk'], plain);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/stream_prefix .*"acct7:".*hash tag/);
    const account = { ...env, QT_CONFIG: writeConfig({ accounts: [{ name: 'x', stream_prefix: 'x:' }] }) };
    const refused = await runQuantum(['risk', '--account', 'x'], account);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/accounts\.0\.stream_prefix/);
    await expect(RedisBus.connect({ clusterNodes: cluster.urls, prefix: 'acct7:' })).rejects.toThrow(/stream_prefix "acct7:" holds no hash tag/);
  });

  it('a failover under a running consumer: consumption resumes by itself, nothing acknowledged is lost', async () => {
    const Numbered = z.object({ n: z.number().int() });
    const prefix = `test:{failover-${process.pid}}:`;
    const bus = await RedisBus.connect({ clusterNodes: cluster.urls, prefix, trimIntervalMs: 0, onError: () => undefined });
    try {
      const handled = new Set<number>();
      const sub = bus.subscribe<z.infer<typeof Numbered>>({
        topic: 'orders',
        group: 'relay',
        consumer: 'c1',
        decode: decoderFor(Numbered),
        batchSize: 20,
        blockMs: 200,
        handler: (delivery) => {
          handled.add(delivery.message.n);
          return [{ topic: 'relayed', payload: delivery.message }];
        },
      });
      const numbers = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ topic: 'orders', payload: { n: from + i } }));
      await bus.publishMany(numbers(0, 1000));
      await waitFor(() => handled.size > 0, { ...POLL, intervalMs: 5, what: 'consumption to start' });
      const ackedBefore = sub.acknowledged;
      await cluster.failover(keySlot(prefix));
      await waitFor(() => bus.ping(), { ...POLL, what: 'the bus to answer from the new master' });
      await bus.publishMany(numbers(1000, 2000));
      await waitFor(async () => new Set((await bus.readAfter('relayed', '0', 10_000)).map((e) => JSON.parse(e.fields.payload!).n)).size === 2000, {
        ...POLL,
        timeoutMs: 45_000,
        what: 'every entry relayed after the failover',
      });
      expect(sub.acknowledged).toBeGreaterThanOrEqual(Math.max(2000, ackedBefore));
      await waitFor(async () => (await bus.info('orders')).groups[0]?.pending === 0, { ...POLL, what: 'all acknowledged' });
      expect(await bus.length('orders')).toBe(2000); // nothing published before the failover was lost
    } finally {
      await bus.close();
    }
  });

  it('a master that crashes (kill -9): once a replica is promoted the consumer resumes by itself; replicated work survives', async () => {
    const Numbered = z.object({ n: z.number().int() });
    const prefix = `test:{crash-${process.pid}}:`;
    const bus = await RedisBus.connect({ clusterNodes: cluster.urls, prefix, trimIntervalMs: 0, onError: () => undefined });
    try {
      const handled = new Set<number>();
      bus.subscribe<z.infer<typeof Numbered>>({
        topic: 'orders',
        group: 'relay',
        consumer: 'c1',
        decode: decoderFor(Numbered),
        blockMs: 200,
        handler: (delivery) => {
          handled.add(delivery.message.n);
          return [{ topic: 'relayed', payload: delivery.message }];
        },
      });
      const numbers = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ topic: 'orders', payload: { n: from + i } }));
      await bus.publishMany(numbers(0, 100));
      await waitFor(async () => handled.size === 100 && (await bus.info('orders')).groups[0]?.pending === 0, { ...POLL, what: 'the first 100 done' });
      // Asynchronous replication: only what the replica has survives a crash. Wait until it has everything.
      const master = await cluster.masterOf(keySlot(prefix));
      const offsets = async () => {
        const info = await cluster.command<string>(master, ['INFO', 'replication']);
        return { master: /master_repl_offset:(\d+)/.exec(info)?.[1], replica: /slave0:.*offset=(\d+)/.exec(info)?.[1] };
      };
      await waitFor(async () => {
        const o = await offsets();
        return o.master !== undefined && o.master === o.replica;
      }, { ...POLL, what: 'the replica to have every write' });
      const pid = Number(/process_id:(\d+)/.exec(await cluster.command<string>(master, ['INFO', 'server']))?.[1]);
      process.kill(pid, 'SIGKILL');
      await waitFor(async () => (await cluster.masterOf(keySlot(prefix))) !== master, { ...POLL, what: 'a replica to be promoted' });
      // Published once the bus answers again (the first tries may meet the dead node).
      await waitFor(async () => {
        await bus.publishMany(numbers(100, 200));
        return true;
      }, { ...POLL, intervalMs: 200, what: 'publishing after the crash' });
      await waitFor(() => handled.size === 200, { ...POLL, what: 'consumption to resume after the crash' });
      const relayed = new Set((await bus.readAfter('relayed', '0', 10_000)).map((e) => JSON.parse(e.fields.payload!).n));
      expect(relayed.size).toBe(200);
      expect((await bus.readAfter('orders', '0', 1000)).length).toBeGreaterThanOrEqual(200);
    } finally {
      await bus.close();
    }
  });
});

