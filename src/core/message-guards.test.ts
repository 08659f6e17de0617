import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { decodeSignal, decoderFor } from '../bus/codec.js';
import { DEFAULT_INSTRUMENTS, ConfigSchema } from '../platform/config.js';
import { fx } from './fixed.js';
import { createFillModels, paperFill } from './fills.js';
import { decide, type AccountView } from './governor.js';
import { instrumentTable } from './instruments.js';
import {
  ExecutionResult,
  PriceTick,
  RiskApprovedSignal,
  RiskRejection,
  TradeSignalInput,
  describeIssues,
  type TradeSignal,
} from './messages.js';
import { guardFor, type Guard } from './message-guards.js';
import { seededRandom } from './random.js';

// A guard may only say "valid" when zod would accept the value and return an equal
// object; everywhere else the codec asks zod. These tests hold every guard to that on
// real messages and on thousands of mutations of them, and check that real messages
// do take the fast path.

const NOW = 1_700_000_000_000;
const limits = ConfigSchema.parse({}).risk;
const instruments = instrumentTable(DEFAULT_INSTRUMENTS);
const models = createFillModels({ fee_rate: 0.0004, max_slippage_pct: 0.001 });

function account(net: Record<string, number> = {}): AccountView {
  return {
    equity: fx(10_000),
    peakEquity: fx(10_000),
    drawdown: 0n,
    halted: false,
    exposure: 0n,
    netQuantity: (symbol) => fx(net[symbol] ?? 0),
    roundTrips: { count: 0, sumWins: 0n, sumLosses: 0n, wins: 0, losses: 0 },
    lastLossClosedAt: null,
    entriesOnDay: () => 0,
  };
}

function signal(patch: Partial<TradeSignal> = {}): TradeSignal {
  return { schema_version: 1, signal_id: 'sig-1', symbol: 'BTCUSDT', action: 'BUY', confidence: 0.8, source: 'model', ts: NOW, ...patch };
}

/** Real messages, as the services make them (JSON round trip, as the bus delivers them). */
function samples(): { name: string; schema: z.ZodType; values: unknown[] }[] {
  const json = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
  const approve = (s: TradeSignal, net?: Record<string, number>) => {
    const d = decide({ signal: s, account: account(net), instrument: instruments.get(s.symbol), price: fx(65_000), limits, now: NOW });
    return json(d.kind === 'approve' || d.kind === 'reject' ? d.message : null);
  };
  const approvals = [
    approve(signal()),
    approve(signal({ action: 'SELL', stop_loss: 66_000, take_profit: 60_000, price: 65_000, metadata: { model: 'xgb', v: 3, live: false, note: null } })),
    approve(signal({ action: 'CLOSE', source: 'manual_close' }), { BTCUSDT: 0.01 }),
    approve(signal({ stop_loss: 70_000, take_profit: 70_000, trailing_stop_pct: 0.02, max_hold_ms: 60_000 })),
  ];
  const rejections = [approve(signal({ confidence: 0.5 })), approve(signal({ symbol: 'DOGEUSDT' })), approve(signal({ action: 'CLOSE' }))];
  const order = approvals[0] as z.output<typeof RiskApprovedSignal>;
  const results = [
    json(paperFill({ order, mark: fx(65_000), instrument: instruments.get('BTCUSDT'), seed: 42, models, now: NOW })),
    json(paperFill({ order, mark: undefined, instrument: instruments.get('BTCUSDT'), seed: 42, models, now: NOW })),
    json(paperFill({ order: { ...order, exit_reason: 'trailing_stop', reduce_only: true }, mark: fx(64_000), instrument: instruments.get('BTCUSDT'), seed: 42, models, now: NOW })),
  ];
  const signals = [
    { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.85, source: 'xgb' },
    json(signal({ price: 1, stop_loss: 0.5, take_profit: 2, metadata: { a: 1, b: 'x', c: true, d: null } })),
    { symbol: 'ETHUSDT', action: 'HOLD', confidence: 0, source: 's', signal_id: 'x', ts: 0, schema_version: 2 },
    { symbol: 'ETHUSDT', action: 'BUY', confidence: 0.9, source: 's', trailing_stop_pct: 0.015, max_hold_ms: 3_600_000 },
  ];
  const ticks = [
    { schema_version: 1, symbol: 'BTCUSDT', price: 65_000.5, ts: NOW, source: 'simulator' },
    { schema_version: 1, symbol: 'BTCUSDT', price: 65_000.5, ts: NOW, source: 'feed', bid: 65_000, ask: 65_001, bid_size: 1.5, ask_size: 0.2, exchange_ts: NOW - 3 },
  ];
  return [
    { name: 'TradeSignalInput', schema: TradeSignalInput as z.ZodType, values: signals },
    { name: 'RiskApprovedSignal', schema: RiskApprovedSignal as z.ZodType, values: approvals },
    { name: 'RiskRejection', schema: RiskRejection as z.ZodType, values: rejections },
    { name: 'ExecutionResult', schema: ExecutionResult as z.ZodType, values: results },
    { name: 'PriceTick', schema: PriceTick as z.ZodType, values: ticks },
  ];
}

/** Values a field is swapped for: every type, each schema boundary, odd strings. */
const PALETTE: unknown[] = [
  undefined, null, true, false, 0, -0, 1, -1, 0.5, 1.5, 1e-9, -1e-9, 2 ** 53 - 1, 2 ** 53, 1e21, Infinity, -Infinity, NaN,
  '', 'x', 'A'.repeat(64), 'A'.repeat(65), 'a'.repeat(128), 'a'.repeat(129), 'BTCUSDT', 'btcusdt', 'B', 'A'.repeat(20), 'A'.repeat(21),
  'BUY', 'SELL', 'HOLD', 'CLOSE', 'OPEN', 'LONG', 'FILLED', 'REJECTED', 'signal', 'manual', 'feed', 'default', 'LOW_CONFIDENCE',
  'PAPER-0123456789ab', 'PAPER-0123456789AB', 'PAPER-0123456789a', [], [1], ['LOW_CONFIDENCE'], ['NOPE'], {}, { a: 1 }, { a: [] },
  [{ rule: 'r', passed: true, value: 1, limit: null }], [{ rule: 'r', passed: 'yes', value: 1, limit: null }],
];

type Path = (string | number)[];

/** Every path to a value inside `value` (object keys and array indexes), the root excluded. */
function paths(value: unknown, prefix: Path = []): Path[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: Path[] = [];
  for (const key of Object.keys(value)) {
    const path = [...prefix, Array.isArray(value) ? Number(key) : key];
    out.push(path, ...paths((value as Record<string, unknown>)[key], path));
  }
  return out;
}

/** A deep copy with the value at `path` replaced (undefined deletes it). */
function replaced(value: unknown, path: Path, next: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (next === undefined && !Array.isArray(node)) delete node[last];
  else node[last] = next;
  return copy;
}

/** Same keys, same values (Object.is for scalars, so -0 and 0 differ). */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function holdsContract(name: string, schema: z.ZodType, guard: Guard, value: unknown): void {
  if (!guard(value)) return;
  const result = schema.safeParse(value);
  if (!result.success || !sameValue(result.data, value)) {
    throw new Error(`${name}: guard accepted ${JSON.stringify(value)} but zod ${result.success ? `returned ${JSON.stringify(result.data)}` : `rejected it: ${describeIssues(result.error)}`}`);
  }
}

describe('message guards', () => {
  const all = samples();

  it('vouch for every real message (the fast path is taken)', () => {
    for (const { name, schema, values } of all) {
      const guard = guardFor(schema)!;
      expect(guard, name).toBeDefined();
      for (const value of values) {
        expect(schema.safeParse(value).success, `${name} sample is valid`).toBe(true);
        expect(guard(value), `${name}: ${JSON.stringify(value)}`).toBe(true);
      }
    }
  });

  it('vouch only for values zod accepts and returns unchanged: every field swapped for every palette value', () => {
    let checked = 0;
    let fast = 0;
    for (const { name, schema, values } of all) {
      const guard = guardFor(schema)!;
      for (const value of values) {
        for (const path of paths(value)) {
          for (const next of PALETTE) {
            const mutated = replaced(value, path, next);
            holdsContract(name, schema, guard, mutated);
            checked += 1;
            if (guard(mutated)) fast += 1;
          }
        }
        // Unknown keys (zod strips them), at the top and inside, and __proto__ as JSON gives it.
        for (const path of [[], ...paths(value)]) {
          const node = at(value, path);
          if (typeof node === 'object' && node !== null && !Array.isArray(node)) holdsContract(name, schema, guard, replaced(value, [...path, 'extra'], 1));
        }
        holdsContract(name, schema, guard, JSON.parse(JSON.stringify(value).replace(/^\{/, '{"__proto__":{"x":1},')));
        if ((value as { metadata?: unknown }).metadata !== undefined) {
          holdsContract(name, schema, guard, JSON.parse(JSON.stringify(value).replace('"metadata":{', '"metadata":{"__proto__":1,')));
        }
      }
      for (const odd of [null, 1, 'x', [], [value0(values)], Object.create(null)]) holdsContract(name, schema, guard, odd);
    }
    expect(checked).toBeGreaterThan(5000);
    expect(fast).toBeGreaterThan(100);
  });

  it('vouch only for values zod accepts: random double mutations', () => {
    const rng = seededRandom('guards');
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rng.next() * list.length)] as T;
    for (const { name, schema, values } of all) {
      const guard = guardFor(schema)!;
      for (let i = 0; i < 3000; i++) {
        const value = pick(values);
        const first = pick(paths(value));
        let mutated = replaced(value, first, pick(PALETTE));
        const more = paths(mutated);
        if (more.length > 0) mutated = replaced(mutated, pick(more), pick(PALETTE));
        holdsContract(name, schema, guard, mutated);
      }
    }
  });

  it('leave decoding unchanged: same message or same error as zod alone', () => {
    const zodOnly = (schema: z.ZodType, payload: string): unknown => {
      const result = schema.safeParse(JSON.parse(payload));
      return result.success ? result.data : `invalid payload: ${describeIssues(result.error)}`;
    };
    const viaCodec = (decode: (fields: Record<string, string>, id: string) => unknown, payload: string): unknown => {
      try {
        return decode({ payload }, '1700000000000-0');
      } catch (err) {
        return (err as Error).message;
      }
    };
    for (const { schema, values } of all) {
      const decode = schema === TradeSignalInput ? null : decoderFor(schema);
      for (const value of values) {
        for (const path of paths(value)) {
          for (const next of [undefined, null, -1, 'x', Infinity]) {
            const payload = JSON.stringify(replaced(value, path, next));
            if (decode) expect(viaCodec(decode, payload)).toEqual(zodOnly(schema, payload));
            else {
              const expected = zodOnly(schema, payload);
              const got = viaCodec(decodeSignal, payload);
              if (typeof expected === 'string') expect(got).toBe(expected);
              else expect(got).toMatchObject(expected as object);
            }
          }
        }
      }
    }
  });
});

function value0(values: readonly unknown[]): unknown {
  return values[0];
}

function at(value: unknown, path: Path): unknown {
  let node = value;
  for (const key of path) node = (node as Record<string | number, unknown>)[key];
  return node;
}
