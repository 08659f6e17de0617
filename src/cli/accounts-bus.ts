/** The buses of a config with `accounts`: the shared input (unprefixed) and one per account. */
import type { EventBus } from '../bus/bus.js';
import { createBus } from '../bus/factory.js';
import type { AccountRun, Config } from '../platform/config.js';

export interface AccountBuses {
  input: EventBus;
  buses: Map<string, EventBus>;
  close(): Promise<void>;
}

/**
 * Connects them all (Redis, a Redis Cluster, or embedded when neither is configured);
 * on failure closes what it opened and throws. `trim`: whether the account buses trim
 * their streams (the process running the account's services does; the router does not).
 */
export async function connectAccountBuses(config: Config, runs: readonly AccountRun[], options: { trim: boolean }): Promise<AccountBuses> {
  const opened: EventBus[] = [];
  const common = { redisUrl: config.redis_url, clusterNodes: config.redis_cluster_nodes };
  try {
    const input = await createBus({ ...common, prefix: '', spanSlots: true, maxlen: config.streams.maxlen });
    opened.push(input);
    const buses = new Map<string, EventBus>();
    for (const run of runs) {
      const bus = await createBus({
        ...common,
        prefix: run.config.stream_prefix,
        maxlen: run.config.streams.maxlen,
        ...(options.trim ? {} : { trimIntervalMs: 0 }),
      });
      opened.push(bus);
      buses.set(run.name, bus);
    }
    return { input, buses, close: async () => void (await Promise.all(opened.map((bus) => bus.close()))) };
  } catch (err) {
    await Promise.all(opened.map((bus) => bus.close().catch(() => undefined)));
    throw err;
  }
}
