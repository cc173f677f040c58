import { ArrayMap } from '../../agent/maps/ArrayMap';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, type BpfMap } from '../../agent/maps/BpfMap';
import { HashMap } from '../../agent/maps/HashMap';
import { PerfEventArrayMap } from '../../agent/maps/PerfEventArrayMap';
import { ProgArrayMap } from '../../agent/maps/ProgArrayMap';
import { RingBufMap } from '../../agent/maps/RingBufMap';
import { beginRun, createMap } from '../../agent/maps/createMap';
import { decodeBase64, encodeBase64 } from '../../agent/base64';
import { keyCoder } from '../../agent/maps/keyCoder';
import { CPUS, mapSpec, newVm } from '../support/fakeEnv';

const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: bigint): Uint8Array => new Uint8Array(new BigUint64Array([v]).buffer);
const asU64 = (b: Uint8Array | Uint8Array[] | null): bigint => new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset).getBigUint64(0, true);

function make(p: Parameters<typeof mapSpec>[0], vm = newVm()): BpfMap {
  return createMap(vm, mapSpec(p), 7n, CPUS);
}

describe('hash', () => {
  test('flags, max_entries, delete, values in the VM arena', () => {
    const vm = newVm();
    const m = make({ type: 'hash', maxEntries: 2 }, vm);
    expect(m).toBeInstanceOf(HashMap);
    expect(m.lookupAddr(u32(1), 0)).toBe(0);
    expect(m.update(u32(1), u64(10n), BPF_EXIST, 0)).toBe(-ENOENT);
    expect(m.update(u32(1), u64(10n), BPF_NOEXIST, 0)).toBe(0);
    expect(m.update(u32(1), u64(11n), BPF_NOEXIST, 0)).toBe(-EEXIST);
    expect(m.update(u32(1), u64(12n), BPF_EXIST, 0)).toBe(0);
    expect(m.update(u32(2), u64(20n), BPF_ANY, 0)).toBe(0);
    expect(m.update(u32(3), u64(30n), BPF_ANY, 0)).toBe(-E2BIG);
    expect(m.update(u32(2), u64(21n), BPF_ANY, 0)).toBe(0); // existing key still updatable when full
    expect(m.update(u32(2), u64(21n), 4, 0)).toBe(-EINVAL);
    const a = m.lookupAddr(u32(1), 0);
    expect(a % 8).toBe(0);
    expect(vm.isAccessible(a, 8, true)).toBe(true);
    expect(asU64(vm.read(a, 8))).toBe(12n);
    // programs write through the pointer; the host sees it
    vm.write(a, u64(99n));
    expect(asU64(m.lookup(u32(1)))).toBe(99n);
    expect(m.delete(u32(1))).toBe(0);
    expect(m.delete(u32(1))).toBe(-ENOENT);
    expect(m.lookup(u32(1))).toBeNull();
    expect(m.update(u32(3), u64(30n), BPF_ANY, 0)).toBe(0); // freed slot reused
    expect(m.entries().map((e) => [e.key[0], asU64(e.value)])).toEqual([
      [2, 21n],
      [3, 30n],
    ]);
  });

  test.each([1, 2, 3, 5, 6, 7, 8, 12, 16, 33])('key size %i: distinct keys stay distinct', (ks) => {
    const m = make({ type: 'hash', keySize: ks, maxEntries: 64 });
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const k = new Uint8Array(ks);
      for (let j = 0; j < ks; j++) k[j] = (i * 37 + j * 11 + (j === ks - 1 ? i : 0)) & 0xff;
      keys.push(k);
    }
    const uniq = new Map(keys.map((k) => [Array.from(k).join(','), k]));
    let i = 0;
    for (const k of uniq.values()) expect(m.update(k, u64(BigInt(i++)), BPF_NOEXIST, 0)).toBe(0);
    i = 0;
    for (const k of uniq.values()) expect(asU64(m.lookup(k))).toBe(BigInt(i++));
  });

  test('key coder is injective on odd sizes and high bytes', () => {
    const c = keyCoder(3);
    expect(c(new Uint8Array([1, 0, 0]), 0)).not.toBe(c(new Uint8Array([0, 1, 0]), 0));
    const c9 = keyCoder(9);
    expect(c9(new Uint8Array([255, 255, 0, 0, 0, 0, 0, 0, 1]), 0)).not.toBe(c9(new Uint8Array([255, 255, 0, 0, 0, 0, 0, 0, 2]), 0));
    expect(keyCoder(4)(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0)).toBe(0xffffffff);
  });

  test('bad specs are refused at creation', () => {
    expect(() => make({ type: 'hash', maxEntries: 0 })).toThrow(/max_entries/);
    expect(() => make({ type: 'array', keySize: 8 })).toThrow(/4-byte key/);
  });
});

describe('lru_hash', () => {
  test('evicts the least recently used entry instead of -E2BIG', () => {
    const m = make({ type: 'lru_hash', maxEntries: 3 });
    for (const k of [1, 2, 3]) expect(m.update(u32(k), u64(BigInt(k)), BPF_ANY, 0)).toBe(0);
    expect(m.lookupAddr(u32(1), 0)).not.toBe(0); // 1 is now most recent; 2 the oldest
    expect(m.update(u32(4), u64(4n), BPF_ANY, 0)).toBe(0);
    expect(m.lookup(u32(2))).toBeNull();
    expect(m.update(u32(3), u64(33n), BPF_EXIST, 0)).toBe(0); // touch 3; now 1 oldest
    expect(m.update(u32(5), u64(5n), BPF_NOEXIST, 0)).toBe(0);
    expect(m.lookup(u32(1))).toBeNull();
    expect(m.entries().map((e) => e.key[0]).sort()).toEqual([3, 4, 5]);
    expect(m.delete(u32(4))).toBe(0);
    expect(m.update(u32(6), u64(6n), BPF_ANY, 0)).toBe(0); // free slot, no eviction
    expect(m.entries().map((e) => e.key[0]).sort()).toEqual([3, 5, 6]);
  });
});

describe('per-CPU maps', () => {
  test.each(['percpu_hash', 'lru_percpu_hash'] as const)('%s: one slot per CPU', (type) => {
    const vm = newVm();
    const m = make({ type }, vm);
    expect(m.update(u32(1), u64(5n), BPF_ANY, 2)).toBe(0); // program on CPU 2: others zeroed
    const vals = m.lookup(u32(1)) as Uint8Array[];
    expect(vals.map((v) => asU64(v))).toEqual([0n, 0n, 5n, 0n]);
    const a0 = m.lookupAddr(u32(1), 0);
    const a2 = m.lookupAddr(u32(1), 2);
    expect(a2 - a0).toBe(16);
    expect(asU64(vm.read(a2, 8))).toBe(5n);
    // host: a single value goes to all CPUs, a full per-CPU array to each
    expect(m.update(u32(1), u64(7n), BPF_EXIST, 'all')).toBe(0);
    expect((m.lookup(u32(1)) as Uint8Array[]).map(asU64)).toEqual([7n, 7n, 7n, 7n]);
    const all = new Uint8Array(8 * CPUS);
    for (let c = 0; c < CPUS; c++) all.set(u64(BigInt(c + 100)), c * 8);
    expect(m.update(u32(1), all, BPF_ANY, 'all')).toBe(0);
    expect((m.lookup(u32(1)) as Uint8Array[]).map(asU64)).toEqual([100n, 101n, 102n, 103n]);
    expect(m.update(u32(1), u64(1n), BPF_ANY, 3)).toBe(0); // existing entry: only CPU 3 changes
    expect((m.entries()[0].value as Uint8Array[]).map(asU64)).toEqual([100n, 101n, 102n, 1n]);
  });

  test('percpu_array with an odd value size keeps 8-byte aligned slots', () => {
    const m = make({ type: 'percpu_array', valueSize: 12, maxEntries: 2 });
    expect(m.lookupAddr(u32(1), 1) - m.lookupAddr(u32(1), 0)).toBe(16);
    expect(m.update(u32(1), new Uint8Array(12).fill(9), BPF_ANY, 3)).toBe(0);
    const v = m.lookup(u32(1)) as Uint8Array[];
    expect(v).toHaveLength(CPUS);
    expect(Array.from(v[3])).toEqual(new Array(12).fill(9));
    expect(Array.from(v[0])).toEqual(new Array(12).fill(0));
  });
});

describe('array', () => {
  test('kernel errors: E2BIG out of range, EEXIST for NOEXIST, EINVAL delete', () => {
    const m = make({ type: 'array', maxEntries: 4 });
    expect(m).toBeInstanceOf(ArrayMap);
    expect(m.lookupAddr(u32(4), 0)).toBe(0);
    expect(m.lookupAddr(u32(3), 0)).not.toBe(0);
    expect(asU64(m.lookup(u32(3)))).toBe(0n); // preallocated, zeroed
    expect(m.update(u32(4), u64(1n), BPF_ANY, 0)).toBe(-E2BIG);
    expect(m.update(u32(1), u64(1n), BPF_NOEXIST, 0)).toBe(-EEXIST);
    expect(m.update(u32(1), u64(1n), BPF_EXIST, 0)).toBe(0);
    expect(m.update(u32(1), u64(1n), 3, 0)).toBe(-EINVAL);
    expect(m.delete(u32(1))).toBe(-EINVAL);
    expect(m.lookup(u32(9))).toBeNull();
    expect(m.entries()).toHaveLength(4);
    expect(asU64(m.entries()[1].value)).toBe(1n);
  });

  test('global data: .data copied in, .rodata read-only for programs', () => {
    const vm = newVm();
    const init = encodeBase64(new Uint8Array([1, 2, 3, 4, 5]));
    const data = make({ type: 'array', name: '.data', origin: 'data', valueSize: 8, maxEntries: 1, initialData: init }, vm);
    const ro = make({ type: 'array', name: '.rodata', origin: 'rodata', readOnly: true, valueSize: 6, maxEntries: 1, initialData: init }, vm);
    const bss = make({ type: 'array', name: '.bss', origin: 'bss', valueSize: 16, maxEntries: 1 }, vm);
    const a = data.lookupAddr(u32(0), 0);
    expect(Array.from(vm.read(a, 8))).toEqual([1, 2, 3, 4, 5, 0, 0, 0]);
    expect(vm.isAccessible(a, 8, true)).toBe(true);
    const r = ro.lookupAddr(u32(0), 0);
    expect(Array.from(vm.read(r, 6))).toEqual([1, 2, 3, 4, 5, 0]);
    expect(vm.isAccessible(r, 6, false)).toBe(true);
    expect(vm.isAccessible(r, 6, true)).toBe(false);
    // host sets a constant before the run
    expect(ro.update(u32(0), new Uint8Array([9, 9, 9, 9, 9, 9]), BPF_ANY, 'all')).toBe(0);
    expect(Array.from(ro.lookup(u32(0)) as Uint8Array)).toEqual([9, 9, 9, 9, 9, 9]);
    expect(Array.from(bss.lookup(u32(0)) as Uint8Array)).toEqual(new Array(16).fill(0));
  });
});

describe('prog_array', () => {
  test('slots hold program references; BPF_ANY only', () => {
    const m = make({ type: 'prog_array', maxEntries: 4 }) as ProgArrayMap;
    expect(m.getProgram(0)).toBeUndefined();
    m.setProgram(2, 5);
    expect(m.getProgram(2)).toBe(5);
    expect(m.update(u32(1), u32(9), BPF_ANY, 'all')).toBe(0);
    expect(m.getProgram(1)).toBe(9);
    expect(m.update(u32(1), u32(9), BPF_NOEXIST, 'all')).toBe(-EINVAL);
    expect(m.update(u32(4), u32(9), BPF_ANY, 'all')).toBe(-E2BIG);
    expect(m.lookupAddr(u32(1), 0)).toBe(0);
    expect(m.entries().map((e) => [e.key[0], e.value[0]])).toEqual([
      [1, 9],
      [2, 5],
    ]);
    expect(m.delete(u32(1))).toBe(0);
    expect(m.delete(u32(1))).toBe(-ENOENT);
    expect(() => m.setProgram(4, 1)).toThrow(RangeError);
  });
});

describe('perf_event_array', () => {
  test('CPU selection', () => {
    const m = make({ type: 'perf_event_array', maxEntries: 0 }) as PerfEventArrayMap;
    expect(m.size).toBe(CPUS);
    expect(m.cpuFor(0xffffffffn, 3)).toBe(3);
    expect(m.cpuFor(1n, 3)).toBe(1);
    expect(m.cpuFor(BigInt(CPUS), 0)).toBe(-E2BIG);
    expect(m.cpuFor(1n << 32n, 0)).toBe(-EINVAL);
  });
});

describe('ringbuf', () => {
  test('reserve/commit, space, rewinding, query', () => {
    const vm = newVm();
    const m = make({ type: 'ringbuf', maxEntries: 64, keySize: 0, valueSize: 0 }, vm) as RingBufMap;
    const a = m.reserve(10);
    expect(a).not.toBe(0);
    expect(vm.isAccessible(a, 10, true)).toBe(true);
    const b = m.reserve(16);
    expect(b - a).toBe(8 + 16); // 10 rounded to 16, plus the next header
    expect(m.reserve(24)).toBe(0); // 8+16 + 8+16 + 8+24 > 64
    expect(m.drops).toBe(1);
    vm.write(a, new Uint8Array(10).fill(7));
    expect(Array.from(m.commit(a, false)!)).toEqual(new Array(10).fill(7));
    expect(m.commit(a, false)).toBeNull(); // double submit ignored
    expect(m.commit(b, true)).toBeNull(); // discard
    // nothing open: the area rewinds
    expect(m.reserve(48)).toBe(a);
    beginRun([m]);
    expect(m.reserve(48)).toBe(a);
    expect(m.query(1)).toBe(64n);
    expect(m.query(0)).toBe(0n);
    expect(m.query(2)).toBe(8n + 16n + 8n + 16n);
    expect(m.query(3)).toBe(m.query(2));
    expect(m.accept(57)).toBe(false);
    expect(m.accept(56)).toBe(true);
  });
});

test('base64 round trip', () => {
  for (let n = 0; n < 20; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 77 + n) & 0xff);
    const s = encodeBase64(b);
    expect(s).toBe(Buffer.from(b).toString('base64'));
    expect(Array.from(decodeBase64(s))).toEqual(Array.from(b));
  }
});
