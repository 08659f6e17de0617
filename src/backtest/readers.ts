/**
 * Streaming price readers: a file (CSV, Binance .zip with its optional .CHECKSUM, or
 * JSONL) becomes an async stream of ticks, one line at a time, so memory stays flat on
 * a year of data; files of one symbol are chained in name order (Binance names sort by
 * date) and the symbols are merged in time order.
 *
 * Zip: yauzl (the zip reader under extract-zip; it reads the central directory and
 * inflates one entry as a stream, handling data descriptors, stored entries and zip64,
 * which a hand-rolled inflate of the first local header would not).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import {
  barTicks,
  formatFromFileName,
  isHeader,
  parseAggTrade,
  parseJsonTick,
  parseKline,
  periodEndFromFileName,
  symbolFromFileName,
  type PriceFormat,
  type ReplayTick,
} from './bars.js';

/** A bad input file: the CLI prints the message and exits 2. */
export class InputError extends Error {}

export interface PriceFile {
  path: string;
  symbol: string;
  format: PriceFormat;
}

/** What each --prices file is; the symbol from the name (`BTCUSDT-1m-2024-01.zip`) or `symbol`. */
export function describePriceFiles(paths: readonly string[], symbol?: string): PriceFile[] {
  return paths.map((path) => {
    if (!existsSync(path)) throw new InputError(`--prices ${path}: no such file`);
    const format = formatFromFileName(path);
    const named = symbol ?? symbolFromFileName(path);
    if (named === undefined && format !== 'jsonl') {
      throw new InputError(`--prices ${path}: cannot tell the symbol from the file name (expected e.g. BTCUSDT-1m-2024-01.zip); give --symbol`);
    }
    return { path, symbol: named ?? '', format };
  });
}

/** sha256 of the zip against its `.CHECKSUM` (`<hex>  <name>`), when that file is beside it. */
export async function verifyChecksum(path: string): Promise<'verified' | 'absent'> {
  const checksumPath = `${path}.CHECKSUM`;
  if (!existsSync(checksumPath)) return 'absent';
  const expected = readFileSync(checksumPath, 'utf8').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (!/^[0-9a-f]{64}$/.test(expected)) throw new InputError(`${checksumPath}: not a sha256 checksum file`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected) throw new InputError(`${path}: sha256 ${actual} does not match ${basename(checksumPath)} (${expected}); download it again`);
  return 'verified';
}

function openZipEntry(path: string): Promise<Readable> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return reject(new InputError(`${path}: not a readable zip (${err?.message ?? 'unknown error'})`));
      zip.on('error', (e: Error) => reject(new InputError(`${path}: ${e.message}`)));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/') || !/\.(csv|jsonl)$/i.test(entry.fileName)) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(new InputError(`${path}: cannot read ${entry.fileName} (${e?.message ?? 'unknown error'})`));
          resolve(stream);
        });
      });
      zip.on('end', () => reject(new InputError(`${path}: the zip holds no .csv file`)));
      zip.readEntry();
    });
  });
}

/** The file's lines (a zip's first CSV entry), verified against its .CHECKSUM first when present. */
async function* lines(path: string): AsyncGenerator<string> {
  let stream: Readable;
  if (path.toLowerCase().endsWith('.zip')) {
    await verifyChecksum(path);
    stream = await openZipEntry(path);
  } else {
    stream = createReadStream(path);
  }
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of reader) yield line;
  } finally {
    reader.close();
    stream.destroy();
  }
}

/** Every tick of one file, in file order; a bad row stops the run naming the file and line. */
export async function* fileTicks(file: PriceFile, counts: { bars: number } = { bars: 0 }): AsyncGenerator<ReplayTick> {
  let lineNo = 0;
  for await (const raw of lines(file.path)) {
    lineNo += 1;
    const line = raw.trim();
    if (line === '') continue;
    try {
      if (file.format === 'jsonl') {
        yield parseJsonTick(line, file.symbol || undefined);
        continue;
      }
      if (isHeader(line)) continue;
      if (file.format === 'aggTrades') {
        yield parseAggTrade(line, file.symbol);
        continue;
      }
      const bar = parseKline(line, file.symbol);
      counts.bars += 1;
      for (const tick of barTicks(bar)) yield tick;
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(`${file.path}:${lineNo}: ${(err as Error).message}`);
    }
  }
}

/** One stream of ticks per symbol: its files chained in name order, checked to go forward in time. */
async function* chain(files: readonly PriceFile[], counts: { bars: number }): AsyncGenerator<ReplayTick> {
  let lastTs = Number.NEGATIVE_INFINITY;
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    for await (const tick of fileTicks(file, counts)) {
      if (tick.ts < lastTs) {
        throw new InputError(`${file.path}: ${tick.symbol} goes back in time (${new Date(tick.ts).toISOString()} after ${new Date(lastTs).toISOString()}); the files of one symbol must not overlap`);
      }
      lastTs = tick.ts;
      yield tick;
    }
  }
}

interface Head {
  order: number;
  tick: ReplayTick;
  rest: AsyncIterator<ReplayTick>;
}

/**
 * Merges streams (each already read one tick ahead) in time order; at equal ts the stream
 * given first comes first, so a run is deterministic. No stream is read further ahead.
 */
async function* mergeHeads(heads: Head[]): AsyncGenerator<ReplayTick> {
  while (heads.length > 0) {
    let best = 0;
    for (let i = 1; i < heads.length; i += 1) {
      const a = heads[i]!;
      const b = heads[best]!;
      if (a.tick.ts < b.tick.ts || (a.tick.ts === b.tick.ts && a.order < b.order)) best = i;
    }
    const head = heads[best]!;
    yield head.tick;
    const next = await head.rest.next();
    if (next.done) heads.splice(best, 1);
    else head.tick = next.value;
  }
}

/** Merges `streams` in time order (see mergeHeads). */
export async function* mergeByTime(streams: readonly AsyncIterable<ReplayTick>[]): AsyncGenerator<ReplayTick> {
  const heads: Head[] = [];
  for (const [order, stream] of streams.entries()) {
    const rest = stream[Symbol.asyncIterator]();
    const first = await rest.next();
    if (!first.done) heads.push({ order, tick: first.value, rest });
  }
  yield* mergeHeads(heads);
}

export interface PriceStream {
  /** Every symbol in the data, sorted. */
  symbols: string[];
  /** Each symbol's first price and its time (the data's own start, per symbol). */
  first: Map<string, { ts: number; price: number }>;
  ticks: AsyncGenerator<ReplayTick>;
  /** Bars read so far (klines). */
  counts: { bars: number };
  /** Where the data probably ends (from the last file name), for the ETA; undefined when unknown. */
  estimatedEnd: number | undefined;
}

/**
 * Every file as one time-ordered stream, each symbol's first tick already read (the
 * instruments are configured from it). A JSONL file without --symbol may hold several
 * symbols: it is scanned once first to find them (and must be in time order itself).
 */
export async function openPrices(files: readonly PriceFile[]): Promise<PriceStream> {
  const counts = { bars: 0 };
  const bySymbol = new Map<string, PriceFile[]>();
  const loose: PriceFile[] = [];
  const first = new Map<string, { ts: number; price: number }>();
  for (const file of files) {
    if (file.format === 'jsonl' && file.symbol === '') {
      loose.push(file);
      for await (const tick of fileTicks(file)) {
        const seen = first.get(tick.symbol);
        if (seen === undefined || tick.ts < seen.ts) first.set(tick.symbol, { ts: tick.ts, price: tick.price });
      }
      continue;
    }
    const list = bySymbol.get(file.symbol) ?? [];
    list.push(file);
    bySymbol.set(file.symbol, list);
  }
  const streams: AsyncIterable<ReplayTick>[] = [...bySymbol.keys()].sort().map((symbol) => chain(bySymbol.get(symbol)!, counts));
  for (const file of loose) streams.push(chain([file], counts));
  const heads: Head[] = [];
  for (const [order, stream] of streams.entries()) {
    const rest = stream[Symbol.asyncIterator]();
    const next = await rest.next();
    if (next.done) continue;
    heads.push({ order, tick: next.value, rest });
    const seen = first.get(next.value.symbol);
    if (seen === undefined || next.value.ts < seen.ts) first.set(next.value.symbol, { ts: next.value.ts, price: next.value.price });
  }
  const ends = files.map((f) => periodEndFromFileName(f.path));
  const estimatedEnd = ends.every((e) => e !== undefined) ? Math.max(...(ends as number[])) : undefined;
  return { symbols: [...first.keys()].sort(), first, ticks: mergeHeads(heads), counts, estimatedEnd };
}
