/** The whole loop in one process: the three services (and optionally the demo source). */
import type { EventBus } from '../bus/bus.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { Scheduler } from '../platform/scheduler.js';
import { DemoSource } from './demo-source.js';
import { launchService, type Launched } from './launch.js';

export interface Loop {
  risk: Launched<'risk'>;
  execution: Launched<'execution'>;
  monitor: Launched<'monitor'>;
  demo: DemoSource | null;
  stop(): Promise<void>;
}

export interface LoopOptions {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  listen: boolean;
  demo: boolean;
  /** Periodic work of the services; real timers by default. */
  scheduler?: Scheduler;
  /** false: no state snapshots (a backtest). */
  snapshots?: boolean;
}

/** Starts risk → execution → monitor (the systemd order), then the demo source. */
export async function startLoop(options: LoopOptions): Promise<Loop> {
  const common = { bus: options.bus, config: options.config, clock: options.clock, logger: options.logger, listen: options.listen, scheduler: options.scheduler, snapshots: options.snapshots };
  const started: Launched[] = [];
  try {
    const risk = await launchService('risk', common);
    started.push(risk);
    const execution = await launchService('execution', common);
    started.push(execution);
    const monitor = await launchService('monitor', common);
    started.push(monitor);
    const demo = options.demo ? new DemoSource(options) : null;
    demo?.start();
    return {
      risk,
      execution,
      monitor,
      demo,
      async stop() {
        await demo?.stop();
        // Producers first, consumers last, so in-flight work drains.
        for (const s of [risk, execution, monitor]) await s.stop();
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  }
}
