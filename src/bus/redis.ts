/**
 * The Redis Streams bus (SPEC §3) on node-redis v5.
 *
 * One connection serves writes and admin commands. Each subscription gets its own
 * duplicated connection, because a blocking XREADGROUP holds its whole connection; that
 * connection also carries the subscription's commits (one MULTI: XADD of every output
 * and dead letter, the subscription's state (SET, or the hash fields that changed), XACK
 * per topic), so a batch's results and its acknowledgement land together or not at all.
 * Commands go through sendCommand with the raw RESP2 replies parsed here: stream
 * replies are small and regular, and this keeps the hot path free of reply transforms.
 *
 * The connection is one Redis or a Redis Cluster (redis-link.ts); on a cluster the prefix
 * holds a hash tag, so every key of the bus — and so every transaction — is in one slot
 * (docs/scale-out.md).
 */
import type { Clock } from '../core/clock.js';
import type { PartsChange, StoredState } from '../core/snapshot-parts.js';
import { systemClock } from '../platform/clock.js';
import {
  compareIds,
  defaultMaxlenPolicy,
  type EventBus,
  type GroupInfo,
  type MaxlenPolicy,
  type MultiSubscribeOptions,
  type Outbound,
  type StreamEntry,
  type StreamInfo,
  type SubscribeOptions,
  type Subscription,
} from './bus.js';
import { assertHasFields, encodePayload, type Fields } from './codec.js';
import {
  ConsumerLoop,
  SUBSCRIBE_DEFAULTS,
  errorMessage,
  topicsOf,
  type ClaimPage,
  type Commit,
  type GroupReader,
  type PendingEntry,
  type TopicBatch,
} from './consumer.js';
import { ClusterRedisLink, SingleRedisLink, type LinkSocketOptions, type RedisLink } from './redis-link.js';
import { hashTag, keySlot } from './slot.js';
import { StreamNames, TOPICS } from './topics.js';
import { DEFAULT_TRIM_INTERVAL_MS, PeriodicTrimmer, nextId, type GroupBacklog, type TrimResult } from './trim.js';


/** RESP2 shapes of the stream replies used here. */
type RawEntry = [id: string, fields: string[] | null];
type RawStreams = [key: string, entries: RawEntry[]][] | null;
type RawAutoClaim = [next: string, entries: (RawEntry | null)[], deleted?: string[]];
type RawInfo = (string | number | null | RawEntry)[];

const RECONNECT_MAX_MS = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** SET NX PX, or PEXPIRE when the caller already holds it: one atomic step. */
const LEASE_SCRIPT = `local holder = redis.call('GET', KEYS[1])
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
/** A snapshot key as stored, in one step: `['string', value]`, `['hash', [field, value, ...]]`, `['none']`, or `[type]`. */
const GET_STATE_SCRIPT = `local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return {kind, redis.call('GET', KEYS[1])} end
if kind == 'hash' then return {kind, redis.call('HGETALL', KEYS[1])} end
return {kind}`;

/**
 * The commands that apply a snapshot's change to its hash (prefixed key): DEL + HSET, or
 * HDEL + HSET. Plain commands, so whatever refuses them (ACL, OOM) refuses them when the
 * MULTI is queued and EXEC applies nothing.
 */
function stateCommands(key: string, change: PartsChange): string[][] {
  const commands: string[][] = [];
  if (change.replace) commands.push(['DEL', key]);
  else if (change.del.length > 0) commands.push(['HDEL', key, ...change.del]);
  if (change.set.length > 0) commands.push(['HSET', key, ...change.set]);
  return commands;
}

/** The largest stream id: trimming before it is bounded by the count alone. */
const MAX_ID = '18446744073709551615-18446744073709551615';
/** Entries read to find an exact cut once whole nodes are gone (a node holds 100 by default). */
const EXACT_TRIM_WINDOW = 10_000;
/** Pending entries listed per XPENDING call. */
const PENDING_PAGE = 1000;
/** PING gives up after this, so /health answers (503) within a second while Redis stalls. */
const PING_TIMEOUT_MS = 750;

export interface RedisBusOptions {
  /** One Redis (default redis://127.0.0.1:6379); ignored when clusterNodes is given. */
  url?: string;
  /** Seed nodes of a Redis Cluster (`redis_cluster_nodes`): the bus then runs on the cluster. */
  clusterNodes?: readonly string[];
  /**
   * On a cluster, allow a prefix without a hash tag (the router's shared, unprefixed input):
   * its commits then span slots and are split (see runCommands). Accounts never set it.
   */
  spanSlots?: boolean;
  prefix?: string;
  /** Default maxlen of the default policy (100 000): the periodic trimmer's target. */
  maxlen?: number;
  /** How often the streams this bus uses are trimmed behind their groups; 0 = never. Default 10 000 ms. */
  trimIntervalMs?: number;
  /** Overrides the trimming policy entirely. */
  maxlenFor?: MaxlenPolicy;
  /** Stamps dead letters (dlq_ts) and schedules retries. */
  clock?: Clock;
  /** Connection errors and retried failures; default: one line on stderr each. */
  onError?: (error: unknown) => void;
  /** How long the first connection keeps trying before connect() fails. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid URL)';
  }
}

function fieldsOf(flat: readonly string[]): Fields {
  const fields: Fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
  return fields;
}

/** No MAXLEN: trimming on publish would ignore the consumer groups (see src/bus/trim.ts). */
function xaddArgs(key: string, fields: Fields): string[] {
  const args = ['XADD', key, '*'];
  for (const name in fields) args.push(name, fields[name] as string);
  return args;
}

function toStreamEntry([id, flat]: RawEntry): StreamEntry {
  return { id, fields: fieldsOf(flat ?? []) };
}

function isRedisError(error: unknown, code: string): boolean {
  return error instanceof Error && error.message.includes(code);
}

/** XINFO replies are flat [name, value, name, value, ...] lists. */
function infoMap(flat: RawInfo): Map<string, RawInfo[number]> {
  const map = new Map<string, RawInfo[number]>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1] ?? null);
  return map;
}

/**
 * One MULTI/EXEC of `commands` (each names its key at [1]). On a cluster, when the keys
 * span several slots (only the unprefixed shared streams of `quantum route` do: an
 * account's prefix holds a hash tag), no single transaction can hold them: the commands
 * run as one transaction per slot, everything but the acknowledgements first, the XACKs
 * last. A crash in between delivers the batch again and its writes repeat, which the
 * consumers downstream absorb (signal_id: docs/scale-out.md). Replies keep their order.
 */
async function runCommands(link: RedisLink, commands: readonly string[][]): Promise<unknown[]> {
  const routing = commands[0]![1]!;
  if (!link.cluster) return link.transaction(routing, commands);
  const slots = commands.map((command) => keySlot(command[1]!));
  if (slots.every((slot) => slot === slots[0])) return link.transaction(routing, commands);
  const replies: unknown[] = new Array(commands.length);
  for (const acks of [false, true]) {
    const bySlot = new Map<number, number[]>();
    commands.forEach((command, index) => {
      if ((command[0] === 'XACK') !== acks) return;
      const group = bySlot.get(slots[index]!) ?? [];
      group.push(index);
      bySlot.set(slots[index]!, group);
    });
    for (const indexes of bySlot.values()) {
      const part = indexes.map((index) => commands[index]!);
      const answers = await link.transaction(part[0]![1]!, part);
      indexes.forEach((index, at) => (replies[index] = answers[at]));
    }
  }
  return replies;
}

async function createGroup(client: RedisLink, key: string, group: string, startId: string): Promise<void> {
  try {
    await client.send(key, ['XGROUP', 'CREATE', key, group, startId, 'MKSTREAM']);
  } catch (error) {
    if (!isRedisError(error, 'BUSYGROUP')) throw error;
  }
}

export class RedisBus implements EventBus {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  /** True on a Redis Cluster. */
  get cluster(): boolean {
    return this.#client.cluster;
  }
  readonly #client: RedisLink;
  readonly #names: StreamNames;
  readonly #trimmer: PeriodicTrimmer;
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;
  readonly #subscriptions = new Set<Subscription>();
  readonly #homeKey: string;
  #closed = false;

  private constructor(client: RedisLink, options: RedisBusOptions, onError: (error: unknown) => void) {
    this.#client = client;
    this.#homeKey = new StreamNames(options.prefix ?? '').stream(TOPICS.signal);
    this.prefix = options.prefix ?? '';
    this.#names = new StreamNames(this.prefix);
    this.#trimmer = new PeriodicTrimmer(
      this,
      options.maxlenFor ?? defaultMaxlenPolicy(options.maxlen),
      options.trimIntervalMs ?? DEFAULT_TRIM_INTERVAL_MS,
    );
    this.#clock = options.clock ?? systemClock;
    this.#onError = onError;
  }

  /**
   * Connects and resolves once Redis answers. Fails with a clear message when it does
   * not answer within connectTimeoutMs; after that first success, lost connections are
   * retried forever.
   */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const onError = options.onError ?? ((error: unknown) => console.error(`[bus] redis: ${errorMessage(error)}`));
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const giveUpAt = performance.now() + timeoutMs;
    let connected = false;
    const socket = {
      connectTimeout: timeoutMs,
      reconnectStrategy: (retries: number, cause: Error) =>
        !connected && performance.now() >= giveUpAt ? cause : Math.min(50 * 2 ** retries, RECONNECT_MAX_MS),
    };
    const prefix = options.prefix ?? '';
    const clusterNodes = options.clusterNodes ?? [];
    if (clusterNodes.length > 0) {
      if (hashTag(prefix) === null && !options.spanSlots) {
        throw new Error(
          `stream_prefix "${prefix}" holds no hash tag: on a Redis Cluster it must hold one (e.g. "{acct7}:") so the account's streams, snapshots, leases and groups share one slot`,
        );
      }
      return RedisBus.#connectCluster(clusterNodes, options, socket, giveUpAt, onError, () => (connected = true));
    }
    const url = options.url ?? 'redis://127.0.0.1:6379';
    const client = SingleRedisLink.create(url, socket);
    // node-redis emits 'error' on every failed (re)connection; unhandled, that would crash.
    client.onError(onError);
    try {
      await client.connect();
    } catch (error) {
      if (client.isOpen) client.destroy();
      throw new Error(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms: ${errorMessage(error)}`);
    }
    connected = true;
    return new RedisBus(client, options, onError);
  }

  /** The cluster's topology is discovered from the seed nodes; attempts repeat until the deadline. */
  static async #connectCluster(
    nodes: readonly string[],
    options: RedisBusOptions,
    socket: LinkSocketOptions,
    giveUpAt: number,
    onError: (error: unknown) => void,
    onConnected: () => void,
  ): Promise<RedisBus> {
    const homeKey = new StreamNames(options.prefix ?? '').stream(TOPICS.signal);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let lastError: unknown;
    for (let attempt = 0; attempt === 0 || performance.now() < giveUpAt; attempt++) {
      const link = ClusterRedisLink.create(nodes, homeKey, socket);
      link.onError(onError);
      try {
        await link.connect();
        onConnected();
        return new RedisBus(link, options, onError);
      } catch (error) {
        lastError = error;
        link.destroy();
        await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, giveUpAt - performance.now()))));
      }
    }
    throw new Error(`Redis Cluster at ${nodes.map(redactUrl).join(', ')} did not answer within ${timeoutMs} ms: ${errorMessage(lastError)}`);
  }

  async publish(topic: string, payload: unknown): Promise<string> {
    return this.publishRaw(topic, encodePayload(payload));
  }

  async publishMany(items: readonly Outbound[]): Promise<string[]> {
    if (items.length === 0) return [];
    const commands = items.map((item) => this.#xadd(item.topic, encodePayload(item.payload)));
    const replies = await runCommands(this.#client, commands);
    return replies.map(String);
  }

  async publishRaw(topic: string, fields: Record<string, string>): Promise<string> {
    assertHasFields(fields);
    const command = this.#xadd(topic, fields);
    return this.#client.send<string>(command[1], command);
  }

  subscribe<T>(options: SubscribeOptions<T> | MultiSubscribeOptions<T>): Subscription {
    if (this.#closed) throw new Error('the Redis bus is closed');
    for (const topic of topicsOf(options)) this.#trimmer.touch(topic);
    const reader = new RedisGroupReader({
      client: this.#client.duplicate(),
      names: this.#names,
      topics: topicsOf(options),
      group: options.group,
      consumer: options.consumer,
      startId: options.startId ?? SUBSCRIBE_DEFAULTS.startId,
      xadd: (topic, fields) => this.#xadd(topic, fields),
      onError: options.onError ?? this.#onError,
    });
    const loop = new ConsumerLoop(reader, options, { clock: this.#clock, onError: this.#onError });
    this.#subscriptions.add(loop);
    return {
      get acknowledged() {
        return loop.acknowledged;
      },
      exclusive: (fn) => loop.exclusive(fn),
      close: async () => {
        await loop.close();
        this.#subscriptions.delete(loop);
      },
    };
  }

  async readAfter(topic: string, afterId: string, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return [];
    const key = this.#names.stream(topic);
    const reply = await this.#client.send<RawEntry[]>(key, ['XRANGE', key, `(${afterId}`, '+', 'COUNT', String(count)]);
    return reply.map(toStreamEntry);
  }

  async readLatest(topic: string, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return [];
    const key = this.#names.stream(topic);
    const reply = await this.#client.send<RawEntry[]>(key, ['XREVRANGE', key, '+', '-', 'COUNT', String(count)]);
    return reply.map(toStreamEntry);
  }

  async length(topic: string): Promise<number> {
    const key = this.#names.stream(topic);
    return this.#client.send<number>(key, ['XLEN', key]);
  }

  async info(topic: string): Promise<StreamInfo> {
    const key = this.#names.stream(topic);
    let stream: Map<string, RawInfo[number]>;
    let groups: RawInfo[];
    try {
      [stream, groups] = await Promise.all([
        this.#client.send<RawInfo>(key, ['XINFO', 'STREAM', key]).then(infoMap),
        this.#client.send<RawInfo[]>(key, ['XINFO', 'GROUPS', key]),
      ]);
    } catch (error) {
      if (!isRedisError(error, 'no such key')) throw error;
      return { topic, stream: key, length: 0, first_id: null, last_id: null, groups: [] };
    }
    const idOf = (entry: RawInfo[number] | undefined): string | null => (Array.isArray(entry) ? entry[0] : null);
    return {
      topic,
      stream: key,
      length: Number(stream.get('length') ?? 0),
      first_id: idOf(stream.get('first-entry')),
      last_id: idOf(stream.get('last-entry')),
      groups: groups.map(infoMap).map(
        (group): GroupInfo => ({
          name: String(group.get('name')),
          consumers: Number(group.get('consumers') ?? 0),
          pending: Number(group.get('pending') ?? 0),
          // Redis answers nil when it cannot tell (e.g. after deletions in the middle).
          lag: group.get('lag') === null || group.get('lag') === undefined ? null : Number(group.get('lag')),
          last_delivered_id: String(group.get('last-delivered-id')),
        }),
      ),
    };
  }

  async ensureGroup(topic: string, group: string, startId: string = SUBSCRIBE_DEFAULTS.startId): Promise<void> {
    await createGroup(this.#client, this.#names.stream(topic), group, startId);
  }

  async trim(topic: string, maxlen: number): Promise<number> {
    const key = this.#names.stream(topic);
    return this.#client.send<number>(key, ['XTRIM', key, 'MAXLEN', '~', String(Math.max(0, maxlen))]);
  }

  async trimBefore(topic: string, minId: string): Promise<number> {
    const key = this.#names.stream(topic);
    return this.#client.send<number>(key, ['XTRIM', key, 'MINID', '~', minId]);
  }

  async trimOldest(topic: string, count: number, beforeId: string | null): Promise<number> {
    const key = this.#names.stream(topic);
    const bound = beforeId ?? MAX_ID;
    let left = Math.max(0, count);
    let removed = 0;
    // Whole stream nodes first (cheap), each round at most `left` entries...
    while (left > 0) {
      const n = await this.#client.send<number>(key, ['XTRIM', key, 'MINID', '~', bound, 'LIMIT', String(left)]);
      if (n === 0) break;
      removed += n;
      left -= n;
    }
    if (left === 0) return removed;
    // ...then exactly: what remains to remove lies within one node (or is < `left`).
    const take = Math.min(left, EXACT_TRIM_WINDOW);
    const head = await this.#client.send<RawEntry[]>(key, ['XRANGE', key, '-', '+', 'COUNT', String(take + 1)]);
    const firstKept = head[take]?.[0];
    let cut = firstKept ?? (head.length > 0 ? nextId(head[head.length - 1]![0]) : null);
    if (cut === null) return removed;
    if (compareIds(bound, cut) < 0) cut = bound;
    return removed + (await this.#client.send<number>(key, ['XTRIM', key, 'MINID', cut]));
  }

  async oldestPending(topic: string, group: string): Promise<string | null> {
    try {
      const key = this.#names.stream(topic);
      const [count, smallest] = await this.#client.send<[number, string | null, ...unknown[]]>(key, ['XPENDING', key, group]);
      return Number(count) > 0 ? smallest : null;
    } catch (error) {
      if (isRedisError(error, 'NOGROUP')) return null;
      throw error;
    }
  }

  /**
   * Removes the group's consumers other than `keep` that have nothing pending and have
   * been idle at least minIdleMs (processes that are gone: each process joins under a
   * name of its own). Returns how many went.
   */
  async forgetIdleConsumers(topic: string, group: string, keep: string, minIdleMs: number): Promise<number> {
    const key = this.#names.stream(topic);
    let consumers: RawInfo[];
    try {
      consumers = await this.#client.send<RawInfo[]>(key, ['XINFO', 'CONSUMERS', key, group]);
    } catch (error) {
      if (isRedisError(error, 'NOGROUP') || isRedisError(error, 'no such key')) return 0;
      throw error;
    }
    let removed = 0;
    for (const consumer of consumers.map(infoMap)) {
      const name = String(consumer.get('name'));
      if (name === keep || Number(consumer.get('pending') ?? 0) > 0 || Number(consumer.get('idle') ?? 0) < minIdleMs) continue;
      await this.#client.send(key, ['XGROUP', 'DELCONSUMER', key, group, name]);
      removed += 1;
    }
    return removed;
  }

  /**
   * The newest entry id of each of `topics` (null: empty or missing), read in one
   * transaction: a consistent cut across streams that are written together.
   */
  async lastIds(topics: readonly string[]): Promise<(string | null)[]> {
    if (topics.length === 0) return [];
    const commands = topics.map((topic) => {
      const key = this.#names.stream(topic);
      return ['XREVRANGE', key, '+', '-', 'COUNT', '1'];
    });
    const replies = (await runCommands(this.#client, commands)) as RawEntry[][];
    return replies.map((reply) => reply[0]?.[0] ?? null);
  }

  /** The ids of every entry pending on `group` (any consumer), oldest first; none without the group. */
  async pendingIds(topic: string, group: string): Promise<string[]> {
    const key = this.#names.stream(topic);
    const ids: string[] = [];
    for (let start = '-'; ; ) {
      let page: [string, ...unknown[]][];
      try {
        page = await this.#client.send<[string, ...unknown[]][]>(key, ['XPENDING', key, group, start, '+', String(PENDING_PAGE)]);
      } catch (error) {
        if (isRedisError(error, 'NOGROUP') || isRedisError(error, 'no such key')) return ids;
        throw error;
      }
      for (const [id] of page) ids.push(id);
      if (page.length < PENDING_PAGE) return ids;
      start = `(${page[page.length - 1]![0]}`;
    }
  }

  /**
   * In one transaction: writes `state`, deletes `group` from every topic of `retire`
   * (XGROUP DESTROY), and places it on `place.topic` at `place.startId` (created there,
   * or moved there when it exists: XGROUP SETID). For a service that reads a topic in
   * place of others from now on (the monitor's upgrade, src/services/monitor/retire.ts).
   */
  async moveGroup(group: string, retire: readonly string[], place: { topic: string; startId: string; exists: boolean }, state: { key: string; parts: PartsChange }): Promise<void> {
    const { prefix } = this.#names;
    const target = this.#names.stream(place.topic);
    const commands: string[][] = [
      ...stateCommands(prefix + state.key, state.parts),
      ...retire.map((topic) => ['XGROUP', 'DESTROY', this.#names.stream(topic), group]),
      place.exists ? ['XGROUP', 'SETID', target, group, place.startId] : ['XGROUP', 'CREATE', target, group, place.startId, 'MKSTREAM'],
    ];
    // XGROUP names its key at [2], not [1] (runCommands' rule): one transaction, routed by
    // the state key (an account's keys share one slot: its prefix holds a hash tag).
    await this.#client.transaction(prefix + state.key, commands);
  }

  trimNow(): Promise<TrimResult[]> {
    return this.#trimmer.runOnce();
  }

  backlogs(): readonly GroupBacklog[] {
    return this.#trimmer.backlogs;
  }

  /**
   * Takes the lease `key` (a name from StreamNames, unprefixed) for `holder`, or extends it
   * when `holder` already has it, for ttlMs; false while someone else holds it.
   */
  async acquireOrRenewLease(key: string, holder: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#client.send<number>(this.prefix + key, ['EVAL', LEASE_SCRIPT, '1', this.prefix + key, holder, String(ttlMs)]);
    return Number(reply) === 1;
  }

  /** Gives the lease up when `holder` has it (a clean shutdown: the standby need not wait for it to lapse). */
  async releaseLease(key: string, holder: string): Promise<void> {
    await this.#client.send(this.prefix + key, ['EVAL', RELEASE_SCRIPT, '1', this.prefix + key, holder]);
  }

  async getValue(key: string): Promise<string | null> {
    return this.#client.send<string | null>(this.prefix + key, ['GET', this.prefix + key]);
  }

  async setValue(key: string, value: string): Promise<void> {
    await this.#client.send(this.prefix + key, ['SET', this.prefix + key, value]);
  }

  async getState(key: string): Promise<StoredState | null> {
    const reply = await this.#client.send<[string, (string | string[])?]>(this.prefix + key, ['EVAL', GET_STATE_SCRIPT, '1', this.prefix + key]);
    const [kind, content] = reply;
    if (kind === 'none') return null;
    if (kind === 'string' && typeof content === 'string') return { value: content };
    if (kind === 'hash' && Array.isArray(content)) {
      const fields = new Map<string, string>();
      for (let i = 0; i + 1 < content.length; i += 2) fields.set(content[i]!, content[i + 1]!);
      return { fields };
    }
    throw new Error(`${this.prefix + key} holds a ${kind}, not a snapshot`);
  }

  async setState(key: string, change: PartsChange): Promise<void> {
    const commands = stateCommands(this.prefix + key, change);
    if (commands.length > 0) await runCommands(this.#client, commands);
  }

  async ping(): Promise<boolean> {
    // While reconnecting a command would wait in the offline queue: answer at once instead.
    if (!this.#client.isReady) return false;
    // A stalled Redis keeps the connection open and never answers: give up in time for /health.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    });
    try {
      const answer = this.#client.send<string>(this.#homeKey, ['PING']).then((reply) => reply === 'PONG', () => false);
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#trimmer.stop();
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    if (!this.#client.isOpen) return;
    if (this.#client.isReady) await this.#client.close();
    else this.#client.destroy();
  }

  #xadd(topic: string, fields: Fields): string[] {
    this.#trimmer.touch(topic);
    return xaddArgs(this.#names.stream(topic), fields);
  }
}

interface ReaderSettings {
  /** A dedicated, not yet connected connection with the offline queue disabled. */
  client: RedisLink;
  names: StreamNames;
  topics: readonly string[];
  group: string;
  consumer: string;
  startId: string;
  xadd: (topic: string, fields: Fields) => string[];
  onError: (error: unknown) => void;
}

/** The GroupReader of one Redis subscription, on its own connection. */
class RedisGroupReader implements GroupReader {
  readonly #client: RedisLink;
  readonly #settings: ReaderSettings;
  readonly #keys: readonly string[];
  /** Stream key → position of its topic in the subscription (for handling order). */
  readonly #topicIndex: ReadonlyMap<string, number>;
  #blocking = false;
  #disposed = false;

  constructor(settings: ReaderSettings) {
    this.#settings = settings;
    this.#client = settings.client;
    this.#keys = settings.topics.map((topic) => settings.names.stream(topic));
    this.#topicIndex = new Map(this.#keys.map((key, index) => [key, index]));
    this.#client.onError(settings.onError);
  }

  async prepare(): Promise<void> {
    if (this.#disposed) throw new Error('subscription closed');
    if (!this.#client.isOpen) await this.#client.connect();
    // Also recreates a group after a Redis restart that lost the data (NOGROUP).
    for (const key of this.#keys) await createGroup(this.#client, key, this.#settings.group, this.#settings.startId);
  }

  async readOwnPending(topic: string, afterId: string, count: number): Promise<PendingEntry[]> {
    const { names, group, consumer } = this.#settings;
    const key = names.stream(topic);
    const reply = await this.#client.send<RawStreams>(key, [
      'XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), 'STREAMS', key, afterId,
    ]);
    return (reply?.[0]?.[1] ?? []).map(([id, flat]) => ({ id, fields: flat === null ? null : fieldsOf(flat) }));
  }

  async claimIdle(topic: string, minIdleMs: number, cursor: string, count: number): Promise<ClaimPage> {
    const { names, group, consumer } = this.#settings;
    const key = names.stream(topic);
    const [next, claimed] = await this.#client.send<RawAutoClaim>(key, [
      'XAUTOCLAIM', key, group, consumer, String(minIdleMs), cursor, 'COUNT', String(count),
    ]);
    const entries: StreamEntry[] = [];
    // Redis 6.2 answers nil for claimed ids that were deleted; 7 lists them separately.
    for (const entry of claimed) if (entry !== null && entry[1] !== null) entries.push(toStreamEntry(entry));
    return { next, entries };
  }

  async readNew(count: number, blockMs: number): Promise<readonly TopicBatch[]> {
    const { group, consumer, topics } = this.#settings;
    this.#blocking = true;
    let reply: RawStreams;
    try {
      reply = await this.#client.send<RawStreams>(this.#keys[0], [
        'XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), 'BLOCK', String(blockMs),
        'STREAMS', ...this.#keys, ...this.#keys.map(() => '>'),
      ]);
    } finally {
      this.#blocking = false;
    }
    const batches: { index: number; batch: TopicBatch }[] = [];
    for (const [key, entries] of reply ?? []) {
      const index = this.#topicIndex.get(key);
      const topic = index === undefined ? undefined : topics[index];
      if (index === undefined || topic === undefined || entries.length === 0) continue;
      batches.push({ index, batch: { topic, entries: entries.map(toStreamEntry) } });
    }
    return batches.sort((a, b) => a.index - b.index).map(({ batch }) => batch);
  }

  async commit({ writes, acks, state }: Commit): Promise<void> {
    const { names, group } = this.#settings;
    const commands: string[][] = [];
    for (const write of writes) commands.push(this.#settings.xadd(write.topic, write.fields));
    if (state) {
      if ('parts' in state) commands.push(...stateCommands(names.prefix + state.key, state.parts));
      else commands.push(['SET', names.prefix + state.key, state.value]);
    }
    for (const [topic, ids] of acks) {
      if (ids.length > 0) commands.push(['XACK', names.stream(topic), group, ...ids]);
    }
    if (commands.length > 0) await runCommands(this.#client, commands);
  }

  /**
   * Closing: a blocked read (or any command waiting for a reconnect) is cut short by
   * dropping the connection. Entries Redis handed over in that instant stay pending on
   * this consumer: re-read when it restarts under the same name, else claimed by another.
   */
  interrupt(): void {
    if (this.#blocking || !this.#client.isReady) this.#dispose();
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    if (this.#client.isReady) {
      this.#disposed = true;
      await this.#client.close();
    } else {
      this.#dispose();
    }
  }

  #dispose(): void {
    this.#disposed = true;
    if (this.#client.isOpen) this.#client.destroy();
  }
}
