/**
 * Picks the bus from config in one place: Redis Streams on a Redis Cluster when seed nodes
 * are given (`redis_cluster_nodes`), else on one Redis when a URL is given, else the
 * in-process bus (so `quantum up` runs anywhere).
 */
import type { Clock } from '../core/clock.js';
import type { EventBus } from './bus.js';
import { EmbeddedBus } from './embedded.js';
import { RedisBus } from './redis.js';

export interface BusConfig {
  redisUrl?: string;
  /** Seed nodes of a Redis Cluster; when non-empty the bus runs on the cluster (redisUrl is not used). */
  clusterNodes?: readonly string[];
  /** On a cluster, accept a prefix without a hash tag (only the router's shared input stream). */
  spanSlots?: boolean;
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
  if (config.clusterNodes && config.clusterNodes.length > 0) {
    const { clusterNodes, spanSlots } = config;
    return RedisBus.connect({ clusterNodes, spanSlots, prefix, maxlen, trimIntervalMs, clock, onError, connectTimeoutMs });
  }
  if (redisUrl) return RedisBus.connect({ url: redisUrl, prefix, maxlen, trimIntervalMs, clock, onError, connectTimeoutMs });
  return new EmbeddedBus({ prefix, maxlen, trimIntervalMs, clock, onError });
}
