/**
 * One active instance per service and account (SPEC §11): a lease in Redis, taken with
 * SET NX PX, renewed every fifth of its ttl, and lapsing when its holder stops renewing.
 * A second instance waits as a hot standby and takes over once the lease is free.
 *
 * Fencing: the holder counts its lease as lost a third of the ttl before Redis can let
 * it lapse (measured from when the last successful renewal was sent), and stops
 * consuming then, so it has stopped before another instance can take the lease.
 */
import { StreamNames } from '../../bus/topics.js';
import type { Logger } from '../../platform/logger.js';

/** What a lease needs from the bus (RedisBus; the embedded bus needs no lease: one process). */
export interface LeaseStore {
  acquireOrRenewLease(key: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLease(key: string, holder: string): Promise<void>;
}

export function isLeaseStore(bus: unknown): bus is LeaseStore {
  return typeof (bus as Partial<LeaseStore>).acquireOrRenewLease === 'function';
}

export interface LeaseOptions {
  store: LeaseStore;
  key: string;
  /** Who holds it: stable for one host, bind address and port, so a restart there takes its own lease back at once. */
  holder: string;
  ttlMs: number;
  logger: Logger;
  /** Monotonic milliseconds. */
  now?: () => number;
}

export class ServiceLease {
  readonly #options: LeaseOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #renewing = false;
  #validUntil = 0;

  constructor(options: LeaseOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  get intervalMs(): number {
    return Math.max(100, Math.floor(this.#options.ttlMs / 5));
  }

  /** One attempt; true when this instance holds the lease now. Redis errors count as "not now". */
  async tryAcquire(): Promise<boolean> {
    const { store, key, holder, ttlMs } = this.#options;
    const sentAt = this.#now();
    try {
      const held = await store.acquireOrRenewLease(key, holder, ttlMs);
      if (held) this.#validUntil = sentAt + ttlMs - Math.ceil(ttlMs / 3);
      return held;
    } catch {
      return false;
    }
  }

  /**
   * Waits (as a standby) until the lease is ours; resolves false when `stopped` comes first.
   * Logs once that it is waiting.
   */
  async acquire(stopped: Promise<unknown>): Promise<boolean> {
    let stop = false;
    void stopped.then(() => (stop = true));
    let announced = false;
    while (!stop) {
      if (await this.tryAcquire()) return true;
      if (!announced) {
        announced = true;
        this.#options.logger.warn(
          { lease: this.#options.key, ttl_ms: this.#options.ttlMs },
          'another instance holds this service\'s lease: waiting as a hot standby; taking over when it lapses',
        );
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, this.intervalMs).unref()), stopped]);
    }
    return false;
  }

  /** Renews until stopped; calls `onLost` once when the lease can no longer be counted on. */
  keepRenewing(onLost: (why: string) => void): void {
    let lost = false;
    const lose = (why: string): void => {
      if (lost) return;
      lost = true;
      this.stop();
      onLost(why);
    };
    this.#timer = setInterval(() => {
      if (this.#now() >= this.#validUntil) {
        lose('the lease could not be renewed in time (Redis unreachable?)');
        return;
      }
      if (this.#renewing) return;
      this.#renewing = true;
      const { store, key, holder, ttlMs } = this.#options;
      const sentAt = this.#now();
      store
        .acquireOrRenewLease(key, holder, ttlMs)
        .then(
          (held) => {
            if (held) this.#validUntil = sentAt + ttlMs - Math.ceil(ttlMs / 3);
            else lose('another instance holds the lease now');
          },
          () => undefined, // retried next interval, until the deadline
        )
        .finally(() => (this.#renewing = false));
    }, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Stops renewing and frees the lease (clean shutdown). */
  async release(): Promise<void> {
    this.stop();
    try {
      await this.#options.store.releaseLease(this.#options.key, this.#options.holder);
    } catch {
      // it lapses by itself
    }
  }
}

export interface HeldLeases {
  /** Resolves (with why) when any of them is lost. */
  lost: Promise<string>;
  release(): Promise<void>;
}

/**
 * `quantum up` on Redis runs all three services in one process: it takes all three leases
 * or none (no standby: it refuses with one line naming a service already running on the
 * account). Null on a bus that needs no lease (embedded).
 */
export async function holdServiceLeases(
  bus: unknown,
  options: { services: readonly string[]; holder: string; ttlMs: number; logger: Logger },
): Promise<HeldLeases | { refused: string } | null> {
  if (!isLeaseStore(bus)) return null;
  const leases: ServiceLease[] = [];
  for (const service of options.services) {
    const key = new StreamNames('').lease(service);
    const lease = new ServiceLease({ store: bus, key, holder: `${options.holder}:${service}`, ttlMs: options.ttlMs, logger: options.logger });
    if (!(await lease.tryAcquire())) {
      await Promise.all(leases.map((held) => held.release()));
      return { refused: `${service} is already running on this account (another instance holds ${key}); stop it or use another stream_prefix` };
    }
    leases.push(lease);
  }
  const lost = new Promise<string>((resolve) => {
    for (const lease of leases) lease.keepRenewing(resolve);
  });
  return {
    lost,
    release: async () => {
      await Promise.all(leases.map((lease) => lease.release()));
    },
  };
}
