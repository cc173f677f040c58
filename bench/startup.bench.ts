// Time from the command's start to the first reported hit, for spawn and for attach to a
// running victim, beside the cost of the empty path (spawn with no hooks) and the
// untraced run of the same program, all measured in this one run.
// Usage: node dist/bench/startup.bench.js [runs]

import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { max, median, table } from './stats';

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'bin', 'bpftime-ts');
const adder = path.join(root, 'test', 'fixtures', 'build', 'victims', 'adder');
const runs = Number(process.argv[2] ?? 10);
const env = { ...process.env, BPFTIME_TS_BACKEND: process.env.BPFTIME_TS_BACKEND ?? 'sidecar' };

function untilFirstHit(child: ChildProcess, t0: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      if (buf.includes('"type":"first-hit"')) resolve(performance.now() - t0);
    });
    child.on('close', () => reject(new Error(`no first hit; output: ${buf}`)));
  });
}

async function spawnToFirstHit(): Promise<number> {
  const t0 = performance.now();
  const child = spawn(cli, ['spawn', '--json', '--count', 'target_add', adder, '1'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const ms = await untilFirstHit(child, t0);
  await new Promise((r) => child.on('close', r));
  return ms;
}

async function attachToFirstHit(): Promise<number> {
  const victim = spawn(adder, ['0', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => victim.stdout!.once('data', r));
  const t0 = performance.now();
  const child = spawn(cli, ['attach', '--json', '--pid', String(victim.pid), '--count', 'target_add'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const ms = await untilFirstHit(child, t0);
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  victim.kill('SIGKILL');
  return ms;
}

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const rows: (string | number)[][] = [];
  const add = (name: string, xs: number[], base?: number) =>
    rows.push([name, median(xs).toFixed(1), max(xs).toFixed(1), base ? `${(median(xs) / base).toFixed(1)}x` : '1.0x']);

  const untraced: number[] = [];
  const empty: number[] = [];
  const spawnHit: number[] = [];
  const attachHit: number[] = [];
  for (let i = 0; i < runs; i++) {
    untraced.push(timed(adder, ['1']));
    empty.push(timed(cli, ['spawn', '--json', adder, '1']));
    spawnHit.push(await spawnToFirstHit());
    attachHit.push(await attachToFirstHit());
  }
  const base = median(untraced);
  add('untraced run of the victim (baseline)', untraced);
  add('spawn, no hooks: whole command', empty, base);
  add('spawn --count: start to first hit', spawnHit, base);
  add('attach --pid --count: start to first hit', attachHit, base);
  console.log(`startup latency, ${runs} runs each (ms)\n`);
  console.log(table(['path', 'median ms', 'max ms', 'vs untraced'], rows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
