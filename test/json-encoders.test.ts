import { describe, expect, it } from 'vitest';
import { TOPIC_SCHEMAS } from '../src/core/messages.js';
import { seededRandom } from '../src/core/random.js';
import { publishedMessages } from '../bench/lib/encode-samples.js';
import { compileEncoder, encodeFor } from '../bench/lib/json-encoders.js';

// The serializers compiled from the schemas (bench/lib/json-encoders.ts, measured for
// issue 20 and not adopted) must write JSON.stringify's exact bytes or decline: checked on
// the messages the services publish in the bench mix and on mutations of every field.

const messages = publishedMessages();
const exitLevels = [
  { schema_version: 1, symbol: 'BTCUSDT', entry_signal_id: 'sig-1', stop_loss: 63_700, take_profit: null, trailing_stop: 63_050.5, trailing_stop_pct: 0.02, high_water_mark: 65_000, expires_ts: null, cause: 'armed', ts: 1 },
  { schema_version: 1, symbol: 'BTCUSDT', entry_signal_id: null, stop_loss: null, take_profit: null, trailing_stop: null, trailing_stop_pct: null, high_water_mark: null, expires_ts: null, cause: 'triggered', exit_reason: 'stop_loss', ts: 2 },
];
const decisions = [{ schema_version: 1, sources: [{ source: 'bench', approved: 3, rejected: 1, rejected_by_reason: { LOW_CONFIDENCE: 1 } }], ts: 5 }];
const signals = [{ symbol: 'BTCUSDT', action: 'BUY', confidence: 0.8, source: 'm', metadata: { a: 1, b: 'x', c: null } }];
const byTopic = new Map<string, unknown[]>([
  ['trade.exit.levels', exitLevels],
  ['trade.signal.decisions', decisions],
  ['trade.signal.v5', signals],
]);
for (const [label, list] of messages) {
  const topic = label.split(' ')[0]!;
  byTopic.set(topic, [...(byTopic.get(topic) ?? []), ...list]);
}

/** Swapped into fields: every JSON type, numbers JSON writes oddly, strings it escapes. */
const PALETTE: unknown[] = [
  undefined, null, true, false, 0, -0, 1, -1, 0.1 + 0.2, 1e21, 1e-7, 5e-324, 2 ** 53 + 2, -1.5e300, Infinity, -Infinity, NaN, 2 ** 64,
  '', 'x', 'é', '日本', '😀', '\ud800', 'a\udc00b', '"quoted"', 'back\\slash', 'line\nbreak', 'tab\t', '\u0000', '\u001f', '\u007f', '\u2028\u2029', '</script>',
  [], [1, 'a', null], {}, { a: 1 }, new Date(0), Object.create(null), 10n,
];

type Path = (string | number)[];

function paths(value: unknown, prefix: Path = []): Path[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: Path[] = [];
  for (const key of Object.keys(value)) {
    const path = [...prefix, Array.isArray(value) ? Number(key) : key];
    out.push(path, ...paths((value as Record<string, unknown>)[key], path));
  }
  return out;
}

/** A copy with the value at `path` set (`delete`: the key removed). Own undefined-valued keys survive, as on the services' literals. */
function mutated(value: unknown, path: Path, next: unknown, remove = false): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (remove) delete node[last];
  else node[last] = next;
  return copy;
}

function expectSame(topic: string, value: unknown): boolean {
  let expected: string | undefined;
  try {
    expected = JSON.stringify(value);
  } catch {
    // JSON.stringify throws (a bigint): the compiled encoder must decline so the codec throws too.
    expect(() => encodeFor(topic, value)).toThrow();
    return false;
  }
  const compiled = compileEncoder(TOPIC_SCHEMAS[topic as keyof typeof TOPIC_SCHEMAS])(value);
  if (compiled !== undefined) expect(compiled, `${topic}: ${expected}`).toBe(expected);
  expect(encodeFor(topic, value)).toBe(expected);
  return compiled !== undefined;
}

describe('schema-compiled JSON encoders (bench/lib/json-encoders.ts)', () => {
  it('write the published messages byte for byte as JSON.stringify, and take the fast path for them', () => {
    for (const [topic, list] of byTopic) {
      let fast = 0;
      for (const value of list) if (expectSame(topic, value)) fast++;
      // A fill's position update carries order_id after ts, not where the schema lists it: those decline.
      if (topic !== 'trade.position.update') expect(fast, topic).toBe(list.length);
      else expect(fast).toBeGreaterThan(0);
    }
  });

  it('write the same bytes or decline on every field swapped, removed or undefined, and on extra and reordered keys', () => {
    const random = seededRandom('json-encoders');
    let checked = 0;
    for (const [topic, list] of byTopic) {
      for (const value of list.slice(0, 6)) {
        for (const path of paths(value)) {
          for (const next of PALETTE) {
            expectSame(topic, mutated(value, path, next));
            checked++;
          }
          expectSame(topic, mutated(value, path, undefined, true));
        }
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record);
        expectSame(topic, { ...record, extra: 1 });
        expectSame(topic, { extra: 'x', ...record });
        expectSame(topic, { ...record, toJSON: () => 'replaced' });
        expectSame(topic, Object.assign(Object.create({ inherited: 1 }) as object, record));
        for (let i = 0; i < 20; i++) {
          const shuffled = [...keys].sort(() => random.next() - 0.5);
          expectSame(topic, Object.fromEntries(shuffled.map((k) => [k, record[k]])));
        }
      }
    }
    expect(checked).toBeGreaterThan(10_000);
  });

  it('write -0 as 0, non-finite numbers as null, and escape what JSON escapes', () => {
    const tick = { schema_version: 1, symbol: 'BTCUSDT', price: -0, ts: NaN, source: 'feed', bid: Infinity, ask: 1e21, bid_size: 1e-7 };
    expect(compileEncoder(TOPIC_SCHEMAS['market.tick'])(tick)).toBe(JSON.stringify(tick));
    const signal = { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.5, source: 'a"b\\c\u0001\ud83d\ude00\ud800' };
    expect(compileEncoder(TOPIC_SCHEMAS['trade.signal.v5'])(signal)).toBe(JSON.stringify(signal));
  });
});
