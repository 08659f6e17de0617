import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { decodeSignal } from './codec.js';
import { EmbeddedBus } from './embedded.js';
import { publishTradeSignal } from './publish.js';
import { TOPICS } from './topics.js';

describe('publishTradeSignal', () => {
  it('publishes a complete signal to trade.signal.v5 and returns it', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const bus = new EmbeddedBus({ clock });
    const signal = await publishTradeSignal(bus, 'BTCUSDT', 'BUY', 0.85, 'xgb', { price: 65_000, stop_loss: 64_000 }, clock);
    expect(signal).toMatchObject({
      schema_version: 1,
      symbol: 'BTCUSDT',
      action: 'BUY',
      confidence: 0.85,
      source: 'xgb',
      ts: 1_700_000_000_000,
      price: 65_000,
      stop_loss: 64_000,
    });
    expect(signal.signal_id).toMatch(/^sig-1700000000000-[0-9a-f]{8}$/);
    const [entry] = await bus.readLatest(TOPICS.signal, 1);
    expect(entry && decodeSignal(entry.fields, entry.id)).toEqual(signal);
  });

  it('keeps a given signal_id', async () => {
    const bus = new EmbeddedBus();
    const signal = await publishTradeSignal(bus, 'ETHUSDT', 'CLOSE', 1, 'manual_close', { signal_id: 'close-1' });
    expect(signal.signal_id).toBe('close-1');
  });

  it.each([
    ['confidence', () => ['BTCUSDT', 'BUY', 1.2, 'xgb'] as const, 'confidence: Too big: expected number to be <=1'],
    ['action', () => ['BTCUSDT', 'BUYY', 0.9, 'xgb'] as const, 'action: '],
    ['symbol', () => ['btc', 'BUY', 0.9, 'xgb'] as const, 'symbol: '],
    ['source', () => ['BTCUSDT', 'BUY', 0.9, ''] as const, 'source: '],
  ])('refuses a bad %s, naming it, and publishes nothing', async (_field, args, message) => {
    const bus = new EmbeddedBus();
    const [symbol, action, confidence, source] = args();
    await expect(publishTradeSignal(bus, symbol, action, confidence, source)).rejects.toThrow(message);
    expect(await bus.length(TOPICS.signal)).toBe(0);
  });
});
