/**
 * JSON.stringify against serializers compiled from the message schemas
 * (bench/lib/json-encoders.ts: measured for issue 20, not adopted, see docs/performance.md
 * "compiled encoders, measured, not adopted"), per published message type, on the messages the services
 * build in the bench's signal mix (risk's decisions and exit levels, execution's fills,
 * the monitor's position updates and round trips), as built (not parsed back). CPU time of
 * this process, lowest of the rounds; each figure includes Buffer.byteLength of the text,
 * which the RESP writer pays too (and which flattens a concatenated string).
 *
 * In-process the compiled ones win (−7 to −30 % a message) and make about twice the
 * garbage; in the services that garbage costs more than they save.
 *
 *   npx tsx bench/encode.ts [--rounds 7]
 */
import { parseArgs } from 'node:util';
import { encodePayload } from '../src/bus/codec.js';
import { TOPIC_SCHEMAS } from '../src/core/messages.js';
import { publishedMessages } from './lib/encode-samples.js';
import { compileEncoder, encodeFor } from './lib/json-encoders.js';
import { lowestCpuNs } from './lib/timing.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const ROUNDS = Number(args.rounds);

const time = (n: number, fn: (i: number) => void): number => lowestCpuNs(ROUNDS, n, fn);

const us = (ns: number): string => `${(ns / 1000).toFixed(3)} µs`;
console.log(`per message, CPU time (load ${(await import('node:os')).loadavg()[0]!.toFixed(2)})`);
console.log('type                         bytes  JSON.stringify  compiled    saved');
for (const [label, messages] of publishedMessages()) {
  const schema = TOPIC_SCHEMAS[label.split(' ')[0] as keyof typeof TOPIC_SCHEMAS];
  const encode = compileEncoder(schema);
  const m = messages.length;
  let fallbacks = 0;
  for (const message of messages) {
    const text = encode(message);
    if (text !== undefined && text !== JSON.stringify(message)) throw new Error(`${label}: compiled text differs`);
    if (text === undefined) fallbacks++;
  }
  if (fallbacks > 0) console.log(`  (${fallbacks} of ${m} fall back to JSON.stringify, e.g. keys ${JSON.stringify(Object.keys(messages.find((x) => encode(x) === undefined) as object))})`);
  let sink = 0;
  const n = 50_000;
  const plain = time(n, (i) => (sink += Buffer.byteLength(JSON.stringify(messages[i % m])!)));
  const compiled = time(n, (i) => (sink += Buffer.byteLength(encode(messages[i % m]) ?? JSON.stringify(messages[i % m])!)));
  const bytes = Math.round(messages.reduce((s: number, x) => s + JSON.stringify(x)!.length, 0) / m);
  console.log(`${label.padEnd(28)} ${String(bytes).padStart(5)}  ${us(plain).padStart(14)}  ${us(compiled).padStart(9)}  ${(((plain - compiled) / plain) * 100).toFixed(0).padStart(5)} %`);
  void sink;
}

// The risk service's mix codec's encodePayload vs encodeFor(topic), one call site for every topic (as in the services).
{
  // Round-robin over the types, so every call site sees every shape (polymorphic, as in a service).
  const lists = [...publishedMessages()].map(([label, messages]) => messages.map((message) => ({ topic: label.split(' ')[0]!, message })));
  const all = Array.from({ length: Math.max(...lists.map((l) => l.length)) }, (_, i) => lists.flatMap((l) => (i < l.length ? [l[i]!] : []))).flat();
  const m = all.length;
  let sink = 0;
  const plain = time(50_000, (i) => (sink += Buffer.byteLength(encodePayload(all[i % m]!.message).payload!)));
  const compiled = time(50_000, (i) => (sink += Buffer.byteLength(encodeFor(all[i % m]!.topic, all[i % m]!.message)!)));
  console.log(`all types mixed, codec's encodePayload vs encodeFor(topic): ${us(plain)} → ${us(compiled)} a message`);
  // What each leaves to the garbage collector: young-generation collections per 100,000 messages.
  const { PerformanceObserver } = await import('node:perf_hooks');
  const collections = async (fn: (i: number) => void): Promise<number> => {
    let count = 0;
    const observer = new PerformanceObserver((list) => (count += list.getEntries().length));
    observer.observe({ entryTypes: ['gc'] });
    for (let i = 0; i < 100_000; i++) fn(i);
    await new Promise((resolve) => setTimeout(resolve, 50));
    observer.disconnect();
    return count;
  };
  const a = await collections((i) => (sink += Buffer.byteLength(encodePayload(all[i % m]!.message).payload!)));
  const b = await collections((i) => (sink += Buffer.byteLength(encodeFor(all[i % m]!.topic, all[i % m]!.message)!)));
  console.log(`garbage collections per 100,000 messages: JSON.stringify ${a}, compiled ${b}`);
  void sink;
}
