/** EmbeddedBus.whenSettled: the idle signal a replay waits on (src/backtest/driver.ts). */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { EmbeddedBus } from './embedded.js';

describe('embedded bus: settled', () => {
  it('resolves only once a cascade through two subscriptions has been handled and acknowledged', async () => {
    const bus = new EmbeddedBus({ clock: new ManualClock(1), trimIntervalMs: 0 });
    const seen: string[] = [];
    const decode = (fields: Record<string, string>) => JSON.parse(fields.payload ?? 'null') as { n: number };
    bus.subscribe({ topic: 'a', group: 'g1', consumer: 'c', decode, handler: async ({ message }) => {
      await Promise.resolve();
      seen.push(`a${message.n}`);
      return [{ topic: 'b', payload: { n: message.n } }];
    } });
    bus.subscribe({ topic: 'b', group: 'g2', consumer: 'c', decode, handler: ({ message }) => void seen.push(`b${message.n}`) });
    // Not settled until both subscriptions have started and parked.
    expect(bus.settled()).toBe(false);
    await bus.whenSettled();
    expect(bus.settled()).toBe(true);
    for (let n = 1; n <= 3; n += 1) {
      await bus.publish('a', { n });
      expect(bus.settled()).toBe(false);
      await bus.whenSettled();
      expect(seen.slice(-2)).toEqual([`a${n}`, `b${n}`]);
    }
    const info = await bus.info('b');
    expect(info.groups[0]).toMatchObject({ pending: 0, lag: 0 });
    await bus.close();
  });
});
