/**
 * Start-up while Redis is down (an expected condition, e.g. after a reboot when Redis
 * comes up later): the process stays up, answers GET /health with 503 on its own port,
 * and retries with backoff, logging one short warning line per attempt (no stack trace).
 */
import { createServer, type Server } from 'node:http';
import type { EventBus } from '../bus/bus.js';
import { createBus } from '../bus/factory.js';
import { errorMessage } from '../bus/consumer.js';
import type { Logger } from '../platform/logger.js';

export const RETRY_INITIAL_MS = 1000;
export const RETRY_MAX_MS = 30_000;
/** Each attempt gives up after this long, so a silent Redis is retried too. */
const ATTEMPT_TIMEOUT_MS = 2000;

export interface WaitForRedisOptions {
  /** e.g. "risk-safety": the service name /health reports. */
  service: string;
  redisUrl: string;
  /** Seed nodes of a Redis Cluster (redis_cluster_nodes); when non-empty the cluster is used. */
  clusterNodes?: readonly string[];
  /** The URL without its password, for the log. */
  displayUrl: string;
  prefix: string;
  maxlen: number;
  logger: Logger;
  /** Where the 503 /health is served while waiting. */
  host: string;
  port: number;
  /** Resolves when the process is asked to stop while still waiting. */
  stopped: Promise<unknown>;
}

/** Resolves the bus once Redis answers, or null when stopped first. Throws if the port cannot be opened. */
export async function connectWhenRedisIsUp(options: WaitForRedisOptions): Promise<EventBus | null> {
  const { logger } = options;
  // Before the first connection, failed attempts are reported here, one line each;
  // after it, the bus reports lost connections itself.
  let connected = false;
  let lastError = '';
  const onError = (error: unknown): void => {
    if (!connected) lastError = errorMessage(error);
    else logger.warn(`bus error; retrying: ${errorMessage(error)}`);
  };
  let server: Server | null = null;
  let stopped = false;
  void options.stopped.then(() => (stopped = true));
  let delayMs = RETRY_INITIAL_MS;
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const bus = await createBus({
          redisUrl: options.redisUrl,
          clusterNodes: options.clusterNodes,
          prefix: options.prefix,
          maxlen: options.maxlen,
          onError,
          connectTimeoutMs: ATTEMPT_TIMEOUT_MS,
        });
        connected = true;
        if (attempt > 1) logger.info({ redis_url: options.displayUrl, attempts: attempt }, 'Redis is reachable; starting');
        return bus;
      } catch (err) {
        const why = lastError || errorMessage(err).replace(/^Redis at \S+ /, '');
        logger.warn(
          { redis_url: options.displayUrl, attempt, retry_in_ms: delayMs },
          `Redis at ${options.displayUrl} is not reachable (${why}); /health answers 503; retrying in ${Math.round(delayMs / 1000)} s`,
        );
        lastError = '';
      }
      server ??= await serveUnavailable(options.host, options.port, {
        status: 'degraded',
        service: options.service,
        bus: { kind: 'redis', connected: false },
        message: `waiting for Redis at ${options.displayUrl}; the service starts as soon as it answers`,
      });
      const wake = await Promise.race([sleep(delayMs).then(() => 'retry' as const), options.stopped.then(() => 'stop' as const)]);
      if (wake === 'stop' || stopped) return null;
      delayMs = Math.min(delayMs * 2, RETRY_MAX_MS);
    }
  } finally {
    if (server) await closeServer(server);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Every request gets 503 with `body` (a service's /health while it cannot serve yet). */
export async function serveUnavailable(host: string, port: number, body: Record<string, unknown>): Promise<Server> {
  const text = JSON.stringify(body);
  const server = createServer((_request, response) => {
    response.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' });
    response.end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
