// Interpreter speed in ns per executed eBPF instruction, for three loops (arithmetic, memory,
// helper calls), in one run: the wasm build under Node and the native gcc -O2 build, each
// with isolation (the verifier's per-region checks) and without (the BPFVM_NO_ISOLATION
// builds: every access checked against the whole arena), and rbpf (crates.io interpreter and
// x86-64 JIT, bench/rbpf) on the same programs. Instructions per run are counted by our VM.
// Usage (after the build): node dist/bench/vm.bench.js [iterations]
// Goals: isolation costs <= 15% on the memory loop; native <= 4.5 ns/insn; wasm <= 2x native.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { median, table } from './stats';
import { BpfVm } from '../vm/ts/vm';
import { assemble } from '../vm/ts/asm';

const root = path.resolve(__dirname, '..', '..');
const wasmFile = path.join(root, 'vm', 'build', 'bpfvm.wasm');
const wasmNoIsoFile = path.join(root, 'vm', 'build', 'bpfvm-noiso.wasm');
const nativeBin = path.join(root, 'vm', 'build', 'bpfvm-native');
const nativeNoIsoBin = path.join(root, 'vm', 'build', 'bpfvm-native-noiso');
const rbpfDir = path.join(root, 'bench', 'rbpf');
const rbpfBin = path.join(rbpfDir, 'target', 'release', 'bpftime-ts-rbpf-bench');
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

type Result = { nsPerInsn: number; r0: bigint; insns: bigint };

function runWasm(file: string, code: Uint8Array, useMem: boolean): Result {
  const vm = BpfVm.create(fs.readFileSync(file), { budget: 1e15 });
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

function runNative(bin: string, code: Uint8Array, useMem: boolean): Result {
  const mem = useMem ? hex(new Uint8Array(MEM)) : '-';
  const line = `bench ${hex(code)} ${mem} 1 1000000000000000\n`;
  const samples: number[] = [];
  let r0 = 0n;
  let insns = 0n;
  const out = execFileSync(bin, ['--rw', String(1 << 20)], { input: line.repeat(ROUNDS + 1) }).toString().trim().split('\n');
  out.slice(1).forEach((l) => {
    const m = /^bench (\d+) (\d+) (\d+)$/.exec(l);
    if (!m) throw new Error(`native: ${l}`);
    r0 = BigInt(m[1]);
    insns = BigInt(m[2]);
    samples.push(Number(m[3]) / Number(insns));
  });
  return { nsPerInsn: median(samples), r0, insns };
}

/** The bench-only rbpf harness, built with cargo on first use; null when cargo is missing. */
function rbpfHarness(): string | null {
  if (!fs.existsSync(rbpfBin)) {
    try {
      execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', path.join(rbpfDir, 'Cargo.toml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      return null;
    }
  }
  return rbpfBin;
}

/** rbpf interpreter and JIT ns per instruction (instructions counted by our VM: same program, same path). */
function runRbpf(bin: string, code: Uint8Array, useMem: boolean, insns: bigint): { interp: number; jit: number; r0: bigint } {
  const repeat = 3;
  const line = `${hex(code)} ${useMem ? MEM : 0} ${repeat}\n`;
  const out = execFileSync(bin, { input: line.repeat(ROUNDS) }).toString().trim().split('\n');
  const interp: number[] = [];
  const jit: number[] = [];
  let r0 = 0n;
  for (const l of out) {
    const m = /^rbpf (\d+) (\d+) (\d+) (\d+)$/.exec(l);
    if (!m) throw new Error(`rbpf: ${l}`);
    if (m[1] !== m[2]) throw new Error(`rbpf interpreter and JIT disagree: ${l}`);
    r0 = BigInt(m[1]);
    interp.push(Number(m[3]) / repeat / Number(insns));
    jit.push(Number(m[4]) / repeat / Number(insns));
  }
  return { interp: median(interp), jit: median(jit), r0 };
}

const pct = (withIso: number, without: number): string => `${(((withIso - without) / without) * 100).toFixed(0)}%`;

function main(): void {
  const rows: (string | number)[][] = [];
  const rbpf = rbpfHarness();
  for (const p of programs) {
    const code = assemble(p.asm);
    // Isolation and no-isolation builds alternate, so that load changes hit both alike.
    const nIso: Result[] = [], nNo: Result[] = [], wIso: Result[] = [], wNo: Result[] = [];
    for (let i = 0; i < 3; i++) {
      nIso.push(runNative(nativeBin, code, p.mem));
      nNo.push(runNative(nativeNoIsoBin, code, p.mem));
      wIso.push(runWasm(wasmFile, code, p.mem));
      wNo.push(runWasm(wasmNoIsoFile, code, p.mem));
    }
    const ns = (rs: Result[]): number => median(rs.map((r) => r.nsPerInsn));
    const n = nIso[0];
    for (const r of [...nIso, ...nNo, ...wIso, ...wNo]) {
      if (r.r0 !== n.r0 || r.insns !== n.insns) throw new Error(`${p.name}: builds disagree (${r.r0}/${r.insns} vs ${n.r0}/${n.insns})`);
    }
    const peer = rbpf ? runRbpf(rbpf, code, p.mem, n.insns) : null;
    if (peer && peer.r0 !== n.r0) throw new Error(`${p.name}: rbpf computes ${peer.r0}, bpftime-ts ${n.r0}`);
    rows.push([
      p.name,
      String(n.insns),
      ns(nIso).toFixed(2),
      ns(nNo).toFixed(2),
      pct(ns(nIso), ns(nNo)),
      ns(wIso).toFixed(2),
      ns(wNo).toFixed(2),
      pct(ns(wIso), ns(wNo)),
      peer ? peer.interp.toFixed(2) : 'n/a',
      peer ? peer.jit.toFixed(2) : 'n/a',
      peer ? (peer.interp / ns(nIso)).toFixed(1) : 'n/a',
    ]);
  }
  console.log(
    table(
      ['loop', 'insns/run', 'native ns/insn', 'native, no isolation', 'isolation cost', 'wasm ns/insn', 'wasm, no isolation', 'isolation cost', 'rbpf interp ns/insn', 'rbpf JIT ns/insn', 'rbpf interp / native'],
      rows,
    ),
  );
}

main();
