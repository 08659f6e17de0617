/**
 * The Redis connection under the Redis bus: one Redis (node-redis createClient) or a
 * Redis Cluster (node-redis createCluster, which follows MOVED/ASK redirections, learns
 * slot moves and finds the new master after a failover). The bus speaks to either
 * through this small surface; every command names the key it routes by.
 *
 * On a cluster a MULTI runs on the node of its routing key and every key in it must be
 * in that key's slot (Redis answers CROSSSLOT otherwise); node-redis does not follow a
 * MOVED inside a MULTI, so after a failed transaction the cluster link sends one plain
 * command to the key, which does follow it and refreshes the slot map for the retry.
 */
import { createClient, createCluster } from 'redis';
import { keySlot } from './slot.js';

type RedisClient = ReturnType<typeof createClient>;
type RedisCluster = ReturnType<typeof createCluster>;

export interface RedisLink {
  readonly isOpen: boolean;
  /** Connected and able to serve this link's home slot now (no offline queue wait). */
  readonly isReady: boolean;
  readonly cluster: boolean;
  /** Sends one command; `key` routes it on a cluster (undefined: any node). */
  send<T>(key: string | undefined, args: readonly string[]): Promise<T>;
  /** MULTI/EXEC of `commands`, routed by `key` (on a cluster every key must share its slot). */
  transaction(key: string, commands: readonly (readonly string[])[]): Promise<unknown[]>;
  /** A new, not yet connected link with the offline queue disabled (a subscription's own). */
  duplicate(): RedisLink;
  connect(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  onError(listener: (error: unknown) => void): void;
}

export interface LinkSocketOptions {
  connectTimeout: number;
  reconnectStrategy: (retries: number, cause: Error) => number | Error;
}

/** One Redis: the plain node-redis client, commands passed through unchanged. */
export class SingleRedisLink implements RedisLink {
  readonly cluster = false;
  constructor(readonly client: RedisClient) {}

  static create(url: string, socket: LinkSocketOptions): SingleRedisLink {
    return new SingleRedisLink(createClient({ url, socket }));
  }

  get isOpen(): boolean {
    return this.client.isOpen;
  }

  get isReady(): boolean {
    return this.client.isReady;
  }

  send<T>(_key: string | undefined, args: readonly string[]): Promise<T> {
    return this.client.sendCommand<T>(args as string[]);
  }

  async transaction(_key: string, commands: readonly (readonly string[])[]): Promise<unknown[]> {
    const multi = this.client.multi();
    for (const command of commands) multi.addCommand(command as string[]);
    return multi.exec();
  }

  duplicate(): RedisLink {
    return new SingleRedisLink(this.client.duplicate({ disableOfflineQueue: true }));
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  destroy(): void {
    this.client.destroy();
  }

  onError(listener: (error: unknown) => void): void {
    this.client.on('error', listener);
  }
}

/** Errors after which the slot map may be stale: the retry must go where the slot lives now. */
const TOPOLOGY_ERRORS = /MOVED|ASK|EXECABORT|CLUSTERDOWN|TRYAGAIN|READONLY/;
/** How long after a node's connection drops the topology is looked up again (repeated while it stays down). */
const REDISCOVER_DELAY_MS = 500;
/** Tries of one MULTI across a failover before its error is the caller's. */
const TRANSACTION_ATTEMPTS = 5;

function rootNodesOf(urls: readonly string[]): { url: string }[] {
  return urls.map((url) => ({ url }));
}

/** A Redis Cluster: node-redis's cluster client, routed by each command's key. */
export class ClusterRedisLink implements RedisLink {
  readonly cluster = true;
  readonly #homeSlot: number;
  #open = false;

  constructor(
    readonly client: RedisCluster,
    /** A key of this bus (under its prefix): its slot is the one isReady and ping look at. */
    readonly homeKey: string,
  ) {
    this.#homeSlot = keySlot(homeKey);
    // A node that went away (a crashed master): its connection retries forever and the slot
    // map still points at it, so nothing would move on by itself. Look the topology up again;
    // once a replica is promoted the dead node's connection is dropped, its queued commands
    // fail (and are retried by their callers) and new ones go to the new master.
    client.on('node-reconnecting', () => this.#rediscoverSoon());
  }

  #rediscovering: NodeJS.Timeout | null = null;

  #rediscoverSoon(): void {
    if (this.#rediscovering || !this.#open) return;
    this.#rediscovering = setTimeout(() => {
      const seeds = this.client._options.rootNodes;
      const startWith = { options: seeds[Math.floor(performance.now()) % seeds.length] } as unknown as Parameters<RedisCluster['_slots']['rediscover']>[0];
      void this.client._slots
        .rediscover(startWith)
        .catch(() => undefined)
        .finally(() => (this.#rediscovering = null));
    }, REDISCOVER_DELAY_MS);
    this.#rediscovering.unref();
  }

  static create(urls: readonly string[], homeKey: string, socket: LinkSocketOptions): ClusterRedisLink {
    return new ClusterRedisLink(createCluster({ rootNodes: rootNodesOf(urls), defaults: { socket } }), homeKey);
  }

  get isOpen(): boolean {
    return this.#open && this.client.isOpen;
  }

  get isReady(): boolean {
    if (!this.isOpen) return false;
    try {
      return this.client.getSlotMaster(this.#homeSlot).client?.isReady === true;
    } catch {
      return false;
    }
  }

  send<T>(key: string | undefined, args: readonly string[]): Promise<T> {
    return this.client.sendCommand<T>(key, false, args as string[]);
  }

  /**
   * A MULTI that meets a topology change (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY while
   * queueing) is discarded by Redis at EXEC, so nothing of it ran: it is sent again, to
   * where the slot lives now, a few times before the error goes to the caller.
   */
  async transaction(key: string, commands: readonly (readonly string[])[]): Promise<unknown[]> {
    for (let attempt = 1; ; attempt++) {
      const multi = this.client.multi(key);
      for (const command of commands) multi.addCommand(key, false, command as string[]);
      try {
        return await multi.exec();
      } catch (error) {
        if (!(error instanceof Error) || !TOPOLOGY_ERRORS.test(`${error.message} ${String((error as { replies?: unknown }).replies ?? '')}`)) throw error;
        // A plain command follows the redirection and refreshes the slot map.
        await this.client.sendCommand(key, false, ['EXISTS', key]).catch(() => undefined);
        if (attempt >= TRANSACTION_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  duplicate(): RedisLink {
    const options = this.client._options;
    return new ClusterRedisLink(
      createCluster({ ...options, defaults: { ...options.defaults, disableOfflineQueue: true } }),
      this.homeKey,
    );
  }

  async connect(): Promise<void> {
    await this.client.connect();
    this.#open = true;
  }

  async close(): Promise<void> {
    this.#open = false;
    if (this.#rediscovering) clearTimeout(this.#rediscovering);
    await this.client.close();
  }

  destroy(): void {
    this.#open = false;
    if (this.#rediscovering) clearTimeout(this.#rediscovering);
    this.client.destroy();
  }

  onError(listener: (error: unknown) => void): void {
    this.client.on('error', listener);
    // A node's own connection errors (e.g. a master going away during a failover).
    this.client.on('node-error', listener);
  }
}
