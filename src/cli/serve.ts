/** `quantum risk|execution|monitor`: one service on Redis until SIGTERM/SIGINT. */
import { createBus } from '../bus/factory.js';
import type { ServiceName } from '../bus/topics.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { createLogger } from '../platform/logger.js';
import { launchService } from '../services/launch.js';
import { untilSignal } from './signals.js';

export async function runService(name: ServiceName, config: Config & { redis_url: string }): Promise<number> {
  const logger = createLogger();
  let bus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, prefix: config.stream_prefix, maxlen: config.streams.maxlen });
  } catch (err) {
    logger.fatal({ err, redis_url: redactUrl(config.redis_url) }, 'cannot connect to Redis');
    console.error(`quantum ${name}: cannot connect to Redis at ${redactUrl(config.redis_url)}: ${(err as Error).message}`);
    return 1;
  }
  let launched;
  try {
    launched = await launchService(name, { bus, config, clock: systemClock, logger, listen: true });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    console.error(`quantum ${name}: ${(err as Error).message}`);
    await bus.close();
    return 1;
  }
  const signal = await untilSignal();
  logger.info({ signal }, 'shutting down');
  await launched.stop();
  await bus.close();
  logger.info('stopped');
  return 0;
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
