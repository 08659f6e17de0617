/**
 * The bus contract (SPEC §3): one suite, run against the embedded bus and Redis Streams,
 * so both keep the same observable behaviour. Every Redis test has its own stream
 * prefix; nothing sleeps to wait for an outcome: tests await promises they control or
 * poll with a deadline.
 */
import { randomBytes } from 'node:crypto';
import { createClient, createCluster } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RefusedEntry, compareIds, type Delivery, type EventBus, type Outbound, type StreamEntry, type SubscribeOptions, type Subscription } from '../src/bus/bus.js';
import { decoderFor } from '../src/bus/codec.js';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { RedisBus } from '../src/bus/redis.js';
import { TOPICS, dlqTopic } from '../src/bus/topics.js';
import { cleanupPrefix, redisUrl, startPrivateRedis, uniquePrefix, waitFor } from './helpers/redis.js';
import { startPrivateCluster, type PrivateCluster } from './helpers/redis-cluster.js';

type RawClient = ReturnType<typeof createClient>;

interface BusHarness {
  kind: 'embedded' | 'redis' | 'redis cluster';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh bus with a prefix of its own; closed after the test. */
  create(options?: { maxlen?: number }): Promise<EventBus>;
  /** Hands entries to `consumer` and never acknowledges them: a consumer that died mid-batch. */
  deliverToDeadConsumer(bus: EventBus, topic: string, group: string, consumer: string, count: number): Promise<string[]>;
  /** Whether the backing store holds this exact key (prefix included). */
  keyExists(bus: EventBus, key: string): Promise<boolean>;
  /** XACK through a subscription-free path: a consumer finishing entries it was handed. */
  ack(bus: EventBus, topic: string, group: string, ids: readonly string[]): Promise<void>;
}

const created: EventBus[] = [];
const ignoreRetriedErrors = (): void => undefined;

const embeddedHarness: BusHarness = {
  kind: 'embedded',
  setup: async () => undefined,
  teardown: async () => undefined,
  create: async ({ maxlen } = {}) => {
    const bus = new EmbeddedBus({ prefix: uniquePrefix('bus'), maxlen, trimIntervalMs: 0, onError: ignoreRetriedErrors });
    created.push(bus);
    return bus;
  },
  deliverToDeadConsumer: async (bus, topic, group, consumer, count) => {
    if (!(bus instanceof EmbeddedBus)) throw new Error('not an embedded bus');
    return bus.readGroup(topic, group, consumer, count).map((entry) => entry.id);
  },
  keyExists: async (bus, key) => {
    if (!(bus instanceof EmbeddedBus)) throw new Error('not an embedded bus');
    return bus.keys().includes(key);
  },
  ack: (bus, topic, group, ids) => ackRange(bus, topic, group, ids),
};

function redisHarness(): BusHarness {
  const url = redisUrl();
  const prefixes: string[] = [];
  let raw: RawClient | null = null;
  const client = (): RawClient => {
    if (!raw) throw new Error('redis harness not set up');
    return raw;
  };
  return {
    kind: 'redis',
    setup: async () => {
      const connecting = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 3000 } });
      connecting.on('error', () => undefined); // connect() rejects with the cause below
      try {
        await connecting.connect();
      } catch (error) {
        throw new Error(`Redis tests need a Redis at ${url} (set REDIS_URL): ${String(error)}`);
      }
      raw = connecting;
    },
    teardown: async () => {
      await Promise.all(prefixes.splice(0).map((prefix) => cleanupPrefix(url, prefix)));
      raw?.destroy();
      raw = null;
    },
    create: async ({ maxlen } = {}) => {
      const prefix = uniquePrefix('bus');
      prefixes.push(prefix);
      const bus = await RedisBus.connect({ url, prefix, maxlen, trimIntervalMs: 0, onError: ignoreRetriedErrors });
      created.push(bus);
      return bus;
    },
    deliverToDeadConsumer: async (bus, topic, group, consumer, count) => {
      const reply = await client().sendCommand<[string, [string, string[]][]][] | null>([
        'XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), 'STREAMS', bus.prefix + topic, '>',
      ]);
      return (reply?.[0]?.[1] ?? []).map(([id]) => id);
    },
    keyExists: async (_bus, key) => (await client().sendCommand<number>(['EXISTS', key])) === 1,
    ack: (bus, topic, group, ids) => ackRange(bus, topic, group, ids),
  };
}

/**
 * The same suite on a private three-master Redis Cluster (one replica each): every bus
 * gets a prefix with a hash tag of its own (`test:bus:{3f9a1c2b}:`), so its keys share one
 * slot, and the prefixes spread over the masters.
 */
function clusterHarness(): BusHarness {
  let cluster: PrivateCluster | null = null;
  let raw: ReturnType<typeof createCluster> | null = null;
  const client = (): ReturnType<typeof createCluster> => {
    if (!raw) throw new Error('cluster harness not set up');
    return raw;
  };
  return {
    kind: 'redis cluster',
    setup: async () => {
      cluster = await startPrivateCluster();
      raw = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
      raw.on('error', () => undefined);
      await raw.connect();
    },
    teardown: async () => {
      raw?.destroy();
      raw = null;
      await cluster?.destroy();
      cluster = null;
    },
    create: async ({ maxlen } = {}) => {
      if (!cluster) throw new Error('cluster harness not set up');
      const prefix = `test:bus:{${randomBytes(4).toString('hex')}}:`;
      const bus = await RedisBus.connect({ clusterNodes: cluster.urls, prefix, maxlen, trimIntervalMs: 0, onError: ignoreRetriedErrors });
      created.push(bus);
      return bus;
    },
    deliverToDeadConsumer: async (bus, topic, group, consumer, count) => {
      const key = bus.prefix + topic;
      const reply = await client().sendCommand<[string, [string, string[]][]][] | null>(key, false, [
        'XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), 'STREAMS', key, '>',
      ]);
      return (reply?.[0]?.[1] ?? []).map(([id]) => id);
    },
    keyExists: async (_bus, key) => (await client().sendCommand<number>(key, false, ['EXISTS', key])) === 1,
    ack: async (bus, topic, group, ids) => {
      const key = bus.prefix + topic;
      await client().sendCommand(key, false, ['XACK', key, group, ...ids]);
    },
  };
}

afterEach(async () => {
  await Promise.all(created.splice(0).map((bus) => bus.close()));
});

const Numbered = z.object({ n: z.number().int() });
type Numbered = z.infer<typeof Numbered>;
const decodeNumbered = decoderFor(Numbered);

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, index) => from + index);
}

async function publishNumbers(bus: EventBus, topic: string, numbers: number[]): Promise<string[]> {
  return bus.publishMany(numbers.map((n) => ({ topic, payload: { n } })));
}

function subscribeNumbers(bus: EventBus, options: Omit<SubscribeOptions<Numbered>, 'decode'>): Subscription {
  return bus.subscribe<Numbered>({ decode: decodeNumbered, ...options });
}

async function pendingOf(bus: EventBus, topic: string, group: string): Promise<number | undefined> {
  return (await bus.info(topic)).groups.find((info) => info.name === group)?.pending;
}

/** XACK through a subscription-free path: a consumer finishing entries it was handed. */
async function ackRange(bus: EventBus, topic: string, group: string, ids: readonly string[]): Promise<void> {
  if (bus instanceof EmbeddedBus) {
    bus.acknowledge(topic, group, ids);
    return;
  }
  const client = createClient({ url: redisUrl() });
  await client.connect();
  try {
    await client.sendCommand(['XACK', bus.prefix + topic, group, ...ids]);
  } finally {
    client.destroy();
  }
}

async function numbersIn(bus: EventBus, topic: string): Promise<number[]> {
  const entries = await bus.readAfter(topic, '0', 100_000);
  return entries.map((entry) => Numbered.parse(JSON.parse(entry.fields.payload ?? 'null')).n);
}

/** Lets the event loop run a few full turns (a negative check: something did not happen). */
async function settle(bus: EventBus): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    await bus.ping();
  }
}

function busContract(harness: BusHarness): void {
  beforeAll(() => harness.setup(), 60_000);
  afterAll(() => harness.teardown());

  it('keeps entries in order, with increasing ids, and delivers them in that order', async () => {
    const bus = await harness.create();
    const ids: string[] = [];
    for (const n of range(0, 10)) ids.push(await bus.publish('orders', { n }));
    ids.push(...(await publishNumbers(bus, 'orders', range(10, 40))));
    for (let i = 1; i < ids.length; i += 1) expect(compareIds(ids[i - 1] as string, ids[i] as string)).toBe(-1);

    const seen: number[] = [];
    const seenIds: string[] = [];
    const sub = subscribeNumbers(bus, {
      topic: 'orders',
      group: 'g',
      consumer: 'c1',
      batchSize: 7,
      handler: (delivery) => {
        seen.push(delivery.message.n);
        seenIds.push(delivery.id);
        expect(delivery.attempt).toBe(1);
        expect(delivery.topic).toBe('orders');
      },
    });
    await waitFor(() => seen.length === 40, { what: '40 deliveries' });
    expect(seen).toEqual(range(0, 40));
    expect(seenIds).toEqual(ids);
    // Redis shows the acks before this process has read the EXEC reply that counts them.
    await waitFor(async () => (await pendingOf(bus, 'orders', 'g')) === 0 && sub.acknowledged >= 40, { what: 'all acknowledged' });
    expect(sub.acknowledged).toBe(40);
  });

  it('shares the work of one group between its consumers, each entry to exactly one', async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'work', range(0, 30));
    const release = gate();
    const byFirst: number[] = [];
    const bySecond: number[] = [];
    subscribeNumbers(bus, {
      topic: 'work',
      group: 'workers',
      consumer: 'first',
      batchSize: 5,
      handler: async (delivery) => {
        byFirst.push(delivery.message.n);
        await release.promise; // holds its batch of 5 while the second consumer works
      },
    });
    await waitFor(() => byFirst.length === 1, { what: 'the first consumer to start' });
    subscribeNumbers(bus, {
      topic: 'work',
      group: 'workers',
      consumer: 'second',
      batchSize: 5,
      handler: (delivery) => {
        bySecond.push(delivery.message.n);
      },
    });
    await waitFor(() => bySecond.length === 25, { what: 'the second consumer to take the rest' });
    release.open();
    await waitFor(() => byFirst.length === 5, { what: 'the first batch to finish' });
    expect([...byFirst, ...bySecond].sort((a, b) => a - b)).toEqual(range(0, 30));
    await waitFor(async () => (await pendingOf(bus, 'work', 'workers')) === 0, { what: 'all acknowledged' });
    expect(byFirst.length + bySecond.length).toBe(30);
  });

  it('gives every group every entry', async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'fanout', range(0, 12));
    const seen = new Map<string, number[]>([
      ['risk', []],
      ['audit', []],
    ]);
    for (const group of seen.keys()) {
      subscribeNumbers(bus, {
        topic: 'fanout',
        group,
        consumer: 'c1',
        handler: (delivery) => {
          seen.get(group)?.push(delivery.message.n);
        },
      });
    }
    await waitFor(() => [...seen.values()].every((numbers) => numbers.length === 12), { what: 'both groups' });
    expect(seen.get('risk')).toEqual(range(0, 12));
    expect(seen.get('audit')).toEqual(range(0, 12));
  });

  it('acknowledges an entry only after its handler succeeded', async () => {
    const bus = await harness.create();
    await bus.publish('acks', { n: 1 });
    const release = gate();
    let called = false;
    const sub = subscribeNumbers(bus, {
      topic: 'acks',
      group: 'g',
      consumer: 'c1',
      handler: async () => {
        called = true;
        await release.promise;
      },
    });
    await waitFor(() => called, { what: 'the handler to be called' });
    expect(await pendingOf(bus, 'acks', 'g')).toBe(1);
    expect(sub.acknowledged).toBe(0);
    release.open();
    await waitFor(async () => (await pendingOf(bus, 'acks', 'g')) === 0, { what: 'the acknowledgement' });
    expect(sub.acknowledged).toBe(1);
  });

  it('publishes a batch’s outputs together with its acknowledgement, not before', async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'in', [1, 2]);
    const release = gate();
    subscribeNumbers(bus, {
      topic: 'in',
      group: 'g',
      consumer: 'c1',
      handler: async (delivery) => {
        const { n } = delivery.message;
        if (n === 2) await release.promise;
        return [{ topic: 'out', payload: { n: n * 10 } }];
      },
    });
    await waitFor(async () => (await pendingOf(bus, 'in', 'g')) === 2, { what: 'the batch to be delivered' });
    await settle(bus);
    expect(await bus.length('out')).toBe(0); // entry 1 is done, but its output waits for the batch
    release.open();
    await waitFor(async () => (await bus.length('out')) === 2, { what: 'the outputs' });
    expect(await pendingOf(bus, 'in', 'g')).toBe(0);
    expect(await numbersIn(bus, 'out')).toEqual([10, 20]);
  });

  it('redelivers after a handler failure and dead-letters after maxAttempts, then carries on', async () => {
    const bus = await harness.create();
    const ids = await publishNumbers(bus, 'flaky', [1, 2, 3]);
    const attempts = new Map<number, number[]>();
    const handler = (delivery: Delivery<Numbered>): Outbound[] => {
      const { n } = delivery.message;
      attempts.set(n, [...(attempts.get(n) ?? []), delivery.attempt]);
      if (n === 1 && delivery.attempt === 1) throw new Error('flaky once');
      if (n === 2) throw new Error('boom');
      return [{ topic: 'done', payload: { n } }];
    };
    subscribeNumbers(bus, { topic: 'flaky', group: 'g', consumer: 'c1', maxAttempts: 3, retryDelayMs: 20, handler });

    await waitFor(async () => (await bus.length(dlqTopic('flaky'))) === 1, { what: 'the dead letter' });
    await waitFor(async () => (await bus.length('done')) === 2, { what: 'the other outputs' });
    expect(attempts.get(1)).toEqual([1, 2]);
    expect(attempts.get(2)).toEqual([1, 2, 3]);
    expect(attempts.get(3)).toEqual([1]);
    const [dead] = await bus.readAfter(dlqTopic('flaky'), '0', 10);
    expect(dead?.fields).toMatchObject({
      payload: JSON.stringify({ n: 2 }),
      dlq_error: 'boom',
      dlq_source_id: ids[1],
      dlq_group: 'g',
      dlq_attempts: '3',
    });
    expect(Number(dead?.fields.dlq_ts)).toBeGreaterThan(0);

    await bus.publish('flaky', { n: 4 });
    await waitFor(async () => (await bus.length('done')) === 3, { what: 'the next entry' });
    expect((await numbersIn(bus, 'done')).sort()).toEqual([1, 3, 4]);
    await waitFor(async () => (await pendingOf(bus, 'flaky', 'g')) === 0, { what: 'all acknowledged' });
  });

  it('dead-letters an entry its handler refuses (RefusedEntry) at once with the reason, without retries or errors', async () => {
    const bus = await harness.create();
    const ids = await publishNumbers(bus, 'refused', [1, 2, 3]);
    const attempts: number[] = [];
    const errors: unknown[] = [];
    const handler = (delivery: Delivery<Numbered>): Outbound[] => {
      if (delivery.message.n === 2) {
        attempts.push(delivery.attempt);
        throw new RefusedEntry('FUTURE_TS: too far ahead');
      }
      return [{ topic: 'refused-done', payload: { n: delivery.message.n } }];
    };
    subscribeNumbers(bus, { topic: 'refused', group: 'g', consumer: 'c1', maxAttempts: 3, retryDelayMs: 20, handler, onError: (e) => errors.push(e) });
    await waitFor(async () => (await bus.length('refused-done')) === 2, { what: 'the other outputs' });
    await waitFor(async () => (await bus.length(dlqTopic('refused'))) === 1, { what: 'the dead letter' });
    const [dead] = await bus.readAfter(dlqTopic('refused'), '0', 10);
    expect(dead?.fields).toMatchObject({ dlq_error: 'FUTURE_TS: too far ahead', dlq_source_id: ids[1], dlq_attempts: '1' });
    expect(attempts).toEqual([1]);
    expect(errors).toEqual([]);
    await waitFor(async () => (await pendingOf(bus, 'refused', 'g')) === 0, { what: 'all acknowledged' });
  });

  it('claims entries left pending by a dead consumer once they are idle', async () => {
    const bus = await harness.create();
    await bus.ensureGroup('claims', 'g');
    await publishNumbers(bus, 'claims', [1, 2, 3]);
    expect(await harness.deliverToDeadConsumer(bus, 'claims', 'g', 'dead', 3)).toHaveLength(3);
    expect(await pendingOf(bus, 'claims', 'g')).toBe(3);

    const seen: number[] = [];
    subscribeNumbers(bus, {
      topic: 'claims',
      group: 'g',
      consumer: 'live',
      claimIdleMs: 50,
      claimIntervalMs: 50,
      handler: (delivery) => {
        seen.push(delivery.message.n);
      },
    });
    await waitFor(() => seen.length === 3, { what: 'the claimed entries' });
    expect(seen).toEqual([1, 2, 3]);
    await waitFor(async () => (await pendingOf(bus, 'claims', 'g')) === 0, { what: 'all acknowledged' });
    await bus.publish('claims', { n: 4 });
    await waitFor(() => seen.length === 4, { what: 'a new entry' });
  });

  it('resumes its own pending entries at once when a consumer restarts under the same name', async () => {
    const bus = await harness.create();
    await bus.ensureGroup('resume', 'g');
    await publishNumbers(bus, 'resume', [1, 2]);
    await harness.deliverToDeadConsumer(bus, 'resume', 'g', 'c1', 2);
    const seen: number[] = [];
    // claimIdleMs stays at its 30 s default: only the own-pending re-read can deliver these in time.
    subscribeNumbers(bus, {
      topic: 'resume',
      group: 'g',
      consumer: 'c1',
      handler: (delivery) => {
        seen.push(delivery.message.n);
      },
    });
    await waitFor(() => seen.length === 2, { what: 'the resumed entries' });
    expect(seen).toEqual([1, 2]);
  });

  it('dead-letters malformed entries with the error and original fields, acknowledges them, and carries on', async () => {
    const bus = await harness.create();
    const badJson = await bus.publishRaw('mixed', { payload: '{not json' });
    const badSchema = await bus.publish('mixed', { n: 'seven' });
    const noPayload = await bus.publishRaw('mixed', { other: 'x' });
    await bus.publish('mixed', { n: 7 });
    const seen: number[] = [];
    let handlerCalls = 0;
    const sub = subscribeNumbers(bus, {
      topic: 'mixed',
      group: 'g',
      consumer: 'c1',
      handler: (delivery) => {
        handlerCalls += 1;
        seen.push(delivery.message.n);
      },
    });
    await waitFor(() => seen.length === 1, { what: 'the good entry' });
    await waitFor(async () => (await bus.length(dlqTopic('mixed'))) === 3, { what: 'three dead letters' });
    expect(handlerCalls).toBe(1);
    const dead = await bus.readAfter(dlqTopic('mixed'), '0', 10);
    const bySource = new Map(dead.map((entry) => [entry.fields.dlq_source_id, entry.fields]));
    expect(bySource.get(badJson)).toMatchObject({ payload: '{not json', dlq_group: 'g', dlq_attempts: '1' });
    expect(bySource.get(badJson)?.dlq_error).toMatch(/not valid JSON/);
    expect(bySource.get(badSchema)).toMatchObject({ payload: JSON.stringify({ n: 'seven' }) });
    expect(bySource.get(badSchema)?.dlq_error).toMatch(/^invalid payload: n: /);
    expect(bySource.get(noPayload)).toMatchObject({ other: 'x' });
    expect(bySource.get(noPayload)?.dlq_error).toMatch(/missing "payload"/);
    await waitFor(async () => (await pendingOf(bus, 'mixed', 'g')) === 0 && sub.acknowledged >= 4, { what: 'all acknowledged' });
    expect(sub.acknowledged).toBe(4);
  });

  it('never trims on publish; trimNow cuts a stream back to maxlen only behind its groups (delivered and acknowledged)', async () => {
    const bus = await harness.create({ maxlen: 100 });
    await bus.ensureGroup('ticks', 'g', '0');
    const ids = await publishNumbers(bus, 'ticks', range(0, 1000));
    expect(await bus.length('ticks')).toBe(1000);

    // Nothing read yet: nothing goes.
    let [result] = (await bus.trimNow()).filter((r) => r.topic === 'ticks');
    expect(result).toMatchObject({ removed: 0, length: 1000 });
    expect(result?.keptBecause).toMatch(/group g has not read/);

    // 400 delivered, 300 of them pending on a consumer that died: only the first 100 go.
    const delivered = await harness.deliverToDeadConsumer(bus, 'ticks', 'g', 'dead', 400);
    expect(delivered).toHaveLength(400);
    const sub = subscribeNumbers(bus, { topic: 'ticks', group: 'g', consumer: 'live', handler: () => undefined, claimIdleMs: 60_000 });
    // 'live' reads the unread 600 (its own pending list is empty); 'dead' keeps 400 pending.
    await waitFor(async () => (await bus.info('ticks')).groups[0]?.lag === 0 && (await pendingOf(bus, 'ticks', 'g')) === 400, { what: 'the rest read' });
    await sub.close();
    // Acknowledge the dead consumer's first 100 by hand, as if it had finished them.
    await harness.ack(bus, 'ticks', 'g', delivered.slice(0, 100));
    [result] = (await bus.trimNow()).filter((r) => r.topic === 'ticks');
    expect(result).toMatchObject({ removed: 100, length: 900 });
    expect(result?.keptBecause).toMatch(/300 entries pending/);
    expect((await bus.readAfter('ticks', '0', 1))[0]?.id).toBe(ids[100]);
    expect(await bus.oldestPending('ticks', 'g')).toBe(ids[100]);
    expect(result?.backlogs).toEqual([{ topic: 'ticks', group: 'g', lag: 0, pending: 300 }]);

    // Once everything is acknowledged: exactly maxlen left, the newest.
    await harness.ack(bus, 'ticks', 'g', delivered.slice(100));
    [result] = (await bus.trimNow()).filter((r) => r.topic === 'ticks');
    expect(result).toMatchObject({ removed: 800, length: 100, keptBecause: null });
    expect(await numbersIn(bus, 'ticks')).toEqual(range(900, 1000));
  });

  it('keeps every entry of a loop topic whose consumer group does not exist yet, and never trims trade.execution.res', async () => {
    const bus = await harness.create({ maxlen: 100 });
    await publishNumbers(bus, TOPICS.safe, range(0, 500));
    await publishNumbers(bus, TOPICS.execution, range(0, 500));
    const results = await bus.trimNow();
    const safe = results.find((r) => r.topic === TOPICS.safe);
    expect(safe).toMatchObject({ removed: 0, length: 500 });
    expect(safe?.keptBecause).toMatch(/group execution does not exist yet/);
    expect(results.find((r) => r.topic === TOPICS.execution)).toMatchObject({ removed: 0, length: 500 });
    expect(await bus.length(TOPICS.execution)).toBe(500);
  });

  it('trimOldest removes exactly, never an entry at or after its bound; trimBefore likewise', async () => {
    const bus = await harness.create();
    const ids: string[] = [];
    for (let start = 0; start < 1000; start += 250) ids.push(...(await publishNumbers(bus, 'ticks', range(start, start + 250))));
    expect(await bus.trimOldest('ticks', 250, null)).toBe(250);
    expect((await bus.readAfter('ticks', '0', 1))[0]?.id).toBe(ids[250]);
    expect(await bus.trimOldest('ticks', 500, ids[400] as string)).toBe(150);
    expect((await bus.readAfter('ticks', '0', 1))[0]?.id).toBe(ids[400]);
    expect(await bus.trimOldest('ticks', 7, null)).toBe(7);
    expect(await bus.length('ticks')).toBe(593);

    // Never removes an entry at or after minId (state recovery relies on this, SPEC §7).
    const removed = await bus.trimBefore('ticks', ids[800] as string);
    expect(removed).toBeGreaterThan(0);
    const kept = await bus.readAfter('ticks', ids[799] as string, 1000);
    expect(kept.map((entry) => entry.id)).toEqual(ids.slice(800));
  });

  it('keeps every stream and key under its prefix', async () => {
    const bus = await harness.create();
    // Unique names, so the unprefixed checks cannot meet another test's keys.
    const unique = randomBytes(4).toString('hex');
    const topic = `prefix-check-${unique}`;
    const key = `snapshot:prefix-check-${unique}`;
    await bus.publish(topic, { n: 1 });
    await bus.ensureGroup(`${topic}-grouped`, 'g');
    await bus.setValue(key, '{"v":1}');
    expect(bus.prefix).toMatch(/^test:bus:/);
    expect(await harness.keyExists(bus, bus.prefix + topic)).toBe(true);
    expect(await harness.keyExists(bus, `${bus.prefix}${topic}-grouped`)).toBe(true);
    expect(await harness.keyExists(bus, bus.prefix + key)).toBe(true);
    expect(await harness.keyExists(bus, topic)).toBe(false);
    expect(await harness.keyExists(bus, key)).toBe(false);
    expect((await bus.info(topic)).stream).toBe(bus.prefix + topic);
  });

  it('close() waits for the in-flight handler and its commit', async () => {
    const bus = await harness.create();
    await bus.publish('slow', { n: 1 });
    const release = gate();
    let called = false;
    const sub = subscribeNumbers(bus, {
      topic: 'slow',
      group: 'g',
      consumer: 'c1',
      handler: async (delivery) => {
        called = true;
        await release.promise;
        return [{ topic: 'slow-out', payload: delivery.message }];
      },
    });
    await waitFor(() => called, { what: 'the handler to be called' });
    let closed = false;
    const closing = sub.close().then(() => {
      closed = true;
    });
    await settle(bus);
    expect(closed).toBe(false);
    release.open();
    await closing;
    expect(await bus.length('slow-out')).toBe(1);
    expect(await pendingOf(bus, 'slow', 'g')).toBe(0);
    expect(sub.acknowledged).toBe(1);
  });

  it('close() returns promptly while waiting for new entries', async () => {
    const bus = await harness.create();
    const sub = subscribeNumbers(bus, {
      topic: 'idle',
      group: 'g',
      consumer: 'c1',
      blockMs: 60_000,
      handler: () => undefined,
    });
    await waitFor(async () => (await bus.info('idle')).groups.length === 1, { what: 'the group' });
    const started = performance.now();
    await sub.close();
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('reports length, first and last ids, groups, consumers, pending and lag', async () => {
    const bus = await harness.create();
    const ids = await publishNumbers(bus, 'stats', [1, 2, 3, 4, 5]);
    await bus.ensureGroup('stats', 'g-early', '0');
    await bus.ensureGroup('stats', 'g-early'); // idempotent
    await bus.ensureGroup('stats', 'g-late', '$');
    await harness.deliverToDeadConsumer(bus, 'stats', 'g-early', 'c1', 3);

    expect(await bus.info('stats')).toEqual({
      topic: 'stats',
      stream: bus.prefix + 'stats',
      length: 5,
      first_id: ids[0],
      last_id: ids[4],
      groups: [
        { name: 'g-early', consumers: 1, pending: 3, lag: 2, last_delivered_id: ids[2] },
        { name: 'g-late', consumers: 0, pending: 0, lag: 0, last_delivered_id: ids[4] },
      ],
    });
    expect(await bus.info('nothing-here')).toEqual({
      topic: 'nothing-here',
      stream: bus.prefix + 'nothing-here',
      length: 0,
      first_id: null,
      last_id: null,
      groups: [],
    });
  });

  it("starts a group created with '$' at new entries only", async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'late', [1, 2]);
    const seen: number[] = [];
    subscribeNumbers(bus, {
      topic: 'late',
      group: 'g',
      consumer: 'c1',
      startId: '$',
      handler: (delivery) => {
        seen.push(delivery.message.n);
      },
    });
    await waitFor(async () => (await bus.info('late')).groups.length === 1, { what: 'the group' });
    await bus.publish('late', { n: 3 });
    await waitFor(() => seen.length === 1, { what: 'the new entry' });
    expect(seen).toEqual([3]);
  });

  it('reads after an id (exclusive) and the latest entries, newest first', async () => {
    const bus = await harness.create();
    const ids = await publishNumbers(bus, 'history', [1, 2, 3, 4, 5]);
    const idsOf = (entries: StreamEntry[]): string[] => entries.map((entry) => entry.id);
    expect(idsOf(await bus.readAfter('history', '0', 100))).toEqual(ids);
    expect(idsOf(await bus.readAfter('history', ids[1] as string, 2))).toEqual([ids[2], ids[3]]);
    expect(idsOf(await bus.readAfter('history', ids[4] as string, 10))).toEqual([]);
    expect(idsOf(await bus.readLatest('history', 2))).toEqual([ids[4], ids[3]]);
    expect(await bus.readAfter('history', '0', 1)).toEqual([{ id: ids[0], fields: { payload: '{"n":1}' } }]);
    await expect(bus.publishRaw('history', {})).rejects.toThrow(/at least one field/);
    expect(await bus.readAfter('missing', '0', 10)).toEqual([]);
    expect(await bus.readLatest('missing', 10)).toEqual([]);
    expect(await bus.length('missing')).toBe(0);
  });

  it('reads several topics under one group, handling each batch topic by topic in the order given', async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'orders', [1, 2]);
    await publishNumbers(bus, 'prices', [10, 20]);
    const seen: string[] = [];
    const sub = bus.subscribe<Numbered>({
      topics: ['prices', 'orders'],
      group: 'svc',
      consumer: 'c1',
      decode: (topic, fields, id) => {
        expect(['prices', 'orders']).toContain(topic);
        return decodeNumbered(fields, id);
      },
      handler: (delivery) => {
        seen.push(`${delivery.topic}:${delivery.message.n}`);
        return delivery.topic === 'orders' ? [{ topic: 'fills', payload: delivery.message }] : undefined;
      },
    });
    await waitFor(() => seen.length === 4, { what: 'four deliveries' });
    expect(seen).toEqual(['prices:10', 'prices:20', 'orders:1', 'orders:2']);
    await waitFor(async () => (await pendingOf(bus, 'orders', 'svc')) === 0 && (await pendingOf(bus, 'prices', 'svc')) === 0 && sub.acknowledged >= 4, {
      what: 'both topics acknowledged',
    });
    expect(await numbersIn(bus, 'fills')).toEqual([1, 2]);
    expect(sub.acknowledged).toBe(4);
  });

  it('writes the commitState snapshot in the same commit as the acknowledgements', async () => {
    const bus = await harness.create();
    await publishNumbers(bus, 'ledger', [1, 2, 3]);
    const release = gate();
    let total = 0;
    subscribeNumbers(bus, {
      topic: 'ledger',
      group: 'g',
      consumer: 'c1',
      handler: async (delivery) => {
        if (delivery.message.n === 3) await release.promise;
        total += delivery.message.n;
      },
      commitState: () => ({ key: 'snapshot:ledger', value: JSON.stringify({ total }) }),
    });
    await waitFor(async () => (await pendingOf(bus, 'ledger', 'g')) === 3, { what: 'the batch to be delivered' });
    await settle(bus);
    expect(await bus.getValue('snapshot:ledger')).toBeNull();
    release.open();
    await waitFor(async () => (await bus.getValue('snapshot:ledger')) !== null, { what: 'the snapshot' });
    expect(await pendingOf(bus, 'ledger', 'g')).toBe(0);
    expect(await bus.getValue('snapshot:ledger')).toBe('{"total":6}');
    expect(await harness.keyExists(bus, bus.prefix + 'snapshot:ledger')).toBe(true);
  });

  it('reports each dead letter once it is written', async () => {
    const bus = await harness.create();
    const badId = await bus.publishRaw('reported', { payload: 'nope' });
    const notices: [string, string, string][] = [];
    subscribeNumbers(bus, {
      topic: 'reported',
      group: 'g',
      consumer: 'c1',
      handler: () => undefined,
      onDeadLetter: (topic, id, error) => {
        notices.push([topic, id, error]);
      },
    });
    await waitFor(() => notices.length === 1, { what: 'the dead-letter notice' });
    expect(notices[0]?.slice(0, 2)).toEqual(['reported', badId]);
    expect(notices[0]?.[2]).toMatch(/not valid JSON/);
    expect(await bus.length(dlqTopic('reported'))).toBe(1);
  });

  it('runs exclusive() work between batches: after an in-flight batch, at once when idle', async () => {
    const bus = await harness.create();
    await bus.publish('turns', { n: 1 });
    const release = gate();
    const events: string[] = [];
    const sub = subscribeNumbers(bus, {
      topic: 'turns',
      group: 'g',
      consumer: 'c1',
      blockMs: 60_000,
      handler: async () => {
        events.push('handler started');
        await release.promise;
        events.push('handler done');
      },
    });
    await waitFor(() => events.length === 1, { what: 'the handler to start' });
    const during = sub.exclusive(() => {
      events.push('exclusive');
      return 42;
    });
    await settle(bus);
    expect(events).toEqual(['handler started']);
    release.open();
    expect(await during).toBe(42);
    expect(events).toEqual(['handler started', 'handler done', 'exclusive']);
    await waitFor(async () => (await pendingOf(bus, 'turns', 'g')) === 0, { what: 'the acknowledgement' });

    // Idle, waiting for entries (for up to a minute): exclusive work does not wait for that.
    const started = performance.now();
    expect(await sub.exclusive(async () => 'idle')).toBe('idle');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('stores values, answers ping, and stops answering once closed', async () => {
    const bus = await harness.create();
    expect(await bus.getValue('snapshot:monitor')).toBeNull();
    await bus.setValue('snapshot:monitor', '{"last_id":"1-0"}');
    expect(await bus.getValue('snapshot:monitor')).toBe('{"last_id":"1-0"}');
    expect(await bus.ping()).toBe(true);
    await bus.close();
    expect(await bus.ping()).toBe(false);
  });
}

describe.each([embeddedHarness, redisHarness(), clusterHarness()])('$kind bus', (harness) => {
  busContract(harness);
});

describe('redis bus: Redis going away', () => {
  it('fails to connect with a clear message when Redis does not answer', async () => {
    await expect(
      RedisBus.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300, onError: ignoreRetriedErrors }),
    ).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:1 did not answer within 300 ms/);
  });

  it('recreates its group and carries on when the stream vanished under a running consumer (NOGROUP)', async () => {
    const url = redisUrl();
    const prefix = uniquePrefix('nogroup');
    const bus = await RedisBus.connect({ url, prefix, onError: ignoreRetriedErrors });
    created.push(bus);
    try {
      const seen: number[] = [];
      bus.subscribe<Numbered>({
        topic: 'vanish',
        group: 'g',
        consumer: 'c1',
        decode: decodeNumbered,
        blockMs: 100,
        handler: (delivery) => {
          seen.push(delivery.message.n);
        },
      });
      await bus.publish('vanish', { n: 1 });
      await waitFor(() => seen.length === 1, { what: 'the first entry' });
      const admin = createClient({ url });
      admin.on('error', ignoreRetriedErrors);
      await admin.connect();
      await admin.sendCommand(['DEL', prefix + 'vanish']);
      admin.destroy();
      // The consumer meets NOGROUP, recreates the group from '0' and takes what arrives.
      await waitFor(async () => (await bus.info('vanish')).groups.length === 1, { what: 'the group to return' });
      await bus.publish('vanish', { n: 2 });
      await waitFor(() => seen.length === 2, { what: 'the entry after the loss' });
      expect(seen).toEqual([1, 2]);
    } finally {
      await bus.close();
      await cleanupPrefix(url, prefix);
    }
  });

  it('survives a Redis restart under a running consumer without losing acknowledged work', async () => {
    const redis = await startPrivateRedis({ appendonly: true });
    const errors: unknown[] = [];
    const bus = await RedisBus.connect({ url: redis.url, prefix: '{acct1}:', onError: (error) => errors.push(error) });
    created.push(bus);
    try {
      const handled = new Set<number>();
      const sub = bus.subscribe<Numbered>({
        topic: 'orders',
        group: 'relay',
        consumer: 'c1',
        decode: decodeNumbered,
        batchSize: 20,
        blockMs: 200,
        handler: (delivery) => {
          handled.add(delivery.message.n);
          return [{ topic: 'relayed', payload: delivery.message }];
        },
      });
      await publishNumbers(bus, 'orders', range(0, 200));
      await waitFor(() => handled.size > 0, { what: 'consumption to start' });

      await redis.stop(); // likely mid-stream: some batches done, some not
      await redis.start();

      // Published after the restart; the publishing connection reconnects by itself.
      await waitFor(() => bus.ping(), { what: 'the bus to reconnect' });
      await publishNumbers(bus, 'orders', range(200, 400));

      await waitFor(async () => new Set(await numbersIn(bus, 'relayed')).size === 400, {
        what: 'every entry relayed',
        timeoutMs: 20_000,
      });
      expect([...handled].sort((a, b) => a - b)).toEqual(range(0, 400));
      await waitFor(async () => (await pendingOf(bus, 'orders', 'relay')) === 0, { what: 'all acknowledged' });
      const info = await bus.info('orders');
      expect(info.length).toBe(400); // nothing published before the restart was lost
      expect(info.groups[0]?.lag).toBe(0);
      expect(sub.acknowledged).toBeGreaterThanOrEqual(400);
      expect(errors.length).toBeGreaterThan(0); // the outage was reported, not thrown
    } finally {
      await bus.close();
      await redis.destroy();
    }
  });
});
