/**
 * The demo signal source of `quantum up`: a small momentum strategy on the simulated
 * prices, so the loop has something realistic to chew on. Per symbol it keeps a fast
 * and a slow exponential average of the ticks; the gap between them, measured in
 * price steps, sets the direction and the confidence. Weak momentum gives HOLD.
 * Seeded: the same ticks and seed give the same signals.
 */
import type { TradeSignalInput } from './messages.js';
import { uniform, type Random } from './random.js';

export interface DemoStrategyOptions {
  symbols: readonly string[];
  /** The simulator's step (e.g. 0.001): momentum is measured in these units. */
  priceStepPct: number;
  source?: string;
}

interface Trend {
  fast: number;
  slow: number;
  price: number;
}

const FAST_ALPHA = 0.4;
const SLOW_ALPHA = 0.08;

export class DemoStrategy {
  private readonly trends = new Map<string, Trend>();
  private cursor = 0;
  private readonly source: string;

  constructor(private readonly options: DemoStrategyOptions) {
    this.source = options.source ?? 'demo-momentum';
  }

  onPrice(symbol: string, price: number): void {
    const trend = this.trends.get(symbol);
    if (!trend) {
      this.trends.set(symbol, { fast: price, slow: price, price });
      return;
    }
    trend.fast += FAST_ALPHA * (price - trend.fast);
    trend.slow += SLOW_ALPHA * (price - trend.slow);
    trend.price = price;
  }

  /** The next signal (symbols in turn), or null while no symbol has a price yet. */
  next(rng: Random): TradeSignalInput | null {
    const symbols = this.options.symbols.filter((s) => this.trends.has(s));
    if (symbols.length === 0) return null;
    const symbol = symbols[this.cursor++ % symbols.length]!;
    const trend = this.trends.get(symbol)!;
    const gap = (trend.fast - trend.slow) / trend.slow;
    // Strength in quarter simulator steps (one step moves the averages apart by about
    // a third of a step), plus model noise: a real model is never certain.
    const strength = Math.abs(gap) / Math.max(this.options.priceStepPct / 4, 1e-12) + uniform(rng, -0.3, 0.3);
    if (strength < 0.5) {
      return { symbol, action: 'HOLD', confidence: round(uniform(rng, 0.4, 0.6)), source: this.source };
    }
    const action = gap >= 0 ? 'BUY' : 'SELL';
    const confidence = clamp(0.55 + 0.4 * Math.tanh(strength / 2) + uniform(rng, -0.08, 0.08), 0.35, 0.97);
    const stop = action === 'BUY' ? trend.price * 0.98 : trend.price * 1.02;
    const target = action === 'BUY' ? trend.price * 1.03 : trend.price * 0.97;
    return {
      symbol,
      action,
      confidence: round(confidence),
      source: this.source,
      price: trend.price,
      stop_loss: round(stop, 6),
      take_profit: round(target, 6),
      metadata: { strategy: 'ema-momentum', gap_steps: round(gap / this.options.priceStepPct, 3) },
    };
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
