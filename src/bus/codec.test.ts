import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TradeSignal } from '../core/messages.js';
import { DecodeError } from './bus.js';
import { decodeSignal, decoderFor, encodePayload, idMillis } from './codec.js';

const Tick = z.object({ symbol: z.string(), price: z.number().positive() });
const decodeTick = decoderFor(Tick);

function decodeError(decode: () => unknown): DecodeError {
  try {
    decode();
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw error;
  }
  throw new Error('expected a DecodeError');
}

describe('encodePayload', () => {
  it('puts the JSON of the message in the single payload field', () => {
    expect(encodePayload({ symbol: 'BTCUSDT', price: 1.5 })).toEqual({ payload: '{"symbol":"BTCUSDT","price":1.5}' });
  });

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
  ])('refuses %s, which has no JSON form', (_name, value) => {
    expect(() => encodePayload(value)).toThrow(TypeError);
  });

  it('refuses what JSON.stringify refuses', () => {
    expect(() => encodePayload({ big: 1n })).toThrow(TypeError);
  });
});

describe('decoderFor', () => {
  it('parses and validates the payload', () => {
    expect(decodeTick({ payload: '{"symbol":"ETHUSDT","price":2}' }, '1-0')).toEqual({ symbol: 'ETHUSDT', price: 2 });
  });

  it.each([
    ['no payload field', { other: 'x' }, /^missing "payload" field$/],
    ['a payload that is not JSON', { payload: '{nope' }, /^payload is not valid JSON: /],
    ['an empty payload', { payload: '' }, /^payload is not valid JSON: /],
    ['a payload that is not an object', { payload: '42' }, /^invalid payload: \(root\): /],
  ])('throws a DecodeError for %s', (_name, fields, message) => {
    expect(decodeError(() => decodeTick(fields, '1-0')).message).toMatch(message);
  });

  it('names every field that fails the schema', () => {
    const error = decodeError(() => decodeTick({ payload: '{"price":-1}' }, '1-0'));
    expect(error.message).toBe(
      'invalid payload: symbol: Invalid input: expected string, received undefined; price: Too small: expected number to be >0',
    );
  });
});

describe('decodeSignal', () => {
  const minimal = { symbol: 'BTCUSDT', action: 'BUY', confidence: 0.85, source: 'xgb' };

  it('fills in what a producer may leave out, from the entry id', () => {
    const signal = decodeSignal({ payload: JSON.stringify(minimal) }, '1700000000123-4');
    expect(signal).toEqual({ ...minimal, signal_id: 'sig-1700000000123-4', ts: 1700000000123, schema_version: 1 });
    expect(TradeSignal.parse(signal)).toEqual(signal);
  });

  it('gives the JSON of the spread copy it replaced (same keys, same order), also through zod', () => {
    const spread = (input: Record<string, unknown>, id: string) =>
      JSON.stringify({ ...input, signal_id: input.signal_id ?? `sig-${id}`, ts: input.ts ?? idMillis(id), schema_version: input.schema_version ?? 1 });
    const cases: Record<string, unknown>[] = [
      minimal,
      { schema_version: 3, ...minimal },
      { ...minimal, ts: 7, metadata: { a: 1 } },
      { signal_id: 'x', ...minimal, schema_version: 2 },
      { ...minimal, extra_key_zod_strips: true },
    ];
    for (const input of cases) {
      const expected = spread(input.extra_key_zod_strips ? minimal : input, '1700000000123-4');
      expect(JSON.stringify(decodeSignal({ payload: JSON.stringify(input) }, '1700000000123-4'))).toBe(expected);
    }
  });

  it('keeps the values a producer gave', () => {
    const given = { ...minimal, signal_id: 'mine-1', ts: 5, schema_version: 2, price: 100, metadata: { model: 'v3' } };
    expect(decodeSignal({ payload: JSON.stringify(given) }, '9-0')).toEqual(given);
  });

  it.each([
    [{ ...minimal, action: 'BUYY' }, /^invalid payload: action: /],
    [{ ...minimal, confidence: 1.5 }, /^invalid payload: confidence: Too big: expected number to be <=1$/],
    [{ ...minimal, symbol: 'btc' }, /^invalid payload: symbol: symbol must be 2-20 upper-case letters or digits$/],
    [{ ...minimal, ts: -1 }, /^invalid payload: ts: /],
  ])('rejects %o', (payload, message) => {
    expect(decodeError(() => decodeSignal({ payload: JSON.stringify(payload) }, '1-0')).message).toMatch(message);
  });
});

describe('idMillis', () => {
  it.each([
    ['1700000000123-4', 1700000000123],
    ['0-0', 0],
    ['42', 42],
  ])('reads the milliseconds of %s', (id, ms) => {
    expect(idMillis(id)).toBe(ms);
  });
});
