/**
 * Driving a loop: producers (as fast as the loop takes them, or at a steady rate), a
 * tail reader that sees results as they are written, waiting for consumer groups to
 * drain, and latency percentiles.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { createClient } from 'redis';
import type { EventBus } from '../../src/bus/bus.js';
import { signalPayload } from './signals.js';

export type RedisClient = ReturnType<typeof createClient>;

/** One consumer group reading one topic: a stage of a pipeline. */
export interface Stage {
  topic: string;
  group: string;
}

/**
 * True when every stage has read everything in its stream and acknowledged it. Stages
 * are checked one after another in pipeline order, so once the first is drained (no
 * more input upstream) a drained later stage really is the end of the work.
 */
export async function drained(bus: EventBus, stages: readonly Stage[]): Promise<boolean> {
  for (const { topic, group } of stages) {
    const info = await bus.info(topic);
    const g = info.groups.find((candidate) => candidate.name === group);
    if (!g || g.pending > 0) return false;
    if (info.last_id !== null && g.last_delivered_id !== info.last_id) return false;
  }
  return true;
}

/** Polls `drained` until true; returns the time it was seen (performance.now()). */
export async function waitDrained(bus: EventBus, stages: readonly Stage[], timeoutMs: number, intervalMs = 2): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await drained(bus, stages)) return performance.now();
    if (performance.now() > deadline) {
      const state = await Promise.all(
        stages.map(async ({ topic, group }) => {
          const info = await bus.info(topic);
          const g = info.groups.find((candidate) => candidate.name === group);
          return `${topic}/${group}: length ${info.length}, last ${info.last_id}, delivered ${g?.last_delivered_id}, pending ${g?.pending}, lag ${g?.lag}`;
        }),
      );
      throw new Error(`the loop did not drain within ${timeoutMs} ms (${state.join('; ')})`);
    }
    await sleep(intervalMs);
  }
}

/** Entries of `topic` the group has finished (read and acknowledged), given how many were sent. */
export async function finishedBy(bus: EventBus, stage: Stage, sent: number): Promise<number> {
  const info = await bus.info(stage.topic);
  const g = info.groups.find((candidate) => candidate.name === stage.group);
  if (!g) return 0;
  return sent - (g.lag ?? 0) - g.pending;
}

/** Sends signals [from, from + count); resolves once they are written. */
export type Send = (from: number, count: number) => Promise<unknown>;

/**
 * Sends `total` signals as fast as the loop takes them, keeping at most `window`
 * signals ahead of the first stage, so the loop runs saturated with a bounded backlog
 * (a sustained rate, not the drain of a pre-filled stream).
 */
export async function produceWindowed(options: {
  send: Send;
  total: number;
  window: number;
  chunk: number;
  /** How many signals the first stage has finished, given how many were sent. */
  finished: (sent: number) => Promise<number>;
  /** Called with each multiple of `every` signals the first stage has finished. */
  onProgress?: (finished: number) => void;
}): Promise<void> {
  const { send, total, window, chunk, finished } = options;
  let sent = 0;
  let done = 0;
  while (sent < total) {
    done = await finished(sent);
    options.onProgress?.(done);
    const allowed = Math.min(total, done + window) - sent;
    if (allowed <= 0) {
      await sleep(1);
      continue;
    }
    const count = Math.min(allowed, chunk);
    await send(sent, count);
    sent += count;
  }
}

/**
 * Sends `total` signals at `rate` per second, each as soon as it is due (checked about
 * every millisecond), recording each one's send time in `sentAt` (performance.now()).
 * Writes are not awaited one by one, so a slow reply never delays the schedule.
 */
export async function producePaced(options: { send: Send; total: number; rate: number; sentAt: Float64Array }): Promise<void> {
  const { send, total, rate, sentAt } = options;
  const writes: Promise<unknown>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
    if (due > sent) {
      for (let i = sent; i < due; i++) sentAt[i] = now;
      writes.push(send(sent, due - sent));
      sent = due;
    }
    await sleep(1);
  }
  await Promise.all(writes);
}

/**
 * A Send that XADDs each signal as its own entry, the whole chunk in one pipeline (not
 * a transaction): what a high-rate producer in any language does, at a fraction of the
 * client CPU of one awaited command per signal.
 */
export function redisSender(client: RedisClient, key: string, run: string, maxlen: number): Send {
  const cap = String(maxlen);
  return (from, count) => {
    const ts = Date.now();
    const pipeline = client.multi();
    for (let i = from; i < from + count; i++) pipeline.addCommand(['XADD', key, 'MAXLEN', '~', cap, '*', 'payload', signalPayload(run, i, ts)]);
    return pipeline.execAsPipeline();
  };
}

/**
 * Reads new entries of one stream without a consumer group (XREAD BLOCK), on its own
 * connection, and reports each entry's payload with the time its reply arrived.
 */
export class TailReader {
  #stopped = false;
  #done: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private readonly onEntry: (payload: string, receivedAt: number) => void,
  ) {}

  /** Starts after the stream's current last entry (resolves once that position is known). */
  async start(): Promise<void> {
    const last = await this.client.sendCommand<[string, string[]][]>(['XREVRANGE', this.key, '+', '-', 'COUNT', '1']);
    let after = last[0]?.[0] ?? '0-0';
    this.#done = (async () => {
      while (!this.#stopped) {
        const reply = await this.client.sendCommand<[string, [string, string[]][]][] | null>([
          'XREAD', 'COUNT', '5000', 'BLOCK', '100', 'STREAMS', this.key, after,
        ]);
        const receivedAt = performance.now();
        const entries = reply?.[0]?.[1] ?? [];
        for (const [id, fields] of entries) {
          after = id;
          const at = fields.indexOf('payload');
          if (at >= 0 && at + 1 < fields.length) this.onEntry(fields[at + 1] as string, receivedAt);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }
}

export interface Percentiles {
  samples: number;
  p50_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
}

/** Nearest-rank percentiles of `values` (ms). */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number): number | null => (n === 0 ? null : round3(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number));
  return { samples: n, p50_ms: at(0.5), p99_ms: at(0.99), p999_ms: at(0.999), max_ms: at(1) };
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
