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
  ];

  it('orders ids by ms, then seq, like the integer definition', () => {
    for (const a of ids) for (const b of ids) expect(compareIds(a, b), `${a} vs ${b}`).toBe(reference(a, b));
  });

  it('is antisymmetric and zero only for the same id', () => {
    expect(compareIds('1700000000000-2', '1700000000000-10')).toBe(-1);
    expect(compareIds('1700000000000-10', '1700000000000-2')).toBe(1);
    expect(compareIds('1700000000000-2', '1700000000000-2')).toBe(0);
  });
});
