// Map dumps → decoded entries → bpftrace-style text (`@name[key]: value`, hist() bars) or the
// JSON `maps` object. Decoding once and rendering twice keeps --json and text in agreement.

import type { MapDump } from '../../protocol/messages.js';
import type { MapSpec, ObjectSpec } from '../../protocol/spec.js';
import type { BtfSpec } from '../../protocol/btf.js';
import { syscallName } from '../../protocol/syscalls.js';
import { bigToJson, decodeValue, isUnsignedInt, readUnsignedLE, stripQualifiers } from './btfDecode.js';
import { formatKey, formatValue } from './formatValue.js';
import { histRows } from './hist.js';
import type { JsonValue } from './jsonValue.js';

export interface MapPrintOptions {
  /** Maps (or .bss/.data arrays) to draw as histograms whatever their name (manifest output.histograms). */
  histograms?: string[];
  /** Maps whose integer keys are x86-64 syscall numbers, printed by name (manifest output.syscalls). */
  syscalls?: string[];
  /** Only these maps and globals (--maps); all of them when absent. */
  only?: string[];
}

export interface DecodedMap {
  name: string;
  /** scalar: one value, no key; keyed: rows; hist: bucket index → count; stacks: stack id → frames. */
  kind: 'scalar' | 'keyed' | 'hist' | 'stacks';
  entries: { key: JsonValue; value: JsonValue; keyName?: string }[];
}

const HIST_NAME = /hist|lat|dist|_us$|_ns$/i;
/** Maps keyed by syscall number, by name: `syscalls`, `syscall_count`, `sys_counts` … */
const SYSCALL_NAME = /syscall|^sys(_?(calls?|counts?|ids?|nrs?))?$/i;
/** Fields of a struct key that hold a syscall number. */
const SYSCALL_FIELD = /^(syscall|syscall_?(id|nr|no)|sysno|sys_?nr)$/i;
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

/**
 * The integer buckets of a global meant as a histogram: an integer array (`u64 hist[64]`),
 * or a struct holding one (libbpf-tools' `struct hist { u32 slots[N]; }`). Null otherwise.
 */
function histBuckets(btf: BtfSpec | null, typeId: number, bytes: Uint8Array): { key: JsonValue; value: JsonValue }[] | null {
  if (!btf) return null;
  let t = btf.types[stripQualifiers(btf, typeId)];
  let base = 0;
  if (t?.kind === 'struct') {
    const arrays = t.members.filter((m) => btf.types[stripQualifiers(btf, m.type)]?.kind === 'array');
    if (arrays.length !== 1) return null;
    base = arrays[0].offsetBits / 8;
    t = btf.types[stripQualifiers(btf, arrays[0].type)];
  }
  if (t?.kind !== 'array') return null;
  const elem = btf.types[stripQualifiers(btf, t.type)];
  if (elem?.kind !== 'int' || elem.bool) return null;
  const out: { key: JsonValue; value: JsonValue }[] = [];
  for (let i = 0; i < Math.min(t.nelems, MAX_BUCKET + 1); i++) {
    out.push({ key: i, value: bigToJson(readUnsignedLE(bytes, base + i * elem.size, elem.size)) });
  }
  return out;
}

/** Global-data maps (.bss/.data) become one scalar per variable; .rodata holds no results. */
function decodeGlobals(obj: ObjectSpec, map: MapSpec, dump: MapDump, opts: MapPrintOptions): DecodedMap[] {
  const first = dump.entries[0];
  if (!first || !map.vars) return [];
  const raw = Array.isArray(first.value) ? first.value[0] : first.value;
  const bytes = b64(raw);
  return map.vars.map((v) => {
    const own = bytes.subarray(v.offset, v.offset + v.size);
    const buckets = opts.histograms?.includes(v.name) ? histBuckets(obj.btf, v.btfTypeId, own) : null;
    if (buckets) return { name: v.name, kind: 'hist' as const, entries: buckets };
    return { name: v.name, kind: 'scalar' as const, entries: [{ key: null, value: decodeValue(obj.btf, v.btfTypeId, own) }] };
  });
}

/** Stack-trace maps: each stack id with its frames, symbolised by the agent. */
function decodeStacks(map: MapSpec, dump: MapDump): DecodedMap[] {
  const entries: DecodedMap['entries'] = [];
  for (const e of dump.entries) {
    const key = b64(e.key);
    const value = b64(Array.isArray(e.value) ? e.value[0] : e.value);
    const frames: string[] = [];
    for (let o = 0; o + 8 <= value.length; o += 8) {
      const ip = readUnsignedLE(value, o, 8);
      if (ip === 0n) break;
      const hex = `0x${ip.toString(16)}`;
      frames.push(dump.symbols?.[hex] ?? hex);
    }
    entries.push({ key: Number(readUnsignedLE(key, 0, 4)), value: frames });
  }
  entries.sort((a, b) => (a.key as number) - (b.key as number));
  return entries.length ? [{ name: map.name, kind: 'stacks', entries }] : [];
}

/** Whether the map's keys (or a field of its struct keys) are syscall numbers, and which field. */
function syscallKey(obj: ObjectSpec, map: MapSpec, opts: MapPrintOptions): { field: string | null } | null {
  const listed = opts.syscalls?.includes(map.name) ?? false;
  const btf = obj.btf;
  const key = btf && map.btfKeyTypeId ? btf.types[stripQualifiers(btf, map.btfKeyTypeId)] : undefined;
  if (key?.kind === 'struct') {
    const f = key.members.find((m) => SYSCALL_FIELD.test(m.name));
    return f ? { field: f.name } : null;
  }
  const intKey = key ? key.kind === 'int' && !key.bool : map.keySize <= 8 && map.keySize > 0;
  return intKey && (listed || SYSCALL_NAME.test(map.name)) ? { field: null } : null;
}

function withSyscallName(e: DecodedMap['entries'][number], how: { field: string | null }): void {
  const raw = how.field === null ? e.key : (e.key as { [k: string]: JsonValue } | null)?.[how.field];
  if (typeof raw !== 'number') return;
  const name = syscallName(raw);
  e.keyName = how.field === null ? name : formatKey({ ...(e.key as { [k: string]: JsonValue }), [how.field]: name });
}

/**
 * Decodes one dump. Array slots that are all zero are left out: an array cannot tell
 * "never written" from zero, and bpftrace (hash maps only) would not show such a key.
 */
export function decodeMap(obj: ObjectSpec, dump: MapDump, opts: MapPrintOptions = {}): DecodedMap[] {
  const map = obj.maps[dump.map];
  if (!map) return [];
  if (map.origin === 'rodata') return [];
  // libbpf's own bookkeeping (usdt.bpf.h's argument specs), not the program's results.
  if (map.name.startsWith('__bpf_usdt_')) return [];
  if (map.type === 'ringbuf' || map.type === 'perf_event_array' || map.type === 'prog_array' || map.type === 'bloom_filter') return [];
  if (map.origin === 'data' || map.origin === 'bss') return decodeGlobals(obj, map, dump, opts);
  if (map.type === 'stack_trace') return decodeStacks(map, dump);
  const isArray = map.type === 'array' || map.type === 'percpu_array';
  const entries: DecodedMap['entries'] = [];
  for (const e of dump.entries) {
    const valueBytes = (Array.isArray(e.value) ? e.value : [e.value]).map(b64);
    if (isArray && map.maxEntries > 1 && valueBytes.every(allZero)) continue;
    const values = valueBytes.map((b) => decodeValue(obj.btf, map.btfValueTypeId, b));
    const value = Array.isArray(e.value) ? combine(values) : values[0];
    entries.push({ key: decodeValue(obj.btf, map.btfKeyTypeId, b64(e.key)), value });
  }
  if (isArray && map.maxEntries === 1) return entries.length ? [{ name: map.name, kind: 'scalar', entries }] : [];
  if (entries.length === 0) return [];
  // Queues and stacks: their elements in the order pops would take them, by that position.
  if (map.type === 'queue' || map.type === 'stack') return [{ name: map.name, kind: 'keyed', entries: entries.map((e, i) => ({ ...e, key: i })) }];
  const sys = syscallKey(obj, map, opts);
  if (sys) for (const e of entries) withSyscallName(e, sys);
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
  if (m.kind === 'stacks') {
    // bpftrace's ustack: one frame per line, innermost first.
    return m.entries.map((e) => `@${m.name}[${formatKey(e.key)}]:\n${(e.value as string[]).map((f) => `    ${f}`).join('\n')}\n`).join('') + '\n';
  }
  if (m.kind === 'hist') {
    const buckets = new Map<number, bigint>();
    for (const e of m.entries) buckets.set(e.key as number, asBig(e.value)!);
    const rows = histRows(buckets);
    return rows.length ? `@${m.name}:\n${rows.join('\n')}\n\n` : '';
  }
  return m.entries.map((e) => `@${m.name}[${e.keyName ?? formatKey(e.key)}]: ${formatValue(e.value)}\n`).join('') + '\n';
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
    for (const m of decodeMap(obj, d, opts)) if (!opts.only || opts.only.includes(m.name)) decoded.push({ obj: d.object, m });
  }
  const count = new Map<string, number>();
  for (const { m } of decoded) count.set(m.name, (count.get(m.name) ?? 0) + 1);
  return decoded.map(({ obj, m }) => ((count.get(m.name) ?? 0) > 1 ? { ...m, name: `${baseName(objects[obj].path)}:${m.name}` } : m));
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
