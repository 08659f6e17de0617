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
import { instrumentTable } from '../src/core/instruments.js';
import type { ExecutionResult, RiskApprovedSignal } from '../src/core/messages.js';
import { defaultConfig } from '../src/platform/config.js';
import { tickGateFor } from '../src/services/common/ticks.js';
import { ExecutionState } from '../src/services/execution/state.js';
import { MonitorState } from '../src/services/monitor/state.js';
import { RiskState } from '../src/services/risk/state.js';
import { growthConfig } from './lib/growth.js';

const rounds = Number(process.argv[2] ?? 400);
const T0 = Date.UTC(2026, 11, 1, 12);

/** Median µs of a call of `fn`, each call after a `before()` that is not timed (the median: the machine is shared). */
function time(before: () => void, fn: () => unknown): number {
  const samples: number[] = [];
  for (let i = 0; i < rounds + 20; i++) {
    before();
    const t0 = performance.now();
    fn();
    if (i >= 20) samples.push(performance.now() - t0);
  }
  return (samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number) * 1000;
}

for (const n of [5, 50, 500]) {
  const cfg = defaultConfig(growthConfig(n) as never);
  const table = instrumentTable(cfg.instruments);
  const risk = new RiskState({
    initialBalance: cfg.account.initial_balance_usd,
    instruments: table,
    limits: cfg.risk,
    execution: cfg.execution,
    seed: 42,
    inflightTimeoutMs: 30_000,
    tickGate: tickGateFor(cfg),
  });
  const monitor = new MonitorState(cfg.account.initial_balance_usd, undefined, tickGateFor(cfg));
  const execution = new ExecutionState({ instruments: table, seed: 42, ...cfg.execution, tickGate: tickGateFor(cfg) });
  for (const tick of execution.currentTicks(T0)) {
    risk.onTick(tick, T0);
    monitor.onTick(tick, T0);
  }
  let entry = 0;
  const trade = (symbol: string, action: 'BUY' | 'SELL'): void => {
    const d = risk.onSignal({ schema_version: 1, signal_id: `s${entry++}`, symbol, action, confidence: 0.8, source: 'bench', ts: T0 }, T0);
    if (d.kind !== 'approve') throw new Error(`${symbol}: ${JSON.stringify(d)}`);
    const outcome = execution.onOrder(d.message as RiskApprovedSignal, T0 + 1);
    if (outcome.kind !== 'result') throw new Error('duplicate');
    const result: ExecutionResult = outcome.result;
    risk.onExecution(result);
    monitor.onExecution(result, `${entry}-0`, T0 + 2);
  };
  for (const i of cfg.instruments.slice(5)) trade(i.symbol, 'BUY');
  let flip = 0;
  const batch = () => trade('BTCUSDT', flip++ % 2 === 0 ? 'BUY' : 'SELL');
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
