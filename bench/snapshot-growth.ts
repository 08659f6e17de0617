/**
 * In-process timing of the per-batch snapshot text with N open positions (issue 20's growth
 * section): risk's, the monitor's and execution's snapshotJson() against the definition,
 * JSON.stringify(toSnapshot()), with one active symbol's fill between snapshots (what a batch
 * of the bench's cycle changes), and the UTF-8 encoding every write of it pays.
 *
 *   npx tsx bench/snapshot-growth.ts [rounds]
 */
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
