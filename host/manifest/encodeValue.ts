// Manifest value → exactly `size` little-endian bytes, checked against the BTF type when there
// is one. Shared by rodata patching and initial map entries so both accept the same spellings.

import type { BtfSpec, BtfType } from '../../protocol/btf.js';
import { btfTypeSize, isCharType, resolveType } from '../../protocol/btfWalk.js';
import type { InitValue } from './types.js';

const MAX_DEPTH = 32;

/** Thrown with a message relative to the value; the caller adds file and JSON path. */
export class EncodeError extends Error {}

const resolved = resolveType;
const sizeOf = (btf: BtfSpec, id: number): number => btfTypeSize(btf, id);
const isChar = isCharType;

function writeLE(out: Uint8Array, offset: number, size: number, v: bigint): void {
  let u = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++) {
    out[offset + i] = Number(u & 0xffn);
    u >>= 8n;
  }
}

function rawBytes(value: string | number[], size: number): Uint8Array {
  if (typeof value === 'string') {
    const hex = value.slice(2);
    if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) throw new EncodeError(`"${value}" is not hex bytes (0x followed by pairs of hex digits)`);
    if (hex.length !== size * 2) throw new EncodeError(`hex "${value}" has ${hex.length / 2} bytes; expected exactly ${size} (${size * 2} hex digits, memory order)`);
    return Uint8Array.from(Buffer.from(hex, 'hex'));
  }
  if (value.length !== size) throw new EncodeError(`byte array has ${value.length} bytes; expected exactly ${size}`);
  return Uint8Array.from(value);
}

/** An integer from a number, boolean or decimal string (decimal strings carry values beyond 2^53). */
function asInteger(value: InitValue): bigint | undefined {
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new EncodeError(`${value} is not an integer`);
    if (!Number.isSafeInteger(value)) throw new EncodeError(`${value} is beyond 2^53 and may have been rounded; write it as a decimal string`);
    return BigInt(value);
  }
  if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) return BigInt(value);
  return undefined;
}

function intRange(size: number, signed: boolean | undefined): [bigint, bigint] {
  const bits = BigInt(size * 8);
  if (signed === true) return [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
  if (signed === false) return [0n, (1n << bits) - 1n];
  // No BTF: accept either reading of the bits.
  return [-(1n << (bits - 1n)), (1n << bits) - 1n];
}

function describe(t: BtfType | undefined, size: number): string {
  if (!t) return `${size}-byte value`;
  if (t.kind === 'int') return `${t.name} (${size} bytes)`;
  if (t.kind === 'enum' || t.kind === 'struct' || t.kind === 'union') return `${t.kind} ${t.name || '(anonymous)'}`;
  return `${t.kind} (${size} bytes)`;
}

function encodeInto(out: Uint8Array, offset: number, size: number, value: InitValue, btf: BtfSpec | null, typeId: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new EncodeError('value nests too deeply');
  const t = btf ? resolved(btf, typeId) : undefined;
  if (Array.isArray(value) || (typeof value === 'string' && /^0x/i.test(value))) {
    out.set(rawBytes(value, size), offset);
    return;
  }
  if (typeof value === 'object') {
    if (!t || (t.kind !== 'struct' && t.kind !== 'union')) throw new EncodeError(`an object of fields needs a struct type; this is a ${describe(t, size)} (use a number, hex or byte array)`);
    for (const [field, v] of Object.entries(value)) {
      const m = t.members.find((x) => x.name === field);
      if (!m) throw new EncodeError(`${describe(t, size)} has no field "${field}" (fields: ${t.members.map((x) => x.name).filter(Boolean).join(', ')})`);
      if (m.bitfieldSize > 0) {
        const n = asInteger(v);
        if (n === undefined) throw new EncodeError(`field "${field}" is a bitfield: give a number`);
        if (n < 0n || n >= 1n << BigInt(m.bitfieldSize)) throw new EncodeError(`field "${field}": ${n} does not fit in ${m.bitfieldSize} bits`);
        for (let b = 0; b < m.bitfieldSize; b++) {
          const bit = m.offsetBits + b;
          const idx = offset + (bit >> 3);
          if ((n >> BigInt(b)) & 1n) out[idx] |= 1 << (bit & 7);
          else out[idx] &= ~(1 << (bit & 7));
        }
        continue;
      }
      try {
        encodeInto(out, offset + m.offsetBits / 8, sizeOf(btf!, m.type), v, btf, m.type, depth + 1);
      } catch (err) {
        if (err instanceof EncodeError) throw new EncodeError(`field "${field}": ${err.message}`);
        throw err;
      }
    }
    return;
  }
  if (typeof value === 'string' && t?.kind === 'array' && isChar(btf!, t.type)) {
    const bytes = Buffer.from(value, 'utf8');
    // Keep a NUL so C string functions stop inside the array.
    if (bytes.length >= size) throw new EncodeError(`text "${value}" is ${bytes.length} bytes; char[${size}] holds at most ${size - 1} plus the NUL`);
    out.fill(0, offset, offset + size);
    out.set(bytes, offset);
    return;
  }
  let n = asInteger(value);
  if (n === undefined && typeof value === 'string' && t?.kind === 'enum') {
    const e = t.values.find((x) => x.name === value);
    if (!e) throw new EncodeError(`"${value}" is not a value of enum ${t.name} (values: ${t.values.map((x) => x.name).join(', ')})`);
    n = BigInt(e.value);
  }
  if (n === undefined) throw new EncodeError(`${JSON.stringify(value)} is not a number, a decimal or 0x-hex string, a boolean or a byte array`);
  if (t && t.kind !== 'int' && t.kind !== 'enum' && t.kind !== 'ptr') throw new EncodeError(`a number cannot fill ${describe(t, size)}; use an object of fields, 0x hex or a byte array`);
  if (size > 16) throw new EncodeError(`a number cannot fill ${size} bytes; use 0x hex or a byte array`);
  if (t?.kind === 'int' && t.bool && n !== 0n && n !== 1n) throw new EncodeError(`${n} is not a boolean (use true/false or 0/1)`);
  const signed = t?.kind === 'int' || t?.kind === 'enum' ? t.signed : t?.kind === 'ptr' ? false : undefined;
  const [lo, hi] = intRange(size, signed);
  if (n < lo || n > hi) throw new EncodeError(`${n} does not fit in ${describe(t, size)} (range ${lo}..${hi})`);
  writeLE(out, offset, size, n);
}

/**
 * Encodes `value` into exactly `size` bytes. `typeId` (0 = unknown) lets numbers be
 * range-checked against the real signedness, objects fill struct fields by name, text fill
 * char arrays and enum names stand for their values.
 */
export function encodeValue(value: InitValue, size: number, btf: BtfSpec | null, typeId: number): Uint8Array {
  const out = new Uint8Array(size);
  encodeInto(out, 0, size, value, btf, typeId, 0);
  return out;
}

/** Writes `value` into a copy-owned buffer at `offset` (rodata/global variables). */
export function encodeAt(out: Uint8Array, offset: number, size: number, value: InitValue, btf: BtfSpec | null, typeId: number): void {
  encodeInto(out, offset, size, value, btf, typeId, 0);
}
