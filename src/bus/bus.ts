/**
 * The event bus contract. Two implementations (embedded, Redis Streams) keep the same
 * observable behaviour; test/bus-contract.test.ts runs one suite against both.
 *
 * Topics are base names (`trade.signal.v5`); the bus applies its stream prefix.
 * Delivery is at-least-once: an entry is acknowledged only when its handler returned
 * and the handler's outputs were written, in the same transaction as the ack.
 */
import type { PartsChange, StoredState } from '../core/snapshot-parts.js';
import { TOPICS } from './topics.js';
import type { GroupBacklog, TrimResult } from './trim.js';

/** A raw stream entry: its id and its field/value pairs. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** A message a handler wants published when (and only when) its input is acknowledged. */
export interface Outbound {
  topic: string;
  payload: unknown;
}

export interface Delivery<T> {
  topic: string;
  /** Stream entry id, e.g. "1700000000000-0". */
  id: string;
  /** Read-only: the embedded bus shares one decoded message between the groups that read it. */
  message: T;
  /** 1 on first delivery; grows with each redelivery after a handler failure. */
  attempt: number;
  /** The raw entry; read-only (the embedded bus shares it between groups). */
  fields: Readonly<Record<string, string>>;
}

export type Handler<T> = (delivery: Delivery<T>) => Outbound[] | void | Promise<Outbound[] | void>;

/** Thrown by a decoder: the entry is malformed and goes straight to `<topic>.dlq`. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

/**
 * Thrown by a handler that refuses its entry (well-formed, but against a domain rule, e.g.
 * a tick far in the future): the entry goes straight to `<topic>.dlq` with this message as
 * its reason, without retries, and the batch carries on. The handler must throw before it
 * changes anything it does not mean to keep.
 */
export class RefusedEntry extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedEntry';
  }
}

/** Settings shared by both forms of subscription. */
export interface SubscribeSettings<T> {
  group: string;
  consumer: string;
  handler: Handler<T>;
  /** Entries read per round trip (per topic). Default 256. */
  batchSize?: number;
  /** How long one blocking read waits. Default 1000 ms. */
  blockMs?: number;
  /** Deliveries before a failing entry is dead-lettered. Default 5. */
  maxAttempts?: number;
  /** Wait before a failed entry is delivered again. Default 200 ms. */
  retryDelayMs?: number;
  /** Entries pending longer than this on another consumer are claimed. Default 30 000 ms. */
  claimIdleMs?: number;
  /** How often pending entries of dead consumers are looked for. Default 10 000 ms. */
  claimIntervalMs?: number;
  /**
   * The first claim takes every entry pending on the group, however briefly idle: for a
   * consumer that holds its service's lease, so no other consumer can be working on them.
   */
  claimAllOnStart?: boolean;
  /** Where a newly created group starts: '0' (whole stream, default) or '$' (new entries only). */
  startId?: string;
  /** Called when reading, handling or committing fails in a way the bus retries. */
  onError?: (error: unknown) => void;
  /**
   * Called once per batch after its handlers (before beforeCommit and commitState) with
   * the outputs they returned, in order: further messages, written after those in the
   * batch's commit (the same transaction as its acknowledgements), e.g. a summary of the
   * batch. Not called for a batch that acknowledges nothing. When it throws, the batch
   * is not committed and its entries are delivered again, as when commitState throws.
   */
  batchOutputs?: (outputs: readonly Outbound[]) => Outbound[];
  /**
   * State written with every commit (the key under the bus prefix), in the same
   * transaction as the batch's outputs and acknowledgements: a snapshot that always
   * matches exactly the entries acknowledged (SPEC §7). Called once per batch, after its
   * handlers. `value`: `SET key value`; `parts`: the change to the key's hash (as
   * `setState`). A commit that fails is retried with the same state.
   */
  commitState?: () => CommitState;
  /**
   * Called once per batch after its handlers, before its acknowledgements are written:
   * a consumer whose output goes elsewhere (the journal's database) commits it here, so
   * the acks follow that commit. When it throws, nothing of the batch is acknowledged and
   * its entries are delivered again.
   */
  beforeCommit?: () => Promise<void>;
  /** Called once an entry's dead letter has been written to `<topic>.dlq`. */
  onDeadLetter?: (topic: string, id: string, error: string) => void;
  /** Called after each attempt to write a batch's commit: whether it landed and how long it took. */
  onCommit?: (attempt: CommitAttempt) => void;
}

/** The state a commit writes: a whole value, or the parts of a hash that changed (core/snapshot-parts.ts). */
export type CommitState = { key: string; value: string } | { key: string; parts: PartsChange };

export interface CommitAttempt {
  ok: boolean;
  seconds: number;
}

/** One topic; `decode` gets the entry's fields and id. */
export interface SubscribeOptions<T> extends SubscribeSettings<T> {
  topic: string;
  topics?: undefined;
  /**
   * Parses and validates one entry; throws DecodeError (or any error) for a malformed one.
   * Pure: the embedded bus may call it once for all the groups that use it.
   */
  decode: (fields: Record<string, string>, id: string) => T;
}

/**
 * Several topics read together under one group and consumer name (the same group on
 * each stream). Each batch is handled topic by topic in the order given, then committed
 * as one transaction.
 */
export interface MultiSubscribeOptions<T> extends SubscribeSettings<T> {
  topics: readonly string[];
  topic?: undefined;
  /** As for one topic, told which topic the entry came from. */
  decode: (topic: string, fields: Record<string, string>, id: string) => T;
}

export interface Subscription {
  /** Stops reading and resolves once in-flight handlers and their commit are done. */
  close(): Promise<void>;
  /** Entries acknowledged so far (handled or dead-lettered). */
  readonly acknowledged: number;
  /**
   * Runs `fn` between batches, never while one is being handled or committed (e.g. a
   * state change from HTTP, followed by its snapshot). `fn` must not close the subscription.
   */
  exclusive<R>(fn: () => R | Promise<R>): Promise<R>;
}

export interface GroupInfo {
  name: string;
  consumers: number;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell. */
  lag: number | null;
  last_delivered_id: string;
}

export interface StreamInfo {
  topic: string;
  stream: string;
  length: number;
  first_id: string | null;
  last_id: string | null;
  groups: GroupInfo[];
}

export interface EventBus {
  readonly kind: 'embedded' | 'redis';
  readonly prefix: string;

  /** Publishes one message as `{payload: JSON}`; returns the entry id. */
  publish(topic: string, payload: unknown): Promise<string>;
  /** Publishes several messages in one round trip, in order; returns their ids. */
  publishMany(items: readonly Outbound[]): Promise<string[]>;
  /** Appends raw fields (no JSON encoding); for tests and the DLQ. */
  publishRaw(topic: string, fields: Record<string, string>): Promise<string>;

  subscribe<T>(options: SubscribeOptions<T> | MultiSubscribeOptions<T>): Subscription;

  /** Entries with id > afterId (exclusive), oldest first, at most `count`. afterId '0' = from the start. */
  readAfter(topic: string, afterId: string, count: number): Promise<StreamEntry[]>;
  /** The newest `count` entries, newest first. */
  readLatest(topic: string, count: number): Promise<StreamEntry[]>;

  length(topic: string): Promise<number>;
  info(topic: string): Promise<StreamInfo>;
  ensureGroup(topic: string, group: string, startId?: string): Promise<void>;
  /** Approximate trim to about `maxlen` entries, whatever the groups have read; returns entries removed. */
  trim(topic: string, maxlen: number): Promise<number>;
  /** Removes entries with id < minId (approximate); returns entries removed. */
  trimBefore(topic: string, minId: string): Promise<number>;
  /**
   * Removes up to `count` of the oldest entries, only entries with id < `beforeId` (null:
   * any), exactly; returns entries removed. The primitive of src/bus/trim.ts.
   */
  trimOldest(topic: string, count: number, beforeId: string | null): Promise<number>;
  /** The id of the oldest entry pending on `group` (delivered, not acknowledged), or null. */
  oldestPending(topic: string, group: string): Promise<string | null>;
  /**
   * Trims every topic this bus has written to or subscribed to (and their DLQs) behind
   * their consumer groups (src/bus/trim.ts); the bus also does this every trim interval.
   */
  trimNow(): Promise<TrimResult[]>;
  /** Each group's unfinished entries on those topics, as of the latest trim round. */
  backlogs(): readonly GroupBacklog[];

  /** Small key/value store for service snapshots (SPEC §7). */
  getValue(key: string): Promise<string | null>;
  setValue(key: string, value: string): Promise<void>;
  /**
   * A snapshot as stored: a string (`{value}`), a hash written by `setState` or a commit's
   * parts (`{fields}`), or null; read in one step.
   */
  getState(key: string): Promise<StoredState | null>;
  /** Applies a change to the key's hash in one step (`replace`: whatever the key held goes first). */
  setState(key: string, change: PartsChange): Promise<void>;

  /** True while the bus can serve requests. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Entries kept per topic by the periodic trimmer (src/bus/trim.ts); null = never trimmed by it. */
export type MaxlenPolicy = (topic: string) => number | null;

export const DEFAULT_MAXLEN = 100_000;

/**
 * The default trimming policy: `trade.execution.res` is never trimmed periodically, because
 * state recovery folds it (SPEC §7: `quantum streams trim` trims it only behind the
 * monitor's snapshot); every other topic, DLQs included, is cut back to `maxlen` entries
 * behind its consumer groups.
 */
export function defaultMaxlenPolicy(maxlen: number = DEFAULT_MAXLEN): MaxlenPolicy {
  return (topic) => (topic === TOPICS.execution ? null : maxlen);
}

/** The parts of the id last read by `readPlain` (module scratch: no allocation per call). */
let plainMs = 0;
let plainSeq = 0;

/**
 * Reads an id of the form /^\d{1,15}-\d{1,15}$/ (every id Redis hands out today) into
 * plainMs / plainSeq, exactly (15 digits stay below 2^53); false for anything else.
 */
function readPlain(id: string): boolean {
  const n = id.length;
  let i = 0;
  let ms = 0;
  for (; i < n; i += 1) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    ms = ms * 10 + digit;
  }
  if (i === 0 || i > 15 || i === n || id.charCodeAt(i) !== 45 /* - */) return false;
  const start = (i += 1);
  let seq = 0;
  for (; i < n; i += 1) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return false;
    seq = seq * 10 + digit;
  }
  if (i === start || i - start > 15) return false;
  plainMs = ms;
  plainSeq = seq;
  return true;
}

/** Compares two stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  // Fast path for plain ids whose parts are safe integers (every id Redis hands out today).
  if (readPlain(a)) {
    const ams = plainMs;
    const aseq = plainSeq;
    if (readPlain(b)) {
      if (ams !== plainMs) return ams < plainMs ? -1 : 1;
      return aseq === plainSeq ? 0 : aseq < plainSeq ? -1 : 1;
    }
  }
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
