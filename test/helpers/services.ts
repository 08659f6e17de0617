/**
 * Services in tests: buses on a stream prefix of their own, services launched with
 * test defaults (no timers unless asked), readers for what they published, valid
 * messages to publish by hand, and a scope that stops and deletes everything a test
 * started. Nothing here sleeps: waiting is polling with a deadline (`waitFor`).
 *
 *   const scope = testScope('execution');           // afterEach(() => scope.teardown())
 *   const bus = await scope.openBus();              // Redis, fresh prefix, cleaned up
 *   const exec = await scope.launch('execution', { bus });
 *   await bus.publish(TOPICS.safe, approval({ quantity: 0.01 }));
 *   await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
 *   const results = await readPayloads(bus, TOPICS.execution, ExecutionResult);
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { EventBus, GroupInfo, StreamEntry } from '../../src/bus/bus.js';
import { compareIds } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/factory.js';
import { dlqTopic, type ServiceName } from '../../src/bus/topics.js';
import type { Clock } from '../../src/core/clock.js';
import { fx, mul, toNumber } from '../../src/core/fixed.js';
import {
  ExecutionResult,
  PriceTick,
  RiskApprovedSignal,
  SCHEMA_VERSION,
  type TickSource,
} from '../../src/core/messages.js';
import { systemClock } from '../../src/platform/clock.js';
import { defaultConfig, type Config } from '../../src/platform/config.js';
import { createLogger, silentLogger, type Logger } from '../../src/platform/logger.js';
import { launchService, type Launched } from '../../src/services/launch.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor, type WaitOptions } from './redis.js';

// ---------------------------------------------------------------------------------
// Config

type Patch = Record<string, unknown>;

function isPlainObject(value: unknown): value is Patch {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merges `patch` into `base` key by key (objects recursively; arrays and scalars replace). */
function deepMerge(base: Patch, patch: Patch): Patch {
  const out: Patch = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/**
 * `defaultConfig` with no background timers (prices move only when set, no periodic
 * mark-to-market), then `patch` merged over it like a config file:
 * `testConfig({ execution: { price_interval_ms: 50 } })` keeps the other execution keys.
 */
export function testConfig(patch: Patch = {}): Config {
  return defaultConfig(deepMerge({ execution: { price_interval_ms: 0 }, monitor: { mark_interval_ms: 0 } }, patch));
}

// ---------------------------------------------------------------------------------
// Buses and services

export interface OpenBusOptions {
  /** Default: REDIS_URL or redis://127.0.0.1:6379. */
  url?: string;
  /** An in-process bus instead of Redis. */
  embedded?: boolean;
  maxlen?: number;
  /** How often the bus trims behind its groups (default: the bus's 10 s; 0 = never, call trimNow). */
  trimIntervalMs?: number;
  clock?: Clock;
  /** Retried bus errors (lost connection, ...); ignored by default, tests assert on outcomes. */
  onError?: (error: unknown) => void;
}

const ignore = (): void => undefined;

/** A bus on `prefix` (each call is a new connection, like a new process). Close it yourself, or use a scope. */
export async function openBus(prefix: string, options: OpenBusOptions = {}): Promise<EventBus> {
  return createBus({
    redisUrl: options.embedded ? undefined : (options.url ?? redisUrl()),
    prefix,
    maxlen: options.maxlen,
    trimIntervalMs: options.trimIntervalMs,
    clock: options.clock,
    onError: options.onError ?? ignore,
    connectTimeoutMs: 5000,
  });
}

export interface LaunchTestOptions {
  bus: EventBus;
  /** Default: testConfig(). */
  config?: Config;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: silent. */
  logger?: Logger;
  consumer?: string;
  /** Open a real port (default false: use `app.inject`). */
  listen?: boolean;
  port?: number;
}

/** Launches one service; its `stop()` may be called more than once. */
export async function launch<N extends ServiceName>(name: N, options: LaunchTestOptions): Promise<Launched<N>> {
  const launched = await launchService(name, {
    bus: options.bus,
    config: options.config ?? testConfig(),
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    consumer: options.consumer,
    listen: options.listen,
    port: options.port,
  });
  let stopping: Promise<void> | null = null;
  return { ...launched, stop: () => (stopping ??= launched.stop()) };
}

export interface TestScope {
  /** A fresh unique prefix, deleted at teardown. */
  newPrefix(): string;
  /** A tracked bus (closed at teardown) on `prefix`, by default a fresh one. */
  openBus(prefix?: string, options?: OpenBusOptions): Promise<EventBus>;
  /** A tracked service (stopped at teardown, before the buses close). */
  launch<N extends ServiceName>(name: N, options: LaunchTestOptions): Promise<Launched<N>>;
  /** Anything else to undo at teardown (run in reverse order of registration). */
  defer(cleanup: () => Promise<void> | void): void;
  /** Stops services, closes buses, runs deferred cleanups, deletes the prefixes' keys. */
  teardown(): Promise<void>;
}

/** Tracks what a test starts so one `teardown()` in afterEach undoes all of it. */
export function testScope(name: string): TestScope {
  const prefixes = new Set<string>();
  const cleanups: (() => Promise<void> | void)[] = [];
  const services: Launched[] = [];
  const buses: EventBus[] = [];

  const newPrefix = (): string => {
    const prefix = uniquePrefix(name);
    prefixes.add(prefix);
    return prefix;
  };

  return {
    newPrefix,
    defer: (cleanup) => void cleanups.push(cleanup),
    async openBus(prefix = newPrefix(), options = {}) {
      if (!options.embedded) prefixes.add(prefix);
      const bus = await openBus(prefix, options);
      buses.push(bus);
      return bus;
    },
    async launch(serviceName, options) {
      const launched = await launch(serviceName, options);
      services.push(launched);
      return launched;
    },
    async teardown() {
      const errors: unknown[] = [];
      const attempt = async (fn: () => Promise<void> | void): Promise<void> => {
        try {
          await fn();
        } catch (error) {
          errors.push(error);
        }
      };
      for (const service of services.splice(0).reverse()) await attempt(() => service.stop());
      for (const bus of buses.splice(0).reverse()) await attempt(() => bus.close());
      for (const cleanup of cleanups.splice(0).reverse()) await attempt(cleanup);
      for (const prefix of [...prefixes]) await attempt(() => cleanupPrefix(redisUrl(), prefix));
      prefixes.clear();
      if (errors.length > 0) throw new AggregateError(errors, `teardown of ${name}: ${errors.length} cleanup(s) failed`);
    },
  };
}

// ---------------------------------------------------------------------------------
// Reading what was published

/** Every entry of `topic`, oldest first. */
export async function readEntries(bus: EventBus, topic: string): Promise<StreamEntry[]> {
  const all: StreamEntry[] = [];
  let after = '0';
  for (;;) {
    const page = await bus.readAfter(topic, after, 1000);
    all.push(...page);
    const last = page[page.length - 1];
    if (last === undefined || page.length < 1000) return all;
    after = last.id;
  }
}

/**
 * Every entry's parsed `payload`, oldest first; with `schema`, each is validated (a
 * payload that does not match throws, naming the entry).
 */
export async function readPayloads<S extends z.ZodType>(bus: EventBus, topic: string, schema: S): Promise<z.output<S>[]>;
export async function readPayloads(bus: EventBus, topic: string): Promise<unknown[]>;
export async function readPayloads(bus: EventBus, topic: string, schema?: z.ZodType): Promise<unknown[]> {
  return (await readEntries(bus, topic)).map((entry) => {
    const value: unknown = JSON.parse(entry.fields.payload ?? 'null');
    if (!schema) return value;
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new Error(`${topic} entry ${entry.id} does not match its schema: ${parsed.error.message}`);
    return parsed.data;
  });
}

/** The dead letters of `topic` (the raw fields plus dlq_error, dlq_source_id, dlq_group, ...). */
export async function readDeadLetters(bus: EventBus, topic: string): Promise<Record<string, string>[]> {
  return (await readEntries(bus, dlqTopic(topic))).map((entry) => entry.fields);
}

/** The consumer group's state on `topic`, or undefined when the group does not exist (yet). */
export async function groupInfo(bus: EventBus, topic: string, group: string): Promise<GroupInfo | undefined> {
  return (await bus.info(topic)).groups.find((g) => g.name === group);
}

/**
 * True when `group` has been handed every entry of each topic and acknowledged them
 * all. Consumers commit outputs, state and acks in one transaction, so by then every
 * output of those entries is in Redis too.
 */
export async function isSettled(bus: EventBus, group: string, topics: readonly string[]): Promise<boolean> {
  for (const topic of topics) {
    const info = await bus.info(topic);
    if (info.last_id === null) continue;
    const g = info.groups.find((x) => x.name === group);
    if (!g || g.pending > 0 || compareIds(g.last_delivered_id, info.last_id) < 0) return false;
  }
  return true;
}

/** Waits until `group` has handled and acknowledged everything published so far on `topics`. */
export async function waitForSettled(
  bus: EventBus,
  group: string,
  topics: readonly string[],
  options: WaitOptions = {},
): Promise<void> {
  await waitFor(() => isSettled(bus, group, topics), { what: `group ${group} to settle on ${topics.join(', ')}`, ...options });
}

/** Waits until `topic` holds at least `count` payloads (optionally only those matching `where`) and returns them all. */
export async function waitForPayloads<S extends z.ZodType>(
  bus: EventBus,
  topic: string,
  schema: S,
  count: number,
  where: (payload: z.output<S>) => boolean = () => true,
  options: WaitOptions = {},
): Promise<z.output<S>[]> {
  return waitFor(
    async () => {
      const matching = (await readPayloads(bus, topic, schema)).filter(where);
      return matching.length >= count ? matching : null;
    },
    { what: `${count} matching entries on ${topic}`, ...options },
  );
}

// ---------------------------------------------------------------------------------
// Messages to publish by hand

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A fresh id with a readable prefix, e.g. "sig-3fa9c2e01b77". */
export function uniqueId(prefix = 'sig'): string {
  return `${prefix}-${hex(6)}`;
}

/** A fresh order id in the wire format (`PAPER-` + 12 lowercase hex). */
export function paperOrderId(): string {
  return `PAPER-${hex(6)}`;
}

/**
 * A valid RiskApprovedSignal for trade.signal.safe: by default an approved BUY of 0.01
 * BTCUSDT opening a position, with a fresh signal_id. `notional_usd` follows quantity ×
 * reference_price unless given. Validated, so a test cannot publish a broken one by
 * accident; build an invalid entry from a valid one on purpose.
 */
export function approval(overrides: Partial<RiskApprovedSignal> = {}): RiskApprovedSignal {
  const now = Date.now();
  const quantity = overrides.quantity ?? 0.01;
  const referencePrice = overrides.reference_price ?? 50_000;
  const candidate: RiskApprovedSignal = {
    schema_version: SCHEMA_VERSION,
    signal_id: uniqueId('sig'),
    symbol: 'BTCUSDT',
    action: overrides.side ?? 'BUY',
    confidence: 0.8,
    source: 'test',
    ts: now,
    intent: 'OPEN',
    side: 'BUY',
    quantity,
    notional_usd: toNumber(mul(fx(quantity), fx(referencePrice))),
    reference_price: referencePrice,
    kelly_optimal: 0.6,
    kelly_applied: 0.1,
    risk_amount_usd: 10,
    reduce_only: false,
    approved_ts: now,
    origin: 'signal',
    checks: [],
    sizing: null,
    ...overrides,
  };
  return RiskApprovedSignal.parse(candidate);
}

/**
 * A valid ExecutionResult for trade.execution.res: by default a FILLED BUY of 0.01
 * BTCUSDT at 50,000 with a fresh order id. `notional_usd` (fill × quantity) and
 * `fee_usd` (notional × fee_rate, to 1e-8) are computed exactly unless given.
 */
export function fill(overrides: Partial<ExecutionResult> = {}): ExecutionResult {
  const now = Date.now();
  const quantity = overrides.quantity ?? 0.01;
  const fillPrice = overrides.fill_price ?? 50_000;
  const feeRate = overrides.fee_rate ?? 0.0004;
  const notional = mul(fx(quantity), fx(fillPrice));
  const fee = ((mul(notional, fx(feeRate)) + 5n * 10n ** 9n) / 10n ** 10n) * 10n ** 10n; // to 1e-8, half up
  const candidate: ExecutionResult = {
    schema_version: SCHEMA_VERSION,
    order_id: paperOrderId(),
    signal_id: uniqueId('sig'),
    symbol: 'BTCUSDT',
    side: 'BUY',
    quantity,
    reference_price: fillPrice,
    fill_price: fillPrice,
    slippage_pct: 0,
    fee_usd: toNumber(fee),
    fee_rate: feeRate,
    notional_usd: toNumber(notional),
    status: 'FILLED',
    signal_ts: now,
    ts: now,
    reduce_only: false,
    origin: 'signal',
    ...overrides,
  };
  return ExecutionResult.parse(candidate);
}

/** A valid PriceTick for market.tick. */
export function tick(symbol: string, price: number, ts: number = Date.now(), source: TickSource = 'manual'): PriceTick {
  return PriceTick.parse({ schema_version: SCHEMA_VERSION, symbol, price, ts, source });
}

// ---------------------------------------------------------------------------------
// HTTP

export interface InjectOptions {
  body?: unknown;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  headers?: Record<string, string>;
}

export interface JsonReply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
}

/** One request through `app.inject`; the body parsed as JSON when it is JSON. */
export async function request<T = Record<string, unknown>>(
  app: FastifyInstance,
  method: 'GET' | 'POST',
  url: string,
  options: InjectOptions = {},
): Promise<JsonReply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const res = await app.inject({
    method,
    url,
    headers,
    ...(options.body === undefined ? {} : { payload: options.body as string | object }),
  });
  const type = String(res.headers['content-type'] ?? '');
  return {
    status: res.statusCode,
    body: (type.includes('application/json') ? res.json() : undefined) as T,
    headers: res.headers,
    text: res.body,
  };
}

/**
 * The value of one sample in a Prometheus text exposition, found by name and a subset
 * of its labels (`{ topic: 'trade.signal.safe', direction: 'in' }`); undefined when absent.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const found = new Map<string, string>();
    for (const pair of (match[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found.set(pair[1] as string, pair[2] as string);
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) return Number(match[2]);
  }
  return undefined;
}

/** A logger whose JSON lines are kept, to read what a service said. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ destination }), lines };
}
