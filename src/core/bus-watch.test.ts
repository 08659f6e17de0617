import { describe, expect, it } from 'vitest';
import { BusWatch } from './bus-watch.js';

describe('BusWatch', () => {
  it('reports the outage once when it starts and once when it ends, with its times', () => {
    const watch = new BusWatch();
    expect(watch.observe(true, 1000)).toBeNull();
    expect(watch.status).toEqual({ connected: true, down_since: null, back_at: null, last_outage_ms: null });
    expect(watch.observe(false, 2000)).toBe('down');
    expect(watch.observe(false, 3000)).toBeNull();
    expect(watch.status).toMatchObject({ connected: false, down_since: 2000 });
    expect(watch.observe(true, 68_000)).toBe('up');
    expect(watch.status).toEqual({ connected: true, down_since: null, back_at: 68_000, last_outage_ms: 66_000 });
    expect(watch.observe(true, 70_000)).toBeNull();
  });
});
