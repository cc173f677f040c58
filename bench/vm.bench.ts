// Interpreter speed in ns per executed eBPF instruction, for three loops (arithmetic, memory,
// helper calls), on the wasm build under Node and on the native gcc -O2 build, in one run.
// Usage (after the build): node dist/bench/vm.bench.js [iterations]
// Reference: uBPF's interpreter is ~18 ns/insn; goal native <= 4.5 ns/insn, wasm <= 2x native.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { median, table } from './stats';
import { BpfVm } from '../vm/ts/vm';
import { assemble } from '../vm/ts/asm';

const root = path.resolve(__dirname, '..', '..');
const wasmFile = path.join(root, 'vm', 'build', 'bpfvm.wasm');
const nativeBin = path.join(root, 'vm', 'build', 'bpfvm-native');
const iters = Number(process.argv[2] ?? 200000);
const ROUNDS = 5;
const MEM = 4096;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const programs: { name: string; asm: string; mem: boolean }[] = [
  {
    name: 'arithmetic loop',
    mem: false,
    asm: `
      mov %r0, 0
      mov %r1, 0
      mov %r3, 7
    loop:
      add %r0, %r1
      xor %r0, 0x5a5a
      mul %r3, 13
      rsh %r3, 1
      add %r0, %r3
      and %r0, 0xffffff
      lsh %r3, 1
      add %r1, 1
      jne %r1, ${iters}, loop
      exit`,
  },
  {
    name: 'memory loop',
    mem: true,
    asm: `
      mov %r0, 0
      mov %r2, 0
    loop:
      mov %r3, %r2
      and %r3, ${MEM - 8}
      mov %r4, %r1
      add %r4, %r3
      ldxdw %r5, [%r4]
      add %r0, %r5
      stxdw [%r4], %r0
      ldxw %r6, [%r4+4]
      stxw [%r10-8], %r6
      ldxb %r7, [%r10-8]
      add %r0, %r7
      add %r2, 8
      jne %r2, ${iters * 8}, loop
      exit`,
  },
  {
    name: 'helper-call loop',
    mem: false,
    asm: `
      mov %r6, 0
    loop:
      mov %r1, %r6
      mov %r2, 1
      call 2
      add %r6, 1
      jne %r6, ${iters}, loop
      mov %r0, %r6
      exit`,
  },
];

function runWasm(code: Uint8Array, useMem: boolean): { nsPerInsn: number; r0: bigint; insns: bigint } {
  const vm = BpfVm.create(fs.readFileSync(wasmFile), { budget: 1e15 });
  vm.registerHelper(2, () => 0n);
  const h = vm.load(code);
  const ctx = useMem ? vm.allocRw(MEM) : 0;
  const len = useMem ? MEM : 0;
  let r0 = vm.run(h, ctx, len); // warm-up (tier-up)
  r0 = vm.run(h, ctx, len);
  const insns = vm.lastInsnCount();
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint();
    r0 = vm.run(h, ctx, len);
    samples.push(Number(process.hrtime.bigint() - t0) / Number(insns));
  }
  return { nsPerInsn: median(samples), r0, insns };
}

function runNative(code: Uint8Array, useMem: boolean): { nsPerInsn: number; r0: bigint; insns: bigint } {
  const mem = useMem ? hex(new Uint8Array(MEM)) : '-';
  const line = `bench ${hex(code)} ${mem} 1 1000000000000000\n`;
  const samples: number[] = [];
  let r0 = 0n;
  let insns = 0n;
  const out = execFileSync(nativeBin, ['--rw', String(1 << 20)], { input: line.repeat(ROUNDS + 1) }).toString().trim().split('\n');
  out.slice(1).forEach((l) => {
    const m = /^bench (\d+) (\d+) (\d+)$/.exec(l);
    if (!m) throw new Error(`native: ${l}`);
    r0 = BigInt(m[1]);
    insns = BigInt(m[2]);
    samples.push(Number(m[3]) / Number(insns));
  });
  return { nsPerInsn: median(samples), r0, insns };
}

function main(): void {
  const rows: (string | number)[][] = [];
  for (const p of programs) {
    const code = assemble(p.asm);
    const w = runWasm(code, p.mem);
    const n = runNative(code, p.mem);
    if (w.r0 !== n.r0 || w.insns !== n.insns) throw new Error(`${p.name}: wasm and native disagree (${w.r0}/${w.insns} vs ${n.r0}/${n.insns})`);
    rows.push([p.name, String(n.insns), n.nsPerInsn.toFixed(2), w.nsPerInsn.toFixed(2), (w.nsPerInsn / n.nsPerInsn).toFixed(2), (18 / n.nsPerInsn).toFixed(1)]);
  }
  console.log(table(['loop', 'insns/run', 'native ns/insn', 'wasm ns/insn', 'wasm/native', 'uBPF (18 ns) / native'], rows));
}

main();
