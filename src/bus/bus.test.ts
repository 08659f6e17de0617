import { describe, expect, it } from 'vitest';
import { compareIds } from './bus.js';

/** The definition: ms, then seq, compared as integers of any size. */
function reference(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

describe('compareIds', () => {
  const ids = [
    '0-0', '0-1', '1-0', '9-9', '10-0', '1700000000000-0', '1700000000000-1', '1700000000000-10', '1700000000001-0',
    '999999999999999-999999999999999', '1000000000000000-0', '18446744073709551615-18446744073709551615', '5', '5-0', '05-0',
    '1-', '-1', '', '123456789012345-123456789012345', '1234567890123456-0', '0-1234567890123456', '007-007',
  ];

  it('orders ids by ms, then seq, like the integer definition', () => {
    for (const a of ids) for (const b of ids) expect(compareIds(a, b), `${a} vs ${b}`).toBe(reference(a, b));
  });

  it('agrees with the definition on random ids with parts of 1 to 17 digits', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const part = () => {
      let text = '';
      for (let n = 1 + (next() % 17); n > 0; n -= 1) text += String(next() % 10);
      return text;
    };
    const random = Array.from({ length: 300 }, () => `${part()}-${part()}`);
    for (let i = 1; i < random.length; i += 1) {
      const a = random[i - 1]!;
      const b = next() % 4 === 0 ? `${a.split('-')[0]}-${part()}` : random[i]!;
      expect(compareIds(a, b), `${a} vs ${b}`).toBe(reference(a, b));
      expect(compareIds(b, a), `${b} vs ${a}`).toBe(reference(b, a));
    }
  });

  it('is antisymmetric and zero only for the same id', () => {
    expect(compareIds('1700000000000-2', '1700000000000-10')).toBe(-1);
    expect(compareIds('1700000000000-10', '1700000000000-2')).toBe(1);
    expect(compareIds('1700000000000-2', '1700000000000-2')).toBe(0);
  });
});
