/** `quantum signal`, `quantum streams` and its sub-commands. */
import type { EventBus } from '../bus/bus.js';
import { createBus } from '../bus/factory.js';
import { REPORT_TOPICS, formatStreamReport, streamReport } from '../bus/admin.js';
import { publishTradeSignal } from '../bus/publish.js';
import { GROUPS, TOPICS } from '../bus/topics.js';
import { nextId, trimBehindConsumers } from '../bus/trim.js';
import { snapshotKey } from '../services/common/host.js';
import { SignalAction } from '../core/messages.js';
import type { Config } from '../platform/config.js';
import { redactUrl } from './serve.js';

type RedisConfig = Config & { redis_url: string };

async function withBus<T>(config: RedisConfig, fn: (bus: EventBus) => Promise<T>): Promise<T> {
  let bus: EventBus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, prefix: config.stream_prefix, maxlen: config.streams.maxlen, connectTimeoutMs: 5000, trimIntervalMs: 0 });
  } catch (err) {
    throw new Error(`cannot connect to Redis at ${redactUrl(config.redis_url)}: ${(err as Error).message}`);
  }
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}

export interface SignalArgs {
  symbol: string;
  action: string;
  confidence: number;
  source: string;
  price?: number;
  stop_loss?: number;
  take_profit?: number;
  json: boolean;
}

export async function runSignal(config: RedisConfig, args: SignalArgs): Promise<number> {
  const action = SignalAction.safeParse(args.action.toUpperCase());
  if (!action.success) {
    console.error(`quantum signal: action must be one of ${SignalAction.options.join(', ')}, got "${args.action}"`);
    return 2;
  }
  return withBus(config, async (bus) => {
    let signal;
    try {
      signal = await publishTradeSignal(bus, args.symbol, action.data, args.confidence, args.source, {
        price: args.price,
        stop_loss: args.stop_loss,
        take_profit: args.take_profit,
      });
    } catch (err) {
      console.error(`quantum signal: ${(err as Error).message}`);
      return 2;
    }
    console.log(args.json ? JSON.stringify(signal) : signal.signal_id);
    return 0;
  });
}

export async function runStreams(config: RedisConfig, options: { json: boolean }): Promise<number> {
  return withBus(config, async (bus) => {
    const report = await streamReport(bus);
    console.log(options.json ? JSON.stringify(report, null, 2) : formatStreamReport(report));
    return 0;
  });
}

export async function runTrim(config: RedisConfig, options: { maxlen: number; topic?: string }): Promise<number> {
  if (!Number.isInteger(options.maxlen) || options.maxlen < 0) {
    console.error('quantum streams trim: --maxlen must be a whole number >= 0');
    return 2;
  }
  const topics = options.topic ? [options.topic] : REPORT_TOPICS;
  return withBus(config, async (bus) => {
    for (const topic of topics) {
      const keepFrom = topic === TOPICS.execution ? await recoveryNeeds(bus) : null;
      const result = await trimBehindConsumers(bus, topic, options.maxlen, { keepFrom });
      const why = result.keptBecause ? `; ${result.length - options.maxlen} more than --maxlen kept: ${result.keptBecause}` : '';
      console.log(`${topic}: removed ${result.removed}, ${result.length} left${why}`);
    }
    return 0;
  });
}

/**
 * What of trade.execution.res state recovery needs (SPEC §7): the fills after the
 * monitor's snapshot; all of them when there is no snapshot (the monitor rebuilds from
 * the whole stream).
 */
async function recoveryNeeds(bus: EventBus): Promise<{ id: string; why: string }> {
  const text = await bus.getValue(snapshotKey('monitor'));
  let watermark: unknown = null;
  try {
    watermark = text ? (JSON.parse(text) as { last_fill_id?: unknown }).last_fill_id : null;
  } catch {
    watermark = null;
  }
  if (typeof watermark !== 'string' || watermark === '0-0') {
    return { id: '0-1', why: "the monitor has no readable snapshot: state recovery folds the whole stream" };
  }
  return { id: nextId(watermark), why: `state recovery needs the fills after the monitor's snapshot (${watermark})` };
}

export async function runCreateGroups(config: RedisConfig): Promise<number> {
  const plan: Array<[string, string]> = [
    [TOPICS.signal, GROUPS.risk],
    [TOPICS.execution, GROUPS.risk],
    [TOPICS.tick, GROUPS.risk],
    [TOPICS.safe, GROUPS.execution],
    [TOPICS.tick, GROUPS.execution],
    [TOPICS.execution, GROUPS.monitor],
    [TOPICS.tick, GROUPS.monitor],
  ];
  return withBus(config, async (bus) => {
    for (const [topic, group] of plan) {
      await bus.ensureGroup(topic, group, '0');
      console.log(`${topic}: group ${group} ready`);
    }
    return 0;
  });
}
