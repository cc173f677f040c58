// Syscall tracepoint cost on Stalker: per-syscall overhead on a tight getpid loop and
// whole-program slowdown on a CPU-bound loop with few syscalls, each against the untraced
// run and against `strace -f` (ptrace, the usual userspace peer). The victim times its
// own loop (clock_gettime is vDSO, no syscall), so start-up and attach are excluded.
// Programs are the test harness's JS callbacks (agent/attach/syscall/testHarness.ts),
// which enter JS per hit the way the runtime's run callback does.
// Usage: node dist/bench/syscall.bench.js [runs]

import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SidecarBackend } from '../host/backend/SidecarBackend';
import { median, table } from './stats';

const root = path.resolve(__dirname, '..', '..');
const victim = path.join(root, 'test', 'fixtures', 'build', 'victims', 'sysloop');
const runs = Number(process.argv[2] ?? 5);
const GETPID_N = 200000;
const CPU_N = 100000000;

function harness(): string {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'syscall-bench-')), 'harness.js');
  execFileSync('npx', ['frida-compile', 'agent/attach/syscall/testHarness.ts', '-o', out, '-c'], { cwd: root, stdio: 'ignore' });
  return fs.readFileSync(out, 'utf8');
}

function elapsed(text: string): number {
  const m = /elapsed_ns=(\d+)/.exec(text);
  if (!m) throw new Error(`no elapsed_ns in: ${text}`);
  return Number(m[1]);
}

function untraced(mode: string, n: number): number {
  return elapsed(execFileSync(victim, [mode, String(n)], { encoding: 'utf8' }));
}

function straced(mode: string, n: number): number {
  const r = spawnSync('strace', ['-f', '-o', '/dev/null', victim, mode, String(n)], { encoding: 'utf8' });
  return elapsed(r.stdout);
}

async function traced(backend: SidecarBackend, source: string, mode: string, n: number, probes: object[]): Promise<number> {
  let out = '';
  const onOut = (_pid: number, _fd: number, d: Buffer) => (out += d.toString());
  backend.onOutput(onOut);
  const pid = await backend.spawn({ argv: [victim, mode, String(n)], stdio: 'pipe' });
  const session = await backend.attach(pid);
  const done = new Promise<void>((r) => session.onDetached(() => r()));
  const script = await session.createScript(source, { runtime: 'v8', name: 'syscall-bench' });
  await script.load();
  await script.call('start', [probes]);
  await backend.resume(pid);
  await done;
  const deadline = Date.now() + 2000;
  while (!/elapsed_ns/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return elapsed(out);
}

/** The same loop under the CLI with a real clang-built counter on sys_enter_getpid. */
function viaCli(mode: string, n: number, program = 'bench_sys'): number {
  const cli = path.join(root, 'bin', 'bpftime-ts');
  const object = path.join(root, 'test', 'fixtures', 'build', 'bpf', `${program}.bpf.o`);
  const env = { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar' };
  return elapsed(execFileSync(cli, ['spawn', '--json', '-o', object, victim, mode, String(n)], { env, encoding: 'utf8' }));
}

async function main(): Promise<void> {
  const source = harness();
  const backend = await SidecarBackend.start();
  const onGetpid = [{ phase: 'enter', syscall: 'getpid' }];
  const unrelated = [{ phase: 'enter', syscall: 'mount' }];
  const rows: (string | number)[][] = [];
  try {
    const m: Record<string, number[]> = {};
    const add = (k: string, v: number) => (m[k] ??= []).push(v);
    for (let i = 0; i < runs; i++) {
      add('getpid untraced', untraced('getpid', GETPID_N));
      add('getpid program on getpid', await traced(backend, source, 'getpid', GETPID_N, onGetpid));
      add('getpid program on another syscall', await traced(backend, source, 'getpid', GETPID_N, unrelated));
      add('cpu untraced', untraced('cpu', CPU_N));
      add('cpu program on getpid', await traced(backend, source, 'cpu', CPU_N, onGetpid));
      add('cpu strace -f', straced('cpu', CPU_N));
      add('getpid eBPF counter', viaCli('getpid', GETPID_N / 4));
      add('getpid eBPF hash counter', viaCli('getpid', GETPID_N / 4, 'bench_sys_hash'));
      add('getpid eBPF JS-path counter', viaCli('getpid', GETPID_N / 4, 'bench_sys_js'));
      add('cpu eBPF counter', viaCli('cpu', CPU_N));
    }
    // strace is ~100 us per syscall: fewer iterations, scaled per call.
    const STRACE_N = 20000;
    const strGetpid: number[] = [];
    for (let i = 0; i < Math.min(runs, 3); i++) strGetpid.push(straced('getpid', STRACE_N));

    const perCall = (k: string, n: number) => median(m[k]) / n;
    const base = perCall('getpid untraced', GETPID_N);
    const ours = perCall('getpid program on getpid', GETPID_N);
    const filtered = perCall('getpid program on another syscall', GETPID_N);
    const strace = median(strGetpid) / STRACE_N;
    rows.push(['getpid, untraced', `${base.toFixed(0)} ns/call`, '1.0x', '-']);
    rows.push(['getpid, program on sys_enter_getpid', `${ours.toFixed(0)} ns/call`, `${(ours / base).toFixed(1)}x`, `+${(ours - base).toFixed(0)} ns`]);
    rows.push(['getpid, program on an unrelated syscall (C filter)', `${filtered.toFixed(0)} ns/call`, `${(filtered / base).toFixed(1)}x`, `+${(filtered - base).toFixed(0)} ns`]);
    const bpf = perCall('getpid eBPF counter', GETPID_N / 4);
    const bpfHash = perCall('getpid eBPF hash counter', GETPID_N / 4);
    const bpfJs = perCall('getpid eBPF JS-path counter', GETPID_N / 4);
    rows.push(['getpid, eBPF array-map counter on sys_enter_getpid (CLI; native path)', `${bpf.toFixed(0)} ns/call`, `${(bpf / base).toFixed(1)}x`, `+${(bpf - base).toFixed(0)} ns`]);
    rows.push(['getpid, eBPF hash-map counter on sys_enter_getpid (CLI; native path)', `${bpfHash.toFixed(0)} ns/call`, `${(bpfHash / base).toFixed(1)}x`, `+${(bpfHash - base).toFixed(0)} ns`]);
    rows.push(['getpid, eBPF hash-map counter with a random key (CLI; JS path: get_prandom_u32 is JS)', `${bpfJs.toFixed(0)} ns/call`, `${(bpfJs / base).toFixed(1)}x`, `+${(bpfJs - base).toFixed(0)} ns`]);
    rows.push(['getpid, strace -f', `${strace.toFixed(0)} ns/call`, `${(strace / base).toFixed(1)}x`, `+${(strace - base).toFixed(0)} ns`]);
    const cpuBase = median(m['cpu untraced']);
    for (const k of ['cpu untraced', 'cpu program on getpid', 'cpu eBPF counter', 'cpu strace -f']) {
      rows.push([k.replace('cpu', 'CPU-bound loop,'), `${(median(m[k]) / 1e6).toFixed(1)} ms`, `${(median(m[k]) / cpuBase).toFixed(2)}x`, '-']);
    }
    console.log(`syscall tracepoints on Stalker, median of ${runs} runs (getpid: ${GETPID_N} calls; CPU loop: ${CPU_N} rounds)\n`);
    console.log(table(['run', 'time', 'vs untraced', 'overhead'], rows));
    const lower = (x: number) => ((strace - base) / (x - base)).toFixed(1);
    console.log(`\nper-syscall overhead vs strace: ${lower(bpf)}x lower (eBPF array counter, native path), ${lower(bpfHash)}x lower (eBPF hash counter, native path), ${lower(bpfJs)}x lower (eBPF, JS path), ${lower(ours)}x lower (bare JS callback)`);
  } finally {
    await backend.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
