/**
 * `quantum feed`: connects to the venue's public market data (market.binance, no API
 * key) for the configured instruments and prints their quotes for a few seconds; a
 * check a user runs on a machine with internet before `quantum up --feed binance`.
 * Exit 0 when quotes arrived, 1 with the reason when none did.
 */
import { instrumentTable } from '../core/instruments.js';
import type { PriceTick } from '../core/messages.js';
import { keyedRandom } from '../core/random.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { silentLogger } from '../platform/logger.js';
import { BinanceSource } from '../venues/binance/source.js';

export interface FeedOptions {
  seconds: number;
  json: boolean;
}

/** One line per symbol per second at most: readable, and enough to see the book move. */
const PRINT_INTERVAL_MS = 1000;

export async function runFeed(config: Config, options: FeedOptions): Promise<number> {
  const symbols = config.instruments.map((i) => i.symbol);
  const source = new BinanceSource({
    market: config.market.binance.market,
    baseUrl: config.market.binance.ws_url,
    instruments: instrumentTable(config.instruments),
    clock: systemClock,
    logger: silentLogger,
    rng: keyedRandom(config.seed, 'feed:cli'),
    minTickIntervalMs: PRINT_INTERVAL_MS,
  });
  const seen = new Set<string>();
  let count = 0;
  const print = (tick: PriceTick) => {
    count += 1;
    seen.add(tick.symbol);
    if (options.json) {
      console.log(JSON.stringify(tick));
      return;
    }
    const lag = tick.exchange_ts === undefined ? '' : `  venue time ${new Date(tick.exchange_ts).toISOString()}`;
    const size = (s: number | undefined) => (s === undefined ? '' : ` x ${s}`);
    console.log(
      `${tick.symbol.padEnd(10)} bid ${String(tick.bid ?? '-')}${size(tick.bid_size)}  ask ${String(tick.ask ?? '-')}${size(tick.ask_size)}  last ${tick.price}${lag}`,
    );
  };
  if (!options.json) console.log(`quantum feed: binance ${config.market.binance.market}, ${symbols.join(', ')}: ${source.urls().join(' ')}`);
  await source.start((ticks) => ticks.forEach(print));
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  const status = source.status(systemClock.now());
  await source.stop();
  if (count === 0) {
    const why = status.last_error ?? (status.connected ? 'connected, but no frames for these symbols' : 'could not connect');
    console.error(`quantum feed: no quotes within ${options.seconds} s from ${source.urls().join(' ')}: ${why}`);
    return 1;
  }
  const missing = symbols.filter((s) => !seen.has(s));
  if (!options.json) {
    console.log(
      `quantum feed: ${count} quote(s) in ${options.seconds} s; reconnects ${status.reconnects}, gaps ${status.gaps}, malformed ${status.malformed}` +
        (missing.length > 0 ? `; no quotes for ${missing.join(', ')}` : ''),
    );
  }
  return 0;
}
