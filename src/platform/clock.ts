import type { Clock } from '../core/clock.js';

/** The wall clock; the only place outside tests where real time enters. */
export const systemClock: Clock = { now: () => Date.now() };
