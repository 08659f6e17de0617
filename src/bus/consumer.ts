/**
 * The consumption loop both buses share, so that retries, dead-lettering, claiming and
 * acknowledgement behave identically; each bus supplies only the stream I/O (a
 * GroupReader). One loop per subscription, over one or several topics:
 *
 *   start: create the groups, re-read this consumer's own pending entries (a restarted
 *   consumer resumes at once), claim entries idle on dead consumers;
 *   then: read new entries, handle them in order, and commit the batch's outputs (and
 *   those its batchOutputs hook adds), dead letters, state and acknowledgements in one
 *   atomic write; every claimIntervalMs claim again; failed entries stay pending and are
 *   re-read once their retry delay passed.
 */
import type { Clock } from '../core/clock.js';
import { RefusedEntry } from './bus.js';
import type {
  CommitAttempt,
  CommitState,
  Delivery,
  Handler,
  MultiSubscribeOptions,
  Outbound,
  StreamEntry,
  SubscribeOptions,
  Subscription,
} from './bus.js';
import { encodePayload, type Fields } from './codec.js';
import { dlqTopic } from './topics.js';

/** An entry read back from a pending list; fields are null when it was trimmed meanwhile. */
export interface PendingEntry {
  id: string;
  fields: Fields | null;
}

/** Entries of one topic, oldest first. */
export interface TopicBatch {
  topic: string;
  entries: readonly PendingEntry[];
}

/** One stream append; `topic` is a base name (the bus applies its prefix). */
export interface Write {
  topic: string;
  fields: Fields;
}

/** What one batch wants written: applied atomically, so outputs and state exist iff the acks do. */
export interface Commit {
  writes: Write[];
  /** Entry ids to acknowledge, per topic. */
  acks: Map<string, string[]>;
  /** The subscription's commitState, if it has one. */
  state: CommitState | null;
}

export interface ClaimPage {
  /** Cursor for the next call; '0-0' when the scan is complete. */
  next: string;
  entries: StreamEntry[];
}

/** The stream I/O a consumer loop needs; one implementation per bus. */
export interface GroupReader {
  /** Connects if needed and creates the group on every topic where it is missing; safe to repeat. */
  prepare(): Promise<void>;
  /** This consumer's own pending entries of `topic` with id > afterId, oldest first. */
  readOwnPending(topic: string, afterId: string, count: number): Promise<PendingEntry[]>;
  /** Takes over entries of `topic` idle longer than minIdleMs on any consumer (XAUTOCLAIM). */
  claimIdle(topic: string, minIdleMs: number, cursor: string, count: number): Promise<ClaimPage>;
  /**
   * Entries never delivered to the group, up to `count` per topic, in topic order;
   * waits up to blockMs when there are none.
   */
  readNew(count: number, blockMs: number): Promise<readonly TopicBatch[]>;
  commit(commit: Commit): Promise<void>;
  /** Makes a waiting readNew give up at once (the loop is closing). */
  interrupt(): void;
  /** Releases the reader's resources once the loop has stopped. */
  dispose(): Promise<void>;
  /**
   * Optional: decodes an entry this reader handed out, as `decode(topic, fields, id)` would
   * (`key` is the subscription's own decode function: equal keys decode alike). The
   * embedded bus decodes a stored entry once for all the groups that read it.
   */
  decodeShared?(topic: string, entry: PendingEntry & { fields: Fields }, key: unknown, decode: (topic: string, fields: Fields, id: string) => unknown): unknown;
}

export const SUBSCRIBE_DEFAULTS = {
  batchSize: 256,
  blockMs: 1000,
  maxAttempts: 5,
  retryDelayMs: 200,
  claimIdleMs: 30_000,
  claimIntervalMs: 10_000,
  startId: '0',
} as const;

const BACKOFF_INITIAL_MS = 50;
const BACKOFF_MAX_MS = 1000;
const CLAIM_DONE = '0-0';

export type AnySubscribeOptions<T> = SubscribeOptions<T> | MultiSubscribeOptions<T>;

/** The topics of either form of subscription. */
export function topicsOf<T>(options: AnySubscribeOptions<T>): readonly string[] {
  const topics = options.topics ?? [options.topic];
  if (topics.length === 0) throw new Error('a subscription needs at least one topic');
  return topics;
}

function topicDecoder<T>(options: AnySubscribeOptions<T>): (topic: string, fields: Fields, id: string) => T {
  if (options.topics !== undefined) return options.decode;
  const decode = options.decode;
  return (_topic, fields, id) => decode(fields, id);
}

interface Failure {
  attempts: number;
  retryAt: number;
}

interface DeadLetterNotice {
  topic: string;
  id: string;
  error: string;
}

export interface ConsumerContext {
  clock: Clock;
  /** Fallback when the subscription has no onError of its own. */
  onError: (error: unknown) => void;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/** Yields to the event loop's I/O phase so a busy consumer never starves timers and sockets. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function encodeOutbound(outbound: Outbound): Write {
  return { topic: outbound.topic, fields: encodePayload(outbound.payload) };
}

/** Batches and exclusive() calls take turns; uncontended, locking costs one resolved promise. */
class TurnLock {
  #held = false;
  readonly #queue: (() => void)[] = [];

  async acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return;
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#held = false;
  }
}

export class ConsumerLoop<T> implements Subscription {
  readonly #reader: GroupReader;
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;
  readonly #topics: readonly string[];
  readonly #group: string;
  readonly #decode: (topic: string, fields: Fields, id: string) => T;
  /** The subscription's decode function as given: what decodeShared keys on. */
  readonly #decodeKey: unknown;
  readonly #handler: Handler<T>;
  readonly #batchOutputs: ((outputs: readonly Outbound[]) => Outbound[]) | undefined;
  readonly #commitState: (() => CommitState) | undefined;
  readonly #beforeCommit: (() => Promise<void>) | undefined;
  readonly #onDeadLetter: ((topic: string, id: string, error: string) => void) | undefined;
  readonly #onCommit: ((attempt: CommitAttempt) => void) | undefined;
  readonly #batchSize: number;
  readonly #blockMs: number;
  readonly #maxAttempts: number;
  readonly #retryDelayMs: number;
  readonly #claimIdleMs: number;
  readonly #claimIntervalMs: number;

  /** Local attempt counts of entries whose handler failed, per topic and entry id. */
  readonly #failures = new Map<string, Map<string, Failure>>();
  readonly #turns = new TurnLock();
  readonly #done: Promise<void>;
  #acknowledged = 0;
  #closing = false;
  #needsPrepare = true;
  #needsResume = true;
  #nextClaimAt = 0;
  /** Until the first claim is done: take over every pending entry at once (claimAllOnStart). */
  #claimAll: boolean;
  #wakePause: (() => void) | null = null;

  constructor(reader: GroupReader, options: AnySubscribeOptions<T>, context: ConsumerContext) {
    this.#reader = reader;
    this.#clock = context.clock;
    this.#onError = options.onError ?? context.onError;
    this.#topics = topicsOf(options);
    this.#group = options.group;
    this.#decode = topicDecoder(options);
    this.#decodeKey = options.decode;
    this.#handler = options.handler;
    this.#batchOutputs = options.batchOutputs;
    this.#commitState = options.commitState;
    this.#beforeCommit = options.beforeCommit;
    this.#onDeadLetter = options.onDeadLetter;
    this.#onCommit = options.onCommit;
    this.#batchSize = Math.max(1, options.batchSize ?? SUBSCRIBE_DEFAULTS.batchSize);
    this.#blockMs = Math.max(1, options.blockMs ?? SUBSCRIBE_DEFAULTS.blockMs);
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? SUBSCRIBE_DEFAULTS.maxAttempts);
    this.#retryDelayMs = Math.max(0, options.retryDelayMs ?? SUBSCRIBE_DEFAULTS.retryDelayMs);
    this.#claimIdleMs = Math.max(0, options.claimIdleMs ?? SUBSCRIBE_DEFAULTS.claimIdleMs);
    this.#claimIntervalMs = Math.max(1, options.claimIntervalMs ?? SUBSCRIBE_DEFAULTS.claimIntervalMs);
    this.#claimAll = options.claimAllOnStart === true;
    for (const topic of this.#topics) this.#failures.set(topic, new Map());
    this.#done = this.#run();
  }

  get acknowledged(): number {
    return this.#acknowledged;
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#reader.interrupt();
      this.#wakePause?.();
    }
    await this.#done;
  }

  async exclusive<R>(fn: () => R | Promise<R>): Promise<R> {
    await this.#turns.acquire();
    try {
      return await fn();
    } finally {
      this.#turns.release();
    }
  }

  async #run(): Promise<void> {
    let backoffMs = BACKOFF_INITIAL_MS;
    try {
      while (!this.#closing) {
        try {
          await this.#step();
          backoffMs = BACKOFF_INITIAL_MS;
        } catch (error) {
          if (this.#closing) break;
          this.#report(error);
          // After a lost connection or a Redis restart: recreate the groups if they are
          // gone (NOGROUP) and pick up entries delivered to us whose reply was lost.
          this.#needsPrepare = true;
          this.#needsResume = true;
          await this.#pause(backoffMs);
          backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
        }
      }
    } finally {
      await this.#reader.dispose().catch((error: unknown) => this.#report(error));
    }
  }

  async #step(): Promise<void> {
    if (this.#needsPrepare) {
      await this.#reader.prepare();
      this.#needsPrepare = false;
    }
    if (this.#needsResume) {
      for (const topic of this.#topics) await this.#scanOwnPending(topic);
      this.#needsResume = false;
      return;
    }
    const now = this.#clock.now();
    if (now >= this.#nextClaimAt) {
      for (const topic of this.#topics) await this.#claimIdle(topic, this.#claimAll ? 0 : this.#claimIdleMs);
      this.#claimAll = false;
      this.#nextClaimAt = this.#clock.now() + this.#claimIntervalMs;
      return;
    }
    const retryAt = this.#nextRetryAt();
    if (retryAt <= now) {
      for (const topic of this.#topics) await this.#scanOwnPending(topic);
      return;
    }
    if (this.#closing) return;
    const waitMs = Math.max(1, Math.min(this.#blockMs, this.#nextClaimAt - now, retryAt - now));
    const batches = await this.#reader.readNew(this.#batchSize, waitMs);
    if (batches.length > 0) {
      await this.#process(batches);
      await yieldToEventLoop();
    }
  }

  /** Re-reads this consumer's pending list of `topic`, handling entries that are due (all of them on start). */
  async #scanOwnPending(topic: string): Promise<void> {
    const failures = this.#failuresOf(topic);
    const seen = new Set<string>();
    let afterId = '0';
    for (;;) {
      const page = await this.#reader.readOwnPending(topic, afterId, this.#batchSize);
      const now = this.#clock.now();
      const due: PendingEntry[] = [];
      for (const entry of page) {
        seen.add(entry.id);
        const failure = failures.get(entry.id);
        if (failure === undefined || failure.retryAt <= now) due.push(entry);
      }
      if (due.length > 0) await this.#process([{ topic, entries: due }]);
      if (this.#closing) return;
      const last = page[page.length - 1];
      if (last === undefined || page.length < this.#batchSize) break;
      afterId = last.id;
    }
    // An entry that left our pending list was claimed by another consumer: not ours to retry.
    for (const id of failures.keys()) {
      if (!seen.has(id)) failures.delete(id);
    }
  }

  async #claimIdle(topic: string, minIdleMs: number): Promise<void> {
    let cursor = CLAIM_DONE;
    do {
      const page = await this.#reader.claimIdle(topic, minIdleMs, cursor, this.#batchSize);
      if (page.entries.length > 0) await this.#process([{ topic, entries: page.entries }]);
      cursor = page.next;
    } while (cursor !== CLAIM_DONE && !this.#closing);
  }

  #nextRetryAt(): number {
    let earliest = Number.POSITIVE_INFINITY;
    for (const failures of this.#failures.values()) {
      for (const failure of failures.values()) earliest = Math.min(earliest, failure.retryAt);
    }
    return earliest;
  }

  #failuresOf(topic: string): Map<string, Failure> {
    const failures = this.#failures.get(topic);
    if (!failures) throw new Error(`topic ${topic} is not part of this subscription`);
    return failures;
  }

  /** Handles a batch in order, topic by topic, then commits everything it produced at once. */
  async #process(batches: readonly TopicBatch[]): Promise<void> {
    await this.#turns.acquire();
    try {
      const commit: Commit = { writes: [], acks: new Map(), state: null };
      const deadLetters: DeadLetterNotice[] = [];
      // The handlers' outputs as returned, kept only for a batchOutputs hook.
      const outputs: Outbound[] | null = this.#batchOutputs ? [] : null;
      for (const { topic, entries } of batches) {
        const acks: string[] = [];
        commit.acks.set(topic, acks);
        await this.#handleAll(topic, entries, commit, acks, deadLetters, outputs);
      }
      let acknowledged = 0;
      for (const ids of commit.acks.values()) acknowledged += ids.length;
      if (acknowledged === 0) return;
      if (this.#batchOutputs && outputs) {
        const more = this.#batchOutputs(outputs);
        if (more.length > 0) commit.writes.push(...more.map(encodeOutbound));
      }
      if (this.#beforeCommit) await this.#beforeCommit();
      if (this.#commitState) commit.state = this.#commitState();
      if (await this.#commit(commit)) {
        this.#acknowledged += acknowledged;
        for (const notice of deadLetters) this.#notifyDeadLetter(notice);
      }
    } finally {
      this.#turns.release();
    }
  }

  async #handleAll(
    topic: string,
    entries: readonly PendingEntry[],
    commit: Commit,
    acks: string[],
    deadLetters: DeadLetterNotice[],
    kept: Outbound[] | null,
  ): Promise<void> {
    const failures = this.#failuresOf(topic);
    const reader = this.#reader;
    for (const entry of entries) {
      const { id, fields } = entry;
      if (fields === null) {
        // Trimmed while pending: nothing left to handle, only the pending slot to release.
        acks.push(id);
        failures.delete(id);
        continue;
      }
      const attempt = failures.size === 0 ? 1 : (failures.get(id)?.attempts ?? 0) + 1;
      let message: T;
      try {
        message =
          reader.decodeShared === undefined
            ? this.#decode(topic, fields, id)
            : (reader.decodeShared(topic, entry as PendingEntry & { fields: Fields }, this.#decodeKey, this.#decode) as T);
      } catch (error) {
        deadLetters.push(this.#deadLetter(commit, topic, id, fields, error, attempt));
        acks.push(id);
        failures.delete(id);
        continue;
      }
      try {
        const delivery: Delivery<T> = { topic, id, message, attempt, fields };
        const returned = this.#handler(delivery);
        const outputs = isPromiseLike(returned) ? await returned : returned;
        // Encoded before anything is kept, so an unencodable output fails this entry alone.
        if (outputs && outputs.length > 0) {
          commit.writes.push(...outputs.map(encodeOutbound));
          if (kept) kept.push(...outputs);
        }
        acks.push(id);
        if (attempt > 1) failures.delete(id);
      } catch (error) {
        if (error instanceof RefusedEntry) {
          deadLetters.push(this.#deadLetter(commit, topic, id, fields, error, attempt));
          acks.push(id);
          failures.delete(id);
          continue;
        }
        this.#report(error);
        if (attempt >= this.#maxAttempts) {
          deadLetters.push(this.#deadLetter(commit, topic, id, fields, error, attempt));
          acks.push(id);
          failures.delete(id);
        } else {
          failures.set(id, { attempts: attempt, retryAt: this.#clock.now() + this.#retryDelayMs });
        }
      }
    }
  }

  #deadLetter(commit: Commit, topic: string, id: string, fields: Fields, error: unknown, attempts: number): DeadLetterNotice {
    const message = errorMessage(error);
    commit.writes.push({
      topic: dlqTopic(topic),
      fields: {
        ...fields,
        dlq_error: message,
        dlq_source_id: id,
        dlq_group: this.#group,
        dlq_attempts: String(attempts),
        dlq_ts: String(this.#clock.now()),
      },
    });
    return { topic, id, error: message };
  }

  /**
   * Retries until the write lands (true) or the subscription closes (false). Giving up on
   * close is safe: the entries stay pending and are delivered again (consumers are idempotent).
   */
  async #commit(commit: Commit): Promise<boolean> {
    let backoffMs = BACKOFF_INITIAL_MS;
    for (;;) {
      // Wall time of the write (performance.now, not the injected clock): it measures Redis.
      const started = performance.now();
      try {
        await this.#reader.commit(commit);
        this.#notifyCommit(true, started);
        return true;
      } catch (error) {
        this.#notifyCommit(false, started);
        if (this.#closing) return false;
        this.#report(error);
        await this.#pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** A sleep that close() cuts short. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#wakePause = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wakePause = finish;
    });
  }

  #notifyCommit(ok: boolean, started: number): void {
    try {
      this.#onCommit?.({ ok, seconds: (performance.now() - started) / 1000 });
    } catch (callbackError) {
      this.#report(callbackError);
    }
  }

  #notifyDeadLetter({ topic, id, error }: DeadLetterNotice): void {
    try {
      this.#onDeadLetter?.(topic, id, error);
    } catch (callbackError) {
      this.#report(callbackError);
    }
  }

  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // A failing error callback must not stop the loop.
    }
  }
}
