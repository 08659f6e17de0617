/** `quantum route`: the signal router as its own process on Redis (docs/scale-out.md). */
import { hostname } from 'node:os';
import { accountRuns, type Config } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { RouterService } from '../services/router/service.js';
import { connectAccountBuses } from './accounts-bus.js';
import { redisDisplay } from './serve.js';
import { untilSignal } from './signals.js';

export async function runRoute(config: Config & { redis_url: string }): Promise<number> {
  if (config.accounts.length === 0 || config.routes.length === 0) {
    console.error('quantum route: needs accounts and routes in the config (docs/scale-out.md)');
    return 2;
  }
  const logger = createLogger().child({ service: 'router' });
  const stopped = untilSignal();
  let buses;
  try {
    buses = await connectAccountBuses(config, accountRuns(config), { trim: false });
  } catch (err) {
    console.error(`quantum route: cannot connect to ${redisDisplay(config)}: ${(err as Error).message}`);
    return 1;
  }
  const router = new RouterService({
    input: buses.input,
    accounts: buses.buses,
    routes: config.routes,
    logger,
    consumer: `router-${hostname()}-${process.pid}`,
  });
  await router.start();
  console.log(`quantum route: routing trade.signal.v5 to ${[...buses.buses.keys()].join(', ')} on ${redisDisplay(config)}`);
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await router.stop();
  await buses.close();
  console.log(`quantum route: stopped (${JSON.stringify(router.counts)})`);
  return 0;
}
