/**
 * `quantum route` (docs/scale-out.md): reads the shared, unprefixed trade.signal.v5 under
 * the group `router` and forwards each signal to the accounts its routes select.
 *
 * Order of writes: the copies to the accounts are written (each awaited) inside the
 * handler, before the batch's commit; the commit then writes the unrouted copies and the
 * acknowledgements. So nothing is acknowledged before its forwards landed. The accounts'
 * streams live under other prefixes (on a cluster, in other slots), so forward and ack
 * cannot be one transaction: a crash between them hands the signal to the router again
 * and it is forwarded again, with the same signal_id (filled in from the shared entry's
 * id when the producer left it out), which each account's risk service decides once.
 */
import type { EventBus, Outbound, Subscription } from '../../bus/bus.js';
import { decodeSignal } from '../../bus/codec.js';
import { ROUTER, TOPICS } from '../../bus/topics.js';
import type { TradeSignal } from '../../core/messages.js';
import { SignalRoutes, countRouted, emptyRouterCounts, type RouteRule, type RouterCounts } from '../../core/router.js';
import type { Logger } from '../../platform/logger.js';

export interface RouterDeps {
  /** The bus of the shared, unprefixed streams. */
  input: EventBus;
  /** Each account's bus (its own prefix), by account name. */
  accounts: ReadonlyMap<string, EventBus>;
  routes: readonly RouteRule[];
  logger: Logger;
  consumer?: string;
  /** How often the counts are logged; 0 = never. Default 10 000 ms. */
  logIntervalMs?: number;
}

/** A forward that fails (an account's Redis away) is retried, never dead-lettered. */
const FORWARD_ATTEMPTS = Number.MAX_SAFE_INTEGER;
const FORWARD_RETRY_MS = 500;

export class RouterService {
  readonly #deps: RouterDeps;
  readonly #routes: SignalRoutes;
  #counts: RouterCounts;
  #subscription: Subscription | null = null;
  #timer: NodeJS.Timeout | null = null;
  #logged = 0;

  constructor(deps: RouterDeps) {
    this.#deps = deps;
    this.#routes = new SignalRoutes(deps.routes);
    this.#counts = emptyRouterCounts([...deps.accounts.keys()]);
    for (const rule of deps.routes) {
      for (const name of rule.accounts) if (!deps.accounts.has(name)) throw new Error(`routes name account "${name}", which is not configured`);
    }
  }

  get counts(): RouterCounts {
    return this.#counts;
  }

  async start(): Promise<void> {
    const { input, logger } = this.#deps;
    await input.ensureGroup(ROUTER.input, ROUTER.group, '0');
    this.#subscription = input.subscribe<TradeSignal>({
      topic: ROUTER.input,
      group: ROUTER.group,
      consumer: this.#deps.consumer ?? 'router',
      decode: decodeSignal,
      maxAttempts: FORWARD_ATTEMPTS,
      retryDelayMs: FORWARD_RETRY_MS,
      handler: (delivery) => this.#route(delivery.message),
      onError: (error) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'router: retrying'),
    });
    const every = this.#deps.logIntervalMs ?? 10_000;
    if (every > 0) {
      this.#timer = setInterval(() => this.#log(), every);
      this.#timer.unref();
    }
  }

  async #route(signal: TradeSignal): Promise<Outbound[] | void> {
    const targets = this.#routes.select(signal);
    if (targets.length === 0) {
      this.#counts = countRouted(this.#counts, targets);
      return [{ topic: ROUTER.unrouted, payload: signal }];
    }
    // The decoded signal: signal_id and ts filled in from the shared entry, so a copy
    // forwarded again after a crash carries the same id.
    await Promise.all(targets.map((name) => this.#deps.accounts.get(name)!.publish(TOPICS.signal, signal)));
    this.#counts = countRouted(this.#counts, targets);
  }

  #log(): void {
    if (this.#counts.received === this.#logged) return;
    this.#logged = this.#counts.received;
    this.#deps.logger.info({ ...this.#counts }, 'router: signals routed');
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#subscription?.close();
    this.#subscription = null;
    this.#log();
  }
}
