import * as fs from 'fs';
import * as path from 'path';
import { wasmPath, conformanceDir } from '../support/paths';
import { vmModule } from '../support/vmSupport';
import { BpfVm, VmFault, VmLoadError } from '../../vm/ts/vm';
import { assemble } from '../../vm/ts/asm';
import { disassemble } from '../../vm/ts/disasm';
import { parseConformance } from '../../vm/ts/conformance';
import { decodeBase64, loadEmbeddedWasm } from '../../vm/ts/embedded';

const newVm = (opts = {}): BpfVm => BpfVm.create(vmModule(), { roArenaBytes: 8192, rwArenaBytes: 65536, ...opts });
const insn = (op: number, dst = 0, src = 0, off = 0, imm = 0): Uint8Array => {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, op);
  dv.setUint8(1, (src << 4) | dst);
  dv.setInt16(2, off, true);
  dv.setInt32(4, imm, true);
  return b;
};
const prog = (...xs: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(xs.length * 8);
  xs.forEach((x, i) => out.set(x, i * 8));
  return out;
};
const EXIT = insn(0x95);

function loadErr(code: Uint8Array, vm = newVm()): VmLoadError {
  try {
    vm.load(code);
  } catch (e) {
    expect(e).toBeInstanceOf(VmLoadError);
    return e as VmLoadError;
  }
  throw new Error('expected a load error');
}
function fault(vm: BpfVm, h: number, ctx = 0, len = 0): VmFault {
  try {
    vm.run(h, ctx, len);
  } catch (e) {
    expect(e).toBeInstanceOf(VmFault);
    return e as VmFault;
  }
  throw new Error('expected a fault');
}

describe('load-time validation', () => {
  test('unknown opcode names pc', () => {
    const e = loadErr(prog(insn(0xb7, 0, 0, 0, 1), insn(0xff), EXIT));
    expect(e.pc).toBe(1);
    expect(e.message).toMatch(/^pc 1: unknown opcode 0xff/);
  });
  test('bad registers', () => {
    expect(loadErr(prog(insn(0xb7, 11, 0, 0, 1), EXIT)).reason).toMatch(/register/);
    expect(loadErr(prog(insn(0xb7, 10, 0, 0, 1), EXIT)).reason).toMatch(/r10/);
    expect(loadErr(prog(insn(0xbf, 0, 12), EXIT)).reason).toMatch(/register/);
    expect(loadErr(assemble('lock fetch add [%r1], %r10\nexit')).reason).toMatch(/r10/);
    expect(loadErr(assemble('lock xchg32 [%r1], %r10\nexit')).reason).toMatch(/r10/);
    expect(loadErr(assemble('ldxdw %r10, [%r1]\nexit')).reason).toMatch(/r10/);
    expect(loadErr(assemble('lddw %r10, 1\nexit')).reason).toMatch(/r10/);
    expect(loadErr(assemble('movsx864 %r10, %r1\nexit')).reason).toMatch(/r10/);
  });
  test('jumps', () => {
    expect(loadErr(prog(insn(0x05, 0, 0, 5), EXIT)).reason).toMatch(/jump out of range/);
    expect(loadErr(prog(insn(0x05, 0, 0, -2), EXIT)).reason).toMatch(/jump out of range/);
    const e = loadErr(assemble('ja +1\nlddw %r0, 5\nexit'));
    expect(e.reason).toMatch(/second half of lddw/);
    expect(e.pc).toBe(0);
  });
  test('falling off the end / empty / too large', () => {
    expect(loadErr(prog(insn(0xb7, 0, 0, 0, 1))).reason).toMatch(/last instruction/);
    expect(loadErr(new Uint8Array(0)).reason).toMatch(/empty/);
    const big = new Uint8Array(65537 * 8);
    big.set(EXIT, big.length - 8);
    expect(loadErr(big).reason).toMatch(/too large/);
    expect(loadErr(new Uint8Array(12)).reason).toMatch(/multiple of 8/);
  });
  test('helpers must be registered before load', () => {
    const vm = newVm();
    expect(loadErr(assemble('call 7\nexit'), vm).reason).toMatch(/unknown helper id 7/);
    vm.registerHelper(7, () => 3);
    expect(vm.run(vm.load(assemble('call 7\nexit')), 0, 0)).toBe(3n);
  });
  test('legacy packet access and call targets', () => {
    expect(loadErr(prog(insn(0x20, 0, 0, 0, 0), EXIT)).reason).toBe('legacy packet access (ld_abs/ld_ind) is not supported');
    expect(loadErr(prog(insn(0x40, 0, 1, 0, 0), EXIT)).reason).toBe('legacy packet access (ld_abs/ld_ind) is not supported');
    expect(loadErr(prog(insn(0x85, 0, 1, 0, 10), EXIT)).reason).toMatch(/call local target/);
    expect(loadErr(prog(insn(0x85, 0, 2, 0, 10), EXIT)).reason).toMatch(/BTF/);
  });
  test('lddw pseudo loads go through resolvePseudo', () => {
    const code = prog(insn(0x18, 1, 1, 0, 3), insn(0, 0, 0, 0, 0), insn(0xbf, 0, 1), EXIT);
    expect(loadErr(code).reason).toMatch(/resolved by the loader/);
    const vm = newVm();
    const seen: number[][] = [];
    const h = vm.load(code, { resolvePseudo: (src, imm, next, pc) => (seen.push([src, imm, next, pc]), 0x1122334455667788n) });
    expect(seen).toEqual([[1, 3, 0, 0]]);
    expect(vm.run(h, 0, 0)).toBe(0x1122334455667788n);
  });
});

describe('run-time safety', () => {
  test('out-of-region load faults with pc and address', () => {
    const vm = newVm();
    const h = vm.load(assemble('mov %r0, 1\nldxdw %r0, [%r1+8]\nexit'));
    const f = fault(vm, h, 0x40, 0);
    expect(f.kind).toBe('memory');
    expect(f.pc).toBe(1);
    expect(f.addr).toBe(0x48n);
    expect(f.message).toMatch(/pc 1: .*0x48/);
  });
  test('loads from ro are allowed, stores to ro fault, straddling the end faults', () => {
    const vm = newVm();
    const ro = vm.allocRo(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    const h = vm.load(assemble('ldxdw %r0, [%r1]\nexit'), { ctxReadOnly: true });
    expect(() => vm.load(assemble('stb [%r1], 1\nmov %r0, 0\nexit'), { ctxReadOnly: true })).toThrow(/pc 0: cannot write into ctx/);
    expect(vm.run(h, ro, 8)).toBe(0x0807060504030201n);
    const hs = vm.load(assemble('stb [%r1], 1\nmov %r0, 0\nexit'));
    // A writable context must lie in the rw arena; the context is exactly ctx_len bytes.
    expect(fault(vm, hs, ro, 8).kind).toBe('memory');
    expect(fault(vm, hs, ro).message).toMatch(/outside the context/);
    const { rwHi } = vm.bounds;
    expect(fault(vm, h, rwHi - 4, 4).kind).toBe('memory');
    expect(fault(vm, h, rwHi - 4, 8).kind).toBe('memory');
    expect(vm.run(h, rwHi - 8, 8)).toBe(0n);
    // A number is no pointer: dereferencing one is rejected at load, as by the kernel.
    expect(loadErr(assemble('lddw %r2, 0xffffffffffffffff\nstxdw [%r2], %r1\nexit')).reason).toMatch(/R2 invalid mem access 'scalar'/);
  });
  test('budget stops infinite loops', () => {
    const vm = newVm({ budget: 10000 });
    const h = vm.load(assemble('l: add %r0, 1\nja l\nexit'));
    const f = fault(vm, h);
    expect(f.kind).toBe('budget');
    expect(vm.lastInsnCount()).toBeGreaterThan(10000n);
    vm.setBudget(1_000_000);
    const h2 = vm.load(assemble('mov %r0, 0\nl: add %r0, 1\njne %r0, 1000, l\nexit'));
    expect(vm.run(h2, 0, 0)).toBe(1000n);
    const rec = vm.load(assemble('f: call local f\nexit'));
    expect(fault(vm, rec).kind).toBe('stack');
  });
  test('call local: own stack per frame, r6-r9 restored', () => {
    const vm = newVm();
    const h = vm.load(
      assemble(`
        stdw [%r10-8], 11
        mov %r6, 6
        mov %r1, %r10
        call local f
        ldxdw %r0, [%r10-8]
        add %r0, %r6
        exit
      f:
        stdw [%r10-8], 99
        mov %r6, 0
        sub %r1, %r10
        mov %r0, %r1
        exit`),
    );
    expect(vm.run(h, 0, 0)).toBe(17n);
  });
  test('helpers get unsigned args; throwing helper becomes a helper fault', () => {
    const vm = newVm();
    let got: bigint[] = [];
    vm.registerHelper(1, (a, b, c, d, e) => ((got = [a, b, c, d, e]), -1));
    vm.registerHelper(2, () => {
      throw new Error('boom');
    });
    const h = vm.load(assemble('mov %r1, -1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nexit'));
    expect(vm.run(h, 0, 0)).toBe(0xffffffffffffffffn);
    expect(got).toEqual([0xffffffffffffffffn, 2n, 3n, 4n, 5n]);
    const h2 = vm.load(assemble('mov %r0, 0\ncall 2\nexit'));
    const f = fault(vm, h2);
    expect(f.kind).toBe('helper');
    expect(f.pc).toBe(1);
    expect(f.message).toMatch(/boom/);
    expect(vm.run(h, 0, 0)).toBe(0xffffffffffffffffn); // usable after a helper exception
  });
  test('tail calls: same r1, fresh program, limit of 33', () => {
    const vm = newVm();
    let target = 0;
    vm.registerHelper(12, () => (vm.requestTailCall(target), -1));
    const b = vm.load(assemble('ldxdw %r0, [%r1]\nadd %r0, 100\nexit'));
    const a = vm.load(assemble('mov %r6, %r1\nstdw [%r1], 5\ncall 12\nmov %r0, 1\nexit'));
    target = b;
    const ctx = vm.allocRw(8);
    expect(vm.run(a, ctx, 8)).toBe(105n);
    const loop = vm.load(assemble('ldxdw %r0, [%r1]\nadd %r0, 1\nstxdw [%r1], %r0\ncall 12\nexit'));
    target = loop;
    vm.write(ctx, new Uint8Array(8));
    const f = fault(vm, loop, ctx, 8);
    expect(f.kind).toBe('tail_call');
    expect(vm.read(ctx, 1)[0]).toBe(34);
    expect(() => vm.requestTailCall(0)).toThrow(/only valid while a helper/);
  });
});

describe('arena API', () => {
  test('alloc, read, write, cstring, accessibility', () => {
    const vm = newVm();
    const a = vm.allocRw(16, 16);
    expect(a % 16).toBe(0);
    expect(Array.from(vm.read(a, 4))).toEqual([0, 0, 0, 0]);
    vm.write(a, new TextEncoder().encode('héllo\0x'));
    expect(vm.readCString(a, 100)).toBe('héllo');
    expect(vm.readCString(a, 2)).toBe('h\ufffd');
    expect(vm.readCString(0, 10)).toBeNull();
    const ro = vm.allocRo(new Uint8Array([9]));
    expect(vm.isAccessible(ro, 1, false)).toBe(true);
    expect(vm.isAccessible(ro, 1, true)).toBe(false);
    expect(vm.isAccessible(a, 16, true)).toBe(true);
    expect(() => vm.write(ro, new Uint8Array([1]))).toThrow(RangeError);
    vm.writeRo(ro, new Uint8Array([7]));
    expect(vm.read(BigInt(ro), 1)[0]).toBe(7);
    expect(() => vm.read(0, 1)).toThrow(RangeError);
    expect(vm.memory()[ro]).toBe(7);
    expect(() => vm.allocRw(1 << 20)).toThrow(RangeError);
  });
  test('programs share one arena', () => {
    const vm = newVm();
    const map = vm.allocRw(8);
    const inc = vm.load(assemble('mov %r2, 5\nlock add [%r1], %r2\nmov %r0, 0\nexit'));
    const get = vm.load(assemble('ldxdw %r0, [%r1]\nexit'));
    vm.run(inc, map, 8);
    vm.run(inc, map, 8);
    expect(vm.run(get, map, 8)).toBe(10n);
  });
  test('embedded wasm equals the built file', () => {
    expect(Buffer.from(loadEmbeddedWasm()).equals(fs.readFileSync(wasmPath))).toBe(true);
    expect(Array.from(decodeBase64('AAEC/w=='))).toEqual([0, 1, 2, 255]);
    BpfVm.create(loadEmbeddedWasm());
  });
});

describe('disassembler', () => {
  test('assemble(disassemble(x)) == x for every conformance program', () => {
    const dir = path.join(conformanceDir, 'tests');
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.data'))) {
      const t = parseConformance(fs.readFileSync(path.join(dir, f), 'utf8'), f);
      const code = t.raw ?? assemble(t.asm!);
      const text = disassemble(code).join('\n');
      expect({ f, code: Array.from(assemble(text)) }).toEqual({ f, code: Array.from(code) });
    }
  });
  test('syntax', () => {
    expect(disassemble(assemble('lddw %r1, 0x1122334455667788\nldxw %r2, [%r1-4]\nlock fetch add32 [%r10-8], %r1\njsgt32 %r1, -5, +1\nexit'))).toEqual([
      'lddw %r1, 0x1122334455667788',
      'ldxw %r2, [%r1-4]',
      'lock fetch add32 [%r10-8], %r1',
      'jsgt32 %r1, -5, +1',
      'exit',
    ]);
  });
});

describe('bpf_loop intrinsic (helper 181) and lddw src=4', () => {
  const src = (nr: number, brk: number): string => `
      stdw [%r10-8], 0
      mov %r1, ${nr}
      lddw %r2, func cb
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      mov %r6, 77
      call 181
      mov %r7, %r0
      ldxdw %r0, [%r10-8]
      lsh %r0, 16
      add %r0, %r7
      jne %r6, 77, bad
      exit
    bad:
      mov %r0, -1
      exit
    cb:
      ldxdw %r3, [%r2]
      add %r3, %r1
      stxdw [%r2], %r3
      mov %r6, 0
      mov %r0, 0
      jne %r1, ${brk}, +1
      mov %r0, 1
      exit`;
  test('runs the callback with (i, ctx), returns the iteration count', () => {
    const vm = newVm();
    const code = assemble(src(10, 99));
    expect(disassemble(code)).toContain('lddw %r2, func +14');
    expect(vm.run(vm.load(code), 0, 0)).toBe((45n << 16n) + 10n);
    expect(vm.run(vm.load(assemble(src(10, 3))), 0, 0)).toBe((6n << 16n) + 4n);
    expect(vm.run(vm.load(assemble(src(0, 3))), 0, 0)).toBe(0n);
  });
  test('budget applies to callback iterations; bad callback gives -EINVAL', () => {
    const vm = newVm({ budget: 100000 });
    expect(fault(vm, vm.load(assemble(src(1 << 23, -1)))).kind).toBe('budget');
    const bad = vm.load(assemble('mov %r1, 3\nmov %r2, 5\ncall 181\nexit'));
    expect(vm.run(bad, 0, 0)).toBe(BigInt.asUintN(64, -22n));
  });
});
