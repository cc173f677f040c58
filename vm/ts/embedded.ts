// The wasm VM embedded as base64 (generated into vm/build/bpfvm-wasm.ts by `make -C vm`),
// for the Frida agent bundle, which cannot read files. No Buffer/atob reliance.
import { BPFVM_WASM_BASE64 } from '../build/bpfvm-wasm.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function decodeBase64(s: string): Uint8Array {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) table[ALPHABET.charCodeAt(i)] = i;
  let len = s.length;
  while (len > 0 && (s[len - 1] === '=' || s[len - 1] === '\n' || s[len - 1] === ' ')) len--;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? table[c] : -1;
    if (v < 0) {
      if (c === 10 || c === 13 || c === 32) continue;
      throw new Error(`base64: invalid character at ${i}`);
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return o === out.length ? out : out.slice(0, o);
}

let cached: Uint8Array | undefined;

/** The wasm VM bytes (decoded once). */
export function loadEmbeddedWasm(): Uint8Array {
  if (!cached) cached = decodeBase64(BPFVM_WASM_BASE64);
  return cached;
}
