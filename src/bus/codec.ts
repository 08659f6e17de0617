/**
 * The wire codec (SPEC §2): every entry carries one field, `payload`, holding a JSON
 * object. Decoding is one JSON.parse and one schema check; anything malformed throws a
 * DecodeError, which sends the entry to `<topic>.dlq`.
 */
import type { z } from 'zod';
import { SCHEMA_VERSION, TradeSignalInput, describeIssues, type TradeSignal } from '../core/messages.js';
import { guardFor, type Guard } from '../core/message-guards.js';
import { DecodeError } from './bus.js';

export type Fields = Record<string, string>;
export type Decoder<T> = (fields: Fields, id: string) => T;

export const PAYLOAD_FIELD = 'payload';

export function encodePayload(payload: unknown): Fields {
  const json = JSON.stringify(payload);
  // JSON.stringify returns undefined for undefined, functions and symbols.
  if (typeof json !== 'string') throw new TypeError(`cannot encode a ${typeof payload} as a JSON payload`);
  return { [PAYLOAD_FIELD]: json };
}

/** Redis refuses an entry without fields; the embedded bus refuses it too, to behave the same. */
export function assertHasFields(fields: Fields): void {
  for (const name in fields) if (Object.hasOwn(fields, name)) return;
  throw new TypeError('a stream entry needs at least one field');
}

function parsePayload(fields: Fields): unknown {
  const json = fields[PAYLOAD_FIELD];
  if (json === undefined) throw new DecodeError(`missing "${PAYLOAD_FIELD}" field`);
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new DecodeError(`payload is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Validates with `schema`. A hot schema has a fast guard (core/message-guards.ts): when
 * it vouches for the value, the value is exactly what zod would return and zod is
 * skipped; otherwise zod decides and words the error.
 */
function validate<S extends z.ZodType>(schema: S, value: unknown, guard: Guard | undefined): z.output<S> {
  if (guard !== undefined && guard(value)) return value as z.output<S>;
  const result = schema.safeParse(value);
  if (!result.success) throw new DecodeError(`invalid payload: ${describeIssues(result.error)}`);
  return result.data;
}

/** A decoder that parses `payload` and validates it with `schema`. */
export function decoderFor<S extends z.ZodType>(schema: S): Decoder<z.output<S>> {
  const guard = guardFor(schema);
  return (fields) => validate(schema, parsePayload(fields), guard);
}

const signalGuard = guardFor(TradeSignalInput);

/** The milliseconds part of a stream id ("1700000000000-3" → 1700000000000). */
export function idMillis(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/**
 * Decodes a `trade.signal.v5` entry and fills in what a producer may leave out:
 * `signal_id` from the entry id (stable across redeliveries, so idempotency holds),
 * `ts` from the entry's time, `schema_version` 1.
 */
export function decodeSignal(fields: Fields, id: string): TradeSignal {
  // The value is this call's own (fresh from JSON.parse or zod), so it is completed in
  // place: the same keys in the same order as a spread copy, without the copy.
  const input = validate(TradeSignalInput, parsePayload(fields), signalGuard) as { -readonly [K in keyof TradeSignal]: TradeSignal[K] | undefined };
  input.signal_id ??= `sig-${id}`;
  input.ts ??= idMillis(id);
  input.schema_version ??= SCHEMA_VERSION;
  return input as TradeSignal;
}
