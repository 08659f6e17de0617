/**
 * Several accounts in one process (`quantum up` with `accounts`, docs/scale-out.md): each
 * account's three services on its own bus (its own prefix: streams, snapshots, leases),
 * its own config (overrides merged) and its own ports; the signal router between the
 * shared input and the accounts; optionally the demo source writing to the shared input.
 */
import type { EventBus } from '../bus/bus.js';
import type { Clock } from '../core/clock.js';
import type { RouteRule } from '../core/router.js';
import type { AccountRun, Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { DemoSource } from './demo-source.js';
import { startLoop, type Loop } from './loop.js';
import { RouterService } from './router/service.js';

export interface AccountsOptions {
  /** The shared, unprefixed streams (the router's input). */
  input: EventBus;
  runs: readonly AccountRun[];
  /** Each account's bus, by name. */
  buses: ReadonlyMap<string, EventBus>;
  routes: readonly RouteRule[];
  /** The base config (the demo source's settings). */
  config: Config;
  clock: Clock;
  logger: Logger;
  listen: boolean;
  demo: boolean;
}

export interface RunningAccounts {
  loops: ReadonlyMap<string, Loop>;
  router: RouterService | null;
  demo: DemoSource | null;
  stop(): Promise<void>;
}

export async function startAccounts(options: AccountsOptions): Promise<RunningAccounts> {
  const loops = new Map<string, Loop>();
  let router: RouterService | null = null;
  try {
    for (const run of options.runs) {
      const bus = options.buses.get(run.name);
      if (!bus) throw new Error(`no bus for account ${run.name}`);
      const logger = options.logger.child({ account: run.name });
      loops.set(run.name, await startLoop({ bus, config: run.config, clock: options.clock, logger, listen: options.listen, demo: false }));
    }
    if (options.routes.length > 0) {
      router = new RouterService({ input: options.input, accounts: options.buses, routes: options.routes, logger: options.logger.child({ service: 'router' }) });
      await router.start();
    }
  } catch (err) {
    await router?.stop().catch(() => undefined);
    for (const loop of [...loops.values()].reverse()) await loop.stop().catch(() => undefined);
    throw err;
  }
  // Prices for the demo strategy from the first account (every account simulates the same seeded walk).
  const first = options.runs[0] ? options.buses.get(options.runs[0].name) : undefined;
  const demo = options.demo ? new DemoSource({ bus: options.input, ticks: first, config: options.config, clock: options.clock, logger: options.logger }) : null;
  demo?.start();
  return {
    loops,
    router,
    demo,
    async stop() {
      await demo?.stop();
      await router?.stop();
      for (const loop of loops.values()) await loop.stop();
    },
  };
}
