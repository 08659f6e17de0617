/**
 * What the three services share around their pure state: one consumer-group
 * subscription over all of the service's input topics, and a snapshot of the state
 * written in the same transaction as each batch's acknowledgements (by parts: only what
 * changed since the last commit, core/snapshot-parts.ts).
 *
 * That one transaction is what makes a service restart-proof (SPEC §7): the snapshot
 * in Redis always reflects exactly the entries acknowledged, so after kill -9 the
 * service restores the snapshot and the group hands it back exactly the entries it
 * had not finished. Nothing is lost and nothing is applied twice.
 */
import { compareIds, type EventBus, type Delivery, type Outbound, type StreamEntry, type Subscription } from '../../bus/bus.js';
import { decodeSignal, decoderFor, type Fields } from '../../bus/codec.js';
import { StreamNames, TOPICS, dlqTopic, type ServiceName } from '../../bus/topics.js';
import { backlogWarnings } from '../../bus/trim.js';
import type { Clock } from '../../core/clock.js';
import { PartsTracker, assembleState, type PartsChange } from '../../core/snapshot-parts.js';
import { DecisionCounts, ExecutionResult, ExitLevels, PriceTick, RiskApprovedSignal, RiskRejection } from '../../core/messages.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import type { ServiceMetrics } from '../../platform/metrics.js';
import type { Scheduler } from '../../platform/scheduler.js';

export interface ServiceDeps {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  /**
   * Consumer name inside the group. The default is stable (one process per service: its own
   * pending entries resume at once); a process holding the service's lease uses one of its
   * own and takes over every pending entry at start (`takeOverPending`).
   */
  consumer?: string;
  /** This instance holds the service's lease: the group's pending entries are all its to finish. */
  takeOverPending?: boolean;
  /** Periodic work (risk's sweep, the monitor's marks); real timers unless a backtest injects simulated ones. */
  scheduler?: Scheduler;
  /**
   * false: never write the state snapshot (a backtest: nothing restarts, a run is replayed
   * from its inputs, and serialising the state after every tick was most of its time).
   * Changes no decision: snapshots are only read at start-up. Default true.
   */
  snapshots?: boolean;
}

const DECODERS: Record<string, (fields: Fields, id: string) => unknown> = {
  [TOPICS.signal]: decodeSignal,
  [TOPICS.safe]: decoderFor(RiskApprovedSignal),
  [TOPICS.rejected]: decoderFor(RiskRejection),
  [TOPICS.decisions]: decoderFor(DecisionCounts),
  [TOPICS.execution]: decoderFor(ExecutionResult),
  [TOPICS.tick]: decoderFor(PriceTick),
  [TOPICS.exitLevels]: decoderFor(ExitLevels),
};

export function decodeTopic(topic: string, fields: Fields, id: string): unknown {
  const decode = DECODERS[topic];
  if (!decode) throw new Error(`no decoder for topic ${topic}`);
  return decode(fields, id);
}

/** One string field of an entry's JSON payload, or undefined (for rebuilding guards at start-up). */
export function payloadString(payload: string | undefined, key: string): string | undefined {
  if (!payload) return undefined;
  try {
    const value = (JSON.parse(payload) as Record<string, unknown>)[key];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshot key of a service; the bus applies the stream prefix. */
export function snapshotKey(service: ServiceName): string {
  return new StreamNames('').snapshot(service);
}

/** A service's stored snapshot as JSON text (whole or put together from its parts), or null. */
export async function readSnapshotText(bus: EventBus, service: ServiceName): Promise<string | null> {
  const stored = await bus.getState(snapshotKey(service));
  return stored === null ? null : assembleState(stored);
}

/** An entry read back from a stream while rebuilding state (already decoded). */
export interface ReplayedEntry {
  topic: string;
  id: string;
  message: unknown;
}

/** Why a stored snapshot is not used; null when it was restored. */
type SnapshotProblem = string | null;

/** What a Redis bus offers to tidy a group's consumer list (the embedded bus has one process). */
interface ConsumerJanitor {
  forgetIdleConsumers(topic: string, group: string, keep: string, minIdleMs: number): Promise<number>;
}

/**
 * What the embedded bus offers for snapshots: the value made when it is read. Its state
 * lives and dies with this process, so the snapshot is needed only when a service starts
 * again on the same bus; serialising the whole state after every batch bought nothing.
 */
interface LazyValues {
  setLazyValue(key: string, read: () => Promise<string>): void;
}

/** After this long the start-up claims are done and stopped processes' consumers can go. */
const CONSUMER_CLEANUP_DELAY_MS = 5000;

/** Entries read per page while rebuilding from the streams. */
const REPLAY_PAGE = 2000;

export interface HostOptions {
  service: ServiceName;
  group: string;
  /** Input topics, in the order entries of one batch are handled. */
  topics: readonly string[];
  handle: (delivery: Delivery<unknown>) => Outbound[] | void;
  /**
   * Messages added after a publication's own: a batch's handlers' outputs (in its commit,
   * SubscribeSettings.batchOutputs) and what `emit` publishes between batches (in the same write).
   */
  batchOutputs?: (outputs: readonly Outbound[]) => Outbound[];
  snapshot: () => unknown;
  /** The snapshot's JSON, when the service can make it faster than JSON.stringify(snapshot()). */
  snapshotJson?: () => string;
  restore: (snapshot: unknown) => void;
  /** The `version` the service's snapshots carry; a snapshot of any other version is rebuilt. */
  snapshotVersion: number;
  /** Older versions `restore` still reads (it upgrades them); any other version is rebuilt. */
  readsOlderVersions?: readonly number[];
  /**
   * Rebuilds the state from the streams when there is no snapshot or it cannot be read
   * (usually with `replayDelivered`); returns the figures named in the log line.
   */
  rebuild: () => Promise<Record<string, number | string>>;
  metrics: ServiceMetrics;
  /** Brings the service's own state gauges up to date; called before each /metrics render. */
  readGauges?: () => void;
  batchSize?: number;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? '').slice(0, 200);
}

export class ServiceHost {
  private subscription?: Subscription;
  /** Per topic, the last entry folded by replayDelivered: a redelivery up to it was already applied. */
  private readonly replayedThrough = new Map<string, string>();
  private busUp = true;
  private lastBusCheck = 0;
  /**
   * The snapshot as stored by parts: each commit writes the parts changed since the last
   * one that landed (core/snapshot-parts.ts); the first one after start replaces the key.
   */
  private readonly parts = new PartsTracker();

  constructor(
    private readonly deps: ServiceDeps,
    private readonly options: HostOptions,
  ) {}

  get consumer(): string {
    return this.deps.consumer ?? `${this.options.group}-1`;
  }

  /**
   * Restores the snapshot; when there is none, or it cannot be read (not JSON, another
   * version, fields that do not fit), rebuilds the state from the streams instead. Either
   * way one log line says which.
   */
  async start(): Promise<{ restored: boolean }> {
    const { bus, logger } = this.deps;
    const key = snapshotKey(this.options.service);
    const stored = await bus.getState(key);
    let text: string | null = null;
    let problem: SnapshotProblem;
    try {
      text = stored === null ? null : assembleState(stored);
      problem = text === null ? 'no snapshot' : this.restoreFrom(text);
    } catch (err) {
      problem = `the snapshot's parts do not fit together (${firstLine(err)})`;
    }
    if (problem === null) {
      logger.info({ restored: true, key }, 'state loaded from the snapshot');
      return { restored: true };
    }
    const figures = await this.options.rebuild();
    const summary = Object.entries(figures)
      .map(([name, value]) => `${value} ${name}`)
      .join(', ');
    const log = stored === null ? logger.info.bind(logger) : logger.warn.bind(logger);
    log({ restored: false, key, reason: problem, ...figures }, `${problem}: state rebuilt from the streams (${summary})`);
    return { restored: false };
  }

  /** Applies a stored snapshot; returns why it cannot be used (nothing is applied then). */
  private restoreFrom(text: string): SnapshotProblem {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return 'the snapshot is not valid JSON';
    }
    const version = typeof parsed === 'object' && parsed !== null ? (parsed as { version?: unknown }).version : undefined;
    if (version !== this.options.snapshotVersion && !(typeof version === 'number' && this.options.readsOlderVersions?.includes(version))) {
      return `the snapshot has version ${JSON.stringify(version ?? null)}, this build reads version ${this.options.snapshotVersion}`;
    }
    try {
      this.options.restore(parsed);
      return null;
    } catch (err) {
      return `the snapshot does not fit this build (${firstLine(err)})`;
    }
  }

  /**
   * Folds, in stream-id order across `topics`, every entry the service's group has been
   * handed on them (up to each group's last-delivered id). Entries of those topics still
   * pending on the group are folded here too, so they are acknowledged without being
   * handled again when they are delivered once more. Malformed entries, and entries
   * `visit` throws on (both dead-lettered when they were delivered), are skipped.
   * Returns the entries folded per topic.
   */
  async replayDelivered(topics: readonly string[], visit: (entry: ReplayedEntry) => void): Promise<Map<string, number>> {
    const { bus } = this.deps;
    const cursors = await Promise.all(
      topics.map(async (topic) => {
        const info = await bus.info(topic);
        const upTo = info.groups.find((group) => group.name === this.options.group)?.last_delivered_id ?? '0-0';
        this.replayedThrough.set(topic, upTo);
        return { topic, upTo, after: '0', page: [] as StreamEntry[], exhausted: compareIds(upTo, '0-0') <= 0, count: 0 };
      }),
    );
    // Each cursor holds one page, newest first, so the next entry is popped from the end.
    const refill = async (cursor: (typeof cursors)[number]): Promise<void> => {
      if (cursor.exhausted || cursor.page.length > 0) return;
      const page = await bus.readAfter(cursor.topic, cursor.after, REPLAY_PAGE);
      const within = page.filter((entry) => compareIds(entry.id, cursor.upTo) <= 0);
      cursor.after = page[page.length - 1]?.id ?? cursor.after;
      cursor.exhausted = page.length < REPLAY_PAGE || within.length < page.length;
      cursor.page = within.reverse();
    };
    for (;;) {
      await Promise.all(cursors.map(refill));
      let next: (typeof cursors)[number] | undefined;
      for (const cursor of cursors) {
        const head = cursor.page[cursor.page.length - 1];
        if (head && (!next || compareIds(head.id, next.page[next.page.length - 1]!.id) < 0)) next = cursor;
      }
      if (!next) break;
      const entry = next.page.pop()!;
      let message: unknown;
      try {
        message = decodeTopic(next.topic, entry.fields, entry.id);
      } catch {
        continue;
      }
      try {
        visit({ topic: next.topic, id: entry.id, message });
      } catch {
        continue; // an entry the state refuses was dead-lettered when it was delivered
      }
      next.count += 1;
    }
    return new Map(cursors.map((cursor) => [cursor.topic, cursor.count]));
  }

  /** Starts the subscription (after the service finished its own start-up work). */
  consume(): void {
    const { bus, logger } = this.deps;
    const { metrics, topics } = this.options;
    const key = snapshotKey(this.options.service);
    // Message counts are added up per batch (commitState runs once per batch, after its
    // handlers): a labelled prom-client increment per message cost more than the count.
    const counts = { in: new Map<string, number>(), out: new Map<string, number>() };
    const flushCounts = (): void => {
      for (const direction of ['in', 'out'] as const) {
        for (const [topic, n] of counts[direction]) metrics.messages.inc({ topic, direction }, n);
        counts[direction].clear();
      }
    };
    // At 0 from the start, so the first dead letter of a topic is an increase, not a new series.
    for (const topic of topics) metrics.messages.inc({ topic, direction: 'dlq' }, 0);
    const lazy = this.lazySnapshots();
    // Made between batches (exclusive), so it matches exactly the entries acknowledged, as
    // a snapshot committed with each batch would; after stop() the state no longer moves.
    lazy?.setLazyValue(key, () => this.exclusive(() => this.snapshotJson()));
    this.subscription = bus.subscribe<unknown>({
      topics,
      group: this.options.group,
      consumer: this.consumer,
      batchSize: this.options.batchSize,
      claimAllOnStart: this.deps.takeOverPending === true,
      decode: decodeTopic,
      handler: (delivery) => {
        const replayed = this.replayedThrough.get(delivery.topic);
        // Kept for good: a dead consumer's pending entries may be claimed long after.
        if (replayed !== undefined && compareIds(delivery.id, replayed) <= 0) return;
        counts.in.set(delivery.topic, (counts.in.get(delivery.topic) ?? 0) + 1);
        const out = this.options.handle(delivery);
        if (out) for (const o of out) counts.out.set(o.topic, (counts.out.get(o.topic) ?? 0) + 1);
        return out;
      },
      ...(this.options.batchOutputs ? { batchOutputs: this.batchOutputs(this.options.batchOutputs, counts.out) } : {}),
      ...(this.deps.snapshots === false || lazy !== null
        ? { beforeCommit: async () => flushCounts() }
        : {
            commitState: () => {
              flushCounts();
              return { key, parts: this.parts.build(() => this.snapshotJson()) };
            },
          }),
      onCommit: ({ ok, seconds }) => {
        // Only a landed commit moves what the next one is compared with; a failed one is retried as it is.
        if (ok) this.parts.landed();
        this.observeCommit(ok, seconds);
      },
      onDeadLetter: (topic, id, error) => {
        metrics.messages.inc({ topic, direction: 'dlq' });
        logger.warn({ topic, id, error }, 'entry moved to the dead-letter stream');
      },
      onError: (err) => {
        this.busUp = false;
        logger.warn({ err }, 'bus error; retrying');
      },
    });
    this.scheduleConsumerCleanup();
  }

  /** The service's batchOutputs hook, its messages counted like the handlers' outputs. */
  private batchOutputs(make: (outputs: readonly Outbound[]) => Outbound[], counted: Map<string, number>) {
    return (outputs: readonly Outbound[]): Outbound[] => {
      const more = make(outputs);
      for (const o of more) counted.set(o.topic, (counted.get(o.topic) ?? 0) + 1);
      return more;
    };
  }

  /**
   * With the lease held: once the takeover claims have run, drops the consumers of
   * processes that are gone (nothing pending, idle longer than the lease ttl), so
   * `quantum streams` does not list one consumer per restart.
   */
  private scheduleConsumerCleanup(): void {
    const bus = this.deps.bus as EventBus & Partial<ConsumerJanitor>;
    if (!this.deps.takeOverPending || typeof bus.forgetIdleConsumers !== 'function') return;
    const timer = setTimeout(() => {
      void (async () => {
        for (const topic of this.options.topics) {
          await bus.forgetIdleConsumers?.(topic, this.options.group, this.consumer, this.deps.config.lease.ttl_ms);
        }
      })().catch((err: unknown) => this.deps.logger.warn({ err }, 'removing the consumers of stopped processes failed'));
    }, CONSUMER_CLEANUP_DELAY_MS);
    timer.unref();
  }

  /**
   * Runs `fn` between batches (never while one is being handled or committed), then
   * saves the snapshot: for state changes from HTTP (resume, reset, prices).
   */
  async mutate<R>(fn: () => R): Promise<R> {
    const run = async () => {
      const result = fn();
      await this.saveSnapshot();
      return result;
    };
    return this.subscription ? this.subscription.exclusive(run) : run();
  }

  /** The embedded bus's lazy values when snapshots are on and the bus has them; else null. */
  private lazySnapshots(): LazyValues | null {
    const bus = this.deps.bus as EventBus & Partial<LazyValues>;
    return this.deps.snapshots !== false && typeof bus.setLazyValue === 'function' ? (bus as EventBus & LazyValues) : null;
  }

  /**
   * Writes the snapshot through `write` (a caller's own transaction, e.g. the monitor's
   * upgrade step), as the change since the last write that landed: the parts tracker must
   * see every write of the key, or the next commit's change would not fit what is stored.
   */
  async writeStateWith(write: (state: { key: string; parts: PartsChange }) => Promise<void>): Promise<void> {
    await write({ key: snapshotKey(this.options.service), parts: this.parts.build(() => this.snapshotJson()) });
    this.parts.landed();
  }

  /** Saves the snapshot outside a batch, timed and counted like a batch's commit. */
  private async saveSnapshot(): Promise<void> {
    const started = performance.now();
    try {
      // A lazy snapshot is made when read: nothing to write.
      if (this.deps.snapshots === false || (this.subscription !== undefined && this.lazySnapshots() !== null)) return;
      await this.deps.bus.setState(snapshotKey(this.options.service), this.parts.build(() => this.snapshotJson()));
      this.parts.landed();
    } catch (err) {
      this.observeCommit(false, (performance.now() - started) / 1000);
      throw err;
    }
    this.observeCommit(true, (performance.now() - started) / 1000);
  }

  /**
   * Runs `fn` between batches, publishes the messages it returns, then saves the snapshot:
   * for outputs made off the bus (a timer, an HTTP call). Published first: a crash in
   * between re-makes them from the older snapshot, so they must be idempotent downstream
   * (deterministic ids). Nothing to publish: nothing saved. Returns how many were published.
   */
  async emit(fn: () => Outbound[]): Promise<number> {
    const run = async () => {
      const made = fn();
      if (made.length === 0) return 0; // nothing changed that needs saving
      const out = this.options.batchOutputs ? [...made, ...this.options.batchOutputs(made)] : made;
      await this.deps.bus.publishMany(out);
      for (const o of out) this.options.metrics.messages.inc({ topic: o.topic, direction: 'out' });
      await this.saveSnapshot();
      return out.length;
    };
    return this.subscription ? this.subscription.exclusive(run) : run();
  }

  /**
   * Runs `fn` between batches without saving a snapshot: for publishing messages derived
   * from the state (mark-to-market) in order with the batches' own outputs.
   */
  async exclusive<R>(fn: () => R | Promise<R>): Promise<R> {
    return this.subscription ? this.subscription.exclusive(fn) : fn();
  }

  private snapshotJson(): string {
    return this.options.snapshotJson ? this.options.snapshotJson() : JSON.stringify(this.options.snapshot());
  }

  /** Bus reachability, cached for a second so /health stays cheap under load. */
  async busConnected(): Promise<boolean> {
    const now = this.deps.clock.now();
    if (now - this.lastBusCheck < 1000 && this.busUp) return this.busUp;
    this.lastBusCheck = now;
    this.busUp = await this.deps.bus.ping().catch(() => false);
    return this.busUp;
  }

  /** Consumer groups far behind on the streams this service uses (as of the bus's latest trim round). */
  streamWarnings(): string[] {
    return backlogWarnings(this.deps.bus.backlogs(), this.deps.config.streams.maxlen);
  }

  private observeCommit(ok: boolean, seconds: number): void {
    const { metrics } = this.options;
    metrics.snapshotCommitSeconds.observe(seconds);
    if (!ok) metrics.snapshotCommitFailures.inc();
  }

  /**
   * Brings the gauges up to date before /metrics is rendered: the service's state, every
   * group's backlog on the streams this service uses (as of the bus's latest trim round),
   * then lag, pending and dead letters of each input topic from XINFO / XLEN (once per
   * scrape, never per message). While the bus does not answer the bus gauges keep their
   * last values.
   */
  async refreshMetrics(): Promise<void> {
    const { metrics, topics, group } = this.options;
    this.options.readGauges?.();
    for (const b of this.deps.bus.backlogs()) metrics.streamBacklog.set({ topic: b.topic, group: b.group }, (b.lag ?? 0) + b.pending);
    if (!(await this.busConnected())) return;
    await Promise.all(
      topics.map(async (topic) => {
        const [info, deadLetters] = await Promise.all([this.deps.bus.info(topic), this.deps.bus.length(dlqTopic(topic))]);
        const mine = info.groups.find((g) => g.name === group);
        if (mine) {
          if (mine.lag !== null) metrics.consumerLag.set({ topic, group }, mine.lag);
          metrics.consumerPending.set({ topic, group }, mine.pending);
        }
        metrics.deadLetters.set({ topic }, deadLetters);
      }),
    );
  }

  async stop(): Promise<void> {
    await this.subscription?.close();
    this.subscription = undefined;
  }
}
