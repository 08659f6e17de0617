/**
 * Bytes and in-process time of a snapshot commit with N open positions (issue 20, snapshot by
 * parts): what a commit writes when the snapshot is stored whole (SET of the text) and by
 * parts (the change against the last landed commit: core/snapshot-parts.ts), with one active
 * symbol's fill between two commits (what a batch of the bench's cycle changes), and the time
 * to make it (the text or the change, and its UTF-8 bytes, which the socket write pays).
 *
 *   npx tsx bench/snapshot-parts.ts [rounds]
 */
import { PartsTracker, assembleState, changeBytes } from '../src/core/snapshot-parts.js';
import { statesWithOpenPositions } from './lib/snapshot-states.js';
import { medianMicros } from './lib/timing.js';

const rounds = Number(process.argv[2] ?? 400);
const time = (before: () => void, fn: () => unknown): number => medianMicros(rounds, before, fn);

for (const n of [5, 50, 500]) {
  const { risk, monitor, execution, batch } = statesWithOpenPositions(n);
  const row: string[] = [];
  for (const [name, state] of [['risk', risk], ['monitor', monitor], ['execution', execution]] as const) {
    const tracker = new PartsTracker();
    const fields = new Map<string, string>();
    const commit = () => {
      const change = tracker.build(() => state.snapshotJson());
      if (change.replace) fields.clear();
      for (const field of change.del) fields.delete(field);
      for (let i = 0; i < change.set.length; i += 2) fields.set(change.set[i]!, change.set[i + 1]!);
      tracker.landed();
      return change;
    };
    commit();
    const sizes: number[] = [];
    for (let i = 0; i < 50; i++) {
      batch();
      sizes.push(changeBytes(commit()));
    }
    if (assembleState({ fields }) !== state.snapshotJson()) throw new Error(`${name}: the parts do not give the snapshot`);
    const partsBytes = sizes.sort((a, b) => a - b)[Math.floor(sizes.length / 2)]!;
    const whole = Buffer.byteLength(state.snapshotJson());
    const wholeUs = time(batch, () => Buffer.from(state.snapshotJson()));
    const partsUs = time(batch, () => {
      const change = tracker.build(() => state.snapshotJson());
      tracker.landed();
      for (const part of change.set) Buffer.from(part);
    });
    row.push(`${name}: whole ${whole} B ${wholeUs.toFixed(0)} µs, by parts ${partsBytes} B ${partsUs.toFixed(0)} µs`);
  }
  console.log(`N=${n}: ${row.join('; ')}`);
}
