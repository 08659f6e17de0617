/**
 * One hop of the baseline relay: XREADGROUP a batch from one stream, then, in one
 * MULTI, XADD one entry per input to the next stream and XACK the batch. The same
 * client (node-redis, sendCommand), batch size, blocking read and transaction shape as
 * the services' consumer loop, and no domain logic: no parsing, no state, no snapshot.
 *
 *   node --import tsx bench/relay-hop.ts <redis-url> <in-key> <out-key> <group> <payload-bytes> <batch>
 */
import { createClient } from 'redis';

const [url, inKey, outKey, group, bytesArg, batchArg] = process.argv.slice(2);
if (!url || !inKey || !outKey || !group || !bytesArg || !batchArg) {
  console.error('usage: relay-hop <redis-url> <in-key> <out-key> <group> <payload-bytes> <batch>');
  process.exit(2);
}
const batch = String(Number(batchArg));
// A JSON payload of the requested size, like the messages of the real hop.
const payload = JSON.stringify({ pad: 'x'.repeat(Math.max(0, Number(bytesArg) - 10)) });
const consumer = `${group}-1`;

type RawStreams = [key: string, entries: [id: string, fields: string[]][]][] | null;

const client = createClient({ url });
client.on('error', (err: Error) => console.error(`relay-hop: ${err.message}`));
await client.connect();
try {
  await client.sendCommand(['XGROUP', 'CREATE', inKey, group, '0', 'MKSTREAM']);
} catch (err) {
  if (!(err as Error).message.includes('BUSYGROUP')) throw err;
}

console.log('ready');

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => (stopping = true));

while (!stopping) {
  const reply = await client.sendCommand<RawStreams>([
    'XREADGROUP', 'GROUP', group, consumer, 'COUNT', batch, 'BLOCK', '200', 'STREAMS', inKey, '>',
  ]);
  const entries = reply?.[0]?.[1];
  if (!entries || entries.length === 0) continue;
  const multi = client.multi();
  const ids: string[] = [];
  for (const [id] of entries) {
    ids.push(id);
    multi.addCommand(['XADD', outKey, 'MAXLEN', '~', '100000', '*', 'payload', payload]);
  }
  multi.addCommand(['XACK', inKey, group, ...ids]);
  await multi.exec();
}
await client.close();
