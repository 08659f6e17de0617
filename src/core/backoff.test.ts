import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { seededRandom } from './random.js';

describe('backoffDelay', () => {
  it('doubles its cap per attempt up to the max, with the delay in [cap/2, cap]', () => {
    const rng = seededRandom(7);
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(30_000, 500 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, rng);
        expect(d).toBeGreaterThanOrEqual(cap / 2);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('is reproducible from the seed and jittered between draws', () => {
    const a = [0, 1, 2, 3].map((n) => backoffDelay(n, seededRandom(1)));
    const b = [0, 1, 2, 3].map((n) => backoffDelay(n, seededRandom(1)));
    expect(a).toEqual(b);
    const rng = seededRandom(1);
    const draws = new Set(Array.from({ length: 20 }, () => backoffDelay(5, rng)));
    expect(draws.size).toBeGreaterThan(10);
  });
});
