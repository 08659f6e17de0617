/**
 * Seeded randomness. The core never calls Math.random(): a `Random` is passed in.
 * `keyedRandom(seed, key)` gives the same sequence for the same (seed, key), so a
 * signal's fill does not depend on what was processed before it (SPEC §5).
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/** 32-bit FNV-1a of a string, then mixed; good enough to seed a PRNG. */
export function hash32(text: string, salt: number): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return mix32(h);
}

/** The final mix of hash32. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** sfc32: small, fast, well-distributed; 128 bits of state. */
export function sfc32(a: number, b: number, c: number, d: number): Random {
  return {
    next() {
      a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    },
  };
}

export function seededRandom(seed: number | string): Random {
  return keyedRandom(seed, '');
}

export function keyedRandom(seed: number | string, key: string): Random {
  const text = `${seed}\u0000${key}`;
  // hash32(text, 1..4) in one pass over the text (a fill draws two of these).
  let a = (0x811c9dc5 ^ 1) >>> 0;
  let b = (0x811c9dc5 ^ 2) >>> 0;
  let c = (0x811c9dc5 ^ 3) >>> 0;
  let d = (0x811c9dc5 ^ 4) >>> 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193) >>> 0;
    b = Math.imul(b ^ code, 0x01000193) >>> 0;
    c = Math.imul(c ^ code, 0x01000193) >>> 0;
    d = Math.imul(d ^ code, 0x01000193) >>> 0;
  }
  const rng = sfc32(mix32(a), mix32(b), mix32(c), mix32(d));
  for (let i = 0; i < 12; i++) rng.next(); // discard the warm-up outputs
  return rng;
}

/** Uniform in [low, high). */
export function uniform(rng: Random, low: number, high: number): number {
  return low + (high - low) * rng.next();
}

/** `count` random bytes as lowercase hex (2 chars per byte). */
export function randomHex(rng: Random, chars: number): string {
  let out = '';
  while (out.length < chars) out += Math.floor(rng.next() * 16).toString(16);
  return out;
}
