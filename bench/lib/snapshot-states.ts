/**
 * The services' states with N open positions, for the in-process snapshot benches
 * (bench/snapshot-growth.ts, bench/snapshot-parts.ts): every instrument past the first five
 * holds a position, and `batch()` makes what one batch of the bench's cycle changes (one
 * fill of the active symbol, BTCUSDT).
 */
import { instrumentTable } from '../../src/core/instruments.js';
import type { ExecutionResult, RiskApprovedSignal } from '../../src/core/messages.js';
import { defaultConfig } from '../../src/platform/config.js';
import { tickGateFor } from '../../src/services/common/ticks.js';
import { ExecutionState } from '../../src/services/execution/state.js';
import { MonitorState } from '../../src/services/monitor/state.js';
import { RiskState } from '../../src/services/risk/state.js';
import { growthConfig } from './growth.js';

const T0 = Date.UTC(2026, 11, 1, 12);

export interface SnapshotStates {
  risk: RiskState;
  monitor: MonitorState;
  execution: ExecutionState;
  /** One fill of the active symbol through all three states (alternately BUY and SELL). */
  batch: () => void;
}

export function statesWithOpenPositions(n: number): SnapshotStates {
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
  return { risk, monitor, execution, batch: () => trade('BTCUSDT', flip++ % 2 === 0 ? 'BUY' : 'SELL') };
}
