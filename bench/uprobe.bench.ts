// Per-hit cost of UPROBE, URETPROBE and UPROBE_OVERRIDE with a counter program, for each
// engine and hook mechanism (Frida's Interceptor, the inline engine of agent/hooks, its
// int3 fallback), against the untraced call measured in the same run. The victim times its own
// loop (clock_gettime around N calls), so start-up and attach stay out of the numbers.
// Usage: node dist/bench/uprobe.bench.js [calls] [runs]

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { median, table } from './stats';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'bin', 'bpftime-ts');
const victim = path.join(root, 'test', 'fixtures', 'build', 'victims', 'hotloop');
const object = path.join(root, 'test', 'fixtures', 'build', 'bpf', 'bench_hot.bpf.o');
const calls = Number(process.argv[2] ?? 20000);
const runs = Number(process.argv[3] ?? 5);
const env = { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar' };
/** BENCH_ENGINES=native skips the wasm rows (slow: every hit crosses into JS). */
const ENGINES = (process.env.BENCH_ENGINES ?? 'native,wasm').split(',');
const PROGRAMS = ['on_entry', 'on_return', 'on_override', 'on_empty', 'on_entry_hash', 'on_entry_js'];

function nsPerCall(output: string): number {
  const m = /ns_per_call ([\d.]+)/.exec(output);
  if (!m) throw new Error(`no timing in output:\n${output}`);
  return Number(m[1]);
}

function manifestFor(program: string, at?: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-bench-'));
  const file = path.join(dir, 'm.json');
  const programs = Object.fromEntries(PROGRAMS.map((p) => [p, p === program ? (at ?? {}) : { disabled: true }]));
  fs.writeFileSync(file, JSON.stringify({ objects: [{ path: object, programs }] }));
  return file;
}

function traced(args: string[]): number {
  return nsPerCall(execFileSync(cli, ['spawn', '--json', ...args, victim, String(calls)], { env, encoding: 'utf8' }));
}

function main(): void {
  const untraced: number[] = [];
  const rows: { name: string; samples: number[] }[] = [];
  const add = (name: string, f: () => number) => {
    let row = rows.find((r) => r.name === name);
    if (!row) rows.push((row = { name, samples: [] }));
    row.samples.push(f());
  };
  for (let i = 0; i < runs; i++) {
    untraced.push(nsPerCall(execFileSync(victim, [String(calls)], { encoding: 'utf8' })));
    add('Frida floor: --count (native CModule listener, no eBPF)', () => traced(['--count', 'hot']));
    for (const engine of ENGINES) {
      add(`${engine}: UPROBE, empty program`, () => traced(['--engine', engine, '-m', manifestFor('on_empty')]));
      add(`${engine}: UPROBE, counter`, () => traced(['--engine', engine, '-m', manifestFor('on_entry')]));
      add(`${engine}: URETPROBE, counter`, () => traced(['--engine', engine, '-m', manifestFor('on_return')]));
      add(`${engine}: UPROBE_OVERRIDE, counter (no override taken)`, () => traced(['--engine', engine, '-m', manifestFor('on_override')]));
      add(`${engine}: UPROBE, hash-map counter`, () => traced(['--engine', engine, '-m', manifestFor('on_entry_hash')]));
      add(`${engine}: UPROBE, hash-map counter with a random key (a JS helper)`, () => traced(['--engine', engine, '-m', manifestFor('on_entry_js')]));
    }
    const inline = ['--hooks', 'inline'];
    add('inline: UPROBE, counter', () => traced([...inline, '-m', manifestFor('on_entry')]));
    add('inline: URETPROBE, counter', () => traced([...inline, '-m', manifestFor('on_return')]));
    add('inline: UPROBE_OVERRIDE, counter (no override taken)', () => traced([...inline, '-m', manifestFor('on_override')]));
    add('inline: UPROBE, hash-map counter with a random key (JS path)', () => traced([...inline, '-m', manifestFor('on_entry_js')]));
    // hot+3 is not a function entry: the inline engine puts an int3 there (kernel-style).
    add('inline int3 (hot+3): UPROBE, counter', () => traced([...inline, '-m', manifestFor('on_entry', { type: 'uprobe', binary: victim, symbol: 'hot', offset: 3 })]));
  }
  const base = median(untraced);
  console.log(`per-hit cost, ${calls} calls per run, median of ${runs} runs; untraced call: ${base.toFixed(2)} ns\n`);
  console.log('kernel uprobe: not measured here (no libbpf loader in this repository yet)\n');
  console.log(
    table(
      ['probe', 'ns per call', 'overhead ns per hit', 'vs untraced'],
      [
        ['untraced (baseline)', base.toFixed(1), '0', '1.0x'],
        ...rows.map((r) => {
          const m = median(r.samples);
          return [r.name, m.toFixed(0), (m - base).toFixed(0), `${(m / base).toFixed(0)}x`];
        }),
      ],
    ),
  );
}

main();
