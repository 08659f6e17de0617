/**
 * The convenience publisher (SPEC §3): builds a complete, validated TradeSignal, so a
 * TypeScript signal source never hand-writes the wire format.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { SCHEMA_VERSION, TradeSignal, describeIssues } from '../core/messages.js';
import { systemClock } from '../platform/clock.js';
import type { EventBus } from './bus.js';
import { TOPICS } from './topics.js';

export type TradeSignalExtra = Partial<Pick<TradeSignal, 'price' | 'stop_loss' | 'take_profit' | 'metadata' | 'signal_id'>>;

/**
 * Validates, publishes to `trade.signal.v5` and returns the signal. `action` is a string
 * so command-line input can be passed as is; anything but BUY|SELL|HOLD|CLOSE is refused
 * with an Error naming the field, as is any other bad field.
 */
export async function publishTradeSignal(
  bus: EventBus,
  symbol: string,
  action: string,
  confidence: number,
  source: string,
  extra: TradeSignalExtra = {},
  clock: Clock = systemClock,
): Promise<TradeSignal> {
  const ts = clock.now();
  const candidate = {
    schema_version: SCHEMA_VERSION,
    signal_id: extra.signal_id ?? `sig-${ts}-${randomUUID().slice(0, 8)}`,
    symbol,
    action,
    confidence,
    source,
    ts,
    ...(extra.price === undefined ? {} : { price: extra.price }),
    ...(extra.stop_loss === undefined ? {} : { stop_loss: extra.stop_loss }),
    ...(extra.take_profit === undefined ? {} : { take_profit: extra.take_profit }),
    ...(extra.metadata === undefined ? {} : { metadata: extra.metadata }),
  };
  const result = TradeSignal.safeParse(candidate);
  if (!result.success) throw new Error(`invalid trade signal: ${describeIssues(result.error)}`);
  await bus.publish(TOPICS.signal, result.data);
  return result.data;
}
