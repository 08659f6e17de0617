/** `quantum risk|execution|monitor`: one service on Redis until SIGTERM/SIGINT. */
import { createBus } from '../bus/factory.js';
import type { ServiceName } from '../bus/topics.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { createLogger } from '../platform/logger.js';
import { launchService } from '../services/launch.js';
import { untilSignal } from './signals.js';
import { connectWhenRedisIsUp } from './wait-for-redis.js';

export async function runService(name: ServiceName, config: Config & { redis_url: string }): Promise<number> {
  const logger = createLogger();
  const stopped = untilSignal();
  let bus;
  try {
    bus = await connectWhenRedisIsUp({
      service: SERVICE_LABELS[name],
      redisUrl: config.redis_url,
      displayUrl: redactUrl(config.redis_url),
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
  let launched;
  try {
    launched = await launchService(name, { bus, config, clock: systemClock, logger, listen: true });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    console.error(`quantum ${name}: ${(err as Error).message}`);
    await bus.close();
    return 1;
  }
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await launched.stop();
  await bus.close();
  logger.info('stopped');
  return 0;
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
  let bus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, prefix: config.stream_prefix, maxlen: config.streams.maxlen });
  } catch (err) {
    console.error(`quantum dashboard: cannot connect to Redis at ${redactUrl(config.redis_url)}: ${(err as Error).message}`);
    return 1;
  }
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
  await untilSignal();
  await dashboard.stop();
  await bus.close();
  return 0;
}

/** Hides a password in a Redis URL for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}
