/**
 * The snapshot-by-parts side of the bus contract (getState, setState, a commitState with
 * `parts`; core/snapshot-parts.ts), run against the embedded bus and Redis: both store a
 * snapshot's parts alike, apply a commit's parts with its acknowledgements, and read a
 * string at the key as a whole (older) snapshot.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { createBus } from '../src/bus/factory.js';
import { assembleState } from '../src/core/snapshot-parts.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';

const buses: EventBus[] = [];
const prefixes: string[] = [];

const kinds: { kind: string; open: () => Promise<EventBus> }[] = [
  { kind: 'embedded', open: async () => new EmbeddedBus({ prefix: uniquePrefix('state'), trimIntervalMs: 0, onError: () => undefined }) },
  {
    kind: 'redis',
    open: async () => {
      const prefix = uniquePrefix('state');
      prefixes.push(prefix);
      return createBus({ redisUrl: redisUrl(), prefix, onError: () => undefined });
    },
  },
];

afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
});

afterAll(async () => {
  await Promise.all(prefixes.splice(0).map((prefix) => cleanupPrefix(redisUrl(), prefix)));
});

describe.each(kinds)('snapshot state on the $kind bus', ({ open }) => {
  const bus = async (): Promise<EventBus> => {
    const created = await open();
    buses.push(created);
    return created;
  };

  it('stores parts: a replace, then amendments (HDEL, HSET); a string at the key reads as a whole value', async () => {
    const b = await bus();
    expect(await b.getState('snapshot:x')).toBeNull();
    await b.setValue('snapshot:x', '{"legacy":1}');
    expect(await b.getState('snapshot:x')).toEqual({ value: '{"legacy":1}' });
    await b.setState('snapshot:x', { replace: true, set: ['shell', 's1', '1:A', '1 a'], del: [] });
    expect(await b.getState('snapshot:x')).toEqual({ fields: new Map([['shell', 's1'], ['1:A', '1 a']]) });
    await b.setState('snapshot:x', { replace: false, set: ['1:B', '2 b'], del: ['1:A'] });
    expect(await b.getState('snapshot:x')).toEqual({ fields: new Map([['shell', 's1'], ['1:B', '2 b']]) });
    await b.setState('snapshot:x', { replace: true, set: ['whole', '{"w":1}'], del: [] });
    expect(await b.getState('snapshot:x')).toEqual({ fields: new Map([['whole', '{"w":1}']]) });
    // A string written over the parts (SET replaces any value) is a whole snapshot again.
    await b.setValue('snapshot:x', 'not a snapshot');
    expect(await b.getState('snapshot:x')).toEqual({ value: 'not a snapshot' });
    // An amendment needs parts at the key: a string there is refused (WRONGTYPE) and left as it is.
    await expect(b.setState('snapshot:x', { replace: false, set: ['1:C', '3 c'], del: [] })).rejects.toThrow();
    expect(await b.getState('snapshot:x')).toEqual({ value: 'not a snapshot' });
    // Parts amended after the key was deleted under them do not add up: assembleState refuses them.
    await b.setState('snapshot:gone', { replace: false, set: ['shell', 's', 'count', '3'], del: ['1:A'] });
    const gone = await b.getState('snapshot:gone');
    expect(gone).toEqual({ fields: new Map([['shell', 's'], ['count', '3']]) });
    expect(() => assembleState(gone!)).toThrow(/holds 1 parts, its count says 3/);
  });

  it('applies amendments of thousands of fields (the Redis script sets and deletes them in chunks)', async () => {
    const b = await bus();
    const set = (from: number, to: number, tag: string) => Array.from({ length: to - from }, (_, i) => [`1:K${from + i}`, `${from + i} ${tag}`]).flat();
    await b.setState('snapshot:big', { replace: true, set: ['shell', 's', ...set(0, 3000, 'a')], del: [] });
    await b.setState('snapshot:big', { replace: false, set: set(1500, 3500, 'b'), del: Array.from({ length: 1000 }, (_, i) => `1:K${i}`) });
    const state = await b.getState('snapshot:big');
    const fields = state !== null && 'fields' in state ? state.fields : new Map<string, string>();
    expect(fields.size).toBe(1 + 2500);
    expect(fields.get('1:K999')).toBeUndefined();
    expect(fields.get('1:K1000')).toBe('1000 a');
    expect(fields.get('1:K1500')).toBe('1500 b');
    expect(fields.get('1:K3499')).toBe('3499 b');
  });

  it('writes a commit state of parts in the same commit as the acknowledgements, replacing a string first', async () => {
    const b = await bus();
    await b.setValue('snapshot:n', '{"old":true}');
    for (const n of [1, 2, 3]) await b.publish('numbers', { n });
    let total = 0;
    let commits = 0;
    b.subscribe<{ n: number }>({
      topic: 'numbers',
      group: 'g',
      consumer: 'c1',
      decode: (fields) => JSON.parse(fields.payload!) as { n: number },
      handler: (delivery) => {
        total += delivery.message.n;
      },
      commitState: () => {
        commits += 1;
        return { key: 'snapshot:n', parts: commits === 1 ? { replace: true, set: ['shell', `${total}`], del: [] } : { replace: false, set: ['shell', `${total}`], del: [] } };
      },
    });
    await waitFor(async () => (await b.info('numbers')).groups[0]?.pending === 0 && total === 6, { what: 'the batch committed' });
    await waitFor(async () => {
      const state = await b.getState('snapshot:n');
      return state !== null && 'fields' in state && state.fields.get('shell') === '6';
    }, { what: 'the parts' });
    await b.publish('numbers', { n: 4 });
    await waitFor(async () => {
      const state = await b.getState('snapshot:n');
      return state !== null && 'fields' in state && state.fields.get('shell') === '10';
    }, { what: 'the amended parts' });
  });
});
