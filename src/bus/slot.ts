/**
 * Redis Cluster key slots (CRC16/XMODEM mod 16384, of the hash tag when the key holds one),
 * exactly as Redis computes them (CLUSTER KEYSLOT). Pure: used to check that one account's
 * keys share a slot and to split a commit that spans slots (the router's shared streams).
 */
export const SLOT_COUNT = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/**
 * The hash tag of a key (the text between the first `{` and the next `}`), or null when
 * the key has none (no braces, or `{}` empty: Redis then hashes the whole key).
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
}

/** The slot Redis Cluster assigns `key`. */
export function keySlot(key: string): number {
  const tag = hashTag(key);
  return crc16(Buffer.from(tag ?? key, 'utf8')) % SLOT_COUNT;
}
