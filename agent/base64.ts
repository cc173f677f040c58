// Binary fields of the protocol travel as base64, and the agent has no Buffer. Decoding is
// the VM's (it needs it anyway for the embedded wasm). Encoding sits on the ring-buffer
// record path, so it uses a lookup table and a string builder without intermediate arrays.

export { decodeBase64 } from '../vm/ts/embedded.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function encodeBase64(b: Uint8Array): string {
  let out = '';
  const n = b.length;
  const full = n - (n % 3);
  let i = 0;
  for (; i < full; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += ALPHABET[v >> 18] + ALPHABET[(v >> 12) & 63] + ALPHABET[(v >> 6) & 63] + ALPHABET[v & 63];
  }
  if (n - full === 1) {
    const v = b[i] << 16;
    out += ALPHABET[v >> 18] + ALPHABET[(v >> 12) & 63] + '==';
  } else if (n - full === 2) {
    const v = (b[i] << 16) | (b[i + 1] << 8);
    out += ALPHABET[v >> 18] + ALPHABET[(v >> 12) & 63] + ALPHABET[(v >> 6) & 63] + '=';
  }
  return out;
}
