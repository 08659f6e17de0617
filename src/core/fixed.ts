/**
 * Exact decimal arithmetic for money, prices and quantities.
 *
 * A `Fixed` is a bigint counting units of 1e-18. Prices and quantities on the wire
 * have at most 8–10 decimals, so sums and products of two of them are exact; only
 * division (average entry price) and fee rates rounds, at the 18th decimal, half
 * away from zero. Nothing here ever goes through a binary float except the final
 * conversion back to a JSON number at the edge (`toNumber`).
 */
export type Fixed = bigint;

export const DECIMALS = 18;
export const SCALE: Fixed = 10n ** 18n;
export const ZERO: Fixed = 0n;
export const ONE: Fixed = SCALE;

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** 2^53: integers up to this convert to and from a double exactly. */
const MAX_EXACT = 9007199254740992n;
const E10 = 10n ** 10n;

/** Parses a JSON number or decimal string exactly (via its shortest decimal form). */
export function fx(value: number | string | bigint): Fixed {
  if (typeof value === 'bigint') return value * SCALE;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
    if (Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER) return BigInt(value) * SCALE;
    // Fast path, same result as the decimal text: for |x| < 1e7 two 8-decimal values are
    // further apart than two doubles, so when round(x × 1e8) / 1e8 gives x back, the
    // shortest decimal form of x is that 8-decimal value (prices, quantities, fees).
    if (value < 1e7 && value > -1e7) {
      const digits = Math.round(value * 1e8);
      if (digits / 1e8 === value) return BigInt(digits) * E10;
    }
  }
  const text = String(value).trim();
  const m = DECIMAL_RE.exec(text);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) throw new RangeError(`not a decimal: ${text}`);
  const sign = m[1] === '-' ? -1n : 1n;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  const exp = m[4] ? Number(m[4]) : 0;
  // digits × 10^(exp - fracPart.length), expressed in units of 1e-18
  const digits = BigInt((intPart + fracPart) || '0');
  const shift = exp - fracPart.length + DECIMALS;
  if (shift >= 0) return sign * digits * 10n ** BigInt(shift);
  return sign * roundDiv(digits, 10n ** BigInt(-shift));
}

/**
 * Converts to the nearest JS number, for JSON output. Two fast paths give the same
 * double as parsing the decimal text, without building it: an integer m with
 * |m| <= 2^53 and 10^d (d <= 22) are exact doubles, so m / 10^d is one correctly
 * rounded IEEE division, i.e. the double nearest the exact decimal. They cover values
 * below ~0.009 (d = 18) and values with at most 8 decimals below ~9e7 (d = 8).
 */
export function toNumber(value: Fixed): number {
  if (value <= MAX_EXACT && value >= -MAX_EXACT) return Number(value) / 1e18;
  if (value % E10 === 0n) {
    const m = value / E10;
    if (m <= MAX_EXACT && m >= -MAX_EXACT) return Number(m) / 1e8;
  }
  return value < 0n ? -binaryQuotient(-value) : binaryQuotient(value);
}

/** 2^-k for k = 0..127, exact doubles. */
const POW2_NEG = Array.from({ length: 128 }, (_, k) => 2 ** -k);

/**
 * The double nearest u / 1e18 (u > 2^53), without the decimal text: q = floor(u·2^k / 1e18)
 * with k chosen so q has at least 56 bits, plus a sticky bit for a non-zero remainder, is
 * rounded once by Number(bigint) (round to nearest, ties to even: the sticky bit sits below
 * the rounding position, so it breaks exactly the ties the truncation hid); the scaling by
 * 2^-(k+1) is exact (a power of two, far from the subnormal range). Huge values
 * (u ≥ 2^116, i.e. ≥ ~8e16) keep the text path.
 */
function binaryQuotient(u: bigint): number {
  const approx = Number(u);
  if (approx >= 2 ** 116) return Number(toDecimalString(u));
  // log2(1e18) < 59.8; with ≥ 56 bits in q: u·2^k ≥ 2^56 · 1e18 needs k ≥ 115.8 − log2(u).
  const k = Math.max(0, Math.ceil(117 - Math.log2(approx)));
  const scaled = u << BigInt(k);
  const q = scaled / SCALE;
  const sticky = q * SCALE === scaled ? 0n : 1n;
  return Number((q << 1n) | sticky) * POW2_NEG[k + 1]!;
}

/** Plain decimal string without trailing zeros, e.g. "50025.5". */
export function toDecimalString(value: Fixed): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const int = abs / SCALE;
  const units = abs % SCALE;
  if (units === 0n) return `${negative ? '-' : ''}${int}`;
  const digits = units.toString().padStart(DECIMALS, '0');
  let end = digits.length;
  while (digits.charCodeAt(end - 1) === 48 /* 0 */) end -= 1;
  return `${negative ? '-' : ''}${int}.${digits.slice(0, end)}`;
}

/** a / b rounded half away from zero (b > 0 or < 0). */
export function roundDiv(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new RangeError('division by zero');
  const negative = (a < 0n) !== (b < 0n);
  const absA = a < 0n ? -a : a;
  const absB = b < 0n ? -b : b;
  const q = (absA + absB / 2n) / absB;
  return negative ? -q : q;
}

const HALF_SCALE = SCALE / 2n;

// mul and div are roundDiv with the divisor's sign and half known or precomputed: fewer
// bigint operations (each allocates) on the decision path, the same result.
export function mul(a: Fixed, b: Fixed): Fixed {
  const p = a * b;
  return p >= 0n ? (p + HALF_SCALE) / SCALE : -((HALF_SCALE - p) / SCALE);
}

export function div(a: Fixed, b: Fixed): Fixed {
  if (b > 0n) {
    const n = a * SCALE;
    return n >= 0n ? (n + b / 2n) / b : -((b / 2n - n) / b);
  }
  return roundDiv(a * SCALE, b);
}

export function abs(a: Fixed): Fixed {
  return a < 0n ? -a : a;
}

export function min(a: Fixed, b: Fixed): Fixed {
  return a < b ? a : b;
}

export function max(a: Fixed, b: Fixed): Fixed {
  return a > b ? a : b;
}

export function sign(a: Fixed): -1 | 0 | 1 {
  return a > 0n ? 1 : a < 0n ? -1 : 0;
}

/** Largest multiple of `step` that is <= value (toward zero for negatives). */
export function floorToStep(value: Fixed, step: Fixed): Fixed {
  if (step <= 0n) throw new RangeError('step must be positive');
  return (value / step) * step;
}

/** Nearest multiple of `step`, half away from zero. */
export function roundToStep(value: Fixed, step: Fixed): Fixed {
  if (step <= 0n) throw new RangeError('step must be positive');
  return roundDiv(value, step) * step;
}

/** Smallest multiple of `step` that is >= value (for positives). */
export function ceilToStep(value: Fixed, step: Fixed): Fixed {
  if (step <= 0n) throw new RangeError('step must be positive');
  const q = value / step;
  return (q * step < value ? q + 1n : q) * step;
}
