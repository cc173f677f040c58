// Ring buffer / perf records arrive as bytes with no type attached; the struct to decode
// them as is named in the manifest, or guessed when exactly one named struct has their size.

import type { BtfSpec } from '../../protocol/btf.js';
import type { ObjectSpec } from '../../protocol/spec.js';
import { btfSizeOf, decodeValue, hexBytes } from './btfDecode.js';
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
 * The struct a record of `length` bytes from map `mapIndex` is: the one named `pref`
 * (manifest output.records); else the struct the programs writing to that map keep their
 * records in (MapSpec.recordTypes, from DWARF: `struct event *e = bpf_ringbuf_reserve(...)`,
 * a stack `struct event e` passed to bpf_perf_event_output) when exactly one has the
 * record's size; else the one named struct of that size in the object.
 */
export function recordTypeId(obj: ObjectSpec, mapIndex: number, length: number, pref?: string): number | undefined {
  const btf = obj.btf;
  if (!btf) return undefined;
  if (pref !== undefined) return findStruct(btf, pref);
  const candidates = obj.maps[mapIndex]?.recordTypes ?? [];
  const fits = candidates.filter((id) => btfSizeOf(btf, id) === length);
  if (new Set(fits).size === 1) return fits[0];
  const bySize = structBySize(btf, length);
  if (bySize !== undefined) return bySize;
  // Variable-length records (sslsniff sends its struct cut after the bytes it filled):
  // the writers' one struct, when the record is a prefix of it.
  if (candidates.length === 1 && btfSizeOf(btf, candidates[0]) > length) return candidates[0];
  return undefined;
}

/** Decodes one record from map `mapIndex` of `obj` (see recordTypeId); hex when no type fits. */
export function decodeRecord(obj: ObjectSpec, mapIndex: number, data: Uint8Array, pref?: string): JsonValue {
  const id = recordTypeId(obj, mapIndex, data.length, pref);
  if (id === undefined || !obj.btf) return hexBytes(data);
  const size = btfSizeOf(obj.btf, id);
  if (data.length >= size) return decodeValue(obj.btf, id, data);
  const padded = new Uint8Array(size); // the fields past the record's end read as zero
  padded.set(data);
  return decodeValue(obj.btf, id, padded);
}
