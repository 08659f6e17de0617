/**
 * The embedded figure: `quantum up`'s loop (startLoop on an EmbeddedBus, demo off, no
 * HTTP listening) in this process, signals published in chunks as fast as it takes
 * them, counted until the monitor has applied every fill.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldNow } from 'node:timers/promises';
import type { Outbound } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/factory.js';
import { GROUPS, TOPICS } from '../../src/bus/topics.js';
import { systemClock } from '../../src/platform/clock.js';
import { defaultConfig } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logger.js';
import { startLoop } from '../../src/services/loop.js';
import { finishedBy, produceWindowed, waitDrained, type Send, type Stage } from './drive.js';
import { BENCH_CONFIG, signalMessage, wholeCycles } from './signals.js';

/** The loop's stages in pipeline order; the end is the monitor's group on the fills. */
export const LOOP_STAGES: readonly Stage[] = [
  { topic: TOPICS.signal, group: GROUPS.risk },
  { topic: TOPICS.safe, group: GROUPS.execution },
  { topic: TOPICS.execution, group: GROUPS.monitor },
];

/** Average payload size (bytes) of the messages each hop writes. */
export interface HopSizes {
  risk: number;
  execution: number;
  monitor: number;
}

export interface EmbeddedResult {
  signals_per_s: number;
  /** CPU time of this process (all three services and the bus) per signal, measured run only. */
  cpu_us_per_signal: number;
  signals: number;
  seconds: number;
  approved_fraction: number;
  sizes: HopSizes;
}

export async function runEmbedded(options: { total: number; warmup: number; tmpDir: string }): Promise<EmbeddedResult> {
  const config = defaultConfig(structuredClone(BENCH_CONFIG) as Record<string, unknown>);
  const bus = await createBus({ maxlen: config.streams.maxlen });
  // Like `quantum up` on a terminal: the logs go to a file.
  const logger = createLogger({ destination: createWriteStream(join(options.tmpDir, 'embedded.log'), { flags: 'a' }) });
  const loop = await startLoop({ bus, config, clock: systemClock, logger, listen: false, demo: false });
  try {
    const send = (run: string): Send => (from, count) => {
      const ts = Date.now();
      const items: Outbound[] = [];
      for (let i = from; i < from + count; i++) items.push({ topic: TOPICS.signal, payload: signalMessage(run, i, ts) });
      return bus.publishMany(items);
    };
    const drive = async (run: string, total: number): Promise<number> => {
      const first = LOOP_STAGES[0] as Stage;
      const t0 = performance.now();
      await produceWindowed({
        send: send(run),
        total,
        window: 20_000,
        chunk: 1000,
        finished: async (sent) => {
          await yieldNow(); // let the consumers run between chunks
          return finishedBy(bus, first, sent);
        },
      });
      const t1 = await waitDrained(bus, LOOP_STAGES, 120_000, 1);
      return (t1 - t0) / 1000;
    };
    await drive('ew', wholeCycles(options.warmup));
    const before = loop.risk.service.stats().counts;
    const total = wholeCycles(options.total);
    const cpuBefore = process.cpuUsage();
    const seconds = await drive('em', total);
    const cpu = process.cpuUsage(cpuBefore);
    const after = loop.risk.service.stats().counts;
    const average = async (topics: string[]): Promise<number> => {
      const entries = (await Promise.all(topics.map((topic) => bus.readLatest(topic, 500)))).flat();
      const bytes = entries.reduce((sum, entry) => sum + (entry.fields.payload?.length ?? 0), 0);
      return entries.length === 0 ? 0 : Math.round(bytes / entries.length);
    };
    return {
      signals_per_s: Math.round(total / seconds),
      cpu_us_per_signal: Math.round(((cpu.user + cpu.system) / total) * 10) / 10,
      signals: total,
      seconds,
      approved_fraction: (after.approved - before.approved) / Math.max(1, after.received - before.received),
      sizes: {
        risk: await average([TOPICS.safe, TOPICS.rejected]),
        execution: await average([TOPICS.execution]),
        monitor: await average([TOPICS.position]),
      },
    };
  } finally {
    await loop.stop();
    await bus.close();
  }
}
