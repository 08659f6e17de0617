/** `quantum risk|execution|monitor`: one service on Redis until SIGTERM/SIGINT. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { StreamNames, type ServiceName } from '../bus/topics.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { serviceLoaded } from '../platform/heap.js';
import { createLogger } from '../platform/logger.js';
import { launchService } from '../services/launch.js';
import { untilSignal } from './signals.js';
import { closeServer, connectWhenRedisIsUp, serveUnavailable } from './wait-for-redis.js';
import { ServiceLease, isLeaseStore } from '../services/common/lease.js';

export async function runService(name: ServiceName, config: Config & { redis_url: string }): Promise<number> {
  const logger = createLogger();
  const stopped = untilSignal();
  let bus;
  try {
    bus = await connectWhenRedisIsUp({
      service: SERVICE_LABELS[name],
      redisUrl: config.redis_url,
      clusterNodes: config.redis_cluster_nodes,
      displayUrl: redisDisplay(config),
      prefix: config.stream_prefix,
      maxlen: config.streams.maxlen,
      logger: logger.child({ service: name }),
      host: config.host,
      port: config.ports[name],
      stopped,
    });
  } catch (err) {
    console.error(`quantum ${name}: ${portMessage(name, config, err)}`);
    return 1;
  }
  if (bus === null) return 0;
  const serviceLogger = logger.child({ service: name });
  const lease = isLeaseStore(bus)
    ? new ServiceLease({
        store: bus,
        key: new StreamNames('').lease(name),
        holder: `${hostname()}/${config.host}:${config.ports[name]}`,
        ttlMs: config.lease.ttl_ms,
        logger: serviceLogger,
      })
    : null;
  // Unique per process: two instances never share a consumer name.
  const consumer = `${SERVICE_LABELS[name]}-${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  for (;;) {
    if (lease && !(await lease.tryAcquire())) {
      let standby;
      try {
        standby = await serveUnavailable(config.host, config.ports[name], {
          status: 'standby',
          service: SERVICE_LABELS[name],
          bus: { kind: bus.kind, connected: true },
          message: 'hot standby: another instance is active; this one takes over when its lease lapses',
        });
      } catch (err) {
        console.error(`quantum ${name}: ${portMessage(name, config, err)}`);
        await bus.close();
        return 1;
      }
      const acquired = await lease.acquire(stopped);
      await closeServer(standby);
      if (!acquired) {
        await bus.close();
        return 0;
      }
      serviceLogger.warn('lease taken: this instance is now the active one');
    }
    // Renewed from now on, start-up included; a loss during start-up stops it right after.
    const lost = new Promise<string>((resolve) => lease?.keepRenewing(resolve));
    let launched;
    try {
      launched = await launchService(name, { bus, config, clock: systemClock, logger, listen: true, consumer, takeOverPending: lease !== null });
    } catch (err) {
      logger.fatal({ err }, 'start-up failed');
      console.error(`quantum ${name}: ${(err as Error).message}`);
      await lease?.release();
      await bus.close();
      return 1;
    }
    serviceLoaded();
    const outcome = await Promise.race([stopped.then((signal) => ({ signal })), lost.then((why) => ({ why }))]);
    if ('signal' in outcome) {
      logger.info({ signal: outcome.signal }, 'shutting down');
      await launched.stop();
      await lease?.release();
      await bus.close();
      logger.info('stopped');
      return 0;
    }
    // Fenced: stop consuming first (before the lease can lapse in Redis), then HTTP.
    serviceLogger.error(`lease lost (${outcome.why}): stopped consuming; waiting as a standby`);
    await launched.service.stop();
    await launched.stop();
  }
}

const SERVICE_LABELS: Record<ServiceName, string> = { risk: 'risk-safety', execution: 'execution', monitor: 'position-monitor' };

/** The port a waiting service answers /health on could not be opened. */
function portMessage(name: ServiceName, config: Config, err: unknown): string {
  const port = config.ports[name];
  return (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
    ? `port ${port} on ${config.host} is already in use (set ports.${name} or QT_${name.toUpperCase()}_PORT)`
    : `cannot listen on ${config.host}:${port}: ${(err as Error).message}`;
}

/** `quantum dashboard`: the web dashboard for a deployment on Redis. */
export async function runDashboard(config: Config & { redis_url: string }): Promise<number> {
  const logger = createLogger().child({ service: 'dashboard' });
  const stopped = untilSignal();
  let bus;
  try {
    bus = await connectWhenRedisIsUp({
      service: 'dashboard',
      redisUrl: config.redis_url,
      clusterNodes: config.redis_cluster_nodes,
      displayUrl: redisDisplay(config),
      prefix: config.stream_prefix,
      maxlen: config.streams.maxlen,
      logger,
      host: config.host,
      port: config.ports.dashboard,
      stopped,
    });
  } catch (err) {
    console.error(`quantum dashboard: cannot listen on ${config.host}:${config.ports.dashboard}: ${(err as Error).message}`);
    return 1;
  }
  if (bus === null) return 0;
  const { startDashboard } = await import('../services/dashboard/server.js');
  let dashboard;
  try {
    dashboard = await startDashboard({ bus, config, clock: systemClock, logger, listen: true });
  } catch (err) {
    console.error(`quantum dashboard: ${(err as Error).message}`);
    await bus.close();
    return 1;
  }
  console.log(`quantum dashboard: open ${dashboard.url}`);
  await stopped;
  await dashboard.stop();
  await bus.close();
  return 0;
}

/** Hides a password in a Redis URL for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

/** Where the Redis bus runs, for messages: the URL, or the cluster's seed nodes. */
export function redisDisplay(config: Pick<Config, 'redis_url' | 'redis_cluster_nodes'>): string {
  if (config.redis_cluster_nodes.length > 0) return `Redis Cluster ${config.redis_cluster_nodes.map(redactUrl).join(',')}`;
  return redactUrl(config.redis_url ?? '');
}
