// Hash map keys are raw bytes; a JS Map needs a primitive. Short keys (≤ 6 bytes) become
// an exact integer (no string allocation at all, and integer keys hash fastest); longer
// keys become a string of 16-bit code units, two key bytes per unit, so an 8-byte key is a
// 4-unit string. Equality of the primitive is equality of the bytes because the key size
// is fixed per map.

export type MapKey = number | string;
export type KeyCoder = (b: Uint8Array, off: number) => MapKey;

export function keyCoder(keySize: number): KeyCoder {
  switch (keySize) {
    case 1:
      return (b, o) => b[o];
    case 2:
      return (b, o) => b[o] | (b[o + 1] << 8);
    case 4:
      return (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
    case 8:
      return (b, o) =>
        String.fromCharCode(b[o] | (b[o + 1] << 8), b[o + 2] | (b[o + 3] << 8), b[o + 4] | (b[o + 5] << 8), b[o + 6] | (b[o + 7] << 8));
  }
  if (keySize <= 6) {
    // Horner from the last byte: exact below 2^53.
    return (b, o) => {
      let v = 0;
      for (let i = keySize - 1; i >= 0; i--) v = v * 256 + b[o + i];
      return v;
    };
  }
  return (b, o) => {
    let s = '';
    const end = o + keySize - 1;
    let i = o;
    for (; i < end; i += 2) s += String.fromCharCode(b[i] | (b[i + 1] << 8));
    if (i === end) s += String.fromCharCode(b[i]);
    return s;
  };
}
