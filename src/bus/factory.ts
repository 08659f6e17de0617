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
  /** Approximate length kept per topic (`streams.maxlen`); trade.execution.res is never trimmed on publish. */
  maxlen?: number;
  clock?: Clock;
  /** Connection errors and retried failures; default: one line on stderr each. */
  onError?: (error: unknown) => void;
  /** How long the first Redis connection may take before createBus fails. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Resolves once the bus is ready: for Redis, after it answered (fails with a clear message if it does not). */
export async function createBus(config: BusConfig = {}): Promise<EventBus> {
  const { redisUrl, prefix, maxlen, clock, onError, connectTimeoutMs } = config;
  if (redisUrl) return RedisBus.connect({ url: redisUrl, prefix, maxlen, clock, onError, connectTimeoutMs });
  return new EmbeddedBus({ prefix, maxlen, clock, onError });
}
