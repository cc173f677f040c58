// Ring buffer / perf records arrive as bytes with no type attached; the struct to decode
// them as is named in the manifest, or guessed when exactly one named struct has their size.

import type { BtfSpec } from '../../protocol/btf.js';
import type { ObjectSpec } from '../../protocol/spec.js';
import { decodeValue, hexBytes } from './btfDecode.js';
import type { JsonValue } from './jsonValue.js';

/** Id of the named struct (or union/typedef to one) `name`, or undefined. */
export function findStruct(btf: BtfSpec, name: string): number | undefined {
  const id = btf.types.findIndex((t) => (t.kind === 'struct' || t.kind === 'union') && t.name === name);
  return id > 0 ? id : undefined;
}

/** The one named struct of `size` bytes; anonymous structs are map definitions, not records. */
export function structBySize(btf: BtfSpec, size: number): number | undefined {
  let found: number | undefined;
  for (let id = 1; id < btf.types.length; id++) {
    const t = btf.types[id];
    if ((t.kind === 'struct' || t.kind === 'union') && t.name !== '' && t.size === size) {
      if (found !== undefined) return undefined;
      found = id;
    }
  }
  return found;
}

/**
 * Decodes one record from map `mapIndex` of `obj`. `pref` is a struct name (manifest
 * output.records); without it a struct whose size equals the record's length is used when
 * unique, else the bytes come back as hex.
 */
export function decodeRecord(obj: ObjectSpec, mapIndex: number, data: Uint8Array, pref?: string): JsonValue {
  void mapIndex; // Records carry no per-map BTF; the map only selects `pref` at the caller.
  const btf = obj.btf;
  if (!btf) return hexBytes(data);
  const id = pref !== undefined ? findStruct(btf, pref) : structBySize(btf, data.length);
  return id === undefined ? hexBytes(data) : decodeValue(btf, id, data);
}
