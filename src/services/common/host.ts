/**
 * What the three services share around their pure state: one consumer-group
 * subscription over all of the service's input topics, and a snapshot of the state
 * written in the same transaction as each batch's acknowledgements.
 *
 * That one transaction is what makes a service restart-proof (SPEC §7): the snapshot
 * in Redis always reflects exactly the entries acknowledged, so after kill -9 the
 * service restores the snapshot and the group hands it back exactly the entries it
 * had not finished. Nothing is lost and nothing is applied twice.
 */
import type { EventBus, Delivery, Outbound, Subscription } from '../../bus/bus.js';
import { decodeSignal, decoderFor, type Fields } from '../../bus/codec.js';
import { StreamNames, TOPICS, dlqTopic, type ServiceName } from '../../bus/topics.js';
import type { Clock } from '../../core/clock.js';
import { ExecutionResult, ExitLevels, PriceTick, RiskApprovedSignal, RiskRejection } from '../../core/messages.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import type { ServiceMetrics } from '../../platform/metrics.js';

export interface ServiceDeps {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  /** Consumer name inside the group; stable across restarts so own pending entries resume at once. */
  consumer?: string;
}

const DECODERS: Record<string, (fields: Fields, id: string) => unknown> = {
  [TOPICS.signal]: decodeSignal,
  [TOPICS.safe]: decoderFor(RiskApprovedSignal),
  [TOPICS.rejected]: decoderFor(RiskRejection),
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

export interface HostOptions {
  service: ServiceName;
  group: string;
  /** Input topics, in the order entries of one batch are handled. */
  topics: readonly string[];
  handle: (delivery: Delivery<unknown>) => Outbound[] | void;
  snapshot: () => unknown;
  /** The snapshot's JSON, when the service can make it faster than JSON.stringify(snapshot()). */
  snapshotJson?: () => string;
  restore: (snapshot: unknown) => void;
  metrics: ServiceMetrics;
  /** Brings the service's own state gauges up to date; called before each /metrics render. */
  readGauges?: () => void;
  batchSize?: number;
}

export class ServiceHost {
  private subscription?: Subscription;
  private busUp = true;
  private lastBusCheck = 0;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly options: HostOptions,
  ) {}

  get consumer(): string {
    return this.deps.consumer ?? `${this.options.group}-1`;
  }

  /** Restores the snapshot (if any) and starts consuming. */
  async start(): Promise<{ restored: boolean }> {
    const { bus, logger } = this.deps;
    const key = snapshotKey(this.options.service);
    const text = await bus.getValue(key);
    let restored = false;
    if (text) {
      try {
        this.options.restore(JSON.parse(text));
        restored = true;
      } catch (err) {
        // A snapshot from an incompatible version must not be half-applied: stop.
        throw new Error(`snapshot ${key} cannot be restored: ${(err as Error).message}`);
      }
    }
    logger.info({ restored, key }, 'state loaded');
    return { restored };
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
    this.subscription = bus.subscribe<unknown>({
      topics,
      group: this.options.group,
      consumer: this.consumer,
      batchSize: this.options.batchSize,
      decode: decodeTopic,
      handler: (delivery) => {
        counts.in.set(delivery.topic, (counts.in.get(delivery.topic) ?? 0) + 1);
        const out = this.options.handle(delivery);
        if (out) for (const o of out) counts.out.set(o.topic, (counts.out.get(o.topic) ?? 0) + 1);
        return out;
      },
      commitState: () => {
        flushCounts();
        return { key, value: this.snapshotJson() };
      },
      onCommit: ({ ok, seconds }) => this.observeCommit(ok, seconds),
      onDeadLetter: (topic, id, error) => {
        metrics.messages.inc({ topic, direction: 'dlq' });
        logger.warn({ topic, id, error }, 'entry moved to the dead-letter stream');
      },
      onError: (err) => {
        this.busUp = false;
        logger.warn({ err }, 'bus error; retrying');
      },
    });
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

  /** Saves the snapshot outside a batch, timed and counted like a batch's commit. */
  private async saveSnapshot(): Promise<void> {
    const started = performance.now();
    try {
      await this.deps.bus.setValue(snapshotKey(this.options.service), this.snapshotJson());
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
      const out = fn();
      if (out.length === 0) return 0; // nothing changed that needs saving
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

  private observeCommit(ok: boolean, seconds: number): void {
    const { metrics } = this.options;
    metrics.snapshotCommitSeconds.observe(seconds);
    if (!ok) metrics.snapshotCommitFailures.inc();
  }

  /**
   * Brings the gauges up to date before /metrics is rendered: the service's state, then
   * lag, pending and dead letters of each input topic from XINFO / XLEN (once per scrape,
   * never per message). While the bus does not answer the bus gauges keep their last values.
   */
  async refreshMetrics(): Promise<void> {
    const { metrics, topics, group } = this.options;
    this.options.readGauges?.();
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
