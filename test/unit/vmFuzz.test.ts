// Differential property test: random valid-ish programs must behave identically on the wasm
// build (through the TS wrapper) and the native gcc build (bpfvm-native batch CLI): same r0 and
// instruction count, or the same fault / load error. Also checks that programs never modify the
// read-only region and always terminate. VM_FUZZ_RUNS=N for a bigger run (default 300).
import * as fc from 'fast-check';
import { runNative, toHex, vmModule } from '../support/vmSupport';
import { BpfVm, VmFault, VmLoadError } from '../../vm/ts/vm';
import { registerTestHelpers } from '../../vm/ts/conformance';
import { disassemble } from '../../vm/ts/disasm';

const RUNS = Number(process.env.VM_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.VM_FUZZ_SEED ?? 20240601);
const ARENA = 65536;
const BUDGET = 5000;

type W = [number, number, number, number, number]; // opcode, dst, src, off, imm

const reg = fc.integer({ min: 0, max: 9 });
const anyReg = fc.integer({ min: 0, max: 10 });
const smallImm = fc.oneof(fc.integer({ min: -16, max: 64 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.constantFrom(0, -1, 1, 31, 32, 63, 64, 0x7fffffff, -0x80000000));
const aluCode = fc.constantFrom(0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0);
const jmpCode = fc.constantFrom(0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0);
const size = fc.constantFrom(0x00, 0x08, 0x10, 0x18);
const memOff = fc.oneof(fc.integer({ min: -64, max: 64 }), fc.integer({ min: -600, max: 600 }), fc.integer({ min: -32768, max: 32767 }));
const memBase = fc.oneof(fc.constant(10), fc.constant(1), anyReg);

const insnArb: fc.Arbitrary<W[]> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(aluCode, fc.boolean(), fc.boolean(), reg, anyReg, smallImm, fc.constantFrom(0, 0, 0, 1)).map(([c, x, is64, d, s, imm, sgn]) => {
      const off = (c === 0x30 || c === 0x90) ? sgn : 0;
      return [[c | (x ? 0x08 : 0) | (is64 ? 0x07 : 0x04), d, x ? s : 0, off, x ? 0 : imm]] as W[];
    }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(8, 16, 32), fc.boolean(), reg, anyReg).map(([o, is64, d, s]) => [[is64 ? 0xbf : 0xbc, d, s, !is64 && o === 32 ? 16 : o, 0]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0xd4, 0xdc, 0xd7, 0x84, 0x87), reg, fc.constantFrom(16, 32, 64)).map(([c, d, w]) => [[c, d, 0, 0, c === 0x84 || c === 0x87 ? 0 : w]] as W[]) },
  { weight: 4, arbitrary: fc.tuple(jmpCode, fc.boolean(), fc.boolean(), anyReg, anyReg, smallImm, fc.integer({ min: -6, max: 6 })).map(([c, x, is32, d, s, imm, off]) => [[c | (x ? 0x08 : 0) | (is32 ? 0x06 : 0x05), d, x ? s : 0, off, x ? 0 : imm]] as W[]) },
  { weight: 1, arbitrary: fc.integer({ min: -6, max: 6 }).map((off) => [[0x05, 0, 0, off, 0]] as W[]) },
  { weight: 3, arbitrary: fc.tuple(size, fc.boolean(), reg, memBase, memOff).map(([sz, sx, d, s, off]) => [[(sx && sz !== 0x18 ? 0x81 : 0x61) | sz, d, s, off, 0]] as W[]) },
  { weight: 3, arbitrary: fc.tuple(size, fc.boolean(), memBase, anyReg, memOff, smallImm).map(([sz, x, d, s, off, imm]) => [[(x ? 0x63 : 0x62) | sz, d, x ? s : 0, off, x ? 0 : imm]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(fc.boolean(), fc.constantFrom(0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1), memBase, anyReg, fc.integer({ min: -64, max: 64 })).map(([is32, op, d, s, off]) => [[is32 ? 0xc3 : 0xdb, d, s, off & ~3, op]] as W[]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 181), fc.boolean()).map(([id, x]) => (x ? [[0xb7, 5, 0, 0, id], [0x8d, 5, 0, 0, 0]] : [[0x85, 0, 0, 0, id]]) as W[]) },
  { weight: 1, arbitrary: fc.tuple(reg, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([d, v]) => [[0x18, d, 0, 0, Number(BigInt.asIntN(32, v))], [0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))]] as W[]) },
  { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }).map((imm) => [[0x85, 0, 1, 0, imm]] as W[]) },
  // bpf_loop set-up: r2 = a subprogram address (PSEUDO_FUNC), small r1
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: -8, max: 8 }), fc.integer({ min: 0, max: 20 })).map(([rel, nr]) => [[0x18, 2, 4, 0, rel], [0, 0, 0, 0, 0], [0xb7, 1, 0, 0, nr], [0xb7, 4, 0, 0, 0]] as W[]) },
  { weight: 1, arbitrary: fc.constant([[0x95, 0, 0, 0, 0]] as W[]) },
);
// raw noise for the validator (inserted into some programs)
const noiseArb: fc.Arbitrary<W> = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: -4, max: 4 }), fc.constantFrom(0, 1, 8, 16, 32, 64, 0xe1, -1));

const progArb = fc.record({
  body: fc.array(insnArb, { minLength: 1, maxLength: 24 }),
  mem: fc.uint8Array({ minLength: 0, maxLength: 64 }),
  prologue: fc.boolean(),
  noise: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(noiseArb, fc.nat()) }),
});

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

function runWasm(code: Uint8Array, mem: Uint8Array): string {
  const vm = BpfVm.create(vmModule(), { roArenaBytes: ARENA, rwArenaBytes: ARENA, budget: BUDGET });
  registerTestHelpers(vm);
  const { roLo, rwLo } = vm.bounds;
  const roBefore = vm.read(roLo, rwLo - roLo);
  let out: string;
  try {
    const h = vm.load(code);
    let ctx = 0;
    if (mem.length) {
      ctx = vm.allocRw(mem.length, 8);
      vm.write(ctx, mem);
    }
    const r0 = vm.run(h, ctx, mem.length);
    out = `ok ${r0} ${vm.lastInsnCount()}`;
  } catch (e) {
    if (e instanceof VmLoadError) out = `load ${e.pc} ${e.reason}`;
    else if (e instanceof VmFault) out = `fault ${e.kind} ${e.pc} ${e.addr ?? 0n}`;
    else throw e;
  }
  expect(Buffer.from(vm.read(roLo, rwLo - roLo)).equals(Buffer.from(roBefore))).toBe(true);
  return out;
}

test(`wasm and native builds agree on ${RUNS} random programs (seed ${SEED})`, () => {
  const cases = fc.sample(progArb, { seed: SEED, numRuns: RUNS }).map(({ body, mem, prologue, noise }) => {
    if (noise) body.splice(noise[1] % (body.length + 1), 0, [noise[0]]);
    // Prologue: give some registers pointer values so memory ops often hit the arena.
    const pre: W[] = prologue ? [[0xbf, 3, 1, 0, 0], [0xbf, 4, 10, 0, 0], [0x07, 4, 0, 0, -64], [0xb7, 0, 0, 0, 0]] : [];
    const words = [...pre, ...body.flat(), [0x95, 0, 0, 0, 0] as W];
    return { code: encode(words), mem };
  });
  // Both sides lay out the arena identically (same sizes, ctx copied to the first rw allocation),
  // so even pointer values in r0 must agree.
  const native = runNative(cases.map((c) => `run ${toHex(c.code)} ${c.mem.length ? toHex(c.mem) : '-'} ${BUDGET}`), ['--ro', String(ARENA), '--rw', String(ARENA)]);
  expect(native).toHaveLength(cases.length);
  let ok = 0, faults = 0, loads = 0;
  cases.forEach((c, i) => {
    const w = runWasm(c.code, c.mem);
    if (w !== native[i]) {
      throw new Error(`case ${i} differs:\n  wasm:   ${w}\n  native: ${native[i]}\n  mem: ${toHex(c.mem)}\n  ${disassemble(c.code, { withPc: true }).join('\n  ')}`);
    }
    if (w.startsWith('ok')) ok++;
    else if (w.startsWith('fault')) faults++;
    else loads++;
  });
  if (process.env.VM_FUZZ_VERBOSE) console.log({ ok, faults, loads });
  // The generator must exercise all three outcomes.
  expect(ok).toBeGreaterThan(RUNS / 10);
  expect(faults).toBeGreaterThan(RUNS / 20);
  expect(loads).toBeGreaterThan(RUNS / 20);
});
