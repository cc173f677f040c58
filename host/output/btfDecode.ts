// Raw bytes + BTF type id → JSON value. Map keys/values and ring buffer records arrive as
// raw little-endian bytes; BTF is the only description of what they mean.

import type { BtfSpec, BtfType } from '../../protocol/btf.js';
import { btfTypeSize, isCharType, stripModifiers } from '../../protocol/btfWalk.js';
import type { JsonValue } from './jsonValue.js';

const MAX_DEPTH = 32;

/** Memory-order hex, `0x`-prefixed: the same spelling the manifest accepts for raw bytes. */
export function hexBytes(bytes: Uint8Array): string {
  let s = '0x';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Unsigned little-endian integer of any width (BigInt so 64- and 128-bit values stay exact). */
export function readUnsignedLE(bytes: Uint8Array, offset: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
  return v;
}

function signExtend(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

/** Numbers stay numbers while exact; beyond 2^53 JSON consumers would silently round, so decimal strings. */
export function bigToJson(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function typeAt(btf: BtfSpec, id: number): BtfType | undefined {
  return btf.types[id];
}

/** Any other 1-byte integer: __u8, __s8, unsigned char. */
function isByteType(btf: BtfSpec, id: number): boolean {
  const t = typeAt(btf, stripQualifiers(btf, id));
  return t !== undefined && t.kind === 'int' && t.size === 1 && !t.bool;
}

/**
 * The text a byte buffer holds: printable ASCII or UTF-8 up to its first NUL (whatever
 * follows it, as bpf_probe_read_user_str leaves it), or null when it holds something else.
 */
export function byteText(bytes: Uint8Array): string | null {
  const nul = bytes.indexOf(0);
  const text = nul < 0 ? bytes : bytes.subarray(0, nul);
  if (text.length === 0) return nul === 0 ? '' : null;
  for (const b of text) if (b < 0x20 || b === 0x7f) return null;
  const s = Buffer.from(text).toString('utf8');
  return s.includes('\ufffd') ? null : s;
}

/** Follows typedef/const/volatile/restrict/type_tag (the shared walker, lenient). */
export function stripQualifiers(btf: BtfSpec, id: number): number {
  return stripModifiers(btf, id);
}

/** Text of a char array up to the first NUL, as bpftrace prints `char comm[16]`. */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
}

function decodeInt(t: Extract<BtfType, { kind: 'int' }>, bytes: Uint8Array, bitOffset: number, bitSize: number): JsonValue {
  // BTF int encodings may carry their own bit offset/width (legacy bitfields) on top of a member's.
  const bits = bitSize || t.bits || t.size * 8;
  const off = bitOffset + t.offsetBits;
  const raw = readUnsignedLE(bytes, 0, Math.min(bytes.length, 16));
  let v = (raw >> BigInt(off)) & ((1n << BigInt(bits)) - 1n);
  if (t.bool) return v !== 0n;
  if (t.signed) v = signExtend(v, bits);
  return bigToJson(v);
}

function decodeEnum(t: Extract<BtfType, { kind: 'enum' }>, bytes: Uint8Array, bitOffset: number, bitSize: number): JsonValue {
  const bits = bitSize || t.size * 8;
  let v = (readUnsignedLE(bytes, 0, Math.min(bytes.length, 16)) >> BigInt(bitOffset)) & ((1n << BigInt(bits)) - 1n);
  if (t.signed) v = signExtend(v, bits);
  for (const e of t.values) if (BigInt(e.value) === v) return e.name;
  return bigToJson(v);
}

function sizeOf(btf: BtfSpec, id: number): number {
  return btfTypeSize(btf, id);
}

function decode(btf: BtfSpec, id: number, bytes: Uint8Array, depth: number, bitOffset = 0, bitSize = 0): JsonValue {
  if (depth > MAX_DEPTH) return hexBytes(bytes);
  const t = typeAt(btf, stripQualifiers(btf, id));
  if (!t) return hexBytes(bytes);
  switch (t.kind) {
    case 'int':
      return decodeInt(t, bytes, bitOffset, bitSize);
    case 'enum':
      return decodeEnum(t, bytes, bitOffset, bitSize);
    case 'ptr':
      return '0x' + readUnsignedLE(bytes, 0, Math.min(8, bytes.length)).toString(16);
    case 'float': {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (t.size === 4 && bytes.length >= 4) return view.getFloat32(0, true);
      if (t.size === 8 && bytes.length >= 8) return view.getFloat64(0, true);
      return hexBytes(bytes);
    }
    case 'array': {
      if (isCharType(btf, t.type)) return cString(bytes.subarray(0, t.nelems));
      // u8[] / s8[] buffers (paths, names, payloads): text when they hold text, as a
      // libbpf-tools loader's %s shows them, else memory-order hex rather than a list.
      if (isByteType(btf, t.type)) return byteText(bytes.subarray(0, t.nelems)) ?? hexBytes(bytes.subarray(0, t.nelems));
      const elem = sizeOf(btf, t.type);
      const out: JsonValue[] = [];
      for (let i = 0; i < t.nelems; i++) out.push(decode(btf, t.type, bytes.subarray(i * elem, (i + 1) * elem), depth + 1));
      return out;
    }
    case 'struct':
    case 'union': {
      const out: { [key: string]: JsonValue } = {};
      for (const m of t.members) {
        const byteOff = Math.floor(m.offsetBits / 8);
        let v: JsonValue;
        if (m.bitfieldSize > 0) {
          // Bitfields: take the bytes from the containing byte on and let the int decoder shift.
          v = decode(btf, m.type, bytes.subarray(byteOff), depth + 1, m.offsetBits % 8, m.bitfieldSize);
        } else {
          const size = sizeOf(btf, m.type);
          v = decode(btf, m.type, bytes.subarray(byteOff, byteOff + size), depth + 1);
        }
        // Anonymous struct/union members: their fields are reachable by name in C, so flatten.
        if (m.name === '' && typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, v);
        else out[m.name] = v;
      }
      return out;
    }
    default:
      return hexBytes(bytes);
  }
}

/**
 * Decodes `bytes` as BTF type `typeId`. Without BTF (or for type 0, which the loader uses
 * for "unknown") the bytes come back as a memory-order hex string.
 */
export function decodeValue(btf: BtfSpec | null, typeId: number, bytes: Uint8Array): JsonValue {
  if (!btf || typeId === 0 || !btf.types[typeId]) return hexBytes(bytes);
  return decode(btf, typeId, bytes, 0);
}

/** Byte size of a BTF type, 0 when it has none (the output layer never throws on odd BTF). */
export function btfSizeOf(btf: BtfSpec, typeId: number): number {
  return sizeOf(btf, typeId);
}

/** True when the type (after typedefs) is an unsigned integer: what histogram bucket keys are. */
export function isUnsignedInt(btf: BtfSpec | null, typeId: number): boolean {
  if (!btf || typeId === 0) return false;
  const t = typeAt(btf, stripQualifiers(btf, typeId));
  return t !== undefined && t.kind === 'int' && !t.signed && !t.bool;
}
