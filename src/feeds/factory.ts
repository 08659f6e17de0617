/**
 * The one place that picks the price source from config (`market.source`). The
 * execution service runs what this returns and publishes its ticks to market.tick;
 * nothing else in the loop knows where prices come from. A new venue is one more
 * branch here and a module of its own under src/venues/.
 */
import type { Clock } from '../core/clock.js';
import type { Fixed } from '../core/fixed.js';
import { instrumentTable } from '../core/instruments.js';
import type { RunningPriceSource } from '../core/market.js';
import type { PriceTick } from '../core/messages.js';
import { keyedRandom } from '../core/random.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { FeedMetrics } from '../platform/metrics.js';
import { BinanceSource } from '../venues/binance/source.js';
import { SimulatorSource } from './simulator.js';

export interface PriceSourceDeps {
  clock: Clock;
  logger: Logger;
  metrics?: FeedMetrics;
  /** The simulator's walk (held by the execution state). */
  simulator: { step(now: number): PriceTick[]; price(symbol: string): Fixed | undefined };
}

export function createPriceSource(config: Config, deps: PriceSourceDeps): RunningPriceSource {
  const instruments = instrumentTable(config.instruments);
  if (config.market.source === 'binance') {
    return new BinanceSource({
      market: config.market.binance.market,
      baseUrl: config.market.binance.ws_url,
      instruments,
      clock: deps.clock,
      logger: deps.logger,
      metrics: deps.metrics,
      rng: keyedRandom(config.seed, 'feed:binance'),
      minTickIntervalMs: config.market.min_tick_interval_ms,
    });
  }
  return new SimulatorSource({
    intervalMs: config.execution.price_interval_ms,
    clock: deps.clock,
    step: (now) => deps.simulator.step(now),
    price: (symbol) => deps.simulator.price(symbol),
    symbols: [...instruments.keys()],
  });
}
