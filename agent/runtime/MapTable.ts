// The maps of one load: created in the VM's arenas with the host's initial contents, found
// by object and index (host calls) or by handle (helpers), and read back for the host.
// Plain array maps and, on the native engine, plain hash maps are resolved inside the VM;
// the table remembers which, because a program that names only those can run natively.

import type { LoadRequest, MapDump, RecordStats } from '../../protocol/messages.js';
import type { MapSpec } from '../../protocol/spec.js';
import type { BpfVm } from '../../vm/ts/vm.js';
import { decodeBase64, encodeBase64 } from '../base64.js';
import { BPF_ANY, type BpfMap } from '../maps/BpfMap.js';
import { createMap } from '../maps/createMap.js';
import { round8 } from '../maps/layout.js';
import { NativeHashMap, type NativeHashApi } from '../maps/NativeHashMap.js';
import { RecordMap } from '../maps/RecordMap.js';
import { StackTraceMap } from '../maps/StackTraceMap.js';
import * as proc from './fridaProcessInfo.js';

/** An array-map key: the index as 4 little-endian bytes. */
export function u32Key(index: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, index >>> 0, true);
  return k;
}

/** Arena bytes a map needs (values preallocated, as the kernel does). */
export function mapFootprint(spec: MapSpec, cpus: number): number {
  const perCpu = spec.type === 'percpu_array' || spec.type === 'percpu_hash' || spec.type === 'lru_percpu_hash' ? cpus : 1;
  if (spec.type === 'ringbuf') return round8(spec.maxEntries) + 64;
  if (spec.type === 'prog_array' || spec.type === 'perf_event_array' || spec.type === 'bloom_filter') return 64;
  // Stack maps have a power-of-two number of buckets, up to twice max_entries.
  if (spec.type === 'stack_trace') return spec.valueSize * 2 * spec.maxEntries + 64;
  return round8(spec.valueSize) * spec.maxEntries * perCpu + round8(spec.keySize) * spec.maxEntries + 64;
}

export class MapTable {
  /** byObject[object][index] */
  readonly byObject: BpfMap[][];
  private readonly byHandle = new Map<bigint, BpfMap>();
  /** Map handles whose lookups the VM resolves (inlineIfArray). */
  private readonly inlined = new Set<bigint>();
  /** Map handles whose lookups, updates and deletes the VM resolves (NativeHashMap). */
  private readonly nativeHash = new Set<bigint>();

  constructor(
    private readonly vm: BpfVm,
    req: LoadRequest,
    nativeHashLib: NativeHashApi | null,
    cpus: number,
  ) {
    let nextHandle = 1n;
    this.byObject = req.objects.map((o) =>
      o.maps.map((spec) => {
        // On the native engine plain hash maps live in the VM library, which resolves their
        // helpers itself (NativeHashMap.ts); createMap stays free of Frida for Node's tests.
        const lib = spec.type === 'hash' ? nativeHashLib : null;
        const map = lib ? new NativeHashMap(vm, spec, nextHandle++, lib) : createMap(vm, spec, nextHandle++, cpus);
        this.byHandle.set(map.handle, map);
        if (lib) this.nativeHash.add(map.handle);
        return map;
      }),
    );
    for (const maps of this.byObject) for (const m of maps) this.inlineIfArray(m);
    for (const init of req.mapInit) {
      const map = this.byObject[init.object]?.[init.map];
      if (!map) throw new Error(`initial value for unknown map ${init.object}/${init.map}`);
      const rc = map.update(decodeBase64(init.key), decodeBase64(init.value), BPF_ANY, 'all');
      if (rc < 0) throw new Error(`cannot set initial value of map ${map.spec.name}: error ${rc}`);
    }
  }

  /** Plain array maps (and global data) get their lookups resolved inside the VM. */
  private inlineIfArray(map: BpfMap): void {
    if (map.spec.type !== 'array' || map.spec.maxEntries < 1) return;
    const n = map.spec.maxEntries;
    const base = map.lookupAddr(u32Key(0), 0);
    const stride = n > 1 ? map.lookupAddr(u32Key(1), 0) - base : round8(map.spec.valueSize);
    // Only when the layout really is base + i * stride (checked at the last index too).
    if (base === 0 || stride < map.spec.valueSize || map.lookupAddr(u32Key(n - 1), 0) !== base + (n - 1) * stride) return;
    this.vm.inlineArrayMap(map.handle, base, stride, n);
    this.inlined.add(map.handle);
  }

  byHandleOf(handle: bigint): BpfMap | undefined {
    return this.byHandle.get(handle);
  }

  /** The VM resolves this map's lookups (but not its updates or deletes). */
  isInlinedArray(map: BpfMap): boolean {
    return this.inlined.has(map.handle);
  }

  /** The VM resolves this map's lookups, updates and deletes. */
  isNativeHash(map: BpfMap): boolean {
    return this.nativeHash.has(map.handle);
  }

  objectOf(map: BpfMap): number {
    return this.byObject.findIndex((ms) => ms.includes(map));
  }

  get(object: number, index: number): BpfMap {
    const m = this.byObject[object]?.[index];
    if (!m) throw new Error(`no map ${index} in object ${object}`);
    return m;
  }

  lookup(object: number, index: number, key: string): string | string[] | null {
    const v = this.get(object, index).lookup(decodeBase64(key));
    if (v === null) return null;
    return Array.isArray(v) ? v.map(encodeBase64) : encodeBase64(v);
  }

  update(object: number, index: number, key: string, value: string, flags: number): number {
    return this.get(object, index).update(decodeBase64(key), decodeBase64(value), flags, 'all');
  }

  delete(object: number, index: number, key: string): number {
    return this.get(object, index).delete(decodeBase64(key));
  }

  dump(): MapDump[] {
    const out: MapDump[] = [];
    this.byObject.forEach((maps, object) =>
      maps.forEach((m, map) => {
        if (m.spec.type === 'ringbuf' || m.spec.type === 'perf_event_array' || m.spec.type === 'prog_array') return;
        const dump: MapDump = {
          object,
          map,
          name: m.spec.name,
          entries: m.entries().map((e) => ({
            key: encodeBase64(e.key),
            value: Array.isArray(e.value) ? e.value.map(encodeBase64) : encodeBase64(e.value),
          })),
        };
        if (m instanceof StackTraceMap) dump.symbols = symbolizeStacks(m);
        out.push(dump);
      }),
    );
    return out;
  }

  /** Per record map (ring buffer, perf array): produced and dropped so far. */
  recordStats(): RecordStats[] {
    const out: RecordStats[] = [];
    this.byObject.forEach((maps, object) =>
      maps.forEach((m, map) => {
        if (m instanceof RecordMap) out.push({ object, map, name: m.spec.name, produced: m.queued + m.drops, dropped: m.drops });
      }),
    );
    return out;
  }
}

/** Symbols for every address of a stack map, looked up once each (the exit dump pays this, not the hits). */
function symbolizeStacks(m: StackTraceMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of m.entries()) {
    const id = new DataView(e.key.buffer, e.key.byteOffset, 4).getUint32(0, true);
    for (const ip of m.stack(id) ?? []) {
      const k = `0x${ip.toString(16)}`;
      out[k] ??= proc.symbolize(ip);
    }
  }
  return out;
}
