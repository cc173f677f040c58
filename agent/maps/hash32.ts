// The hash bloom filters and stack-trace maps spread their entries with (murmur3's 32-bit
// mixing): not the kernel's jhash, but any good spread keeps their semantics.

/** 32-bit hash of `bytes` with `seed` (murmur3's mixing; any good spread does here). */
export function hash32(bytes: Uint8Array, off: number, len: number, seed: number): number {
  let h = seed >>> 0;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    let k = bytes[off + i] | (bytes[off + i + 1] << 8) | (bytes[off + i + 2] << 16) | (bytes[off + i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let j = len - 1; j >= i; j--) k = (k << 8) | bytes[off + j];
  if (len > i) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
