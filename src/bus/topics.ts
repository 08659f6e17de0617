/**
 * The switchboard: every stream, group and key name is spelled here and nowhere else.
 * `stream_prefix` (e.g. "{acct7}:") is prepended to every name so one Redis (or one
 * Redis Cluster slot, with a hash tag) can hold several accounts.
 */
export const TOPICS = {
  signal: 'trade.signal.v5',
  safe: 'trade.signal.safe',
  rejected: 'trade.signal.rejected',
  /**
   * Per batch of the risk service, how many signals it approved and rejected per source
   * (written with the batch's decisions): what the monitor counts for GET /sources.
   */
  decisions: 'trade.signal.decisions',
  execution: 'trade.execution.res',
  position: 'trade.position.update',
  tick: 'market.tick',
  /** Armed exit levels per position, published by the risk service (docs/exits.md). */
  exitLevels: 'trade.exit.levels',
  /** One message per closed round trip, published by the monitor (docs/feedback.md). */
  feedback: 'rl.feedback',
  /** A source's drift state changed, published by the monitor (docs/feedback.md). */
  drift: 'model.drift',
} as const;

export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** The four topics of the core loop, in pipeline order (SPEC §1). */
export const CORE_TOPICS: readonly Topic[] = [TOPICS.signal, TOPICS.safe, TOPICS.execution, TOPICS.position];
export const ALL_TOPICS: readonly Topic[] = Object.values(TOPICS);

/** Consumer groups are named after the service that owns them. */
export const GROUPS = {
  risk: 'risk-safety',
  execution: 'execution',
  monitor: 'position-monitor',
  /** The trade journal reads every topic it records under a group of its own. */
  journal: 'journal',
} as const;

export type ServiceName = 'risk' | 'execution' | 'monitor';

/**
 * The groups that consume each topic in the loop (SPEC §1). Trimming treats a missing one
 * as a group that has read nothing: its service has not started yet, and every entry is
 * still unread for it. The journal's group is not here: a deployment may run without a
 * journal (once it has run, its group holds what it has not written like any other).
 */
export const EXPECTED_GROUPS: Readonly<Record<string, readonly string[]>> = {
  [TOPICS.signal]: [GROUPS.risk],
  [TOPICS.safe]: [GROUPS.execution],
  // The monitor counts decisions per source (GET /sources) from the risk service's compact
  // per-batch counts, not from trade.signal.safe / .rejected: it has no group on those two
  // (a monitor of an older version did; it retires those groups at start, docs/feedback.md).
  [TOPICS.decisions]: [GROUPS.monitor],
  [TOPICS.execution]: [GROUPS.risk, GROUPS.monitor],
  [TOPICS.tick]: [GROUPS.risk, GROUPS.execution, GROUPS.monitor],
  [TOPICS.exitLevels]: [GROUPS.monitor],
};

/**
 * `quantum route` (docs/scale-out.md): it reads the shared, unprefixed trade.signal.v5 under
 * its own group and writes what no route selects to trade.signal.v5.unrouted.
 */
export const ROUTER = {
  group: 'router',
  input: TOPICS.signal,
  unrouted: `${TOPICS.signal}.unrouted`,
} as const;

export const DLQ_SUFFIX = '.dlq';

export function dlqTopic(topic: string): string {
  return `${topic}${DLQ_SUFFIX}`;
}

/** Resolves base names to the keys actually used in Redis for one account. */
export class StreamNames {
  constructor(readonly prefix: string = '') {}

  stream(topic: string): string {
    return `${this.prefix}${topic}`;
  }

  dlq(topic: string): string {
    return `${this.prefix}${dlqTopic(topic)}`;
  }

  snapshot(service: string): string {
    return `${this.prefix}snapshot:${service}`;
  }

  /** The key of the lease held by a service's one active instance. */
  lease(service: string): string {
    return `${this.prefix}lease:${service}`;
  }
}
