// Isolation fuzz: random programs that get pointers (context, stack, two maps' values) and
// do arithmetic, spills, reloads, branches and memory accesses on them, run on the wasm build
// and on the native build (bpfvm-native `iso` job) with the same layout. Every byte of the
// arena outside the program's stack, its context and its map values is a canary: whatever
// the program does (load error, fault or a result), no canary may change, and both builds
// agree. VM_ISO_FUZZ_RUNS=N / VM_ISO_FUZZ_SEED=S for bigger runs (scripts/stress.sh).
import * as fc from 'fast-check';
import { runNative, toHex, vmModule } from '../support/vmSupport';
import { BpfVm, VmFault, VmLoadError, type VmRegion } from '../../vm/ts/vm';
import { registerTestHelpers } from '../../vm/ts/conformance';
import { disassemble } from '../../vm/ts/disasm';

const RUNS = Number(process.env.VM_ISO_FUZZ_RUNS ?? 400);
const SEED = Number(process.env.VM_ISO_FUZZ_SEED ?? 1313);
const ARENA = 65536;
const BUDGET = 5000;
const ISO_A = 256; // map 1: two 16-byte values, 32 bytes apart
const ISO_B = 512; // map 2: one 8-byte value

type W = [number, number, number, number, number]; // opcode, dst, src, off, imm

function encode(words: W[]): Uint8Array {
  const out = new Uint8Array(words.length * 8);
  const dv = new DataView(out.buffer);
  words.forEach(([op, d, s, off, imm], i) => {
    dv.setUint8(i * 8, op);
    dv.setUint8(i * 8 + 1, ((s & 15) << 4) | (d & 15));
    dv.setInt16(i * 8 + 2, off, true);
    dv.setInt32(i * 8 + 4, imm, true);
  });
  return out;
}

// r6 = ctx, r7 = map 1 value 0, r8 = map 1 value 1, r9 = map 2 value (each may be NULL: no checks)
const lookup = (map: number, keyOff: number, into: number): W[] => [
  [0xb7, 1, 0, 0, map], [0xbf, 2, 10, 0, 0], [0x07, 2, 0, 0, keyOff], [0x85, 0, 0, 0, 1], [0xbf, into, 0, 0, 0],
];
const PROLOGUE: W[] = [
  [0x62, 10, 0, -4, 0], [0x62, 10, 0, -8, 1], [0xbf, 6, 1, 0, 0],
  ...lookup(1, -4, 7), ...lookup(1, -8, 8), ...lookup(2, -4, 9),
];

const ptrReg = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(6, 7, 8, 9, 10) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 3) });
const ptr = fc.constantFrom(6, 7, 8, 9); // registers that hold pointers after the prologue
const scratch = fc.integer({ min: 0, max: 5 });
const anyReg = fc.integer({ min: 0, max: 9 });
const size = fc.constantFrom(0x00, 0x08, 0x10, 0x18);
const off = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -16, max: 24 }) },
  { weight: 1, arbitrary: fc.integer({ min: -530, max: -490 }) },
  { weight: 1, arbitrary: fc.constantFrom(-512, -8, 0, 8, 16, 24, 32, 168, 4096, -4096) },
);
const delta = fc.oneof(fc.constantFrom(8, 16, 24, 32, 64, 256, 512, -8, -16, -32, -256, -512), fc.integer({ min: -600, max: 600 }));

// Mostly in-bounds offsets for each pointer's region (so programs get past the verifier and
// their run-time checks are exercised), sometimes anything.
const inBounds: Record<number, fc.Arbitrary<number>> = {
  6: fc.integer({ min: 0, max: 40 }),
  7: fc.integer({ min: 0, max: 8 }),
  8: fc.integer({ min: 0, max: 8 }),
  9: fc.constant(0),
  10: fc.integer({ min: -64, max: -8 }),
};
const memRef: fc.Arbitrary<[number, number]> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(6, 7, 8, 9, 10).chain((b) => inBounds[b].map((o) => [b, o] as [number, number])) },
  { weight: 1, arbitrary: fc.tuple(ptrReg, off) },
);

const insn: fc.Arbitrary<W[]> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(size, scratch, memRef).map(([sz, d, [s, o]]) => [[0x61 | sz, d, s, o, 0]] as W[]) },
  { weight: 4, arbitrary: fc.tuple(size, memRef, anyReg).map(([sz, [d, o], s]) => [[0x63 | sz, d, s, o, 0]] as W[]) },
  { weight: 2, arbitrary: fc.tuple(size, memRef, fc.integer()).map(([sz, [d, o], imm]) => [[0x62 | sz, d, 0, o, imm]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), memRef, anyReg).map(([is32, [d, o], s]) => [[is32 ? 0xc3 : 0xdb, d, s, o & ~7, 0x01]] as W[]) },
  // pointer arithmetic by constants and by bytes of the context (unknown at load time)
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(0x07, 0x17), ptr, delta).map(([op, d, imm]) => [[op, d, 0, 0, imm]] as W[]) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(0x0f, 0x1f), ptr, fc.integer({ min: 0, max: 40 }), fc.boolean()).map(([op, d, k, wide]) => [[wide ? 0x69 : 0x71, 3, 6, k, 0], [op, d, 3, 0, 0]] as W[]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x0f, 0x1f, 0xbf, 0x5f, 0x4f), anyReg, fc.integer({ min: 0, max: 10 })).map(([op, d, s]) => [[op, d, s, 0, 0]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(scratch, delta).map(([d, imm]) => [[0xb7, d, 0, 0, imm]] as W[]) },
  // spill and reload through the stack
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 10 }), anyReg).map(([k, s, d]) => [[0x7b, 10, s, -8 * k - 8, 0], [0x79, d, 10, -8 * k - 8, 0]] as W[]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(0x15, 0x55, 0x25, 0xa5), anyReg, fc.integer({ min: 0, max: 4 }), fc.constantFrom(0, 1, 8, 16)).map(([op, d, o, imm]) => [[op, d, 0, o, imm]] as W[]) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 4 }).map((o) => [[0x05, 0, 0, o, 0]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, 2, 3), fc.constantFrom(-4, -8, -16), ptr).map(([m, k, into]) => lookup(m, k, into)) },
);

const progArb = fc.record({ body: fc.array(insn, { minLength: 1, maxLength: 20 }), mem: fc.uint8Array({ minLength: 48, maxLength: 64 }) });

function allowed(a: number, rwLo: number, base: number, ctx: number, mlen: number): boolean {
  if (a >= rwLo && a < base) return true; // the stack
  if (a >= ctx && a < ctx + mlen) return true;
  const o = a - base;
  if (o >= ISO_A && o < ISO_A + 64 && (o - ISO_A) % 32 < 16) return true;
  return o >= ISO_B && o < ISO_B + 8;
}

const reasons: string[] = [];

function runWasm(code: Uint8Array, mem: Uint8Array): string {
  const vm = BpfVm.create(vmModule(), { roArenaBytes: ARENA, rwArenaBytes: ARENA, budget: BUDGET });
  registerTestHelpers(vm);
  const { roLo, rwLo, rwHi } = vm.bounds;
  const base = rwLo + 4096;
  const m = vm.memory();
  m.fill(0xa5, base, rwHi);
  m.fill(0, base + ISO_A, base + ISO_A + 64);
  m.fill(0, base + ISO_B, base + ISO_B + 8);
  vm.registerHelper(1, (map, key) => {
    if (!vm.isAccessible(key, 4, false)) return 0n;
    const k = new DataView(vm.memory().buffer).getUint32(Number(key), true);
    if (map === 1n && k < 2) return BigInt(base + ISO_A + 32 * k);
    if (map === 2n && k < 1) return BigInt(base + ISO_B);
    return 0n;
  });
  const regions: VmRegion[] = [
    { name: 'one', kind: 'values', handle: 1n, base: base + ISO_A, size: 64, stride: 32, valueSize: 16 },
    { name: 'two', kind: 'values', handle: 2n, base: base + ISO_B, size: 8, stride: 8, valueSize: 8 },
  ];
  let out: string;
  let before: Uint8Array | null = null;
  try {
    const h = vm.load(code, { regions });
    if (mem.length) vm.memory().set(mem, base);
    before = vm.memory().slice(roLo, rwHi);
    const r0 = vm.run(h, mem.length ? base : 0, mem.length);
    out = `ok ${r0} ${vm.lastInsnCount()}`;
  } catch (e) {
    if (e instanceof VmLoadError) {
      if (process.env.VM_FUZZ_VERBOSE) reasons.push(e.reason.replace(/[-\d]+/g, 'N'));
      return `load ${e.pc}`;
    }
    if (e instanceof VmFault) out = `fault ${e.kind} ${e.pc} ${e.addr ?? 0n}`;
    else throw e;
  }
  const now = vm.memory();
  let changed = 0;
  for (let i = 0; i < before!.length; i++) if (now[roLo + i] !== before![i] && !allowed(roLo + i, rwLo, base, base, mem.length)) changed++;
  return `${out} changed=${changed}`;
}

test(`no random program changes memory outside its regions, wasm and native (${RUNS} programs, seed ${SEED})`, () => {
  const cases = fc.sample(progArb, { seed: SEED, numRuns: RUNS }).map(({ body, mem }) => {
    const words: W[] = [...PROLOGUE, ...body.flat(), [0x95, 0, 0, 0, 0]];
    // Forward jumps stay inside the program.
    words.forEach((w, i) => { if ((w[0] & 7) === 5 && w[0] !== 0x85 && w[0] !== 0x95) w[3] = Math.min(w[3], words.length - 2 - i); });
    return { code: encode(words), mem };
  });
  const native = runNative(cases.map((c) => `iso ${toHex(c.code)} ${c.mem.length ? toHex(c.mem) : '-'} ${BUDGET}`), ['--ro', String(ARENA), '--rw', String(ARENA)]);
  expect(native).toHaveLength(cases.length);
  const seen = { ok: 0, fault: 0, load: 0 };
  cases.forEach((c, i) => {
    const w = runWasm(c.code, c.mem);
    const n = native[i].startsWith('load') ? native[i].split(' ').slice(0, 2).join(' ') : native[i];
    const where = `case ${i}:\n  wasm:   ${w}\n  native: ${native[i]}\n  ${disassemble(c.code, { withPc: true }).join('\n  ')}`;
    if (w !== n) throw new Error(`builds differ, ${where}`);
    if (/changed=[1-9]/.test(w)) throw new Error(`memory outside the program's regions changed, ${where}`);
    seen[w.split(' ')[0] as keyof typeof seen]++;
  });
  if (process.env.VM_FUZZ_VERBOSE) console.log(seen, [...new Set(reasons)].map((r) => `${reasons.filter((x) => x === r).length} ${r}`));
  // The generator must exercise all three outcomes.
  expect(seen.ok).toBeGreaterThan(RUNS / 20);
  expect(seen.fault).toBeGreaterThan(RUNS / 20);
  expect(seen.load).toBeGreaterThan(RUNS / 20);
});
