import { describe, expect, it } from 'vitest';
import { SCALE, div, fx, mul, toDecimalString, toNumber, type Fixed } from './fixed.js';
import { seededRandom } from './random.js';

// fx(number) and toNumber have fast paths; these tests hold them to the decimal-text
// paths they replace (fx of the number's text, Number of the decimal text).

const rng = seededRandom('fixed-fast-paths');

function numberSamples(): number[] {
  const out: number[] = [0, -0, 1, -1, 0.1, 0.2, 0.3, 1e-8, 5e-9, 1e-9, 1.5e-10, 9_999_999.99999999, 1e7, 1e7 - 1e-8, -1e7 + 1e-8];
  out.push(65_000.01, 0.00001, 0.6, 3500.5, 0.0004, 0.001, 123.456789, 2 ** 53, 2 ** 53 + 2, 1e21, 1.7976931348623157e308, 5e-324);
  for (let i = 0; i < 20_000; i++) {
    const magnitude = 10 ** Math.floor(rng.next() * 22 - 11);
    const decimals = Math.floor(rng.next() * 13);
    const raw = rng.next() * magnitude * 10;
    const x = Number(raw.toFixed(Math.min(100, decimals)));
    out.push(rng.next() < 0.3 ? -x : x, raw);
  }
  return out;
}

function fixedSamples(): Fixed[] {
  const out: Fixed[] = [0n, 1n, -1n, 9007199254740992n, 9007199254740993n, -9007199254740992n, 10n ** 18n, 10n ** 26n, 90071992547409920000000000n, 90071992547409930000000000n];
  for (let i = 0; i < 20_000; i++) {
    const digits = 1 + Math.floor(rng.next() * 30);
    let text = '';
    for (let d = 0; d < digits; d++) text += Math.floor(rng.next() * 10);
    let v = BigInt(text);
    if (rng.next() < 0.5) v = (v / 10n ** 10n) * 10n ** 10n; // 8 decimals at most
    out.push(rng.next() < 0.3 ? -v : v);
  }
  return out;
}

describe('fixed fast paths', () => {
  it('fx(number) equals fx of its decimal text', () => {
    for (const x of numberSamples()) expect(fx(x), String(x)).toBe(fx(String(x)));
  });

  it('toNumber equals Number of the decimal text', () => {
    for (const v of fixedSamples()) expect(toNumber(v), String(v)).toBe(Number(toDecimalString(v)));
    for (const x of numberSamples()) {
      const v = fx(x);
      expect(toNumber(v), String(x)).toBe(Number(toDecimalString(v)));
    }
  });

  it('toNumber rounds exact ties to even and keeps the sign past the fast paths', () => {
    for (const text of ['9007199254740993', '9007199254740995', '-9007199254740993', '4503599627370496.5', '4503599627370497.5', '0.009007199254740993',
      '65000.123456789012345678', '-3200.000000000000000001', '79999999999999999.999999999999999999', '80000000000000000.000000000000000001', '1e30']) {
      expect(toNumber(fx(text)), text).toBe(Number(toDecimalString(fx(text))));
    }
    expect(toNumber(fx('9007199254740993'))).toBe(9007199254740992);
    expect(toNumber(fx('9007199254740995'))).toBe(9007199254740996);
  });

  it('toDecimalString writes the plain decimal without trailing zeros', () => {
    const reference = (v: Fixed): string => {
      const negative = v < 0n;
      const a = negative ? -v : v;
      const frac = (a % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '');
      return `${negative ? '-' : ''}${a / 10n ** 18n}${frac ? `.${frac}` : ''}`;
    };
    for (const v of fixedSamples()) expect(toDecimalString(v)).toBe(reference(v));
    expect(toDecimalString(fx('50025.5'))).toBe('50025.5');
    expect(toDecimalString(-1n)).toBe('-0.000000000000000001');
    expect(toDecimalString(0n)).toBe('0');
  });

  it('mul and div equal the rounding division (half away from zero) they specialise', () => {
    const roundDiv = (a: bigint, b: bigint): bigint => {
      const q = ((a < 0n ? -a : a) + (b < 0n ? -b : b) / 2n) / (b < 0n ? -b : b);
      return (a < 0n) !== (b < 0n) ? -q : q;
    };
    const values = fixedSamples().slice(0, 4000);
    values.push(SCALE / 2n, -SCALE / 2n, 1n, -1n, 5n * 10n ** 17n, -(5n * 10n ** 17n), 3n, -3n);
    for (let i = 0; i < values.length; i++) {
      const a = values[i]!;
      const b = values[(i * 7 + 3) % values.length]!;
      expect(mul(a, b), `${a} * ${b}`).toBe(roundDiv(a * b, SCALE));
      if (b !== 0n) expect(div(a, b), `${a} / ${b}`).toBe(roundDiv(a * SCALE, b));
    }
    // Exact halves round away from zero, both signs, both paths.
    expect(mul(1n, SCALE / 2n)).toBe(1n);
    expect(mul(-1n, SCALE / 2n)).toBe(-1n);
    expect(div(1n, 2n * SCALE)).toBe(1n);
    expect(div(-1n, 2n * SCALE)).toBe(-1n);
    expect(div(1n, -2n * SCALE)).toBe(-1n);
    expect(() => div(1n, 0n)).toThrow(RangeError);
  });

  it('round-trips wire numbers', () => {
    for (const x of [65_000.01, 0.00001, 0.6, 1e-8, 123.456789, 9_999_999.99999999, 2 ** 53]) expect(toNumber(fx(x))).toBe(x);
  });
});
