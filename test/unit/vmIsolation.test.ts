// The adversarial corpus of issue #13: programs that try to reach memory they do not own.
// Each is rejected at load with a verifier-style message naming the pc, faults at run time
// naming the region its pointer belonged to, or (helpers given bad buffers or another
// object's map) gets the helper's error. In every case nothing outside the program's own
// stack changes: the whole arena is compared before and after.
import { objectRegions } from '../../agent/maps/regions';
import type { BpfMap } from '../../agent/maps/BpfMap';
import { registerHelpers } from '../../agent/helpers/registerHelpers';
import { assemble } from '../../vm/ts/asm';
import { VmFault, VmLoadError } from '../../vm/ts/vm';
import { fakeEnv, type FakeEnv } from '../support/fakeEnv';

const CTX_SIZE = 168; // pt_regs on x86-64
/** lddw of this value + (map index << 16) + offset becomes a map value address (PSEUDO_MAP_VALUE). */
const MAP_VALUE_MAGIC = 0x7e00000000000000n;

interface World {
  env: FakeEnv;
  maps: Record<'a' | 'b' | 'hm' | 'rb' | 'ro' | 'data' | 'other', BpfMap>;
  object1: BpfMap[];
  ctx: number;
}

function world(): World {
  const env = fakeEnv();
  registerHelpers(env);
  const maps = {
    a: env.addMap({ type: 'array', name: 'a', valueSize: 8, maxEntries: 1 }),
    b: env.addMap({ type: 'array', name: 'b', valueSize: 8, maxEntries: 1 }),
    hm: env.addMap({ type: 'hash', name: 'hm', keySize: 4, valueSize: 8, maxEntries: 4 }),
    rb: env.addMap({ type: 'ringbuf', name: 'rb', keySize: 0, valueSize: 0, maxEntries: 4096 }),
    ro: env.addMap({ type: 'array', name: '.rodata', valueSize: 16, maxEntries: 1, origin: 'rodata', readOnly: true }),
    data: env.addMap({ type: 'array', name: '.data', valueSize: 16, maxEntries: 1, origin: 'data' }),
    other: env.addMap({ type: 'hash', name: 'other', keySize: 4, valueSize: 8, maxEntries: 4 }), // a second object's
  };
  const key = new Uint8Array(4);
  const v = (n: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);
  maps.a.update(key, v(0x1111), 0, 'all');
  maps.b.update(key, v(0x2222), 0, 'all');
  maps.hm.update(key, v(1000), 0, 'all');
  maps.other.update(key, v(1000), 0, 'all');
  const object1 = [maps.a, maps.b, maps.hm, maps.rb, maps.ro, maps.data];
  const ctx = env.vm.allocRw(CTX_SIZE, 16);
  return { env, maps, object1, ctx };
}

/** Assembles `text`, turning lddw MAP_VALUE_MAGIC|idx<<16|off into lddw src=2 (map idx, offset off). */
function build(text: string): Uint8Array {
  const code = assemble(text);
  const dv = new DataView(code.buffer);
  for (let pc = 0; pc + 1 < code.length / 8; pc++) {
    if (code[pc * 8] !== 0x18) continue;
    const v = BigInt(dv.getUint32(pc * 8 + 4, true)) | (BigInt(dv.getUint32(pc * 8 + 12, true)) << 32n);
    if ((v & 0xff00000000000000n) === MAP_VALUE_MAGIC) {
      code[pc * 8 + 1] = (code[pc * 8 + 1] & 0x0f) | 0x20;
      dv.setUint32(pc * 8 + 4, Number((v >> 16n) & 0xffn), true);
      dv.setUint32(pc * 8 + 12, Number(v & 0xffffn), true);
    }
    pc++;
  }
  return code;
}

type Outcome = { load: RegExp } | { fault: RegExp } | { ret: bigint };
interface Case {
  name: string;
  asm: (w: World) => string;
  expect: Outcome;
  /** u64 values at ctx+0, +8, ... (the program's "arguments") */
  args?: bigint[] | ((w: World) => bigint[]);
  /** The run may legitimately change the ring buffer (reservations). */
  ring?: boolean;
}

const h = (m: BpfMap): string => '0x' + m.handle.toString(16);
const mv = (w: World, m: BpfMap, off = 0): string => '0x' + (MAP_VALUE_MAGIC | (BigInt(w.object1.indexOf(m)) << 16n) | BigInt(off)).toString(16);
const lookup = (m: string): string => `stw [%r10-4], 0\nlddw %r1, ${m}\nmov %r2, %r10\nadd %r2, -4\ncall 1`;
const reserve = (w: World, size: number): string => `lddw %r1, ${h(w.maps.rb)}\nmov %r2, ${size}\nmov %r3, 0\ncall 131`;
const arg0 = 'ldxdw %r6, [%r1+0]'; // an unknown scalar from the context

const cases: Case[] = [
  // --- stack: constant offsets are checked at load, variable ones at run time
  { name: 'stack read above r10 (issue example)', asm: () => 'ldxdw %r0, [%r10+64]\nexit', expect: { load: /^pc 0: invalid read from stack R10 off=64 size=8/ } },
  { name: 'stack write at r10+0', asm: () => 'stdw [%r10+0], 1\nmov %r0, 0\nexit', expect: { load: /^pc 0: invalid write to stack R10 off=0 size=8/ } },
  { name: 'stack write far below the frame', asm: () => 'stdw [%r10-4096], 1\nmov %r0, 0\nexit', expect: { load: /^pc 0: invalid write to stack R10 off=-4096/ } },
  { name: 'stack read just below the frame', asm: () => 'ldxw %r0, [%r10-516]\nexit', expect: { load: /^pc 0: invalid read from stack R10 off=-516 size=4/ } },
  { name: 'stack read straddling r10', asm: () => 'ldxdw %r0, [%r10-4]\nexit', expect: { load: /^pc 0: invalid read from stack R10 off=-4 size=8/ } },
  { name: 'stack pointer moved below the frame by a constant', asm: () => 'mov %r1, %r10\nadd %r1, -600\nldxb %r0, [%r1]\nexit', expect: { load: /^pc 2: invalid read from stack R1 off=-600 size=1/ } },
  { name: 'stack read at a variable offset above the frame', asm: () => `${arg0}\nmov %r3, %r10\nadd %r3, %r6\nldxdw %r0, [%r3-8]\nexit`, args: [8n], expect: { fault: /^pc 3: out-of-region memory access at address 0x[0-9a-f]+ in .*: outside the stack frame/ } },
  { name: 'stack write at a variable offset below the frame', asm: () => `${arg0}\nmov %r3, %r10\nsub %r3, %r6\nstxdw [%r3], %r6\nmov %r0, 0\nexit`, args: [600n], expect: { fault: /^pc 3: .*outside the stack frame/ } },
  { name: 'spilled stack pointer keeps its provenance', asm: () => 'mov %r1, %r10\nstxdw [%r10-8], %r1\nldxdw %r2, [%r10-8]\nldxdw %r0, [%r2+8]\nexit', expect: { load: /^pc 3: invalid read from stack R2 off=8 size=8/ } },
  { name: 'spilled context pointer keeps its provenance', asm: () => 'stxdw [%r10-8], %r1\nldxdw %r6, [%r10-8]\nldxdw %r0, [%r6+168]\nexit', expect: { load: /^pc 2: invalid ctx access off=168 size=8 \(the context is 168 bytes\)/ } },
  { name: 'uninitialised stack slot is no pointer', asm: () => 'ldxdw %r1, [%r10-16]\nldxdw %r0, [%r1]\nexit', expect: { load: /^pc 1: R1 invalid mem access 'scalar'/ } },
  { name: 'partially overwritten spill is no pointer', asm: () => 'stxdw [%r10-8], %r1\nstb [%r10-8], 0\nldxdw %r2, [%r10-8]\nldxdw %r0, [%r2]\nexit', expect: { load: /^pc 3: R2 invalid mem access 'scalar'/ } },
  // --- context: its real length, read-only
  { name: 'context read past pt_regs', asm: () => 'ldxdw %r0, [%r1+168]\nexit', expect: { load: /^pc 0: invalid ctx access off=168 size=8/ } },
  { name: 'context read at +4096', asm: () => 'ldxdw %r0, [%r1+4096]\nexit', expect: { load: /^pc 0: invalid ctx access off=4096/ } },
  { name: 'context read before its start', asm: () => 'ldxdw %r0, [%r1-8]\nexit', expect: { load: /^pc 0: invalid ctx access off=-8/ } },
  { name: 'context write', asm: () => 'stdw [%r1+0], 1\nmov %r0, 0\nexit', expect: { load: /^pc 0: cannot write into ctx/ } },
  { name: 'atomic add on the context', asm: () => 'mov %r2, 1\nlock add [%r1+8], %r2\nmov %r0, 0\nexit', expect: { load: /^pc 1: cannot write into ctx/ } },
  { name: 'context read at a variable offset', asm: () => `${arg0}\nadd %r1, %r6\nldxb %r0, [%r1]\nexit`, args: [1000n], expect: { fault: /^pc 2: .*outside the context/ } },
  { name: 'context pointer moved onto a map by a variable offset', asm: () => `${arg0}\nadd %r1, %r6\nldxdw %r0, [%r1]\nexit`, args: (w) => [BigInt(w.maps.b.lookupAddr(new Uint8Array(4), 0) - w.ctx)], expect: { fault: /^pc 2: .*outside the context/ } },
  // --- map values: value_size, and NULL
  { name: 'map value + 8 (onto the next map, issue example)', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nstdw [%r0+8], 0xdead\nout: mov %r0, 0\nexit`, expect: { load: /^pc 7: invalid access to map value off=8 size=8 value_size=8 \(map a\)/ } },
  { name: 'map value + 16 read', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nldxdw %r0, [%r0+16]\nout: exit`, expect: { load: /^pc 7: invalid access to map value off=16/ } },
  { name: 'map value - 8 (the hash map\'s neighbour)', asm: (w) => `${lookup(h(w.maps.hm))}\njeq %r0, 0, out\nldxdw %r0, [%r0-8]\nout: exit`, expect: { load: /^pc 7: invalid access to map value off=-8/ } },
  { name: 'atomic add past a map value', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nmov %r1, 1\nlock add [%r0+8], %r1\nout: mov %r0, 0\nexit`, expect: { load: /^pc 8: invalid access to map value off=8/ } },
  { name: 'map value at a variable offset', asm: (w) => `${arg0}\n${lookup(h(w.maps.a))}\njeq %r0, 0, out\nadd %r0, %r6\nstxdw [%r0], %r6\nout: mov %r0, 0\nexit`, args: [8n], expect: { fault: /^pc 9: .*outside a value of map a \(value_size 8\)/ } },
  { name: 'hash value at a variable offset onto its index', asm: (w) => `${arg0}\n${lookup(h(w.maps.hm))}\njeq %r0, 0, out\nsub %r0, %r6\nstxdw [%r0], %r6\nout: mov %r0, 0\nexit`, args: [64n], expect: { fault: /^pc 9: .*outside a value of map hm/ } },
  { name: 'lookup result used without a NULL check (array index out of range)', asm: (w) => `stw [%r10-4], 5\nlddw %r1, ${h(w.maps.a)}\nmov %r2, %r10\nadd %r2, -4\ncall 1\nldxdw %r0, [%r0]\nexit`, expect: { fault: /^pc 6: out-of-region memory access at address 0x0 .*NULL pointer/ } },
  { name: 'lookup result used without a NULL check (missing hash key)', asm: (w) => `stw [%r10-4], 9\nlddw %r1, ${h(w.maps.hm)}\nmov %r2, %r10\nadd %r2, -4\ncall 1\nstdw [%r0], 1\nmov %r0, 0\nexit`, expect: { fault: /^pc 6: .*NULL pointer/ } },
  { name: 'pointer moved from one map value to another by a constant', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nadd %r0, 0x1000\nstdw [%r0], 1\nout: mov %r0, 0\nexit`, expect: { load: /^pc 8: invalid access to map value off=4096/ } },
  { name: 'bitwise arithmetic on a pointer gives a number', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nor %r0, 8\nldxdw %r0, [%r0]\nout: exit`, expect: { load: /^pc 8: R0 invalid mem access 'scalar'/ } },
  { name: 'difference of two pointers is a number', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nmov %r1, %r0\nsub %r1, %r10\nldxdw %r0, [%r1]\nout: exit`, expect: { load: /^pc 9: R1 invalid mem access 'scalar'/ } },
  { name: 'helper result that is a number', asm: () => 'call 14\nldxdw %r0, [%r0]\nexit', expect: { load: /^pc 1: R0 invalid mem access 'scalar'/ } },
  { name: 'absolute arena address is a number', asm: (w) => `lddw %r1, 0x${w.maps.b.lookupAddr(new Uint8Array(4), 0).toString(16)}\nstdw [%r1], 1\nmov %r0, 0\nexit`, expect: { load: /^pc 2: R1 invalid mem access 'scalar'/ } },
  // --- global data
  { name: 'write to .rodata', asm: (w) => `lddw %r1, ${mv(w, w.maps.ro)}\nstw [%r1+0], 1\nmov %r0, 0\nexit`, expect: { load: /^pc 2: write into read-only map value \(map \.rodata\)/ } },
  { name: 'write to .rodata through a lookup', asm: (w) => `${lookup(h(w.maps.ro))}\njeq %r0, 0, out\nstb [%r0], 1\nout: mov %r0, 0\nexit`, expect: { load: /^pc 7: write into read-only map value \(map \.rodata\)/ } },
  { name: '.data read past its size', asm: (w) => `lddw %r1, ${mv(w, w.maps.data, 8)}\nldxdw %r0, [%r1+8]\nexit`, expect: { load: /^pc 2: invalid access to map value off=16 size=8 value_size=16 \(map \.data\)/ } },
  { name: '.data write at a variable offset', asm: (w) => `${arg0}\nlddw %r1, ${mv(w, w.maps.data)}\nadd %r1, %r6\nstxdw [%r1], %r6\nmov %r0, 0\nexit`, args: [16n], expect: { fault: /^pc 4: .*outside a value of map \.data/ } },
  // --- ring buffer records: their size, until submit or discard
  { name: 'ringbuf record written past its size', asm: (w) => `${reserve(w, 16)}\njeq %r0, 0, out\nstdw [%r0+16], 1\nmov %r1, %r0\nmov %r2, 0\ncall 132\nout: mov %r0, 0\nexit`, expect: { load: /^pc 6: invalid access to ringbuf record off=16 size=8 \(reserved 16 bytes\)/ } },
  { name: 'ringbuf record header read', asm: (w) => `${reserve(w, 16)}\njeq %r0, 0, out\nldxw %r3, [%r0-8]\nmov %r1, %r0\nmov %r2, 0\ncall 133\nout: mov %r0, 0\nexit`, expect: { load: /^pc 6: invalid access to ringbuf record off=-8/ } },
  { name: 'ringbuf record used after submit', asm: (w) => `${reserve(w, 16)}\njeq %r0, 0, out\nmov %r6, %r0\nmov %r1, %r0\nmov %r2, 0\ncall 132\nstdw [%r6], 1\nout: mov %r0, 0\nexit`, expect: { load: /^pc 10: R6 invalid mem access 'scalar'/ } },
  { name: 'ringbuf record spilled, discarded, reloaded', asm: (w) => `${reserve(w, 16)}\njeq %r0, 0, out\nstxdw [%r10-16], %r0\nmov %r1, %r0\nmov %r2, 0\ncall 133\nldxdw %r1, [%r10-16]\nldxdw %r0, [%r1]\nout: exit`, expect: { load: /^pc 11: R1 invalid mem access 'scalar'/ } },
  { name: 'ringbuf record at a variable offset', asm: (w) => `${arg0}\n${reserve(w, 16)}\njeq %r0, 0, out\nmov %r7, %r0\nadd %r0, %r6\nstdw [%r0], 1\nmov %r1, %r7\nmov %r2, 0\ncall 133\nout: mov %r0, 0\nexit`, args: [4096n], ring: true, expect: { fault: /^pc 9: .*a ringbuf record at an offset not known at load time/ } },
  { name: 'ringbuf reservation that failed, used without a NULL check', asm: (w) => `${reserve(w, 8192)}\nstdw [%r0], 1\nmov %r0, 0\nexit`, ring: true, expect: { fault: /^pc 5: .*NULL pointer/ } },
  // --- subprograms and unknown provenance
  { name: 'callee writes past its caller\'s frame', asm: () => 'mov %r1, %r10\nadd %r1, -8\nmov %r2, 7\ncall local f\nmov %r0, 0\nexit\nf: stxdw [%r1+8], %r2\nmov %r0, 0\nexit', expect: { load: /^pc 6: invalid write to stack R1 off=512 size=8 \(a caller's frame\)/ } },
  { name: 'callee writes past its caller\'s frame at a variable offset', asm: () => `${arg0}\nmov %r1, %r10\nadd %r1, -8\nmov %r2, %r6\ncall local f\nmov %r0, 0\nexit\nf: add %r1, %r2\nstxdw [%r1], %r2\nmov %r0, 0\nexit`, args: [8n], expect: { fault: /^pc 8: .*outside the stack frame of the caller 1 level/ } },
  { name: 'join of a stack and a map pointer used out of both', asm: (w) => `${arg0}\n${lookup(h(w.maps.a))}\njeq %r0, 0, out\njeq %r6, 0, s\nmov %r0, %r10\ns: ldxdw %r0, [%r0+8]\nout: exit`, args: [0n], expect: { fault: /^pc 10: .*not inside any region the program owns/ } },
  // --- helpers: buffers must be the program's own, maps its object's
  { name: 'probe_read_user into a buffer crossing the frame top', asm: () => 'mov %r1, %r10\nadd %r1, -8\nmov %r2, 16\nmov %r3, 0\ncall 112\nexit', expect: { ret: -14n } },
  { name: 'get_current_comm larger than the map value', asm: (w) => `${lookup(h(w.maps.a))}\njeq %r0, 0, out\nmov %r1, %r0\nmov %r2, 16\ncall 16\nout: exit`, expect: { ret: -14n } },
  { name: 'probe_read_kernel from another object\'s map value', asm: (w) => `mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\nlddw %r3, 0x${w.maps.other.lookupAddr(new Uint8Array(4), 0).toString(16)}\ncall 113\nexit`, expect: { ret: -14n } },
  { name: 'another object\'s map: lookup gives NULL', asm: (w) => `${lookup(h(w.maps.other))}\nldxdw %r0, [%r0]\nexit`, expect: { fault: /^pc 6: .*not inside any region the program owns/ } },
  { name: 'another object\'s map: update is refused', asm: (w) => `stw [%r10-4], 0\nstdw [%r10-16], 0x5a5a\nlddw %r1, ${h(w.maps.other)}\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\ncall 2\nexit`, expect: { ret: -22n } },
  { name: 'another object\'s map: delete is refused', asm: (w) => `stw [%r10-4], 0\nlddw %r1, ${h(w.maps.other)}\nmov %r2, %r10\nadd %r2, -4\ncall 3\nexit`, expect: { ret: -22n } },
  { name: 'another object\'s map value by lddw map_value', asm: () => `lddw %r1, ${'0x' + (MAP_VALUE_MAGIC | (6n << 16n)).toString(16)}\nldxdw %r0, [%r1]\nexit`, expect: { load: /^pc 0: (cannot resolve|lddw map value)/ } },
];

function runCase(c: Case): { outcome: string; changed: number[] } {
  const w = world();
  const vm = w.env.vm;
  const args = new Uint8Array(CTX_SIZE);
  (typeof c.args === 'function' ? c.args(w) : c.args ?? []).forEach((v, i) => new DataView(args.buffer).setBigUint64(i * 8, BigInt.asUintN(64, v), true));
  vm.write(w.ctx, args);
  const { roLo, rwLo, rwHi } = vm.bounds;
  const before = vm.memory().slice(roLo, rwHi);
  let outcome: string;
  try {
    const handle = vm.load(build(c.asm(w)), {
      name: 'evil',
      regions: objectRegions(w.object1),
      ctxSize: CTX_SIZE,
      ctxReadOnly: true,
      resolvePseudo: (src, imm, next) => {
        const m = w.object1[imm];
        if (src !== 2 || !m) throw new Error(`no map #${imm} in this object`);
        return BigInt(m.lookupAddr(new Uint8Array(4), 0) + next);
      },
    });
    outcome = `ret ${BigInt.asIntN(64, vm.run(handle, w.ctx, CTX_SIZE))}`;
  } catch (e) {
    if (e instanceof VmLoadError) outcome = `load ${e.message}`;
    else if (e instanceof VmFault) outcome = `fault ${e.message}`;
    else throw e;
  }
  const after = vm.memory().slice(roLo, rwHi);
  const stackEnd = rwLo + 4096;
  const ring = w.maps.rb.valueRegion!();
  const changed: number[] = [];
  for (let i = 0; i < after.length; i++) {
    const a = roLo + i;
    if (after[i] === before[i] || (a >= rwLo && a < stackEnd)) continue;
    if (c.ring && a >= ring.base && a < ring.base + ring.size) continue;
    changed.push(a);
  }
  return { outcome, changed };
}

describe('isolation corpus', () => {
  test('has at least 40 programs', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { outcome, changed } = runCase(c);
    if ('load' in c.expect) expect(outcome).toMatch(new RegExp('^load ' + c.expect.load.source.replace(/^\^/, '')));
    else if ('fault' in c.expect) expect(outcome).toMatch(new RegExp('^fault ' + c.expect.fault.source.replace(/^\^/, '')));
    else expect(outcome).toBe(`ret ${c.expect.ret}`);
    expect(changed.map((a) => '0x' + a.toString(16))).toEqual([]);
  });
});
