/**
 * Serializers compiled from the zod schemas in src/core/messages.ts — an issue 20
 * experiment, measured and NOT adopted (docs/performance.md, "compiled encoders, measured,
 * not adopted"): they beat JSON.stringify in process but allocate a string per piece, and
 * in the services the extra garbage cost more than they saved. Kept for bench/encode.ts
 * and for whoever measures again (another Node, another message shape).
 *
 * For a message of the shape its schema describes, one generated function writes exactly
 * the text JSON.stringify would, without JSON.stringify's generic walk. Anything else — a
 * key the schema does not list or in another order, a value of another type, an object
 * that is not plain — makes the function return undefined, and the caller falls back to
 * JSON.stringify: a message is never dropped or changed, only written faster or not.
 * test/json-encoders.test.ts compares the two on thousands of generated and mutated messages.
 *
 * Why it is the same text: keys are written in the object's own order (checked against
 * the schema's: the object's keys must be a subsequence of the schema's, in order), a
 * key whose value is undefined is left out, numbers are `'' + x` (the same
 * Number::toString JSON uses) or `null` when not finite, and strings are copied between
 * quotes only when they hold nothing JSON escapes (else JSON.stringify(x) writes them).
 */
import type { z } from 'zod';
import { TOPIC_SCHEMAS } from '../../src/core/messages.js';

/** The message's JSON, or undefined when the schema's serializer cannot vouch for it. */
export type Encoder = (value: unknown) => string | undefined;

/** Characters JSON.stringify escapes: controls, the quote, the backslash, lone surrogates (any surrogate, to keep the test cheap). */
// eslint-disable-next-line no-control-regex -- the control characters are what it looks for
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function str(x: string): string {
  return NEEDS_ESCAPE.test(x) ? JSON.stringify(x) : `"${x}"`;
}

function num(x: number): string {
  return Number.isFinite(x) ? '' + x : 'null';
}

const OBJECT_PROTO = Object.prototype;

function isPlain(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === OBJECT_PROTO;
}

/** The own enumerable keys of `x` (a plain object) appear in `keys`, in the same order. */
function inOrder(x: Record<string, unknown>, keys: readonly string[]): boolean {
  let j = 0;
  for (const k in x) {
    while (j < keys.length && keys[j] !== k) j++;
    if (j === keys.length) return false;
    j++;
  }
  return true;
}

/** A scalar of the check record (`value`, `limit`): number, string, boolean or null. */
function scalar(x: unknown): string | undefined {
  switch (typeof x) {
    case 'number':
      return num(x);
    case 'string':
      return str(x);
    case 'boolean':
      return x ? 'true' : 'false';
    default:
      return x === null ? 'null' : undefined;
  }
}

/** Anything the generator has no special code for: JSON.stringify of that part alone (the same text as inside the whole). */
function generic(x: unknown): string | undefined {
  if (typeof x === 'object' && x !== null && !isPlain(x) && !Array.isArray(x)) return undefined;
  return JSON.stringify(x);
}

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; options?: z.ZodType[] };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

class Generator {
  readonly constants: unknown[] = [];
  #vars = 0;

  variable(): string {
    return `v${this.#vars++}`;
  }

  constant(value: unknown): string {
    this.constants.push(value);
    return `c[${this.constants.length - 1}]`;
  }

  /** Statements that append the JSON of `x` (never undefined here) to `s`, or `return;` (fall back). */
  value(schema: z.ZodType, x: string): string {
    const def = defOf(schema);
    switch (def.type) {
      case 'number':
        return `if (typeof ${x} !== 'number') return; s += num(${x});`;
      case 'string':
      case 'enum':
        return `if (typeof ${x} !== 'string') return; s += str(${x});`;
      case 'boolean':
        return `if (${x} === true) s += 'true'; else if (${x} === false) s += 'false'; else return;`;
      case 'null':
        return `if (${x} !== null) return; s += 'null';`;
      case 'nullable':
        return `if (${x} === null) s += 'null'; else { ${this.value(def.innerType!, x)} }`;
      case 'union':
        if (def.options!.every((o) => ['number', 'string', 'boolean', 'null'].includes(defOf(o).type))) {
          return `{ const t = scalar(${x}); if (t === undefined) return; s += t; }`;
        }
        break;
      case 'array': {
        const i = this.variable();
        const y = this.variable();
        return (
          `if (!Array.isArray(${x})) return; s += '[';` +
          `for (let ${i} = 0; ${i} < ${x}.length; ${i}++) { if (${i} > 0) s += ','; const ${y} = ${x}[${i}];` +
          // JSON writes an undefined element as null; a schema element never is undefined.
          `if (${y} === undefined) return; ${this.value(def.element!, y)} } s += ']';`
        );
      }
      case 'object':
        return this.object(def.shape!, x);
    }
    return `{ const t = generic(${x}); if (t === undefined) return; s += t; }`;
  }

  object(shape: Record<string, z.ZodType>, x: string): string {
    const keys = Object.keys(shape);
    const flag = this.variable();
    const isOptional = (key: string): boolean => defOf(shape[key]!).type === 'optional';
    // Until a required key has been written, whether a comma goes before a key is known only at run time.
    const needsFlag = keys.length > 0 && isOptional(keys[0]!);
    let code = `if (!isPlain(${x}) || !inOrder(${x}, ${this.constant(keys)})) return; s += '{';${needsFlag ? ` let ${flag} = false;` : ''}`;
    let written: 'no' | 'maybe' | 'yes' = 'no';
    for (const key of keys) {
      const optional = isOptional(key);
      const inner = optional ? defOf(shape[key]!).innerType! : shape[key]!;
      const y = this.variable();
      const name = JSON.stringify(`${JSON.stringify(key)}:`);
      const comma = written === 'yes' ? `s += ',' + ${name};` : written === 'no' ? `s += ${name};` : `s += (${flag} ? ',' : '') + ${name};`;
      const write = `${comma} ${this.value(inner, y)}`;
      code += `const ${y} = ${x}[${JSON.stringify(key)}];`;
      if (optional) {
        code += `if (${y} !== undefined) { ${write}${written === 'yes' ? '' : ` ${flag} = true;`} }`;
        if (written === 'no') written = 'maybe';
      } else {
        // JSON.stringify leaves out a required key that is undefined: not the schema's shape, fall back.
        code += `if (${y} === undefined) return; ${write}`;
        written = 'yes';
      }
    }
    return `${code} s += '}';`;
  }
}

/** Compiles the serializer of `schema` (an object schema). */
export function compileEncoder(schema: z.ZodType): Encoder {
  const generator = new Generator();
  const body = generator.value(schema, 'x');
  // Generated from our own schemas only, never from outside input. The closing charCodeAt
  // flattens the concatenated text at once, so its pieces die young instead of living
  // until the socket write (without it the services lost more to GC: docs/performance.md).
  const make = new Function(
    'c', 'num', 'str', 'scalar', 'generic', 'isPlain', 'inOrder',
    `return function encode(x) { let s = ''; ${body} return s.charCodeAt(s.length - 1) === 125 ? s : undefined; };`,
  );
  return make(generator.constants, num, str, scalar, generic, isPlain, inOrder) as Encoder;
}

const ENCODERS = new Map<string, Encoder>(Object.entries(TOPIC_SCHEMAS).map(([topic, schema]) => [topic, compileEncoder(schema)]));

/** What encodePayload would write with these serializers: the topic's, else JSON.stringify. */
export function encodeFor(topic: string, payload: unknown): string | undefined {
  return ENCODERS.get(topic)?.(payload) ?? JSON.stringify(payload);
}
