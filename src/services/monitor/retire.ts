/**
 * The upgrade of a monitor that counted decisions from trade.signal.safe / .rejected (its
 * group `position-monitor` on both) to one that reads trade.signal.decisions instead
 * (docs/feedback.md). Left alone, those two groups would hold both streams untrimmed for
 * good, and the decisions they had not read yet would never be counted. So at start, once
 * the state is loaded: the entries the old groups had not finished (pending, and never
 * delivered) are counted, up to a cut taken across the three streams in one transaction,
 * and in one more transaction the state is saved, the two groups are destroyed and the
 * group on trade.signal.decisions is placed just after the cut. The risk service writes a
 * batch's decisions and its counts in one transaction, so every batch lies wholly before
 * the cut (counted from the old streams) or wholly after it (from its counts): none is
 * counted twice or lost, and a crash before the last transaction changes nothing.
 *
 * Redis only: the embedded bus lives and dies with its process, it has no older groups.
 */
import { compareIds, type EventBus } from '../../bus/bus.js';
import { GROUPS, TOPICS } from '../../bus/topics.js';
import type { PartsChange } from '../../core/snapshot-parts.js';
import { decodeTopic } from '../common/host.js';

/** What a Redis bus offers for it (src/bus/redis.ts). */
export interface GroupMover {
  lastIds(topics: readonly string[]): Promise<(string | null)[]>;
  pendingIds(topic: string, group: string): Promise<string[]>;
  moveGroup(
    group: string,
    retire: readonly string[],
    place: { topic: string; startId: string; exists: boolean },
    state: { key: string; parts: PartsChange },
  ): Promise<void>;
}

/** The topics an older monitor read decisions from. */
export const RETIRED_TOPICS: readonly string[] = [TOPICS.safe, TOPICS.rejected];

const PAGE = 2000;

export interface RetireOptions {
  /**
   * Count the entries still pending on the old groups too: true when the state came from
   * the snapshot (which holds exactly the entries acknowledged); false after a rebuild,
   * which folded everything the groups had been handed, pending entries included.
   */
  includePending: boolean;
  /** Counts one decision (a RiskApprovedSignal of trade.signal.safe or a RiskRejection of .rejected). */
  count: (topic: string, message: unknown) => void;
  /**
   * Writes the state's snapshot, made after the counting, through `write` (the move's own
   * transaction), as the service host tracks every write of it (ServiceHost.writeStateWith).
   */
  writeState: (write: (state: { key: string; parts: PartsChange }) => Promise<void>) => Promise<void>;
}

export interface RetireResult {
  /** Topics whose `position-monitor` group was destroyed. */
  retired: string[];
  /** Decisions counted from them. */
  counted: number;
  /** Where the group on trade.signal.decisions starts (entries after this id). */
  decisionsAfter: string;
  /** The group on trade.signal.decisions had already read entries: nothing was counted from the old streams. */
  alreadyCounting: boolean;
}

function hasMover(bus: EventBus): bus is EventBus & GroupMover {
  const candidate = bus as EventBus & Partial<GroupMover>;
  return typeof candidate.lastIds === 'function' && typeof candidate.pendingIds === 'function' && typeof candidate.moveGroup === 'function';
}

/** The id just before `id` (for an inclusive start with readAfter's exclusive one). */
function idBefore(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  return BigInt(ms) > 0n ? `${BigInt(ms) - 1n}-18446744073709551615` : '0-0';
}

/**
 * The monitor's group on trade.signal.decisions has read something: decisions are counted
 * from there, and an older monitor's groups on the decision streams (if any are left) are
 * not folded, neither on a rebuild nor when they are retired.
 */
export async function countsFromDecisions(bus: EventBus): Promise<boolean> {
  const mine = (await bus.info(TOPICS.decisions)).groups.find((g) => g.name === GROUPS.monitor);
  return mine !== undefined && (mine.pending > 0 || compareIds(mine.last_delivered_id, '0-0') > 0);
}

/** Retires the older monitor's groups, when there are any; null when there is nothing to do. */
export async function retireDecisionGroups(bus: EventBus, options: RetireOptions): Promise<RetireResult | null> {
  if (!hasMover(bus)) return null;
  const group = GROUPS.monitor;
  const infos = await Promise.all(RETIRED_TOPICS.map((topic) => bus.info(topic)));
  const old = infos.flatMap((info) => {
    const found = info.groups.find((g) => g.name === group);
    return found ? [{ topic: info.topic, lastDelivered: found.last_delivered_id }] : [];
  });
  if (old.length === 0) return null;
  const mine = (await bus.info(TOPICS.decisions)).groups.find((g) => g.name === group);
  const alreadyCounting = await countsFromDecisions(bus);
  const cut = await bus.lastIds([...old.map((o) => o.topic), TOPICS.decisions]);
  let counted = 0;
  let decisionsAfter = cut[old.length] ?? '0-0';
  if (alreadyCounting && mine !== undefined) {
    decisionsAfter = mine.last_delivered_id; // it counts from where it is: leave it there
  } else {
    for (const [index, { topic, lastDelivered }] of old.entries()) {
      const upTo = cut[index];
      if (upTo === null || upTo === undefined) continue;
      const pending = options.includePending ? await bus.pendingIds(topic, group) : [];
      const unfinished = new Set(pending);
      let after = pending[0] !== undefined && compareIds(pending[0], lastDelivered) <= 0 ? idBefore(pending[0]) : lastDelivered;
      for (let done = false; !done; ) {
        const page = await bus.readAfter(topic, after, PAGE);
        done = page.length < PAGE;
        for (const entry of page) {
          if (compareIds(entry.id, upTo) > 0) {
            done = true;
            break;
          }
          after = entry.id;
          if (compareIds(entry.id, lastDelivered) <= 0 && !unfinished.has(entry.id)) continue; // acknowledged: in the state
          let message: unknown;
          try {
            message = decodeTopic(topic, entry.fields, entry.id);
          } catch {
            continue; // malformed: the older monitor would have dead-lettered it, counting nothing
          }
          options.count(topic, message);
          counted += 1;
        }
      }
    }
  }
  await options.writeState((state) =>
    bus.moveGroup(group, old.map((o) => o.topic), { topic: TOPICS.decisions, startId: decisionsAfter, exists: mine !== undefined }, state),
  );
  return { retired: old.map((o) => o.topic), counted, decisionsAfter, alreadyCounting };
}
