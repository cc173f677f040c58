// Map dumps → decoded entries → bpftrace-style text (`@name[key]: value`, hist() bars) or the
// JSON `maps` object. Decoding once and rendering twice keeps --json and text in agreement.

import type { MapDump } from '../../protocol/messages.js';
import type { MapSpec, ObjectSpec } from '../../protocol/spec.js';
import { bigToJson, decodeValue, isUnsignedInt } from './btfDecode.js';
import { formatKey, formatValue } from './formatValue.js';
import { histRows } from './hist.js';
import type { JsonValue } from './jsonValue.js';

export interface MapPrintOptions {
  /** Maps to draw as histograms whatever their name (manifest output.histograms). */
  histograms?: string[];
}

export interface DecodedMap {
  name: string;
  /** scalar: one value, no key; keyed: rows; hist: bucket index → count; */
  kind: 'scalar' | 'keyed' | 'hist';
  entries: { key: JsonValue; value: JsonValue }[];
}

const HIST_NAME = /hist|lat|dist|_us$|_ns$/i;
const MAX_BUCKET = 64;

const b64 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'base64'));

function asBig(v: JsonValue): bigint | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return undefined;
}

/** Per-CPU values: integers are summed (what a reader of a per-CPU counter wants); anything else stays a per-CPU list. */
function combine(values: JsonValue[]): JsonValue {
  const ints = values.map(asBig);
  if (ints.every((x) => x !== undefined)) return bigToJson(ints.reduce((a, b) => a! + b!, 0n)!);
  return values;
}

function allZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

function isHistogram(map: MapSpec, obj: ObjectSpec, entries: { key: JsonValue; value: JsonValue }[], opts: MapPrintOptions): boolean {
  const listed = opts.histograms?.includes(map.name) ?? false;
  if (!listed && !HIST_NAME.test(map.name)) return false;
  if (!listed && !(isUnsignedInt(obj.btf, map.btfKeyTypeId) || (map.btfKeyTypeId === 0 && map.keySize <= 8))) return false;
  return entries.every((e) => {
    const k = typeof e.key === 'number' ? e.key : -1;
    return Number.isInteger(k) && k >= 0 && k <= MAX_BUCKET && asBig(e.value) !== undefined;
  });
}

/** Global-data maps (.bss/.data) become one scalar per variable; .rodata holds no results. */
function decodeGlobals(obj: ObjectSpec, map: MapSpec, dump: MapDump): DecodedMap[] {
  const first = dump.entries[0];
  if (!first || !map.vars) return [];
  const raw = Array.isArray(first.value) ? first.value[0] : first.value;
  const bytes = b64(raw);
  return map.vars.map((v) => ({
    name: v.name,
    kind: 'scalar' as const,
    entries: [{ key: null, value: decodeValue(obj.btf, v.btfTypeId, bytes.subarray(v.offset, v.offset + v.size)) }],
  }));
}

/**
 * Decodes one dump. Array slots that are all zero are left out: an array cannot tell
 * "never written" from zero, and bpftrace (hash maps only) would not show such a key.
 */
export function decodeMap(obj: ObjectSpec, dump: MapDump, opts: MapPrintOptions = {}): DecodedMap[] {
  const map = obj.maps[dump.map];
  if (!map) return [];
  if (map.origin === 'rodata') return [];
  if (map.type === 'ringbuf' || map.type === 'perf_event_array' || map.type === 'prog_array') return [];
  if (map.origin === 'data' || map.origin === 'bss') return decodeGlobals(obj, map, dump);
  const isArray = map.type === 'array' || map.type === 'percpu_array';
  const entries: { key: JsonValue; value: JsonValue }[] = [];
  for (const e of dump.entries) {
    const valueBytes = (Array.isArray(e.value) ? e.value : [e.value]).map(b64);
    if (isArray && map.maxEntries > 1 && valueBytes.every(allZero)) continue;
    const values = valueBytes.map((b) => decodeValue(obj.btf, map.btfValueTypeId, b));
    const value = Array.isArray(e.value) ? combine(values) : values[0];
    entries.push({ key: decodeValue(obj.btf, map.btfKeyTypeId, b64(e.key)), value });
  }
  if (isArray && map.maxEntries === 1) return entries.length ? [{ name: map.name, kind: 'scalar', entries }] : [];
  if (entries.length === 0) return [];
  if (isHistogram(map, obj, entries, opts)) return [{ name: map.name, kind: 'hist', entries }];
  // bpftrace prints rows by ascending value; ties (and non-numeric values) by key for stable output.
  const keyText = (k: JsonValue) => JSON.stringify(k);
  entries.sort((a, b) => {
    const x = asBig(a.value);
    const y = asBig(b.value);
    if (x !== undefined && y !== undefined && x !== y) return x < y ? -1 : 1;
    const kx = asBig(a.key);
    const ky = asBig(b.key);
    if (kx !== undefined && ky !== undefined) return kx < ky ? -1 : kx > ky ? 1 : 0;
    return keyText(a.key) < keyText(b.key) ? -1 : keyText(a.key) > keyText(b.key) ? 1 : 0;
  });
  return [{ name: map.name, kind: 'keyed', entries }];
}

/** bpftrace's text for one decoded map, ending with the blank line bpftrace leaves after each map. */
export function mapText(m: DecodedMap): string {
  if (m.entries.length === 0) return '';
  if (m.kind === 'scalar') return `@${m.name}: ${formatValue(m.entries[0].value)}\n\n`;
  if (m.kind === 'hist') {
    const buckets = new Map<number, bigint>();
    for (const e of m.entries) buckets.set(e.key as number, asBig(e.value)!);
    const rows = histRows(buckets);
    return rows.length ? `@${m.name}:\n${rows.join('\n')}\n\n` : '';
  }
  return m.entries.map((e) => `@${m.name}[${formatKey(e.key)}]: ${formatValue(e.value)}\n`).join('') + '\n';
}

/** All dumps as text, in dump order; names that repeat across objects get the object's file name. */
export function mapsText(objects: ObjectSpec[], dumps: MapDump[], opts: MapPrintOptions = {}): string {
  return decodeAll(objects, dumps, opts).map(mapText).join('');
}

/** Decodes every dump; duplicate names across objects become `file.bpf.o:name`. */
export function decodeAll(objects: ObjectSpec[], dumps: MapDump[], opts: MapPrintOptions = {}): DecodedMap[] {
  const decoded: { obj: number; m: DecodedMap }[] = [];
  for (const d of dumps) {
    const obj = objects[d.object];
    if (!obj) continue;
    for (const m of decodeMap(obj, d, opts)) decoded.push({ obj: d.object, m });
  }
  const count = new Map<string, number>();
  for (const { m } of decoded) count.set(m.name, (count.get(m.name) ?? 0) + 1);
  return decoded.map(({ obj, m }) => ((count.get(m.name) ?? 0) > 1 ? { ...m, name: `${baseName(objects[obj].path)}:${m.name}` } : m));
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
