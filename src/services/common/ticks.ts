/**
 * The market-data gate as every service wires it (core/tick-rules.ts holds the rules):
 * one config → gate factory, and the refusal that dead-letters a refused tick.
 */
import { RefusedEntry } from '../../bus/bus.js';
import { instrumentTable } from '../../core/instruments.js';
import { TickGate, type TickVerdict } from '../../core/tick-rules.js';
import type { Config } from '../../platform/config.js';

export function tickGateFor(config: Config): TickGate {
  return new TickGate(instrumentTable(config.instruments), {
    maxClockSkewMs: config.market.max_clock_skew_ms,
    maxJumpPct: config.market.max_tick_jump_pct,
  });
}

/** A refused tick goes to market.tick.dlq with its reason (the gate changed nothing it applies). */
export function refuseIfRefused(verdict: TickVerdict): void {
  if (verdict.kind === 'refuse') throw new RefusedEntry(verdict.reason);
}
