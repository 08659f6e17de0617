import { describe, expect, it } from 'vitest';
import { hashTag, keySlot } from './slot.js';

describe('cluster key slots', () => {
  it('computes the slots Redis documents (CLUSTER KEYSLOT)', () => {
    // Values from the Redis Cluster specification and `CLUSTER KEYSLOT` on Redis 7.
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('somekey')).toBe(11058);
  });

  it('hashes only the hash tag, so one account shares one slot', () => {
    expect(keySlot('{acct7}:trade.signal.v5')).toBe(keySlot('acct7'));
    expect(keySlot('{acct7}:snapshot:risk')).toBe(keySlot('{acct7}:lease:monitor'));
    expect(hashTag('{acct7}:x')).toBe('acct7');
    expect(hashTag('a{b}{c}')).toBe('b');
  });

  it('treats an empty or unclosed tag as no tag (the whole key is hashed)', () => {
    expect(hashTag('{}:x')).toBeNull();
    expect(hashTag('{abc:x')).toBeNull();
    expect(hashTag('plain')).toBeNull();
    expect(keySlot('{}:x')).not.toBe(keySlot(''));
  });
});
