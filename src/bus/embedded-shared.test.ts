/** The embedded bus decodes a stored entry once for all its groups, and keeps lazy values. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock } from '../core/clock.js';
import { decoderFor } from './codec.js';
import { EmbeddedBus } from './embedded.js';

const Numbered = z.object({ n: z.number().int() });
const decodeNumbered = decoderFor(Numbered);

function newBus(freezeMessages = false): EmbeddedBus {
  return new EmbeddedBus({ clock: new ManualClock(1), trimIntervalMs: 0, freezeMessages, onError: () => undefined });
}

describe('embedded bus: one decode per entry, shared by the groups', () => {
  it('decodes each entry once for two groups with the same decoder, twice with two decoders', async () => {
    const bus = newBus();
    const calls = { shared: 0, own: 0 };
    const shared = (fields: Record<string, string>, id: string) => (calls.shared++, decodeNumbered(fields, id));
    const own = (fields: Record<string, string>, id: string) => (calls.own++, decodeNumbered(fields, id));
    const seen = new Map<string, unknown[]>([['a', []], ['b', []], ['c', []]]);
    for (const group of seen.keys()) await bus.ensureGroup('t', group);
    for (const [group, decode] of [['a', shared], ['b', shared], ['c', own]] as const) {
      bus.subscribe({ topic: 't', group, consumer: 'c1', decode, handler: ({ message }) => void seen.get(group)?.push(message) });
    }
    await bus.publishMany([1, 2, 3].map((n) => ({ topic: 't', payload: { n } })));
    await bus.whenSettled();
    expect(seen.get('a')).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(seen.get('b')).toEqual(seen.get('a'));
    expect(seen.get('c')).toEqual(seen.get('a'));
    expect(calls).toEqual({ shared: 3, own: 3 });
    await bus.close();
  });

  it('dead-letters a malformed entry in each group with the same error text', async () => {
    const bus = newBus();
    for (const group of ['a', 'b']) await bus.ensureGroup('t', group);
    for (const group of ['a', 'b']) bus.subscribe({ topic: 't', group, consumer: 'c1', decode: decodeNumbered, handler: () => undefined });
    await bus.publishRaw('t', { payload: '{"n": 1.5}' });
    await bus.publishRaw('t', { payload: 'not json' });
    await bus.whenSettled();
    const letters = await bus.readAfter('t.dlq', '0', 10);
    const byGroup = (group: string) => letters.filter((l) => l.fields.dlq_group === group).map((l) => l.fields.dlq_error);
    expect(byGroup('a')).toHaveLength(2);
    expect(byGroup('b')).toEqual(byGroup('a'));
    expect(byGroup('a')[0]).toMatch(/^invalid payload/);
    expect(byGroup('a')[1]).toMatch(/^payload is not valid JSON/);
    await bus.close();
  });

  it('with freezeMessages, a handler that changes its message fails (and is dead-lettered) while the other group sees it unchanged', async () => {
    const bus = newBus(true);
    for (const group of ['mutator', 'reader']) await bus.ensureGroup('t', group);
    const read: unknown[] = [];
    bus.subscribe({
      topic: 't',
      group: 'mutator',
      consumer: 'c1',
      decode: decodeNumbered,
      maxAttempts: 1,
      handler: ({ message }) => {
        (message as { n: number }).n += 1;
      },
    });
    bus.subscribe({ topic: 't', group: 'reader', consumer: 'c1', decode: decodeNumbered, handler: ({ message }) => void read.push(message) });
    await bus.publish('t', { n: 1 });
    await bus.whenSettled();
    expect(read).toEqual([{ n: 1 }]);
    const letters = await bus.readAfter('t.dlq', '0', 10);
    expect(letters.map((l) => l.fields.dlq_group)).toEqual(['mutator']);
    expect(letters[0]?.fields.dlq_error).toMatch(/read.only|Cannot assign/);
    await bus.close();
  });
});

describe('embedded bus: lazy values', () => {
  it('getValue makes a lazy value when read; setValue replaces it', async () => {
    const bus = new EmbeddedBus({ prefix: 'p:', trimIntervalMs: 0 });
    let state = 1;
    bus.setLazyValue('snap', async () => JSON.stringify({ state }));
    expect(await bus.getValue('snap')).toBe('{"state":1}');
    state = 2;
    expect(await bus.getValue('snap')).toBe('{"state":2}');
    expect(bus.keys()).toContain('p:snap');
    await bus.setValue('snap', 'plain');
    state = 3;
    expect(await bus.getValue('snap')).toBe('plain');
    await bus.close();
  });
});
