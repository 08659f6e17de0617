/**
 * The messages the services publish in a few cycles of the bench's signal mix, by topic
 * (the risk service's approvals and rejections, execution's fills, the monitor's
 * position updates and round trips), as the services build them: not parsed back, so
 * with the services' own key order and undefined optionals. For bench/encode.ts and
 * test/json-encoders.test.ts.
 */
import { decodeSignal } from '../../src/bus/codec.js';
import { createFillModels, paperFill } from '../../src/core/fills.js';
import { fx } from '../../src/core/fixed.js';
import { instrumentTable } from '../../src/core/instruments.js';
import { defaultConfig } from '../../src/platform/config.js';
import { riskStateOptions } from '../../src/services/risk/service.js';
import { RiskState } from '../../src/services/risk/state.js';
import { MonitorState } from '../../src/services/monitor/state.js';
import { BENCH_CONFIG, BENCH_SYMBOLS, CYCLE_SIGNALS, signalPayload } from './signals.js';

const config = defaultConfig(BENCH_CONFIG as unknown as Record<string, unknown>);
const instruments = instrumentTable(config.instruments);
const models = createFillModels(config.execution);
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const PRICES: Record<string, number> = { BTCUSDT: 65000, ETHUSDT: 3200, BNBUSDT: 580, SOLUSDT: 150, XRPUSDT: 0.52 };

/** Label (topic, then a kind for approvals and position updates) → messages. */
export function publishedMessages(): Map<string, unknown[]> {
  const out = new Map<string, unknown[]>();
  const add = (topic: string, message: unknown) => (out.get(topic) ?? out.set(topic, []).get(topic)!).push(message);
  const risk = new RiskState(riskStateOptions(config));
  const monitor = new MonitorState(10_000);
  for (const symbol of BENCH_SYMBOLS) {
    const tick = { schema_version: 1, symbol, price: PRICES[symbol]!, ts: T0, source: 'manual' as const };
    risk.onTick(tick, T0);
    monitor.onTick(tick, T0);
  }
  const now = T0 + 1;
  for (let i = 0; i < CYCLE_SIGNALS * 4; i++) {
    const d = risk.onSignal(decodeSignal({ payload: signalPayload('e', i, now) }, `${T0}-${i}`), now);
    for (const levels of risk.drainExitLevels()) add('trade.exit.levels', levels);
    if (d.kind === 'reject') add('trade.signal.rejected', d.message);
    if (d.kind !== 'approve') continue;
    const order = d.message;
    add(`trade.signal.safe ${order.intent === 'CLOSE' ? 'CLOSE' : 'OPEN'}`, order);
    const result = paperFill({ order, mark: fx(order.reference_price), instrument: instruments.get(order.symbol), seed: config.seed, models, now });
    add('trade.execution.res', result);
    risk.onExecution(result);
    for (const levels of risk.drainExitLevels()) add('trade.exit.levels', levels);
    const applied = monitor.onExecution(result, `${now}-${i}`, now);
    if (applied.kind !== 'applied') continue;
    add('trade.position.update', applied.update);
    if (applied.feedback) add('rl.feedback', applied.feedback);
  }
  for (const symbol of BENCH_SYMBOLS) add('trade.position.update mark', monitor.update(symbol, 'mark', now));
  return out;
}

