// Helpers exercised through real eBPF programs on the wasm VM: program → VM → helper → map.
import { ProgArrayMap } from '../../agent/maps/ProgArrayMap';
import { RingBufMap } from '../../agent/maps/RingBufMap';
import { registerHelpers, SUPPORTED_HELPERS } from '../../agent/helpers/registerHelpers';
import { BPF_ANY, type BpfMap } from '../../agent/maps/BpfMap';
import { helperName } from '../../protocol/helperNames';
import { assemble } from '../../vm/ts/asm';
import { fakeEnv, type FakeEnv } from '../support/fakeEnv';
import { ownedRo } from '../support/vmRegions';

const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: bigint): Uint8Array => new Uint8Array(new BigUint64Array([v]).buffer);
const rdU64 = (b: Uint8Array, off = 0): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);
const cstr = (s: string): Uint8Array => new Uint8Array([...Buffer.from(s), 0]);
const h = (v: bigint | number): string => '0x' + v.toString(16);

interface Harness {
  env: FakeEnv;
  /** 256 writable bytes passed as ctx (r1) so programs can leave results for the test. */
  scratch: number;
  run(text: string): bigint;
  ro(data: Uint8Array): number;
  mem(len: number, off?: number): Uint8Array;
}

function harness(opts: Parameters<typeof fakeEnv>[0] = {}): Harness {
  const env = fakeEnv(opts);
  registerHelpers(env);
  const scratch = env.vm.allocRw(256);
  return {
    env,
    scratch,
    run(text) {
      const handle = env.vm.load(assemble(text));
      return BigInt.asIntN(64, env.vm.run(handle, scratch, 256));
    },
    ro: (data) => ownedRo(env.vm, data),
    mem: (len, off = 0) => env.vm.read(scratch + off, len),
  };
}

describe('registry', () => {
  test('SUPPORTED_HELPERS names match the kernel table', () => {
    for (const [id, name] of SUPPORTED_HELPERS) expect(helperName(id)).toBe(name);
    expect(SUPPORTED_HELPERS.size).toBe(36);
  });
});

describe('map helpers', () => {
  test('lookup/update/delete counter program', () => {
    const t = harness();
    const m = t.env.addMap({ type: 'hash', maxEntries: 4 });
    const prog = `
      stw [%r10-4], 7
      lddw %r1, ${h(m.handle)}
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, init
      ldxdw %r1, [%r0]
      add %r1, 1
      stxdw [%r0], %r1
      mov %r0, %r1
      exit
    init:
      stdw [%r10-16], 1
      lddw %r1, ${h(m.handle)}
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      call 2
      exit`;
    expect(t.run(prog)).toBe(0n);
    expect(t.run(prog)).toBe(2n);
    expect(t.run(prog)).toBe(3n);
    expect(rdU64(m.lookup(u32(7)) as Uint8Array)).toBe(3n);
    const del = `
      stw [%r10-4], 7
      lddw %r1, ${h(m.handle)}
      mov %r2, %r10
      add %r2, -4
      call 3
      exit`;
    expect(t.run(del)).toBe(0n);
    expect(t.run(del)).toBe(-2n);
    expect(m.lookup(u32(7))).toBeNull();
  });

  test('bad pointers and handles give errors, not faults', () => {
    const t = harness();
    const m = t.env.addMap({ type: 'hash' });
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 0\ncall 1\nexit`)).toBe(0n);
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 2\nexit`)).toBe(-14n);
    expect(t.run(`mov %r1, 12345\nmov %r2, %r10\nadd %r2, -8\ncall 1\nexit`)).toBe(0n);
    expect(t.run(`mov %r1, 12345\nmov %r2, %r10\nadd %r2, -8\ncall 3\nexit`)).toBe(-22n);
  });

  test('program-side per-CPU update writes the run CPU slot', () => {
    const t = harness({ run: { cpu: 3 } });
    const m = t.env.addMap({ type: 'percpu_array', maxEntries: 2 });
    t.run(`
      stw [%r10-4], 1
      lddw %r1, ${h(m.handle)}
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, out
      mov %r1, 5
      lock add [%r0+0], %r1
    out:
      mov %r0, 0
      exit`);
    expect((m.lookup(u32(1)) as Uint8Array[]).map((v) => rdU64(v))).toEqual([0n, 0n, 0n, 5n]);
  });

  test('.rodata cannot be updated by a program', () => {
    const t = harness();
    const ro = t.env.addMap({ type: 'array', origin: 'rodata', readOnly: true, maxEntries: 1 });
    expect(t.run(`stw [%r10-4], 0\nstdw [%r10-16], 1\nlddw %r1, ${h(ro.handle)}\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\nexit`)).toBe(-1n);
  });

  test('tail_call jumps through prog_array; a missing slot falls through', () => {
    const t = harness();
    const pa = t.env.addMap({ type: 'prog_array', maxEntries: 4 }) as ProgArrayMap;
    const target = t.env.vm.load(assemble('mov %r0, 42\nexit'));
    pa.setProgram(1, target);
    const caller = (i: number): string => `lddw %r2, ${h(pa.handle)}\nmov %r3, ${i}\ncall 12\nstxdw [%r1+0], %r0\nmov %r0, 1\nexit`;
    expect(t.run(caller(1))).toBe(42n);
    expect(t.run(caller(2))).toBe(1n);
    expect(rdU64(t.mem(8))).toBe(BigInt.asUintN(64, -2n));
    expect(t.run(caller(9))).toBe(1n);
    expect(rdU64(t.mem(8))).toBe(BigInt.asUintN(64, -7n));
  });
});

describe('probe_read family', () => {
  const ADDR = 0x7f0012340000n;
  const setup = (): Harness => {
    const t = harness();
    t.env.target.map(ADDR, Uint8Array.from({ length: 32 }, (_, i) => i + 1));
    t.env.target.mapString(ADDR + 0x100n, 'hello target');
    return t;
  };
  const read = (id: number, size: number, src: bigint): string => `mov %r6, %r1\nmov %r2, ${size}\nlddw %r3, ${h(src)}\ncall ${id}\nexit`;

  test.each([4, 112])('helper %i copies target memory, zeroes and -EFAULTs on bad source', (id) => {
    const t = setup();
    expect(t.run(read(id, 8, ADDR + 2n))).toBe(0n);
    expect(Array.from(t.mem(8))).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(t.run(read(id, 8, 0x10n))).toBe(-14n);
    expect(Array.from(t.mem(8))).toEqual(new Array(8).fill(0));
    expect(t.run(read(id, 8, ADDR + 30n))).toBe(-14n); // crosses the end of the region
    expect(t.run(read(id, 0, ADDR))).toBe(0n);
  });

  test('dst outside the VM rw arena is -EFAULT', () => {
    const t = setup();
    expect(t.run(`mov %r1, 16\nmov %r2, 8\nlddw %r3, ${h(ADDR)}\ncall 112\nexit`)).toBe(-14n);
  });

  test('probe_read_kernel reads VM memory only', () => {
    const t = setup();
    const ro = t.ro(new Uint8Array([9, 8, 7, 6]));
    expect(t.run(read(113, 4, BigInt(ro)))).toBe(0n);
    expect(Array.from(t.mem(4))).toEqual([9, 8, 7, 6]);
    expect(t.run(read(113, 4, ADDR))).toBe(-14n);
  });

  test.each([45, 114])('string helper %i: length incl. NUL, truncation', (id) => {
    const t = setup();
    expect(t.run(read(id, 64, ADDR + 0x100n))).toBe(13n);
    expect(Buffer.from(t.mem(13)).toString('latin1')).toBe('hello target\0');
    expect(t.run(read(id, 6, ADDR + 0x100n))).toBe(6n);
    expect(Buffer.from(t.mem(6)).toString('latin1')).toBe('hello\0');
    expect(t.run(read(id, 6, 0x20n))).toBe(-14n);
  });

  test('probe_read_kernel_str reads VM strings', () => {
    const t = setup();
    const s = t.ro(cstr('vm string'));
    expect(t.run(read(115, 32, BigInt(s)))).toBe(10n);
    expect(t.run(read(115, 32, ADDR + 0x100n))).toBe(-14n);
  });
});

describe('task helpers', () => {
  test('ids, cpu, time, comm, func ip, cookie', () => {
    const t = harness({ run: { tid: 4321, cpu: 2, funcIp: 0x401000n, cookie: 99n } });
    expect(t.run('call 14\nexit')).toBe((4000n << 32n) | 4321n);
    expect(t.run('call 15\nexit')).toBe((1002n << 32n) | 1001n);
    expect(t.run('call 8\nexit')).toBe(2n);
    expect(t.run('call 5\nexit')).toBe(123456789n);
    expect(t.run('call 125\nexit')).toBe(223456789n);
    expect(t.run('call 173\nexit')).toBe(0x401000n);
    expect(t.run('call 174\nexit')).toBe(99n);
    t.env.vm.write(t.scratch, new Uint8Array(16).fill(0xee));
    expect(t.run('mov %r2, 16\ncall 16\nexit')).toBe(0n);
    expect(Buffer.from(t.mem(16)).toString('latin1')).toBe('victim-process-\0');
    expect(t.run('mov %r2, 4\ncall 16\nexit')).toBe(0n);
    expect(Buffer.from(t.mem(4)).toString('latin1')).toBe('vic\0');
    const r = new Set<bigint>();
    for (let i = 0; i < 20; i++) r.add(t.run('call 7\nexit'));
    expect(r.size).toBeGreaterThan(15);
    for (const v of r) expect(v >= 0n && v < 1n << 32n).toBe(true);
  });

  test('override_return: -EINVAL without an override hook, else forwards the value', () => {
    const t = harness();
    expect(t.run('mov %r2, 5\ncall 58\nexit')).toBe(-22n);
    const seen: bigint[] = [];
    t.env.run.override = (v) => seen.push(v);
    expect(t.run('mov %r2, -1\ncall 58\nexit')).toBe(0n);
    expect(seen).toEqual([BigInt.asUintN(64, -1n)]);
  });

  test('strncmp', () => {
    const t = harness();
    const lit = t.ro(cstr('abc'));
    t.env.vm.write(t.scratch, cstr('abd'));
    const cmp = (n: number): bigint => t.run(`mov %r2, ${n}\nlddw %r3, ${h(lit)}\ncall 182\nexit`);
    expect(cmp(2)).toBe(0n);
    expect(cmp(3)).toBe(1n);
    t.env.vm.write(t.scratch, cstr('abc'));
    expect(cmp(8)).toBe(0n);
    t.env.vm.write(t.scratch, cstr('ab'));
    expect(cmp(8)).toBe(-1n);
  });
});

describe('printk and snprintf', () => {
  test('trace_printk emits an event with VM and target strings', () => {
    const t = harness({ run: { tid: 77, program: 'on_hit' } });
    t.env.target.mapString(0x7f0000100000n, 'from target');
    const fmt = cstr('n=%d u=%u s=%s t=%s\n');
    const f = t.ro(fmt);
    const s = t.ro(cstr('rodata'));
    const r = t.run(`lddw %r1, ${h(f)}\nmov %r2, ${fmt.length}\nmov %r3, -5\nlddw %r4, ${h(s)}\nlddw %r5, ${h(0x7f0000100000n)}\ncall 6\nexit`);
    expect(t.env.fakeEvents.events).toEqual([]); // 4 conversions, 3 args: -EINVAL
    expect(r).toBe(-22n);
    const fmt2 = cstr('n=%d s=%s t=%s\n');
    const f2 = t.ro(fmt2);
    const r2 = t.run(`lddw %r1, ${h(f2)}\nmov %r2, ${fmt2.length}\nmov %r3, -5\nlddw %r4, ${h(s)}\nlddw %r5, ${h(0x7f0000100000n)}\ncall 6\nexit`);
    expect(t.env.fakeEvents.events).toEqual([{ type: 'printk', tid: 77, program: 'on_hit', text: 'n=-5 s=rodata t=from target' }]);
    expect(r2).toBe(BigInt('n=-5 s=rodata t=from target\n'.length));
  });

  test('trace_printk needs the NUL within fmt_size', () => {
    const t = harness();
    const f = t.ro(cstr('abc'));
    expect(t.run(`lddw %r1, ${h(f)}\nmov %r2, 3\ncall 6\nexit`)).toBe(-22n);
    expect(t.run(`mov %r1, 8\nmov %r2, 3\ncall 6\nexit`)).toBe(-14n);
  });

  test('trace_vprintk and snprintf take a u64 array', () => {
    const t = harness();
    const fmt = cstr('%s:%lld:%x:%c%c');
    const f = t.ro(fmt);
    const name = t.ro(cstr('k'));
    const data = new Uint8Array(40);
    [BigInt(name), -3n, 255n, 0x6fn, 0x6bn].forEach((v, i) => data.set(u64(BigInt.asUintN(64, v)), i * 8));
    t.env.vm.write(t.scratch + 128, data);
    const dataAddr = t.scratch + 128;
    expect(t.run(`lddw %r1, ${h(f)}\nmov %r2, ${fmt.length}\nlddw %r3, ${h(dataAddr)}\nmov %r4, 40\ncall 177\nexit`)).toBe(10n);
    expect(t.env.fakeEvents.events[0]).toMatchObject({ type: 'printk', text: 'k:-3:ff:ok' });
    expect(t.run(`lddw %r1, ${h(f)}\nmov %r2, ${fmt.length}\nlddw %r3, ${h(dataAddr)}\nmov %r4, 36\ncall 177\nexit`)).toBe(-22n);
    // snprintf into the scratch buffer, with truncation
    const sn = (size: number): bigint => t.run(`mov %r2, ${size}\nlddw %r3, ${h(f)}\nlddw %r4, ${h(dataAddr)}\nmov %r5, 40\ncall 165\nexit`);
    expect(sn(64)).toBe(11n);
    expect(Buffer.from(t.mem(11)).toString('latin1')).toBe('k:-3:ff:ok\0');
    expect(sn(5)).toBe(11n);
    expect(Buffer.from(t.mem(5)).toString('latin1')).toBe('k:-3\0');
  });
});

describe('records', () => {
  const rb = (t: Harness): RingBufMap => t.env.addMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096, index: 3 }) as RingBufMap;

  test('ringbuf reserve/submit/discard and output', () => {
    const t = harness({ run: { object: 2, cpu: 1 } });
    const m = rb(t);
    const reserveSubmit = (submitId: number): string => `
      lddw %r1, ${h(m.handle)}
      mov %r2, 16
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      lddw %r1, 0x1122334455667788
      stxdw [%r0+0], %r1
      stdw [%r0+8], 7
      mov %r1, %r0
      mov %r2, 0
      call ${submitId}
      mov %r0, 1
    out:
      exit`;
    expect(t.run(reserveSubmit(132))).toBe(1n);
    expect(t.run(reserveSubmit(133))).toBe(1n);
    const ev = t.env.fakeEvents.events;
    expect(ev).toHaveLength(1);
    const bytes = new Uint8Array(16);
    bytes.set(u64(0x1122334455667788n));
    bytes.set(u64(7n), 8);
    expect(ev[0]).toEqual({ type: 'record', object: 2, map: 3, cpu: 1, data: Buffer.from(bytes).toString('base64'), timeMs: expect.any(Number) });
    // ringbuf_output copies directly
    t.env.vm.write(t.scratch, new Uint8Array([1, 2, 3]));
    expect(t.run(`mov %r2, %r1\nlddw %r1, ${h(m.handle)}\nmov %r3, 3\nmov %r4, 0\ncall 130\nexit`)).toBe(0n);
    expect(ev[1]).toMatchObject({ type: 'record', data: 'AQID' });
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 1\ncall 134\nexit`)).toBe(4096n);
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 0\ncall 134\nexit`)).toBe(0n);
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 3\ncall 134\nexit`)).toBe(BigInt(24 + 24 + 16));
    // a too-large reservation is NULL
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 8192\nmov %r3, 0\ncall 131\nexit`)).toBe(0n);
  });

  test('a full event queue drops records: -ENOSPC and a count', () => {
    const t = harness({ eventCapacity: 0 });
    const m = rb(t);
    expect(t.run(`mov %r2, %r1\nlddw %r1, ${h(m.handle)}\nmov %r3, 8\nmov %r4, 0\ncall 130\nexit`)).toBe(-28n);
    expect(t.run(`lddw %r1, ${h(m.handle)}\nmov %r2, 8\nmov %r3, 0\ncall 131\nmov %r1, %r0\nmov %r2, 0\ncall 132\nexit`)).toBe(0n);
    expect(m.drops).toBe(2);
    expect(t.env.fakeEvents.dropped).toBe(2);
  });

  test('perf_event_output picks the CPU from flags', () => {
    const t = harness({ run: { cpu: 3 } });
    const pm: BpfMap = t.env.addMap({ type: 'perf_event_array', maxEntries: 0 });
    t.env.vm.write(t.scratch, new Uint8Array([0xaa, 0xbb]));
    const out = (flags: string): bigint => t.run(`mov %r4, %r1\nlddw %r2, ${h(pm.handle)}\nlddw %r3, ${flags}\nmov %r5, 2\ncall 25\nexit`);
    expect(out('0xffffffff')).toBe(0n);
    expect(out('0x1')).toBe(0n);
    expect(out('0x9')).toBe(-7n);
    expect(t.env.fakeEvents.events.map((e) => (e.type === 'record' ? [e.cpu, e.data] : null))).toEqual([
      [3, 'qrs='],
      [1, 'qrs='],
    ]);
    expect(pm.update(u32(0), u32(0), BPF_ANY, 'all')).toBeLessThan(0);
  });
});

test('bpf_loop is supported (VM intrinsic) and works with registered helpers', () => {
  const t = harness();
  const m = t.env.addMap({ type: 'array', maxEntries: 1 });
  const r = t.run(`
    mov %r1, 10
    lddw %r2, func body
    mov %r3, 0
    mov %r4, 0
    call 181
    exit
  body:
    stw [%r10-4], 0
    lddw %r1, ${h(m.handle)}
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, done
    mov %r1, 1
    lock add [%r0+0], %r1
  done:
    mov %r0, 0
    exit`);
  expect(r).toBe(10n);
  expect(rdU64(m.lookup(u32(0)) as Uint8Array)).toBe(10n);
  expect(SUPPORTED_HELPERS.get(181)).toBe('loop');
});
