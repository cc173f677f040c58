// The map types of libbpf-tools- and bpftime-style programs beyond hash and array: queue,
// stack, bloom filter, LPM trie and stack trace, with the kernel's semantics, checked
// directly on the map classes (helpers.test-style program tests are in helpersCompat).
import { BloomFilterMap } from '../../agent/maps/BloomFilterMap';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC } from '../../agent/maps/BpfMap';
import { LpmTrieMap } from '../../agent/maps/LpmTrieMap';
import { QueueStackMap } from '../../agent/maps/QueueStackMap';
import { BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID, StackTraceMap } from '../../agent/maps/StackTraceMap';
import { createMap } from '../../agent/maps/createMap';
import { BPF_F_NO_PREALLOC, BPF_F_ZERO_SEED } from '../../protocol/spec';
import { CPUS, mapSpec, newVm } from '../support/fakeEnv';

const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: bigint | number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(v)]).buffer);
const rd = (b: Uint8Array | null): bigint => new DataView(b!.buffer, b!.byteOffset).getBigUint64(0, true);

describe('queue and stack', () => {
  const make = (type: 'queue' | 'stack', max = 3) => {
    const vm = newVm();
    const m = createMap(vm, mapSpec({ type, keySize: 0, valueSize: 8, maxEntries: max }), 1n, CPUS) as QueueStackMap;
    const buf = vm.allocRw(8);
    const pop = (remove = true): bigint | number => {
      const rc = m.take(buf, remove);
      return rc < 0 ? rc : rd(vm.read(buf, 8));
    };
    return { m, vm, pop };
  };

  test('queue: FIFO, full is -E2BIG, BPF_EXIST drops the oldest, empty is -ENOENT and zeroes', () => {
    const { m, vm, pop } = make('queue');
    expect(m).toBeInstanceOf(QueueStackMap);
    for (const v of [1, 2, 3]) expect(m.push(u64(v), BPF_ANY)).toBe(0);
    expect(m.push(u64(4), BPF_ANY)).toBe(-E2BIG);
    expect(m.push(u64(4), BPF_NOEXIST)).toBe(-EINVAL);
    expect(m.push(u64(4), 3)).toBe(-EINVAL);
    expect(m.push(u64(4), BPF_EXIST)).toBe(0); // 1 is dropped
    expect(m.entries().map((e) => rd(e.value))).toEqual([2n, 3n, 4n]);
    expect(pop(false)).toBe(2n);
    expect(pop()).toBe(2n);
    expect(pop()).toBe(3n);
    expect(m.update(new Uint8Array(0), u64(5), BPF_ANY, 'all')).toBe(0); // user-space update = push
    expect(rd(m.lookup(new Uint8Array(0)))).toBe(4n); // user-space lookup = peek
    expect(pop()).toBe(4n);
    expect(pop()).toBe(5n);
    vm.write(vm.allocRw(8), u64(99)); // something else in the arena stays untouched
    expect(pop()).toBe(-ENOENT);
    expect(m.delete(new Uint8Array(0))).toBe(-EINVAL);
  });

  test('stack: LIFO, BPF_EXIST on a full stack drops the bottom', () => {
    const { m, pop } = make('stack');
    for (const v of [1, 2, 3]) m.push(u64(v), BPF_ANY);
    expect(m.push(u64(4), BPF_EXIST)).toBe(0);
    expect(m.entries().map((e) => rd(e.value))).toEqual([4n, 3n, 2n]);
    expect(pop(false)).toBe(4n);
    expect([pop(), pop(), pop(), pop()]).toEqual([4n, 3n, 2n, -ENOENT]);
    for (let i = 0; i < 10; i++) m.push(u64(i), BPF_EXIST); // wraps around
    expect([pop(), pop(), pop(), pop()]).toEqual([9n, 8n, 7n, -ENOENT]);
  });

  test('no pointer into the ring is ever handed out', () => {
    const { m } = make('queue');
    m.push(u64(1), BPF_ANY);
    expect(m.lookupAddr(new Uint8Array(0), 0)).toBe(0);
  });
});

describe('bloom filter', () => {
  test('no false negatives, few false positives; BPF_ANY only; nothing to list', () => {
    const m = createMap(newVm(), mapSpec({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 1000, mapExtra: 3 }), 1n, CPUS) as BloomFilterMap;
    expect(m.hashes).toBe(3);
    expect(m.bits).toBe(8192); // roundup_pow_of_two(1000 * 3 / ln 2)
    for (let i = 0; i < 1000; i += 2) expect(m.update(new Uint8Array(0), u32(i), BPF_ANY, 'all')).toBe(0);
    for (let i = 0; i < 1000; i += 2) expect(m.testAt(u32(i), 0)).toBe(0);
    let fp = 0;
    for (let i = 1; i < 1000; i += 2) if (m.testAt(u32(i), 0) === 0) fp++;
    expect(fp).toBeLessThan(50); // expected rate ~2 % at this fill
    expect(m.pushAt(u32(1), 0, BPF_EXIST)).toBe(-EINVAL);
    expect(m.entries()).toEqual([]);
    expect(m.lookup(u32(2))).toEqual(u32(2));
  });

  test('map_extra 0 means 5 hash functions; BPF_F_ZERO_SEED makes the bits reproducible', () => {
    const spec = mapSpec({ type: 'bloom_filter', keySize: 0, valueSize: 8, maxEntries: 10, flags: BPF_F_ZERO_SEED });
    const a = new BloomFilterMap(spec, 1n);
    const b = new BloomFilterMap(spec, 2n);
    expect(a.hashes).toBe(5);
    a.pushAt(u64(42), 0, BPF_ANY);
    b.pushAt(u64(42), 0, BPF_ANY);
    expect(a.testAt(u64(43), 0)).toBe(b.testAt(u64(43), 0));
  });
});

describe('LPM trie', () => {
  const key = (prefix: number, ...bytes: number[]): Uint8Array => new Uint8Array([...u32(prefix), ...bytes]);
  const make = (max = 8) => {
    const vm = newVm();
    const m = createMap(vm, mapSpec({ type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: max, flags: BPF_F_NO_PREALLOC }), 1n, CPUS) as LpmTrieMap;
    return { m, vm };
  };

  test('longest prefix match on IPv4-style keys', () => {
    const { m, vm } = make();
    expect(m.update(key(8, 10, 0, 0, 0), u64(8), BPF_ANY, 0)).toBe(0);
    expect(m.update(key(16, 10, 1, 0, 0), u64(16), BPF_ANY, 0)).toBe(0);
    expect(m.update(key(24, 10, 1, 2, 0), u64(24), BPF_ANY, 0)).toBe(0);
    expect(m.update(key(0, 0, 0, 0, 0), u64(0), BPF_ANY, 0)).toBe(0);
    expect(rd(m.lookup(key(32, 10, 1, 2, 3)))).toBe(24n);
    expect(rd(m.lookup(key(32, 10, 1, 9, 3)))).toBe(16n);
    expect(rd(m.lookup(key(32, 10, 9, 9, 3)))).toBe(8n);
    expect(rd(m.lookup(key(32, 11, 1, 2, 3)))).toBe(0n); // the default route
    // The lookup key's own prefix length bounds the match.
    expect(rd(m.lookup(key(20, 10, 1, 2, 3)))).toBe(16n);
    // Values are arena pointers a program can write through.
    const a = m.lookupAddr(key(32, 10, 1, 2, 3), 0);
    vm.write(a, u64(240));
    expect(rd(m.lookup(key(24, 10, 1, 2, 77)))).toBe(240n);
  });

  test('non-byte prefixes compare bit by bit; bits past the prefix do not matter', () => {
    const { m } = make();
    m.update(key(12, 0xab, 0xc0, 0, 0), u64(12), BPF_ANY, 0);
    expect(rd(m.lookup(key(32, 0xab, 0xcf, 0xff, 0xff)))).toBe(12n);
    expect(m.lookup(key(32, 0xab, 0xd0, 0, 0))).toBeNull();
    expect(m.update(key(12, 0xab, 0xcf, 1, 1), u64(13), BPF_NOEXIST, 0)).toBe(-EEXIST); // same prefix
    expect(m.update(key(12, 0xab, 0xcf, 1, 1), u64(13), BPF_EXIST, 0)).toBe(0);
    expect(m.entries()).toEqual([{ key: key(12, 0xab, 0xcf, 1, 1), value: u64(13) }]);
  });

  test('flags, prefix bounds, full map and delete', () => {
    const { m } = make(2);
    expect(m.update(key(33, 1, 2, 3, 4), u64(1), BPF_ANY, 0)).toBe(-EINVAL);
    expect(m.update(key(8, 1, 0, 0, 0), u64(1), BPF_EXIST, 0)).toBe(-ENOENT);
    expect(m.update(key(8, 1, 0, 0, 0), u64(1), BPF_ANY, 0)).toBe(0);
    expect(m.update(key(16, 1, 1, 0, 0), u64(2), BPF_ANY, 0)).toBe(0);
    expect(m.update(key(24, 1, 1, 1, 0), u64(3), BPF_ANY, 0)).toBe(-ENOSPC);
    expect(m.delete(key(24, 1, 1, 1, 0))).toBe(-ENOENT);
    expect(m.delete(key(16, 1, 1, 9, 9))).toBe(0); // exact prefix, whatever follows it
    expect(rd(m.lookup(key(32, 1, 1, 1, 1)))).toBe(1n);
    expect(m.update(key(24, 1, 1, 1, 0), u64(3), BPF_ANY, 0)).toBe(0);
    expect(m.entries().map((e) => rd(e.value))).toEqual([3n, 1n]); // longest first
  });
});

describe('stack trace', () => {
  const make = (max = 4, depth = 4) => createMap(newVm(), mapSpec({ type: 'stack_trace', keySize: 4, valueSize: depth * 8, maxEntries: max }), 1n, CPUS) as StackTraceMap;

  test('the same stack gets the same id; values are zero-padded address arrays', () => {
    const m = make();
    const id = m.stackId([0x1000n, 0x2000n], 0n);
    expect(id).toBeGreaterThanOrEqual(0);
    expect(id).toBeLessThan(4);
    expect(m.stackId([0x1000n, 0x2000n], 0n)).toBe(id);
    expect(m.stack(id)).toEqual([0x1000n, 0x2000n]);
    const v = m.lookup(u32(id))!;
    expect(v.length).toBe(32);
    expect([0, 8, 16, 24].map((o) => new DataView(v.buffer, v.byteOffset).getBigUint64(o, true))).toEqual([0x1000n, 0x2000n, 0n, 0n]);
    // Deeper stacks are cut at the map's depth.
    const deep = m.stackId([1n, 2n, 3n, 4n, 5n, 6n], 0n);
    expect(m.stack(deep)).toEqual([1n, 2n, 3n, 4n]);
    expect(m.update(u32(id), new Uint8Array(32), BPF_ANY, 'all')).toBe(-EINVAL);
    expect(m.delete(u32(id))).toBe(0);
    expect(m.lookup(u32(id))).toBeNull();
  });

  test('collisions: -EEXIST unless BPF_F_REUSE_STACKID', () => {
    const m = make(1, 2); // one bucket: every different stack collides
    const a = m.stackId([0x10n], 0n);
    expect(a).toBe(0);
    expect(m.stackId([0x20n], 0n)).toBe(-EEXIST);
    expect(m.stackId([0x20n], BPF_F_REUSE_STACKID)).toBe(0);
    expect(m.stack(0)).toEqual([0x20n]);
    expect(m.stackId([0x20n], BPF_F_FAST_STACK_CMP)).toBe(0);
    expect(m.entries().length).toBe(1);
  });
});
