/**
 * The demo signal source of `quantum up`: the seeded momentum strategy
 * (core/demo-strategy.ts) fed by market.tick through its own consumer group, and
 * publishing to trade.signal.v5 like any external producer would.
 */
import type { EventBus, Subscription } from '../bus/bus.js';
import { decoderFor } from '../bus/codec.js';
import { publishTradeSignal } from '../bus/publish.js';
import { TOPICS } from '../bus/topics.js';
import type { Clock } from '../core/clock.js';
import { DemoStrategy } from '../core/demo-strategy.js';
import { PriceTick } from '../core/messages.js';
import { keyedRandom } from '../core/random.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';

export const DEMO_GROUP = 'demo-source';

export class DemoSource {
  private readonly strategy: DemoStrategy;
  private subscription?: Subscription;
  private timer?: NodeJS.Timeout;
  private emitted = 0;
  private runId = '';

  constructor(
    /** `ticks`: where prices are read, when not `bus` (the shared input of several accounts has none of its own). */
    private readonly deps: { bus: EventBus; config: Config; clock: Clock; logger: Logger; ticks?: EventBus },
  ) {
    this.strategy = new DemoStrategy({
      symbols: deps.config.instruments.map((i) => i.symbol),
      priceStepPct: deps.config.execution.price_step_pct,
    });
  }

  start(): void {
    const { bus, config } = this.deps;
    // Signal ids from the seed, the start time and the count, never random: the same
    // emissions at the same times give the same ids, hence the same fills (execution's
    // randomness is keyed by signal_id); a later run on the same Redis gets new ids.
    this.runId = `demo-${config.seed}-${this.deps.clock.now()}`;
    const decodeTick = decoderFor(PriceTick);
    this.subscription = (this.deps.ticks ?? bus).subscribe({
      topics: [TOPICS.tick],
      group: DEMO_GROUP,
      consumer: 'demo-1',
      decode: (_topic, fields, id) => decodeTick(fields, id),
      handler: ({ message }) => {
        this.strategy.onPrice(message.symbol, message.price);
      },
    });
    const intervalMs = Math.max(1, Math.round(1000 / config.demo.signals_per_second));
    this.timer = setInterval(() => void this.emit(), intervalMs);
    this.timer.unref();
  }

  private async emit(): Promise<void> {
    // Keyed by the emission count: the same seed and prices give the same signals.
    const signal = this.strategy.next(keyedRandom(this.deps.config.seed, `demo:${this.emitted}`));
    if (!signal) return;
    this.emitted += 1;
    try {
      await publishTradeSignal(this.deps.bus, signal.symbol, signal.action, signal.confidence, signal.source, {
        price: signal.price,
        stop_loss: signal.stop_loss,
        take_profit: signal.take_profit,
        metadata: signal.metadata,
        signal_id: `${this.runId}-${this.emitted}`,
      }, this.deps.clock);
    } catch (err) {
      this.deps.logger.warn({ err }, 'demo source could not publish');
    }
  }

  get count(): number {
    return this.emitted;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.subscription?.close();
  }
}
