/** `quantum signal`, `quantum streams` and its sub-commands. */
import type { EventBus } from '../bus/bus.js';
import { trimExecution } from '../bus/execution-trim.js';
import { createBus } from '../bus/factory.js';
import { REPORT_TOPICS, formatStreamReport, streamReport } from '../bus/admin.js';
import { publishTradeSignal } from '../bus/publish.js';
import { EXPECTED_GROUPS, TOPICS } from '../bus/topics.js';
import { trimBehindConsumers } from '../bus/trim.js';
import { SYMBOL_PATTERN, SignalAction } from '../core/messages.js';
import type { Config } from '../platform/config.js';
import { redactUrl } from './serve.js';

type RedisConfig = Config & { redis_url: string };

async function withBus<T>(config: RedisConfig, fn: (bus: EventBus) => Promise<T>): Promise<T> {
  let bus: EventBus;
  try {
    // With accounts, the top-level (often empty) prefix is the router's shared namespace.
    bus = await createBus({ redisUrl: config.redis_url, clusterNodes: config.redis_cluster_nodes, spanSlots: config.accounts.length > 0, prefix: config.stream_prefix, maxlen: config.streams.maxlen, connectTimeoutMs: 5000, trimIntervalMs: 0 });
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
  signal_id?: string;
  json: boolean;
}

export async function runSignal(config: RedisConfig, args: SignalArgs): Promise<number> {
  // Symbols and actions alike: any case, sent in upper case.
  const symbol = args.symbol.toUpperCase();
  const action = SignalAction.safeParse(args.action.toUpperCase());
  if (!action.success) {
    console.error(`quantum signal: action must be one of ${SignalAction.options.join(', ')}, got "${args.action}"`);
    return 2;
  }
  const known = config.instruments.map((i) => i.symbol);
  if (SYMBOL_PATTERN.test(symbol) && !known.includes(symbol)) {
    // Published anyway (another deployment may trade it), but this one's risk gate will refuse it.
    console.error(
      `quantum signal: warning: ${symbol} is not a configured instrument (${known.join(', ')}); the risk service will reject it UNKNOWN_SYMBOL`,
    );
  }
  return withBus(config, async (bus) => {
    let signal;
    try {
      signal = await publishTradeSignal(bus, symbol, action.data, args.confidence, args.source, {
        price: args.price,
        stop_loss: args.stop_loss,
        take_profit: args.take_profit,
        signal_id: args.signal_id,
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
      // trade.execution.res: the same rule, and the fills state recovery needs stay (SPEC §7).
      const result = topic === TOPICS.execution ? await trimExecution(bus, options.maxlen) : await trimBehindConsumers(bus, topic, options.maxlen);
      const why = result.keptBecause ? `; ${result.length - options.maxlen} more than --maxlen kept: ${result.keptBecause}` : '';
      console.log(`${topic}: removed ${result.removed}, ${result.length} left${why}`);
    }
    return 0;
  });
}

export async function runCreateGroups(config: RedisConfig): Promise<number> {
  // The groups the loop expects on each topic (the ones trimming waits for).
  const plan = Object.entries(EXPECTED_GROUPS).flatMap(([topic, groups]) => groups.map((group) => [topic, group] as const));
  return withBus(config, async (bus) => {
    for (const [topic, group] of plan) {
      await bus.ensureGroup(topic, group, '0');
      console.log(`${topic}: group ${group} ready`);
    }
    return 0;
  });
}
