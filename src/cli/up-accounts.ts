/**
 * `quantum up` with `accounts`: every account's three services in one process (each on
 * its own prefix, ports and overrides), the router when `routes` are set, and the demo
 * source on the shared input. Prints one line per account every few seconds.
 */
import { hostname } from 'node:os';
import { holdServiceLeases, type HeldLeases } from '../services/common/lease.js';
import { startAccounts, type RunningAccounts } from '../services/accounts.js';
import { accountRuns, type Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { destination as pinoDestination } from 'pino';
import { connectAccountBuses } from './accounts-bus.js';
import { redisDisplay } from './serve.js';
import { untilSignal } from './signals.js';
import { upLogger } from './up.js';

const REFRESH_MS = 5000;

export async function runUpAccounts(config: Config, options: { demo: boolean; dashboard: boolean }): Promise<number> {
  const logger = upLogger(pinoDestination(2));
  const runs = accountRuns(config);
  const label = config.redis_cluster_nodes.length > 0 || config.redis_url ? `redis ${redisDisplay(config)}` : 'embedded';
  let buses;
  try {
    buses = await connectAccountBuses(config, runs, { trim: true });
  } catch (err) {
    console.error(`quantum up: cannot connect to ${redisDisplay(config)}: ${(err as Error).message}`);
    return 1;
  }
  const leases: HeldLeases[] = [];
  for (const run of runs) {
    const held = await holdServiceLeases(buses.buses.get(run.name), {
      services: ['risk', 'execution', 'monitor'],
      holder: `${hostname()}/${config.host}:up`,
      ttlMs: run.config.lease.ttl_ms,
      logger,
    });
    if (held && 'refused' in held) {
      console.error(`quantum up: account ${run.name}: ${held.refused}`);
      await Promise.all(leases.map((lease) => lease.release()));
      await buses.close();
      return 1;
    }
    if (held) leases.push(held);
  }
  let running: RunningAccounts;
  try {
    running = await startAccounts({ ...buses, runs, routes: config.routes, config, clock: systemClock, logger, listen: true, demo: options.demo });
  } catch (err) {
    console.error(`quantum up: ${(err as Error).message}`);
    await Promise.all(leases.map((lease) => lease.release()));
    await buses.close();
    return 1;
  }
  // The dashboard: the first account's loop, and the accounts view comparing them all.
  let dashboard: { url: string; stop(): Promise<void> } | undefined;
  const first = runs[0];
  if (options.dashboard && first) {
    try {
      const { startDashboard } = await import('../services/dashboard/server.js');
      const dashboardConfig = { ...first.config, ports: { ...first.config.ports, dashboard: config.ports.dashboard } };
      dashboard = await startDashboard({ bus: buses.buses.get(first.name)!, config: dashboardConfig, accountsConfig: config, clock: systemClock, logger, listen: true });
    } catch (err) {
      console.error(`quantum up: ${(err as Error).message}; or run with --no-dashboard`);
      await running.stop();
      await Promise.all(leases.map((lease) => lease.release()));
      await buses.close();
      return 1;
    }
  }
  const stopSignal = untilSignal();
  if (dashboard) console.log(`quantum up: dashboard ${dashboard.url} (account ${first!.name}); accounts compared at ${dashboard.url.replace(/\/$/, '')}/accounts`);
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  for (const [name, loop] of running.loops) {
    const shadow = runs.find((run) => run.name === name)?.shadow ? ' (shadow)' : '';
    console.log(
      `quantum up: account ${name}${shadow} on the ${label} bus: risk http://${host}:${loop.risk.port}, ` +
        `execution http://${host}:${loop.execution.port}, monitor http://${host}:${loop.monitor.port}`,
    );
  }
  if (running.router) console.log(`quantum up: routing trade.signal.v5 by ${config.routes.length} route(s)`);
  const print = (): void => {
    for (const [name, loop] of running.loops) {
      const risk = loop.risk.service.stats();
      const portfolio = loop.monitor.service.state.portfolio();
      console.log(
        `account ${name}: signals ${risk.counts.received} approved ${risk.counts.approved} rejected ${risk.counts.rejected} · ` +
          `equity ${portfolio.equity_usd} · trades ${portfolio.closed_trades}`,
      );
    }
    if (running.router) {
      const counts = running.router.counts;
      console.log(`router: received ${counts.received} routed ${counts.routed} unrouted ${counts.unrouted}`);
    }
  };
  const timer = setInterval(print, REFRESH_MS);
  const lost = leases.map((lease) => lease.lost.then((why) => ({ why })));
  const outcome = await Promise.race([stopSignal.then((signal) => ({ signal })), ...lost]);
  clearInterval(timer);
  await dashboard?.stop();
  await running.stop();
  if ('why' in outcome) {
    console.error(`quantum up: lease lost (${outcome.why}), stopping`);
    await buses.close();
    return 1;
  }
  print();
  await Promise.all(leases.map((lease) => lease.release()));
  await buses.close();
  console.log('quantum up: stopped cleanly');
  return 0;
}
