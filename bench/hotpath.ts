/**
 * In-process micro-benchmarks of the per-signal decision path and the codec (issue 20,
 * second pass): the risk state deciding the bench's signal mix, the JSON of approvals
 * and rejections, a compact decision record, ajv against the hand-written guards, and
 * prom-client increments. Numbers only; the services' CPU per signal is `npm run bench`.
 *
 *   npx tsx bench/hotpath.ts [--rounds 5] [--only risk,json,ajv,prom]
 */
import { parseArgs } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { decodeSignal, decoderFor, encodePayload } from '../src/bus/codec.js';
import { createFillModels, paperFill } from '../src/core/fills.js';
import { SCALE, div, fx, mul, roundDiv, toDecimalString, toNumber } from '../src/core/fixed.js';
import { decide, type AccountView } from '../src/core/governor.js';
import { instrumentTable } from '../src/core/instruments.js';
import { messageJsonSchemas } from '../src/core/json-schemas.js';
import { guardFor } from '../src/core/message-guards.js';
import { ExecutionResult, RiskApprovedSignal, RiskRejection, TradeSignalInput } from '../src/core/messages.js';
import { defaultConfig } from '../src/platform/config.js';
import { riskStateOptions } from '../src/services/risk/service.js';
import { RiskState } from '../src/services/risk/state.js';
import { RecentSet } from '../src/core/recent-set.js';
import { BENCH_CONFIG, BENCH_SYMBOLS, CYCLE_SIGNALS, signalPayload } from './lib/signals.js';
import { lowestCpuNs } from './lib/timing.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, only: { type: 'string' } },
});
const ROUNDS = Number(args.rounds);
const only = args.only ? new Set(args.only.split(',')) : null;
const want = (name: string): boolean => only === null || only.has(name);

const time = (n: number, fn: (i: number) => void): number => lowestCpuNs(ROUNDS, n, fn);
const us = (ns: number): string => `${(ns / 1000).toFixed(2)} µs`;

const config = defaultConfig(BENCH_CONFIG as unknown as Record<string, unknown>);
const instruments = instrumentTable(config.instruments);
const models = createFillModels(config.execution);
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const PRICES: Record<string, number> = { BTCUSDT: 65000, ETHUSDT: 3200, BNBUSDT: 580, SOLUSDT: 150, XRPUSDT: 0.52 };

function riskState(): RiskState {
  const state = new RiskState(riskStateOptions(config));
  for (const symbol of BENCH_SYMBOLS) state.onTick({ schema_version: 1, symbol, price: PRICES[symbol]!, ts: T0, source: 'manual' }, T0);
  return state;
}

/**
 * One signal as the risk service handles it: decode, decide, encode the decision; then
 * its fill fed back (as execution would), so the book walks the bench's cycle.
 */
function riskLoop(state: RiskState, run: string, samples?: { approvals: string[]; rejections: string[] }) {
  const payloads = Array.from({ length: CYCLE_SIGNALS * 20 }, (_, i) => signalPayload(run, i, T0 + 1));
  const decodeOnly = (i: number) => decodeSignal({ payload: payloads[i % payloads.length]! }, `${T0}-${i}`);
  let k = 0;
  const step = (i: number): void => {
    const n = k++;
    const signal = decodeSignal({ payload: payloads[i % payloads.length]!.replace(`"${run}-`, `"${run}${n}-`) }, `${T0}-${n}`);
    const now = T0 + 1;
    const d = state.onSignal(signal, now);
    if (d.kind === 'skip' || d.kind === 'duplicate') return;
    const fields = encodePayload(d.message);
    if (d.kind === 'reject') {
      samples?.rejections.push(fields.payload!);
      return;
    }
    samples?.approvals.push(fields.payload!);
    const order = d.message;
    state.onExecution(paperFill({ order, mark: fx(order.reference_price), instrument: instruments.get(order.symbol), seed: config.seed, models, now }));
  };
  return { decodeOnly, step };
}

const samples = { approvals: [] as string[], rejections: [] as string[] };
{
  const state = riskState();
  const { step } = riskLoop(state, 's', samples);
  for (let i = 0; i < CYCLE_SIGNALS * 2; i++) step(i);
}

if (want('risk')) {
  const state = riskState();
  const { decodeOnly, step } = riskLoop(state, 'r');
  console.log('risk (bench mix: 4 entries, 4 closes, 1 rejection, 1 HOLD in 10)');
  console.log(`  decodeSignal                              ${us(time(50_000, decodeOnly))} a signal`);
  console.log(`  decode + onSignal + encode + fill back    ${us(time(50_000, step))} a signal`);
}

if (want('decide')) {
  // The pure governor alone: an entry (all rules, sizing record) vs a close (one check).
  const view = (net: number): AccountView => ({
    equity: fx(10_000), peakEquity: fx(10_000), drawdown: 0n, halted: false, exposure: fx(net * 65_000),
    netQuantity: () => fx(net), roundTrips: { count: 0, sumWins: 0n, sumLosses: 0n, wins: 0, losses: 0 },
    lastLossClosedAt: null, entriesOnDay: () => 0,
  });
  const base = { instrument: instruments.get('BTCUSDT'), price: fx(65_000), limits: config.risk, now: T0 + 1, exits: config.exits, maxSlippagePct: 0 };
  const sig = decodeSignal({ payload: signalPayload('d', 0, T0 + 1) }, `${T0}-0`);
  const close = { ...sig, action: 'SELL' as const };
  const flat = view(0);
  const long = view(0.01538);
  console.log(`governor decide: entry ${us(time(100_000, () => decide({ ...base, signal: sig, account: flat })))}, close ${us(time(100_000, () => decide({ ...base, signal: close, account: long })))}`);
}

if (want('fixed')) {
  // roundDiv: what mul and div used before this pass, for the comparison.
  const xs = [fx(65000.01), fx(0.01538), fx(-3200.5), fx(0.1), fx(10000), fx(-0.00001), fx(580.25), fx(0.6)];
  const m = xs.length;
  let sink = 0n;
  console.log('fixed (8 realistic operands, a call)');
  console.log(`  mul: roundDiv ${us(time(500_000, (i) => (sink ^= roundDiv(xs[i % m]! * xs[(i + 3) % m]!, SCALE))))}, now ${us(time(500_000, (i) => (sink ^= mul(xs[i % m]!, xs[(i + 3) % m]!))))}`);
  console.log(`  div: roundDiv ${us(time(500_000, (i) => (sink ^= roundDiv(xs[i % m]! * SCALE, xs[(i + 3) % m]! | 1n))))}, now ${us(time(500_000, (i) => (sink ^= div(xs[i % m]!, xs[(i + 3) % m]! | 1n))))}`);
  // toNumber past its fast paths (an average price after a division: 18 decimals).
  const averages = [div(fx(65000.01) * 3n + fx(64999.5), fx(4)), div(fx(3200.5), fx(3)), div(fx(-0.52), fx(7)), div(fx(150.25), fx(11))];
  console.log(`  toNumber of an 18-decimal average: via the text ${us(time(200_000, (i) => Number(toDecimalString(averages[i & 3]!))))}, now ${us(time(200_000, (i) => toNumber(averages[i & 3]!)))}`);
  const order = JSON.parse(samples.approvals[0]!);
  const mark = fx(order.reference_price);
  const instrument = instruments.get(order.symbol);
  console.log(`  paperFill of an approval (the projected fill) ${us(time(100_000, () => paperFill({ order, mark, instrument, seed: config.seed, models, now: T0 })))}`);
  void sink;
}

// A compact record: the same facts, with the check list as arrays of
// [rule, passed, value, limit(, note)] and the sizing record as an array in a fixed order.
function compact(message: Record<string, unknown>): Record<string, unknown> {
  const checks = (message.checks as Array<Record<string, unknown>>).map((c) =>
    c.note === undefined ? [c.rule, c.passed ? 1 : 0, c.value, c.limit] : [c.rule, c.passed ? 1 : 0, c.value, c.limit, c.note],
  );
  const sizing = message.sizing === null || message.sizing === undefined ? null : Object.values(message.sizing as object);
  return { ...message, checks, sizing };
}

if (want('recent')) {
  // The duplicate guards' shape: a full ring of 100,000 ids, each new id added once.
  const set = new RecentSet(100_000);
  for (let i = 0; i < 100_000; i++) set.add(`w-${i}`);
  const ids = Array.from({ length: 400_000 }, (_, i) => `sig-${T0}-${i}`);
  let k = 0;
  console.log(`RecentSet.add of a new id, full ring: ${us(time(100_000, () => set.add(ids[k++ % ids.length]!)))}`);
}

if (want('stringify')) {
  // Does JSON.stringify pay for the absent optional fields (present as undefined on the
  // governor's literals)? The same approval as the governor built it vs as parsed back.
  const state = riskState();
  let built: unknown;
  for (let i = 0; i < CYCLE_SIGNALS && built === undefined; i++) {
    const d = state.onSignal(decodeSignal({ payload: signalPayload('j', i, T0 + 1) }, `${T0}-${i}`), T0 + 1);
    if (d.kind === 'approve' && d.message.intent === 'OPEN') built = d.message;
  }
  const parsed = JSON.parse(JSON.stringify(built));
  console.log(`stringify OPEN approval: as built ${us(time(50_000, () => JSON.stringify(built)))}, as parsed ${us(time(50_000, () => JSON.stringify(parsed)))}`);
}

if (want('json')) {
  const approvals = [samples.approvals.find((a) => a.includes('"intent":"OPEN"'))!, samples.approvals.find((a) => a.includes('"intent":"CLOSE"'))!];
  const rejection = samples.rejections[0]!;
  console.log('json (one approval of each kind, one rejection; sizes in bytes)');
  for (const [name, text] of [['approval OPEN', approvals[0]!], ['approval CLOSE', approvals[1]!], ['rejection', rejection]] as const) {
    const value = JSON.parse(text) as Record<string, unknown>;
    const small = compact(value);
    const smallText = JSON.stringify(small);
    const noRecord = JSON.stringify({ ...value, checks: [], sizing: null });
    console.log(
      `  ${name.padEnd(15)} ${text.length} B (checks+sizing ${text.length - noRecord.length} B), compact ${smallText.length} B;` +
        ` stringify ${us(time(20_000, () => JSON.stringify(value)))} → ${us(time(20_000, () => JSON.stringify(small)))};` +
        ` parse ${us(time(20_000, () => JSON.parse(text)))} → ${us(time(20_000, () => JSON.parse(smallText)))};` +
        ` without the record (${noRecord.length} B): stringify ${us(time(20_000, () => JSON.stringify({ ...value, checks: [], sizing: null })))}, parse ${us(time(20_000, () => JSON.parse(noRecord)))}`,
    );
  }
  if (process.env.HOTPATH_PRINT) console.log(approvals[0], '\n', approvals[1], '\n', rejection, '\n', JSON.stringify(compact(JSON.parse(approvals[0]!))));
}

if (want('ajv')) {
  const ajv = new Ajv2020({ allErrors: false, strict: false });
  const schemas = messageJsonSchemas();
  console.log('validators (hand-written guard vs ajv compiled from src/core/json-schemas.ts), per message, JSON.parse excluded');
  const cases: Array<[string, unknown, object, string]> = [
    ['approval OPEN', JSON.parse(samples.approvals.find((a) => a.includes('"intent":"OPEN"'))!), RiskApprovedSignal, 'RiskApprovedSignal'],
    ['approval CLOSE', JSON.parse(samples.approvals.find((a) => a.includes('"intent":"CLOSE"'))!), RiskApprovedSignal, 'RiskApprovedSignal'],
    ['rejection', JSON.parse(samples.rejections[0]!), RiskRejection, 'RiskRejection'],
    ['signal', JSON.parse(signalPayload('a', 0, T0)), TradeSignalInput, 'TradeSignalInput'],
  ];
  for (const [name, value, schema, key] of cases) {
    const guard = guardFor(schema as never)!;
    const jsonSchema = schemas[`${key}.json`];
    if (jsonSchema === undefined) {
      console.log(`  ${name}: no JSON Schema named ${key} (have ${Object.keys(schemas).join(', ')})`);
      continue;
    }
    const validate = ajv.compile(jsonSchema);
    console.log(`  ${name.padEnd(15)} guard ${guard(value)} ${us(time(50_000, () => guard(value)))}, ajv ${validate(value)} ${us(time(50_000, () => validate(value)))}`);
  }
  void decoderFor;
  void ExecutionResult;
}

if (want('prom')) {
  const registry = new Registry();
  const outcomes = new Counter({ name: 'bench_outcomes_total', help: 'x', labelNames: ['outcome'], registers: [registry] });
  const hist = new Histogram({ name: 'bench_latency_seconds', help: 'x', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers: [registry] });
  const counts = new Map<string, number>();
  console.log('prom-client');
  console.log(`  Counter.inc({outcome})                    ${us(time(200_000, () => outcomes.inc({ outcome: 'approved' })))}`);
  console.log(`  a Map count (flushed per batch elsewhere) ${us(time(200_000, () => counts.set('approved', (counts.get('approved') ?? 0) + 1)))}`);
  console.log(`  Histogram.observe                         ${us(time(200_000, (i) => hist.observe((i % 100) / 1000)))}`);
}
