/**
 * Wiring: builds a service and its HTTP app on a given bus and (optionally) listens.
 * Used by `quantum risk|execution|monitor`, by `quantum up`, and by the tests.
 */
import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../bus/bus.js';
import type { ServiceName } from '../bus/topics.js';
import type { Clock } from '../core/clock.js';
import { listen } from '../platform/http.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { Scheduler } from '../platform/scheduler.js';
import { buildExecutionApp } from './execution/app.js';
import { ExecutionService } from './execution/service.js';
import { buildMonitorApp } from './monitor/app.js';
import { MonitorService } from './monitor/service.js';
import { buildRiskApp } from './risk/app.js';
import { RiskService } from './risk/service.js';

export interface LaunchOptions {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  /** Open the HTTP port (config.ports[name] unless `port` is given; 0 = any free port). */
  listen?: boolean;
  port?: number;
  consumer?: string;
  /** This instance holds the service's lease (see ServiceDeps.takeOverPending). */
  takeOverPending?: boolean;
  /** Periodic work; real timers by default (a backtest passes simulated ones). */
  scheduler?: Scheduler;
  /** false: no state snapshots (see ServiceDeps.snapshots). */
  snapshots?: boolean;
}

interface ServiceByName {
  risk: RiskService;
  execution: ExecutionService;
  monitor: MonitorService;
}

export interface Launched<N extends ServiceName = ServiceName> {
  name: N;
  service: ServiceByName[N];
  app: FastifyInstance;
  /** The bound port, or null when not listening. */
  port: number | null;
  /** Stops HTTP first (no new work), then the consumer (finishing its batch). */
  stop(): Promise<void>;
}

export async function launchService<N extends ServiceName>(name: N, options: LaunchOptions): Promise<Launched<N>> {
  const logger = options.logger.child({ service: name });
  const deps = {
    bus: options.bus,
    config: options.config,
    clock: options.clock,
    logger,
    consumer: options.consumer,
    takeOverPending: options.takeOverPending,
    scheduler: options.scheduler,
    snapshots: options.snapshots,
  };
  const http = { apiToken: options.config.api_token, logger, host: options.config.host, allowedHosts: options.config.allowed_hosts };
  let service: RiskService | ExecutionService | MonitorService;
  let app: FastifyInstance;
  if (name === 'risk') {
    const risk = new RiskService(deps);
    service = risk;
    app = await buildRiskApp(risk, http);
  } else if (name === 'execution') {
    const execution = new ExecutionService(deps);
    service = execution;
    app = await buildExecutionApp(execution, http);
  } else {
    const monitor = new MonitorService(deps);
    service = monitor;
    app = await buildMonitorApp(monitor, { ...http, knownSymbols: options.config.instruments.map((i) => i.symbol) });
  }
  await service.start();
  let port: number | null = null;
  if (options.listen) {
    try {
      port = await listen(app, options.config.host, options.port ?? options.config.ports[name]);
    } catch (err) {
      await service.stop();
      const code = (err as NodeJS.ErrnoException).code;
      const wanted = options.port ?? options.config.ports[name];
      throw new Error(
        code === 'EADDRINUSE'
          ? `${name}: port ${wanted} on ${options.config.host} is already in use (set ports.${name} or QT_${name.toUpperCase()}_PORT)`
          : `${name}: cannot listen on ${options.config.host}:${wanted}: ${(err as Error).message}`,
      );
    }
    logger.info({ host: options.config.host, port }, 'listening');
  } else {
    await app.ready();
  }
  return {
    name,
    service: service as ServiceByName[N],
    app,
    port,
    async stop() {
      await app.close();
      await service.stop();
    },
  };
}
