/**
 * How far trade.execution.res may be trimmed. It is the only stream the services fold
 * to rebuild their state, so it is never trimmed on publish (bus.ts
 * defaultMaxlenPolicy); it may lose an entry only once every consumer group has been
 * handed and has acknowledged it and the monitor's snapshot covers it (SPEC §7).
 * `quantum streams trim` uses that bound on demand; a running journal (whose group is
 * one of those groups, holding each fill until it is in the database) uses it to keep
 * the stream at its working set.
 */
import { compareIds, type EventBus } from './bus.js';
import { StreamNames, TOPICS } from './topics.js';

const MONITOR_SNAPSHOT_KEY = new StreamNames('').snapshot('monitor');

/**
 * The newest id trade.execution.res may be trimmed up to: entries every consumer group
 * has been handed and acknowledged (no group has pending entries), and that the
 * monitor's snapshot already covers. Null when nothing may go yet.
 */
export async function executionTrimPoint(bus: EventBus): Promise<string | null> {
  const text = await bus.getValue(MONITOR_SNAPSHOT_KEY);
  if (!text) return null;
  let watermark: string | null = null;
  try {
    const id = (JSON.parse(text) as { last_fill_id?: unknown }).last_fill_id;
    watermark = typeof id === 'string' && id !== '0-0' ? id : null;
  } catch {
    return null;
  }
  if (!watermark) return null;
  const info = await bus.info(TOPICS.execution);
  if (info.groups.some((g) => g.pending > 0)) return null;
  return info.groups.reduce((min, g) => (compareIds(g.last_delivered_id, min) < 0 ? g.last_delivered_id : min), watermark);
}

/**
 * Trims the oldest entries of trade.execution.res beyond the newest `keep`, never past
 * executionTrimPoint (the entry at that point stays). Reads at most `maxRead` entries
 * per call, so a long backlog goes in steps. Returns the entries removed.
 */
export async function trimExecutionToWorkingSet(bus: EventBus, keep: number, maxRead = 10_000): Promise<number> {
  const excess = (await bus.length(TOPICS.execution)) - keep;
  if (excess <= 0) return 0;
  const point = await executionTrimPoint(bus);
  if (!point) return 0;
  const oldest = await bus.readAfter(TOPICS.execution, '0', Math.min(excess, maxRead) + 1);
  // The first entry that stays: the one past the excess, or the trim point, whichever is older.
  let cut = oldest[oldest.length - 1]?.id;
  for (const entry of oldest) {
    if (compareIds(entry.id, point) >= 0) {
      cut = entry.id;
      break;
    }
  }
  if (cut === undefined || cut === oldest[0]?.id) return 0;
  return bus.trimBefore(TOPICS.execution, cut);
}
