/**
 * The subscription's batchOutputs hook (SubscribeSettings.batchOutputs), in the bus
 * contract's style: one suite against the embedded bus and Redis Streams. The hook sees
 * the outputs of the batch's handlers, in order, once per batch, and what it returns is
 * written after them in the batch's commit; when it throws nothing of the batch lands and
 * the batch is handled again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery, EventBus, Outbound, Subscription } from '../src/bus/bus.js';
import { decoderFor } from '../src/bus/codec.js';
import { z } from 'zod';
import { waitFor } from './helpers/redis.js';
import { readEntries, testScope, type TestScope } from './helpers/services.js';

const Item = z.object({ n: z.number().int() });
type Item = z.infer<typeof Item>;
const decode = decoderFor(Item);

describe.each([
  { kind: 'embedded', embedded: true },
  { kind: 'redis', embedded: false },
])('batchOutputs on the $kind bus', ({ embedded }) => {
  let scope: TestScope;
  let subscription: Subscription | undefined;
  afterEach(async () => {
    await subscription?.close();
    subscription = undefined;
    await scope?.teardown();
  });

  async function busWith(items: number[]): Promise<EventBus> {
    scope = testScope(`batch-outputs-${embedded ? 'embedded' : 'redis'}`);
    const bus = await scope.openBus(undefined, { embedded, trimIntervalMs: 0 });
    await bus.publishMany(items.map((n) => ({ topic: 'in', payload: { n } })));
    return bus;
  }

  const payloads = async (bus: EventBus, topic: string) => (await readEntries(bus, topic)).map((e) => JSON.parse(e.fields.payload ?? 'null') as unknown);

  it('sees each batch’s outputs in order and writes its messages after them, in the batch’s commit', async () => {
    const bus = await busWith([1, 2, 3, 4, 5]);
    const seen: Outbound[][] = [];
    subscription = bus.subscribe<Item>({
      topic: 'in',
      group: 'g',
      consumer: 'c',
      batchSize: 3,
      decode,
      // Even entries make two outputs, odd ones one, 4 none: the hook sees exactly these.
      handler: ({ message }: Delivery<Item>) =>
        message.n === 4 ? undefined : [{ topic: 'out', payload: { n: message.n } }, ...(message.n % 2 === 0 ? [{ topic: 'out', payload: { n: -message.n } }] : [])],
      batchOutputs: (outputs) => {
        seen.push([...outputs]);
        return [{ topic: 'out', payload: { sum: outputs.length } }];
      },
    });
    await waitFor(() => subscription!.acknowledged === 5, { what: 'five entries acknowledged' });
    expect(seen.map((batch) => batch.map((o) => (o.payload as Item).n))).toEqual([
      [1, 2, -2, 3],
      [5],
    ]);
    // Acknowledged only once written: the summaries are there with the outputs.
    expect(await payloads(bus, 'out')).toEqual([{ n: 1 }, { n: 2 }, { n: -2 }, { n: 3 }, { sum: 4 }, { n: 5 }, { sum: 1 }]);
  });

  it('an empty answer adds nothing; dead letters are not outputs', async () => {
    const bus = await busWith([1, 2]);
    await bus.publishRaw('in', { payload: 'not json' });
    const seen: number[] = [];
    subscription = bus.subscribe<Item>({
      topic: 'in',
      group: 'g',
      consumer: 'c',
      decode,
      handler: ({ message }) => [{ topic: 'out', payload: message }],
      batchOutputs: (outputs) => {
        seen.push(outputs.length);
        return [];
      },
    });
    await waitFor(() => subscription!.acknowledged === 3, { what: 'three entries acknowledged' });
    expect(seen).toEqual([2]);
    expect(await payloads(bus, 'out')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await bus.length('in.dlq')).toBe(1);
  });

  it('when it throws, nothing of the batch is committed and the batch is handled again', async () => {
    const bus = await busWith([1, 2]);
    let calls = 0;
    const handled: number[] = [];
    subscription = bus.subscribe<Item>({
      topic: 'in',
      group: 'g',
      consumer: 'c',
      decode,
      onError: () => undefined,
      handler: ({ message }) => {
        handled.push(message.n);
        return [{ topic: 'out', payload: message }];
      },
      batchOutputs: (outputs) => {
        calls += 1;
        if (calls === 1) throw new Error('not this time');
        return [{ topic: 'out', payload: { sum: outputs.length } }];
      },
    });
    await waitFor(() => subscription!.acknowledged === 2, { what: 'two entries acknowledged' });
    expect(calls).toBe(2);
    expect(handled).toEqual([1, 2, 1, 2]);
    expect(await payloads(bus, 'out')).toEqual([{ n: 1 }, { n: 2 }, { sum: 2 }]);
  });
});
