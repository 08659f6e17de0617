/**
 * How far trade.execution.res may be trimmed. It is the only stream the services fold
 * to rebuild their state, so neither publishing nor a bus's periodic trimmer ever trims
 * it (bus.ts defaultMaxlenPolicy). It follows the one rule of trim.ts (an entry goes only
 * once every consumer group, the journal's included, has been handed it and holds it no
 * longer pending, and every expected group exists) plus what state recovery needs: the
 * fills after the monitor's snapshot, all of them while there is none (SPEC §7).
 * `quantum streams trim` applies it on demand; a running journal (whose group holds each
 * fill pending until it is in the database) applies it to keep the stream at its working
 * set.
 */
import { assembleState } from '../core/snapshot-parts.js';
import { compareIds, type EventBus } from './bus.js';
import { StreamNames, TOPICS } from './topics.js';
import { nextId, trimBehindConsumers, trimBoundOf, type TrimResult } from './trim.js';

const MONITOR_SNAPSHOT_KEY = new StreamNames('').snapshot('monitor');

/**
 * What of trade.execution.res state recovery needs: the fills after the monitor's
 * snapshot; all of them when there is no readable snapshot (the monitor rebuilds from the
 * whole stream then).
 */
export async function executionRecoveryNeeds(bus: EventBus): Promise<{ id: string; why: string }> {
  const stored = await bus.getState(MONITOR_SNAPSHOT_KEY);
  let watermark: unknown = null;
  try {
    watermark = stored ? (JSON.parse(assembleState(stored)) as { last_fill_id?: unknown }).last_fill_id : null;
  } catch {
    watermark = null;
  }
  if (typeof watermark !== 'string' || watermark === '0-0') {
    return { id: '0-1', why: 'the monitor has no readable snapshot: state recovery folds the whole stream' };
  }
  return { id: nextId(watermark), why: `state recovery needs the fills after the monitor's snapshot (${watermark})` };
}

/**
 * The id before which trade.execution.res may be trimmed now (every entry before it is
 * finished by every group and covered by the monitor's snapshot); null when nothing may go.
 */
export async function executionTrimPoint(bus: EventBus): Promise<string | null> {
  const { bound } = await trimBoundOf(bus, TOPICS.execution, { keepFrom: await executionRecoveryNeeds(bus) });
  return bound === null || compareIds(bound, '0-1') > 0 ? bound : null;
}

/** Trims trade.execution.res down to `keep` entries, never past executionTrimPoint; says what it kept and why. */
export async function trimExecution(bus: EventBus, keep: number): Promise<TrimResult> {
  return trimBehindConsumers(bus, TOPICS.execution, keep, { keepFrom: await executionRecoveryNeeds(bus) });
}

/** trimExecution for the journal's timer; returns the entries removed. */
export async function trimExecutionToWorkingSet(bus: EventBus, keep: number): Promise<number> {
  return (await trimExecution(bus, keep)).removed;
}
