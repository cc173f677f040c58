// A HelperEnv over plain buffers for unit tests: the real wasm VM, a fake target address
// space made of byte regions, an event queue that records events (with a capacity so
// drops can be tested) and a mutable run context.

import type { AgentEvent } from '../../protocol/messages';
import type { MapSpec, MapType } from '../../protocol/spec';
import type { EventQueue } from '../../agent/events';
import type { HelperEnv, TargetMemory } from '../../agent/helpers/HelperEnv';
import type { BpfMap } from '../../agent/maps/BpfMap';
import { ProgArrayMap } from '../../agent/maps/ProgArrayMap';
import { createMap } from '../../agent/maps/createMap';
import { emptyRunContext, type RunContext } from '../../agent/runtime/RunContext';
import { BpfVm } from '../../vm/ts/vm';
import { vmModule } from './vmSupport';

// HelperEnv refers to agent/events.ts, which calls Frida's global send(); the test project
// has no frida-gum typings, so declare the one global it needs.
declare global {
  function send(message: unknown, data?: ArrayBuffer | number[] | null): void;
}

export class FakeTarget implements TargetMemory {
  readonly regions: { addr: bigint; bytes: Uint8Array }[] = [];

  map(addr: bigint, bytes: Uint8Array): void {
    this.regions.push({ addr, bytes });
  }

  mapString(addr: bigint, s: string): void {
    this.map(addr, new Uint8Array([...Buffer.from(s, 'utf8'), 0]));
  }

  private find(addr: bigint, len: number): { r: Uint8Array; off: number } | null {
    for (const { addr: a, bytes } of this.regions) {
      if (addr >= a && addr + BigInt(len) <= a + BigInt(bytes.length)) return { r: bytes, off: Number(addr - a) };
    }
    return null;
  }

  read(addr: bigint, len: number): Uint8Array | null {
    const f = this.find(addr, len);
    return f ? f.r.slice(f.off, f.off + len) : null;
  }

  readCString(addr: bigint, max: number): Uint8Array | null {
    const f = this.find(addr, 1);
    if (!f) return null;
    const out: number[] = [];
    for (let i = f.off; i < f.r.length && out.length < max; i++) {
      out.push(f.r[i]);
      if (f.r[i] === 0) break;
    }
    return new Uint8Array(out);
  }
}

export class FakeEvents {
  readonly events: AgentEvent[] = [];
  dropped = 0;
  constructor(public capacity = Infinity) {}
  push(e: AgentEvent): boolean {
    if (this.events.length >= this.capacity) {
      this.dropped++;
      return false;
    }
    this.events.push(e);
    return true;
  }
  flush(): void {}
  setBatchSize(): void {}
}

export interface FakeEnv extends HelperEnv {
  target: FakeTarget;
  fakeEvents: FakeEvents;
  maps: BpfMap[];
  /** Tail-call resolution: prog_array slot value → VM handle (identity by default). */
  addMap(spec: Partial<MapSpec> & { type: MapType }): BpfMap;
}

export const CPUS = 4;

let nextHandle = 0x1000n;

export function mapSpec(p: Partial<MapSpec> & { type: MapType }): MapSpec {
  return {
    index: 0,
    name: p.type,
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
    flags: 0,
    origin: 'btf',
    readOnly: false,
    btfKeyTypeId: 0,
    btfValueTypeId: 0,
    ...p,
  };
}

export function newVm(): BpfVm {
  return BpfVm.create(vmModule(), { roArenaBytes: 64 << 10, rwArenaBytes: 1 << 20 });
}

export function fakeEnv(opts: { vm?: BpfVm; run?: Partial<RunContext>; eventCapacity?: number } = {}): FakeEnv {
  const vm = opts.vm ?? newVm();
  const target = new FakeTarget();
  const fakeEvents = new FakeEvents(opts.eventCapacity);
  const maps: BpfMap[] = [];
  const byHandle = new Map<bigint, BpfMap>();
  const run: RunContext = { ...emptyRunContext(), program: 'prog', tid: 4242, cpu: 1, ...opts.run };
  const env: FakeEnv = {
    vm,
    memory: target,
    events: fakeEvents as unknown as EventQueue,
    run,
    target,
    fakeEvents,
    maps,
    mapByHandle: (h) => byHandle.get(h),
    programHandleForTailCall: (m, i) => (m instanceof ProgArrayMap ? m.getProgram(i) : undefined),
    monotonicNs: () => 123_456_789n,
    boottimeNs: () => 223_456_789n,
    pid: () => 4000,
    uid: () => 1001,
    gid: () => 1002,
    comm: () => 'victim-process-name',
    cpuCount: () => CPUS,
    addMap(p) {
      const spec = mapSpec({ index: maps.length, ...p });
      const m = createMap(vm, spec, nextHandle++, CPUS);
      maps.push(m);
      byHandle.set(m.handle, m);
      return m;
    },
  };
  return env;
}
