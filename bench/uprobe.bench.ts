// Per-hit cost of UPROBE, URETPROBE and UPROBE_OVERRIDE with a counter program, for each
// engine and hook mechanism (Frida's Interceptor, the inline engine of agent/hooks, its
// int3 fallback) and the kernel's own uprobe running the same program (bench/kernel/kuprobe.c,
// a libbpf loader; skipped with the reason where kernel eBPF is not usable), against the
// untraced call measured in the same run. The victim times its own
// loop (clock_gettime around N calls), so start-up and attach stay out of the numbers.
// Usage: node dist/bench/uprobe.bench.js [calls] [runs]

import { execFileSync, spawnSync } from 'child_process';
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

/** Builds the libbpf loader; null (and why) when it cannot be built or kernel eBPF is unusable. */
function kernelLoader(): { path: string } | { skip: string } {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-kuprobe-')), 'kuprobe');
  const cc = spawnSync('cc', ['-O2', '-o', out, path.join(root, 'bench', 'kernel', 'kuprobe.c'), '-lbpf'], { encoding: 'utf8' });
  if (cc.status !== 0) return { skip: `the libbpf loader did not build (libbpf-dev missing?): ${(cc.stderr || cc.error?.message || '').split('\n')[0]}` };
  const probe = kernelRun(out, 1);
  return typeof probe === 'string' ? { skip: probe } : { path: out };
}

/** ns per call of the victim under a kernel uprobe running bench_hot's on_entry, or why not. */
function kernelRun(loader: string, n: number): number | string {
  const r = spawnSync(loader, [object, 'on_entry', victim, 'hot', victim, String(n)], { encoding: 'utf8' });
  if (r.status === 77) return r.stderr.trim().split('\n').pop()!;
  const hits = Number(/kernel_hits (\d+)/.exec(r.stderr)?.[1]);
  if (r.status !== 0 || hits !== n) return `kernel uprobe run failed (exit ${r.status}, ${hits} hits of ${n}): ${r.stderr.trim()}`;
  return nsPerCall(r.stdout);
}

function main(): void {
  const kernel = kernelLoader();
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
    if ('path' in kernel) {
      add('kernel uprobe (libbpf, the same on_entry program)', () => {
        const ns = kernelRun(kernel.path, calls);
        if (typeof ns === 'string') throw new Error(ns);
        return ns;
      });
    }
    for (const engine of ENGINES) {
      const interceptor = ['--hooks', 'interceptor', '--engine', engine];
      add(`Interceptor, ${engine}: UPROBE, empty program`, () => traced([...interceptor, '-m', manifestFor('on_empty')]));
      add(`Interceptor, ${engine}: UPROBE, counter`, () => traced([...interceptor, '-m', manifestFor('on_entry')]));
      add(`Interceptor, ${engine}: URETPROBE, counter`, () => traced([...interceptor, '-m', manifestFor('on_return')]));
      add(`Interceptor, ${engine}: UPROBE_OVERRIDE, counter (no override taken)`, () => traced([...interceptor, '-m', manifestFor('on_override')]));
      add(`Interceptor, ${engine}: UPROBE, hash-map counter`, () => traced([...interceptor, '-m', manifestFor('on_entry_hash')]));
      add(`Interceptor, ${engine}: UPROBE, hash-map counter with a random key (a JS helper)`, () => traced([...interceptor, '-m', manifestFor('on_entry_js')]));
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
  console.log('skip' in kernel ? `kernel uprobe: not measured (${kernel.skip})\n` : 'kernel uprobe: measured (bench/kernel/kuprobe.c)\n');
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
  const k = rows.find((r) => r.name.startsWith('kernel uprobe'));
  const trap = rows.find((r) => r.name.startsWith('inline int3'));
  if (k && trap) console.log(`\ninline int3 fallback vs kernel uprobe, overhead per hit: ${((median(trap.samples) - base) / (median(k.samples) - base)).toFixed(3)} (goal: at most 0.2)`);
}

main();
