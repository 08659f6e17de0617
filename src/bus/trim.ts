/**
 * Trimming that never loses unread work (SPEC §3, issue #11): a stream is cut back to
 * `maxlen` entries only behind every consumer group — before each group's last-delivered
 * entry and its oldest pending one, and before a group the loop expects but that does not
 * exist yet (its service has not started: everything is unread for it). Both buses trim
 * this way, periodically (never on publish), through two primitives: `oldestPending`
 * and `trimOldest`. trade.execution.res follows the same rule plus what state recovery
 * needs (execution-trim.ts); the periodic trimmer leaves it alone (a running journal and
 * `quantum streams trim` trim it).
 */
import { compareIds, type EventBus, type StreamInfo } from './bus.js';
import { EXPECTED_GROUPS, ROUTER, dlqTopic } from './topics.js';

/** How often a bus trims the streams it writes to or reads from. */
export const DEFAULT_TRIM_INTERVAL_MS = 10_000;
/** A group this far behind (undelivered + pending), as a fraction of maxlen, is reported. */
export const BACKLOG_WARNING_FRACTION = 0.5;

/** Entries a group has not finished on one stream. */
export interface GroupBacklog {
  topic: string;
  group: string;
  /** Not yet delivered (null when Redis cannot tell). */
  lag: number | null;
  pending: number;
}

export interface TrimResult {
  topic: string;
  removed: number;
  /** Entries left. */
  length: number;
  maxlen: number;
  /** Why more than maxlen entries were kept; null when the stream is within maxlen. */
  keptBecause: string | null;
  backlogs: GroupBacklog[];
}

export interface TrimOptions {
  /** Entries at or after this id are kept whatever the groups say (state recovery needs them). */
  keepFrom?: { id: string; why: string } | null;
}

/** The id right after `id` ("5-3" -> "5-4"): trimming before it keeps `id` out of reach. */
export function nextId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${(BigInt(seq) + 1n).toString()}`;
}

/** Where trimming must stop, and who sets it. */
export interface TrimBound {
  /** Every entry before this id is finished by every group; null: no group holds any entry. */
  bound: string | null;
  /** Why the bound is where it is ('' when null). */
  holder: string;
}

/**
 * The one rule (for every stream, trade.execution.res included): an entry may go only
 * when every consumer group has been handed it and none holds it pending, every expected
 * group exists, and it lies before `keepFrom`.
 */
async function boundOf(bus: EventBus, topic: string, info: StreamInfo, missing: readonly string[], options: TrimOptions): Promise<TrimBound> {
  let bound: string | null = null;
  let holder = '';
  const consider = (id: string, why: string): void => {
    if (bound === null || compareIds(id, bound) < 0) {
      bound = id;
      holder = why;
    }
  };
  for (const group of missing) consider('0-1', `group ${group} does not exist yet (its service never started): every entry is unread for it`);
  for (const group of info.groups) {
    consider(nextId(group.last_delivered_id), `group ${group.name} has not read the rest yet (lag ${group.lag ?? '?'})`);
    if (group.pending > 0) {
      const oldest = await bus.oldestPending(topic, group.name);
      if (oldest !== null) consider(oldest, `group ${group.name} has ${group.pending} entries pending (not acknowledged) from ${oldest}`);
    }
  }
  if (options.keepFrom) consider(options.keepFrom.id, options.keepFrom.why);
  return { bound, holder };
}

function missingGroups(topic: string, info: StreamInfo): string[] {
  // The router's shared input is read by the router, not by a risk service.
  if (topic === ROUTER.input && info.groups.some((g) => g.name === ROUTER.group)) return [];
  return (EXPECTED_GROUPS[topic] ?? []).filter((group) => !info.groups.some((g) => g.name === group));
}

/** How far `topic` may be trimmed now (without trimming it). */
export async function trimBoundOf(bus: EventBus, topic: string, options: TrimOptions = {}): Promise<TrimBound> {
  const info = await bus.info(topic);
  return boundOf(bus, topic, info, missingGroups(topic, info), options);
}

/**
 * Removes the oldest entries of `topic` down to `maxlen`, never one a consumer group has
 * not finished (or one at/after `keepFrom`), exactly (not approximately). Says why it
 * kept more than maxlen.
 */
export async function trimBehindConsumers(bus: EventBus, topic: string, maxlen: number, options: TrimOptions = {}): Promise<TrimResult> {
  const info = await bus.info(topic);
  const backlogs: GroupBacklog[] = info.groups.map((g) => ({ topic, group: g.name, lag: g.lag, pending: g.pending }));
  const missing = missingGroups(topic, info);
  // A group that does not exist yet has read nothing.
  for (const group of missing) backlogs.push({ topic, group, lag: info.length, pending: 0 });
  const excess = info.length - Math.max(0, maxlen);
  if (excess <= 0) return { topic, removed: 0, length: info.length, maxlen, keptBecause: null, backlogs };

  const { bound, holder } = await boundOf(bus, topic, info, missing, options);
  const removed = await bus.trimOldest(topic, excess, bound);
  const length = info.length - removed;
  return { topic, removed, length, maxlen, keptBecause: length > maxlen ? holder || 'entries newer than the trim began' : null, backlogs };
}

/** One line per group that holds a stream well above maxlen (for /health and validate). */
export function backlogWarnings(backlogs: readonly GroupBacklog[], maxlen: number): string[] {
  const threshold = Math.max(1, Math.floor(maxlen * BACKLOG_WARNING_FRACTION));
  return backlogs
    .filter((b) => (b.lag ?? 0) + b.pending >= threshold)
    .map(
      (b) =>
        `group ${b.group} is ${(b.lag ?? 0) + b.pending} entries behind on ${b.topic} (streams.maxlen ${maxlen}): ` +
        'the stream grows until it catches up (is its service running?)',
    );
}

/**
 * The periodic trimmer a bus runs over the topics it has written to or subscribed to
 * (DLQs included). Errors (Redis down) are left to the next round.
 */
export class PeriodicTrimmer {
  readonly #topics = new Set<string>();
  readonly #timer: NodeJS.Timeout | null;
  #running = false;
  #backlogs: GroupBacklog[] = [];

  constructor(
    private readonly bus: EventBus,
    private readonly maxlenFor: (topic: string) => number | null,
    intervalMs: number,
  ) {
    this.#timer = intervalMs > 0 ? setInterval(() => void this.runOnce(), intervalMs) : null;
    this.#timer?.unref();
  }

  /** A topic this bus writes to or reads from; its DLQ is trimmed with it. */
  touch(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    if (!topic.endsWith('.dlq')) this.#topics.add(dlqTopic(topic));
  }

  /** The groups' backlogs seen by the latest round. */
  get backlogs(): readonly GroupBacklog[] {
    return this.#backlogs;
  }

  async runOnce(): Promise<TrimResult[]> {
    if (this.#running) return [];
    this.#running = true;
    try {
      const results: TrimResult[] = [];
      for (const topic of this.#topics) {
        const maxlen = this.maxlenFor(topic);
        // Never trimmed here (trade.execution.res): only its groups' backlog is looked at.
        results.push(await trimBehindConsumers(this.bus, topic, maxlen ?? Number.MAX_SAFE_INTEGER));
      }
      this.#backlogs = results.flatMap((r) => r.backlogs);
      return results;
    } catch {
      return [];
    } finally {
      this.#running = false;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
