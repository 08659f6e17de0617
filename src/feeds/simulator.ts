/**
 * The simulator as a running price source: on each `execution.price_interval_ms` it
 * steps the random walk (held by the execution state, which also takes manual prices
 * and restores from snapshots) and emits the ticks that changed. Offline, seeded, always
 * "connected".
 */
import type { Clock } from '../core/clock.js';
import type { Fixed } from '../core/fixed.js';
import type { FeedStatus, RunningPriceSource, TickSink } from '../core/market.js';
import type { PriceTick } from '../core/messages.js';

export interface SimulatorSourceOptions {
  /** 0 = prices move only when set by hand. */
  intervalMs: number;
  clock: Clock;
  /** One step of the walk at `now`: the ticks of the prices that moved. */
  step(now: number): PriceTick[];
  /** The current price of a symbol. */
  price(symbol: string): Fixed | undefined;
  symbols: readonly string[];
}

export class SimulatorSource implements RunningPriceSource {
  readonly kind = 'simulator' as const;
  private timer?: NodeJS.Timeout;

  constructor(private readonly options: SimulatorSourceOptions) {}

  async start(emit: TickSink): Promise<void> {
    const { intervalMs, clock, step } = this.options;
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      const ticks = step(clock.now());
      if (ticks.length > 0) emit(ticks);
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  price(symbol: string): Fixed | undefined {
    return this.options.price(symbol);
  }

  status(): FeedStatus {
    return {
      source: this.kind,
      connected: true,
      down_since: null,
      down_ms: 0,
      reconnects: 0,
      planned_reconnects: 0,
      gaps: 0,
      malformed: 0,
      last_error: null,
      last_message_age_ms: Object.fromEntries(this.options.symbols.map((s) => [s, null])),
    };
  }
}
