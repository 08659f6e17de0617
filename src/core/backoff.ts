/**
 * Reconnect delays (pure; randomness injected): exponential backoff with "equal jitter",
 * delay = cap / 2 + uniform(0, cap / 2) with cap = min(maxMs, baseMs × 2^attempt), so
 * many clients that lost the same server do not come back in lock step, and a retry
 * never waits less than half its step.
 */
import type { Random } from './random.js';

export interface BackoffOptions {
  /** The first retry's cap, ms. */
  baseMs: number;
  /** The largest cap, ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** The wait before retry number `attempt` (0 = the first retry after a drop), whole ms. */
export function backoffDelay(attempt: number, rng: Random, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + (rng.next() * cap) / 2);
}
