/**
 * In-process timing of the per-batch snapshot text with N open positions (issue 20's growth
 * section): risk's, the monitor's and execution's snapshotJson() against the definition,
 * JSON.stringify(toSnapshot()), with one active symbol's fill between snapshots (what a batch
 * of the bench's cycle changes), and the UTF-8 encoding every write of it pays.
 *
 *   npx tsx bench/snapshot-growth.ts [rounds]
 */
import { statesWithOpenPositions } from './lib/snapshot-states.js';
import { medianMicros } from './lib/timing.js';

const rounds = Number(process.argv[2] ?? 400);
const time = (before: () => void, fn: () => unknown): number => medianMicros(rounds, before, fn);

for (const n of [5, 50, 500]) {
  const { risk, monitor, execution, batch } = statesWithOpenPositions(n);
  const row: string[] = [];
  for (const [name, state] of [['risk', risk], ['monitor', monitor], ['execution', execution]] as const) {
    if (state.snapshotJson() !== JSON.stringify(state.toSnapshot())) throw new Error(`${name}: snapshotJson differs`);
    const bytes = state.snapshotJson().length;
    const cached = time(batch, () => state.snapshotJson());
    const full = time(batch, () => JSON.stringify(state.toSnapshot()));
    // What a commit pays in this process: the text and its UTF-8 bytes (the socket write).
    const written = time(batch, () => Buffer.from(state.snapshotJson()));
    row.push(`${name} ${(bytes / 1024).toFixed(0)} KB: snapshotJson ${cached.toFixed(0)} µs, with its UTF-8 bytes ${written.toFixed(0)} µs (definition ${full.toFixed(0)} µs)`);
  }
  console.log(`N=${n} open positions: ${row.join('; ')}  (each with one fill of the active symbol)`);
}
