/**
 * Picks the bus from config in one place: Redis Streams when a URL is given, else the
 * in-process bus (so `quantum up` runs anywhere).
 */
import type { Clock } from '../core/clock.js';
import type { EventBus } from './bus.js';
import { EmbeddedBus } from './embedded.js';
import { RedisBus } from './redis.js';

export interface BusConfig {
  redisUrl?: string;
  /** Prepended to every stream and key (`stream_prefix`). */
  prefix?: string;
  /** Length each topic is trimmed back to behind its consumer groups (`streams.maxlen`); never trade.execution.res. */
  maxlen?: number;
  /** How often that trimming runs; 0 = never. Default 10 000 ms. */
  trimIntervalMs?: number;
  clock?: Clock;
  /** Connection errors and retried failures; default: one line on stderr each. */
  onError?: (error: unknown) => void;
  /** How long the first Redis connection may take before createBus fails. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Resolves once the bus is ready: for Redis, after it answered (fails with a clear message if it does not). */
export async function createBus(config: BusConfig = {}): Promise<EventBus> {
  const { redisUrl, prefix, maxlen, trimIntervalMs, clock, onError, connectTimeoutMs } = config;
  if (redisUrl) return RedisBus.connect({ url: redisUrl, prefix, maxlen, trimIntervalMs, clock, onError, connectTimeoutMs });
  return new EmbeddedBus({ prefix, maxlen, trimIntervalMs, clock, onError });
}
