/**
 * The in-process bus: Redis Streams semantics without a server (SPEC §3), the default
 * when no Redis URL is configured. Ids are `<ms>-<seq>` from the injected clock and
 * strictly increasing; consumer groups keep a last-delivered position and a pending
 * entries list (consumer, delivery count, last delivery time); idle entries can be
 * claimed; trimming is approximate like Redis' (whole chunks of APPROX_TRIM_SLACK).
 *
 * Consumers wait on a per-stream waiter set that appends wake, so nothing polls, and a
 * handler never runs inside publish (waking only resolves a promise). Payloads are stored
 * as their JSON, as Redis would hold them. Every group's deliveries share the stored
 * `fields` object and, when the groups use the same decoder, one decoded `message` (an
 * entry is decoded once, not once per group): both read-only by contract. Not frozen,
 * because freezing costs more than the decode it saves (freezeMessages does, for tests);
 * readAfter/readLatest hand out copies.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../platform/clock.js';
import {
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
  type AnySubscribeOptions,
  type ClaimPage,
  type Commit,
  type GroupReader,
  type PendingEntry,
  type TopicBatch,
} from './consumer.js';
import type { PartsChange, StoredState } from '../core/snapshot-parts.js';
import { StreamNames } from './topics.js';
import { DEFAULT_TRIM_INTERVAL_MS, PeriodicTrimmer, type GroupBacklog, type TrimResult } from './trim.js';

/** Removed entries are compacted away once this many have accumulated at the front. */
const COMPACT_AFTER = 4096;

/**
 * Decoded messages kept per stream for the groups that have not read them yet: enough
 * for groups a few batches apart; a group further behind decodes for itself.
 */
const SHARED_DECODES = 2048;

/** An entry's decoded message, shared by the groups that decode it with the same function. */
interface Memo {
  readonly by: unknown;
  readonly message: unknown;
  /** Groups that have taken it; dropped once every group of the stream has. */
  reads: number;
}

/** Kept small: every stored entry lives until trimmed, and each object in it costs GC time. */
interface StoredEntry {
  readonly id: string;
  /** Position in the stream since its creation; the entry is gone once abs < firstAbs. */
  readonly abs: number;
  readonly fields: Readonly<Fields>;
  memo: Memo | null;
}

/** Freezes `value` and everything reachable from it (EmbeddedBusOptions.freezeMessages). */
function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}

interface PendingSlot {
  readonly entry: StoredEntry;
  consumer: string;
  deliveries: number;
  lastDelivery: number;
}

/** A batch handed to one consumer, pending as a whole until acknowledged whole (the hot path). */
interface Run {
  readonly consumer: string;
  readonly entries: readonly StoredEntry[];
  readonly deliveredAt: number;
}

/**
 * A consumer group. Its pending entries list is kept in two forms: whole runs (a batch
 * delivered and acknowledged in one piece costs O(1), not a map insert and delete per
 * entry) and single slots, into which runs are split when a part of one is acknowledged
 * or someone looks at individual entries (pending re-reads, claims).
 */
class MemGroup {
  /** Absolute position of the first entry never delivered to this group. */
  nextAbs: number;
  lastDeliveredId: string;
  readonly consumers = new Set<string>();
  readonly #slots = new Map<string, PendingSlot>();
  readonly #runs = new Set<Run>();

  constructor(nextAbs: number, lastDeliveredId: string) {
    this.nextAbs = nextAbs;
    this.lastDeliveredId = lastDeliveredId;
  }

  get pendingCount(): number {
    let count = this.#slots.size;
    for (const run of this.#runs) count += run.entries.length;
    return count;
  }

  addRun(run: Run): void {
    this.#runs.add(run);
  }

  /** Acknowledges `ids`; `run` is the batch they came from, when they all did. */
  ack(ids: readonly string[], run: Run | null): void {
    if (run !== null && this.#runs.has(run)) {
      if (ids.length === run.entries.length) {
        this.#runs.delete(run);
        return;
      }
      this.#split(run);
    }
    for (const id of ids) this.#slots.delete(id);
  }

  /** Every pending entry, one slot each, oldest first. */
  slots(): PendingSlot[] {
    for (const run of this.#runs) this.#split(run);
    return [...this.#slots.values()].sort((a, b) => a.entry.abs - b.entry.abs);
  }

  /** The oldest entry pending on this group, or undefined. */
  oldestPending(): StoredEntry | undefined {
    let oldest: StoredEntry | undefined;
    for (const run of this.#runs) {
      const first = run.entries[0];
      if (first && (!oldest || first.abs < oldest.abs)) oldest = first;
    }
    for (const slot of this.#slots.values()) if (!oldest || slot.entry.abs < oldest.abs) oldest = slot.entry;
    return oldest;
  }

  forget(id: string): void {
    this.#slots.delete(id);
  }

  #split(run: Run): void {
    this.#runs.delete(run);
    for (const entry of run.entries) {
      this.#slots.set(entry.id, { entry, consumer: run.consumer, deliveries: 1, lastDelivery: run.deliveredAt });
    }
  }
}

interface ParsedId {
  ms: number;
  seq: number;
}

function parseId(id: string): ParsedId {
  const dash = id.indexOf('-');
  const ms = Number(dash === -1 ? id : id.slice(0, dash));
  const seq = dash === -1 ? 0 : Number(id.slice(dash + 1));
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq) || ms < 0 || seq < 0) {
    throw new Error(`invalid stream id "${id}"`);
  }
  return { ms, seq };
}

function compareParsed(a: ParsedId, b: ParsedId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

function isAfter(entry: StoredEntry, id: ParsedId): boolean {
  return compareParsed(parseId(entry.id), id) > 0;
}

/** How many live entries of `stream` have an id < `minId`. */
function countBefore(stream: MemStream, minId: string): number {
  const { ms, seq } = parseId(minId);
  if (ms === 0 && seq === 0) return 0;
  // Entries with id < minId are those up to and including the id just below it.
  const below: ParsedId = seq > 0 ? { ms, seq: seq - 1 } : { ms: ms - 1, seq: Number.MAX_SAFE_INTEGER };
  return stream.positionAfter(below) - stream.firstAbs;
}

function toStreamEntry(entry: StoredEntry): StreamEntry {
  return { id: entry.id, fields: { ...entry.fields } };
}

/** Resolves on the next append to any of `streams`, after `ms`, or when the function handed to `register` is called. */
function waitForAppend(streams: readonly MemStream[], ms: number, register: (cancel: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      for (const stream of streams) stream.removeWaiter(finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    for (const stream of streams) stream.addWaiter(finish);
    register(finish);
  });
}

class MemStream {
  readonly name: string;
  readonly groups = new Map<string, MemGroup>();
  /** Live entries are entries[head..]; entries[0] has absolute position `base`. */
  #entries: StoredEntry[] = [];
  #head = 0;
  #base = 0;
  #lastMs = 0;
  #lastSeq = 0;
  /** `${lastMs}-`, shared by the ids of one millisecond (fewer string objects per entry). */
  #idPrefix = '0-';
  readonly #waiters = new Set<() => void>();
  /** The entries holding a memo, oldest replaced first (at most SHARED_DECODES). */
  readonly #memos: (StoredEntry | undefined)[] = [];
  #memoNext = 0;

  constructor(name: string) {
    this.name = name;
  }

  get length(): number {
    return this.#entries.length - this.#head;
  }

  /** Absolute position of the oldest live entry. */
  get firstAbs(): number {
    return this.#base + this.#head;
  }

  /** Entries ever appended: the absolute position of the next one. */
  get endAbs(): number {
    return this.#base + this.#entries.length;
  }

  first(): StoredEntry | undefined {
    return this.#entries[this.#head];
  }

  last(): StoredEntry | undefined {
    return this.length > 0 ? this.#entries[this.#entries.length - 1] : undefined;
  }

  append(fields: Readonly<Fields>, now: number): StoredEntry {
    // Redis' rule: when the clock stands still or steps back, ids still grow.
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#lastSeq = 0;
      this.#idPrefix = `${now}-`;
    } else {
      this.#lastSeq += 1;
    }
    const entry: StoredEntry = { id: this.#idPrefix + this.#lastSeq, abs: this.endAbs, fields, memo: null };
    this.#entries.push(entry);
    return entry;
  }

  /** `entry`'s message as `decode` makes it, decoded once for all the groups that use `key`. */
  decodeShared(topic: string, entry: StoredEntry, key: unknown, decode: (topic: string, fields: Fields, id: string) => unknown, freeze: boolean): unknown {
    const memo = entry.memo;
    if (memo !== null && memo.by === key) {
      memo.reads += 1;
      if (memo.reads >= this.groups.size) entry.memo = null;
      return memo.message;
    }
    const message = decode(topic, entry.fields, entry.id); // a DecodeError propagates: each group dead-letters it itself
    if (freeze) deepFreeze(message);
    if (this.groups.size > 1) {
      const evicted = this.#memos[this.#memoNext];
      if (evicted !== undefined) evicted.memo = null;
      this.#memos[this.#memoNext] = entry;
      this.#memoNext = (this.#memoNext + 1) % SHARED_DECODES;
      entry.memo = { by: key, message, reads: 1 };
    }
    return message;
  }

  /** Absolute position of the first live entry with id > `id`. */
  positionAfter(id: ParsedId): number {
    let low = this.#head;
    let high = this.#entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (isAfter(this.#entries[mid] as StoredEntry, id)) high = mid;
      else low = mid + 1;
    }
    return this.#base + low;
  }

  /** Drops the oldest `count` entries; returns how many went. */
  dropOldest(count: number): number {
    const removed = Math.max(0, Math.min(count, this.length));
    this.#head += removed;
    if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
    return removed;
  }

  /** Live entries from absolute position `fromAbs`, at most `count`. */
  slice(fromAbs: number, count: number): StoredEntry[] {
    const start = Math.max(fromAbs, this.firstAbs) - this.#base;
    return this.#entries.slice(start, start + count);
  }

  /** The newest `count` live entries, newest first. */
  newest(count: number): StoredEntry[] {
    return this.#entries.slice(Math.max(this.#head, this.#entries.length - count)).reverse();
  }

  /** Creates the group when missing, like XGROUP CREATE: '0' = whole stream, '$' = new entries only. */
  group(name: string, startId: string): MemGroup {
    let group = this.groups.get(name);
    if (!group) {
      group =
        startId === '$'
          ? new MemGroup(this.endAbs, `${this.#lastMs}-${this.#lastSeq}`)
          : new MemGroup(this.positionAfter(parseId(startId)), startId === '0' ? '0-0' : startId);
      this.groups.set(name, group);
    }
    return group;
  }

  /** XREADGROUP ... >: hands up to `count` never-delivered entries to `consumer`; null when none. */
  deliverNew(group: MemGroup, consumer: string, count: number, now: number): Run | null {
    group.consumers.add(consumer);
    if (group.nextAbs >= this.endAbs) return null;
    const entries = this.slice(group.nextAbs, count);
    const last = entries[entries.length - 1];
    if (last === undefined) return null;
    group.nextAbs = last.abs + 1;
    group.lastDeliveredId = last.id;
    const run: Run = { consumer, entries, deliveredAt: now };
    group.addRun(run);
    return run;
  }

  addWaiter(wake: () => void): void {
    this.#waiters.add(wake);
  }

  removeWaiter(wake: () => void): void {
    this.#waiters.delete(wake);
  }

  /** Wakes everyone waiting for an append (each waiter is called once, then forgotten). */
  notify(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

export interface EmbeddedBusOptions {
  prefix?: string;
  /** Default maxlen of the default policy (100 000): the periodic trimmer's target. */
  maxlen?: number;
  /** How often the streams this bus uses are trimmed behind their groups; 0 = never. Default 10 000 ms. */
  trimIntervalMs?: number;
  /** Overrides the trimming policy entirely. */
  maxlenFor?: MaxlenPolicy;
  /** Makes entry ids and pending times; also stamps dead letters and schedules retries. */
  clock?: Clock;
  /** Where retried failures are reported when a subscription has no onError. */
  onError?: (error: unknown) => void;
  /**
   * Deep-freezes every decoded message handed to a handler, so a handler that changes its
   * message (shared with the other groups) throws: for tests. Default false (freezing costs).
   */
  freezeMessages?: boolean;
}

export class EmbeddedBus implements EventBus {
  readonly kind = 'embedded' as const;
  readonly prefix: string;
  readonly #names: StreamNames;
  readonly #trimmer: PeriodicTrimmer;
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;
  /** Keyed by base topic; each stream knows its prefixed name. */
  readonly #streams = new Map<string, MemStream>();
  /** A value is a string, how to make it when read (setLazyValue), or a hash's fields (setState). */
  readonly #values = new Map<string, string | (() => Promise<string>) | Map<string, string>>();
  readonly #subscriptions = new Set<Subscription>();
  /** Every prepared subscription's reader, for settled(). */
  readonly #readers = new Set<EmbeddedGroupReader<unknown>>();
  readonly #settleWaiters: (() => void)[] = [];
  #appends = 0;
  #closed = false;
  readonly freezeMessages: boolean;

  constructor(options: EmbeddedBusOptions = {}) {
    this.prefix = options.prefix ?? '';
    this.freezeMessages = options.freezeMessages === true;
    this.#names = new StreamNames(this.prefix);
    this.#trimmer = new PeriodicTrimmer(
      this,
      options.maxlenFor ?? defaultMaxlenPolicy(options.maxlen),
      options.trimIntervalMs ?? DEFAULT_TRIM_INTERVAL_MS,
    );
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError ?? ((error) => console.error(`[bus] ${errorMessage(error)}`));
  }

  async publish(topic: string, payload: unknown): Promise<string> {
    return this.#append(topic, encodePayload(payload), this.#clock.now()).id;
  }

  async publishMany(items: readonly Outbound[]): Promise<string[]> {
    // Encode everything first so a bad payload publishes nothing.
    const encoded = items.map((item) => ({ topic: item.topic, fields: encodePayload(item.payload) }));
    const now = this.#clock.now();
    return encoded.map((item) => this.#append(item.topic, item.fields, now).id);
  }

  async publishRaw(topic: string, fields: Record<string, string>): Promise<string> {
    assertHasFields(fields);
    return this.#append(topic, { ...fields }, this.#clock.now()).id;
  }

  subscribe<T>(options: SubscribeOptions<T> | MultiSubscribeOptions<T>): Subscription {
    this.#assertOpen();
    for (const topic of topicsOf(options)) this.#trimmer.touch(topic);
    const reader = new EmbeddedGroupReader(this, topicsOf(options), options);
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
    const stream = this.#streams.get(topic);
    if (!stream || count <= 0) return [];
    return stream.slice(stream.positionAfter(parseId(afterId)), count).map(toStreamEntry);
  }

  async readLatest(topic: string, count: number): Promise<StreamEntry[]> {
    const stream = this.#streams.get(topic);
    if (!stream || count <= 0) return [];
    return stream.newest(count).map(toStreamEntry);
  }

  async length(topic: string): Promise<number> {
    return this.#streams.get(topic)?.length ?? 0;
  }

  async info(topic: string): Promise<StreamInfo> {
    const stream = this.#streams.get(topic);
    const groups: GroupInfo[] = [...(stream?.groups ?? [])].map(([name, group]) => ({
      name,
      consumers: group.consumers.size,
      pending: group.pendingCount,
      // Redis' definition: entries added minus entries read, trimmed ones included.
      lag: stream ? Math.max(0, stream.endAbs - group.nextAbs) : 0,
      last_delivered_id: group.lastDeliveredId,
    }));
    // XINFO GROUPS lists groups in name order.
    groups.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      topic,
      stream: this.#names.stream(topic),
      length: stream?.length ?? 0,
      first_id: stream?.first()?.id ?? null,
      last_id: stream?.last()?.id ?? null,
      groups,
    };
  }

  async ensureGroup(topic: string, group: string, startId: string = SUBSCRIBE_DEFAULTS.startId): Promise<void> {
    this.#assertOpen();
    this.streamOf(topic).group(group, startId);
  }

  async trim(topic: string, maxlen: number): Promise<number> {
    const stream = this.#streams.get(topic);
    return stream ? stream.dropOldest(stream.length - Math.max(0, maxlen)) : 0;
  }

  async trimBefore(topic: string, minId: string): Promise<number> {
    const stream = this.#streams.get(topic);
    return stream ? stream.dropOldest(countBefore(stream, minId)) : 0;
  }

  async trimOldest(topic: string, count: number, beforeId: string | null): Promise<number> {
    const stream = this.#streams.get(topic);
    if (!stream) return 0;
    const removable = beforeId === null ? stream.length : countBefore(stream, beforeId);
    return stream.dropOldest(Math.min(Math.max(0, count), removable));
  }

  async oldestPending(topic: string, group: string): Promise<string | null> {
    return this.#streams.get(topic)?.groups.get(group)?.oldestPending()?.id ?? null;
  }

  trimNow(): Promise<TrimResult[]> {
    return this.#trimmer.runOnce();
  }

  backlogs(): readonly GroupBacklog[] {
    return this.#trimmer.backlogs;
  }

  async getValue(key: string): Promise<string | null> {
    const value = this.#values.get(this.prefix + key);
    if (value instanceof Map) throw new Error(`WRONGTYPE ${this.prefix + key} holds a hash (a snapshot by parts: getState)`);
    return typeof value === 'function' ? value() : (value ?? null);
  }

  async getState(key: string): Promise<StoredState | null> {
    const value = this.#values.get(this.prefix + key);
    if (value === undefined) return null;
    if (value instanceof Map) return { fields: new Map(value) };
    return { value: typeof value === 'function' ? await value() : value };
  }

  async setState(key: string, change: PartsChange): Promise<void> {
    this.#assertOpen();
    this.#applyState(key, change);
  }

  /** An amendment needs parts at the key (Redis answers WRONGTYPE for a string); checked before a commit applies anything. */
  #checkState(key: string, change: PartsChange): void {
    const current = this.#values.get(this.prefix + key);
    if (!change.replace && current !== undefined && !(current instanceof Map)) {
      throw new Error(`WRONGTYPE ${this.prefix + key} holds a string, not a snapshot by parts`);
    }
  }

  /** As Redis applies stateCommands: DEL (replace) or HDEL, then HSET; a hash left without fields is gone. */
  #applyState(key: string, change: PartsChange): void {
    this.#checkState(key, change);
    const current = this.#values.get(this.prefix + key);
    const fields = change.replace || !(current instanceof Map) ? new Map<string, string>() : current;
    if (!change.replace) for (const field of change.del) fields.delete(field);
    for (let i = 0; i + 1 < change.set.length; i += 2) fields.set(change.set[i]!, change.set[i + 1]!);
    if (fields.size === 0) this.#values.delete(this.prefix + key);
    else this.#values.set(this.prefix + key, fields);
  }

  /**
   * Stores how to make `key`'s value instead of the value: getValue calls `read`.
   * For the services' snapshots (SPEC §7: in embedded mode state lives in the process):
   * the host hands over a reader that serialises its state between batches, instead of
   * writing the whole state with every batch. A later setValue replaces it.
   */
  setLazyValue(key: string, read: () => Promise<string>): void {
    this.#assertOpen();
    this.#values.set(this.prefix + key, read);
  }

  async setValue(key: string, value: string): Promise<void> {
    this.#assertOpen();
    this.#values.set(this.prefix + key, value);
  }

  async ping(): Promise<boolean> {
    return !this.#closed;
  }

  async close(): Promise<void> {
    this.#trimmer.stop();
    // Subscriptions first: their in-flight batches still commit into the open bus.
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    this.#closed = true;
  }

  /** Entries appended so far (all streams): a cheap "did anything happen" check. */
  get appendCount(): number {
    return this.#appends;
  }

  /**
   * True when the loop on this bus has nothing left to do: every subscription is parked
   * waiting for new entries, none of its streams holds an entry it has not been handed,
   * and nothing is pending (handed but unacknowledged). Work started outside a
   * subscription (a timer's publish) is not seen here: whoever starts it awaits it.
   */
  settled(): boolean {
    if (this.#readers.size === 0) return true;
    for (const reader of this.#readers) if (!reader.settled()) return false;
    return true;
  }

  /**
   * Resolves once settled() holds (at once when it does): the honest "idle" signal a
   * replay waits on after each input, instead of sleeping. Checked whenever a
   * subscription parks, so it costs nothing while the loop is busy.
   */
  whenSettled(): Promise<void> {
    if (this.settled()) return Promise.resolve();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  /** Every key this bus holds (streams and values), prefix included; for tests and debugging. */
  keys(): string[] {
    return [...[...this.#streams.values()].map((stream) => stream.name), ...this.#values.keys()];
  }

  /**
   * Delivers up to `count` new entries to `consumer` without handling or acknowledging
   * them (XREADGROUP ... >): the primitive under subscribe, public so tests can play a
   * consumer that dies mid-batch.
   */
  readGroup(topic: string, group: string, consumer: string, count: number): StreamEntry[] {
    const stream = this.#streams.get(topic);
    const found = stream?.groups.get(group);
    if (!stream || !found) throw new Error(`NOGROUP no group "${group}" on ${this.#names.stream(topic)}`);
    return stream.deliverNew(found, consumer, count, this.#clock.now())?.entries.map(toStreamEntry) ?? [];
  }

  /** XACK for entries handed out by readGroup (tests playing a consumer by hand). */
  acknowledge(topic: string, group: string, ids: readonly string[]): void {
    const found = this.#streams.get(topic)?.groups.get(group);
    if (!found) throw new Error(`NOGROUP no group "${group}" on ${this.#names.stream(topic)}`);
    found.slots(); // splits the runs, so single entries can be acknowledged
    found.ack(ids, null);
  }

  // ---- used by EmbeddedGroupReader ----

  addReader(reader: EmbeddedGroupReader<unknown>): void {
    this.#readers.add(reader);
  }

  removeReader(reader: EmbeddedGroupReader<unknown>): void {
    this.#readers.delete(reader);
    this.readerParked();
  }

  /** A reader parked (or left): wake whoever waits for the loop to settle, if it has. */
  readerParked(): void {
    if (this.#settleWaiters.length === 0 || !this.settled()) return;
    const waiters = this.#settleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  now(): number {
    return this.#clock.now();
  }

  /** The stream, created when missing (like MKSTREAM). */
  streamOf(topic: string): MemStream {
    let stream = this.#streams.get(topic);
    if (!stream) {
      stream = new MemStream(this.#names.stream(topic));
      this.#streams.set(topic, stream);
    }
    return stream;
  }

  /**
   * Applies a batch's writes, state and acks in one synchronous step: atomic by
   * construction. `runs` are the batches of the last read, per topic.
   */
  applyCommit(commit: Commit, groupOf: (topic: string) => MemGroup, runs: ReadonlyMap<string, Run>): void {
    this.#assertOpen();
    // One clock reading for the whole commit, like one MULTI/EXEC (ids still grow by seq).
    const now = this.#clock.now();
    // Checked first, so a commit that cannot apply its state applies nothing.
    if (commit.state && 'parts' in commit.state) this.#checkState(commit.state.key, commit.state.parts);
    for (const write of commit.writes) this.#append(write.topic, write.fields, now);
    if (commit.state) {
      if ('parts' in commit.state) this.#applyState(commit.state.key, commit.state.parts);
      else this.#values.set(this.prefix + commit.state.key, commit.state.value);
    }
    for (const [topic, ids] of commit.acks) {
      if (ids.length > 0) groupOf(topic).ack(ids, runs.get(topic) ?? null);
    }
  }

  #append(topic: string, fields: Fields, now: number): StoredEntry {
    this.#assertOpen();
    this.#trimmer.touch(topic);
    const stream = this.streamOf(topic);
    const entry = stream.append(fields, now);
    this.#appends += 1;
    stream.notify();
    return entry;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the embedded bus is closed');
  }
}

interface Lane {
  readonly topic: string;
  readonly stream: MemStream;
  readonly group: MemGroup;
}

/** The GroupReader of one embedded subscription: one lane (stream and group) per topic. */
class EmbeddedGroupReader<T> implements GroupReader {
  readonly #bus: EmbeddedBus;
  readonly #topics: readonly string[];
  readonly #groupName: string;
  readonly #consumer: string;
  readonly #startId: string;
  #lanes: Lane[] = [];
  readonly #laneByTopic = new Map<string, Lane>();
  /** The batches of the last readNew, per topic, until their commit. */
  readonly #runs = new Map<string, Run>();
  #cancelWait: (() => void) | null = null;
  #interrupted = false;
  /** Waiting in readNew with nothing to hand out. */
  #parked = false;

  constructor(bus: EmbeddedBus, topics: readonly string[], options: AnySubscribeOptions<T>) {
    this.#bus = bus;
    this.#topics = topics;
    this.#groupName = options.group;
    this.#consumer = options.consumer;
    this.#startId = options.startId ?? SUBSCRIBE_DEFAULTS.startId;
    // Known from the start: a subscription that has not parked yet is not settled.
    bus.addReader(this as EmbeddedGroupReader<unknown>);
  }

  async prepare(): Promise<void> {
    this.#lanes = this.#topics.map((topic) => {
      const stream = this.#bus.streamOf(topic);
      const group = stream.group(this.#groupName, this.#startId);
      group.consumers.add(this.#consumer);
      return { topic, stream, group };
    });
    this.#laneByTopic.clear();
    for (const lane of this.#lanes) this.#laneByTopic.set(lane.topic, lane);
  }

  /** Parked, with nothing new and nothing pending on any of its lanes. */
  settled(): boolean {
    if (!this.#parked) return false;
    for (const { stream, group } of this.#lanes) {
      if (group.nextAbs < stream.endAbs || group.pendingCount > 0) return false;
    }
    return true;
  }

  async readOwnPending(topic: string, afterId: string, count: number): Promise<PendingEntry[]> {
    const { stream, group } = this.#lane(topic);
    this.#runs.clear();
    const after = parseId(afterId);
    const now = this.#bus.now();
    const result: PendingEntry[] = [];
    for (const slot of group.slots()) {
      if (result.length >= count) break;
      if (slot.consumer !== this.#consumer || !isAfter(slot.entry, after)) continue;
      slot.deliveries += 1;
      slot.lastDelivery = now;
      const live = slot.entry.abs >= stream.firstAbs;
      result.push(live ? slot.entry : { id: slot.entry.id, fields: null });
    }
    return result;
  }

  async claimIdle(topic: string, minIdleMs: number, cursor: string, count: number): Promise<ClaimPage> {
    const { stream, group } = this.#lane(topic);
    this.#runs.clear();
    const start = parseId(cursor);
    const now = this.#bus.now();
    const entries: StreamEntry[] = [];
    for (const slot of group.slots()) {
      const { entry } = slot;
      const { id } = entry;
      if (compareParsed(parseId(id), start) < 0) continue;
      if (entries.length >= count) return { next: id, entries };
      if (now - slot.lastDelivery < minIdleMs) continue;
      if (entry.abs < stream.firstAbs) {
        group.forget(id); // trimmed meanwhile: Redis 7 XAUTOCLAIM drops these too
        continue;
      }
      slot.consumer = this.#consumer;
      slot.deliveries += 1;
      slot.lastDelivery = now;
      entries.push(entry);
    }
    return { next: '0-0', entries };
  }

  async readNew(count: number, blockMs: number): Promise<readonly TopicBatch[]> {
    const batches = this.#deliverNew(count);
    if (batches.length > 0) return batches;
    const streams = this.#lanes.map((lane) => lane.stream);
    const woken = waitForAppend(streams, blockMs, (cancel) => (this.#cancelWait = cancel));
    this.#parked = true;
    this.#bus.readerParked();
    await woken;
    this.#parked = false;
    this.#cancelWait = null;
    // Once interrupted, hand out nothing more: the loop is closing.
    return this.#interrupted ? [] : this.#deliverNew(count);
  }

  async commit(commit: Commit): Promise<void> {
    this.#bus.applyCommit(commit, (topic) => this.#lane(topic).group, this.#runs);
    this.#runs.clear();
  }

  /** Every entry this reader hands out with fields is a StoredEntry of the topic's stream. */
  decodeShared(topic: string, entry: PendingEntry, key: unknown, decode: (topic: string, fields: Fields, id: string) => unknown): unknown {
    return this.#lane(topic).stream.decodeShared(topic, entry as StoredEntry, key, decode, this.#bus.freezeMessages);
  }

  interrupt(): void {
    this.#interrupted = true;
    this.#cancelWait?.();
  }

  async dispose(): Promise<void> {
    this.#cancelWait?.();
    this.#parked = false;
    this.#bus.removeReader(this as EmbeddedGroupReader<unknown>);
  }

  /** Stored entries are handed out as they are (fields shared, read-only): no copies on the hot path. */
  #deliverNew(count: number): TopicBatch[] {
    this.#runs.clear();
    const now = this.#bus.now();
    const batches: TopicBatch[] = [];
    for (const { topic, stream, group } of this.#lanes) {
      const run = stream.deliverNew(group, this.#consumer, count, now);
      if (run === null) continue;
      this.#runs.set(topic, run);
      batches.push({ topic, entries: run.entries });
    }
    return batches;
  }

  #lane(topic: string): Lane {
    const lane = this.#laneByTopic.get(topic);
    if (!lane) throw new Error(`subscription not prepared for topic ${topic}`);
    return lane;
  }
}
