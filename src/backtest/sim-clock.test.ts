import { describe, expect, it } from 'vitest';
import { SimClock, SimScheduler } from './sim-clock.js';

describe('simulated scheduler', () => {
  it('fires every due timer in time order at its own due instant, awaiting each', async () => {
    const clock = new SimClock(0);
    const scheduler = new SimScheduler(clock);
    const log: string[] = [];
    scheduler.every(1000, async () => {
      await Promise.resolve();
      log.push(`a@${clock.now()}`);
    });
    scheduler.every(2500, () => void log.push(`b@${clock.now()}`));
    await scheduler.advanceTo(5000, () => void log.push('settle'));
    expect(log).toEqual(['a@1000', 'settle', 'a@2000', 'settle', 'b@2500', 'settle', 'a@3000', 'settle', 'a@4000', 'settle', 'a@5000', 'settle', 'b@5000', 'settle']);
    expect(clock.now()).toBe(5000);
  });

  it('a cancelled timer never fires again; the clock never goes back', async () => {
    const clock = new SimClock(100);
    const scheduler = new SimScheduler(clock);
    let fired = 0;
    const cancel = scheduler.every(10, () => void (fired += 1));
    await scheduler.advanceTo(130, () => undefined);
    cancel();
    await scheduler.advanceTo(1000, () => undefined);
    expect(fired).toBe(3);
    clock.set(50);
    expect(clock.now()).toBe(1000);
  });
});
