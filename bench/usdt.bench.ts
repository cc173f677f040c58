// Per-hit cost of a USDT probe (a 1-byte int3 hook, agent/attach/uprobe/trapSites.ts)
// against the untraced loop and against a plain uprobe (jump hook) on the same function,
// measured in the same run. Three programs: usdt.bpf.h's BPF_USDT (argument specs, JS
// helpers), a program reading pt_regs directly at the site (native path), and a uprobe at
// the function's entry. The victim times its own loop.
// Usage: node dist/bench/usdt.bench.js [calls] [runs]

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { median, table } from './stats';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'bin', 'bpftime-ts');
const victim = path.join(root, 'test', 'fixtures', 'build', 'victims', 'sdthot');
const object = path.join(root, 'test', 'fixtures', 'build', 'bpf', 'bench_usdt.bpf.o');
const calls = Number(process.argv[2] ?? 20000);
const runs = Number(process.argv[3] ?? 5);
const env = { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar' };

const usdt = { type: 'usdt', binary: victim, provider: 'bench', probe: 'tick' };
const SETUPS: Record<string, Record<string, unknown>> = {
  'USDT, usdt.bpf.h counter (trap + JS path)': { on_usdt: usdt, on_usdt_regs: { disabled: true }, on_entry: { disabled: true } },
  'USDT, pt_regs counter (trap + native path)': { on_usdt: { disabled: true }, on_usdt_regs: usdt, on_entry: { disabled: true } },
  'peer: UPROBE on the function entry, counter (jump hook, native path)': {
    on_usdt: { disabled: true },
    on_usdt_regs: { disabled: true },
    on_entry: { type: 'uprobe', binary: victim, symbol: 'hot_sdt' },
  },
};

function nsPerCall(output: string): number {
  const m = /ns_per_call ([\d.]+)/.exec(output);
  if (!m) throw new Error(`no timing in output:\n${output}`);
  return Number(m[1]);
}

function manifest(programs: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-bench-'));
  const file = path.join(dir, 'm.json');
  fs.writeFileSync(file, JSON.stringify({ objects: [{ path: object, programs }] }));
  return file;
}

function main(): void {
  const untraced: number[] = [];
  const samples = new Map<string, number[]>(Object.keys(SETUPS).map((k) => [k, []]));
  const files = Object.fromEntries(Object.entries(SETUPS).map(([k, v]) => [k, manifest(v)]));
  for (let i = 0; i < runs; i++) {
    untraced.push(nsPerCall(execFileSync(victim, [String(calls)], { encoding: 'utf8' })));
    for (const name of Object.keys(SETUPS)) {
      samples.get(name)!.push(nsPerCall(execFileSync(cli, ['spawn', '--json', '-m', files[name], victim, String(calls)], { env, encoding: 'utf8' })));
    }
  }
  const base = median(untraced);
  console.log(`USDT per-hit cost, ${calls} calls per run, median of ${runs} runs; untraced call: ${base.toFixed(2)} ns\n`);
  console.log(
    table(
      ['probe', 'ns per call', 'overhead ns per hit', 'vs untraced'],
      [
        ['untraced (baseline)', base.toFixed(1), '0', '1.0x'],
        ...[...samples].map(([name, s]) => {
          const m = median(s);
          return [name, m.toFixed(0), (m - base).toFixed(0), `${(m / base).toFixed(0)}x`];
        }),
      ],
    ),
  );
}

main();
