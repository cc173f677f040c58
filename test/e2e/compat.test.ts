// Programs written the way people already write them (examples/, libbpf-tools style), run
// unmodified on their own targets: each test compares what bpftime-ts printed with what
// the target says it did. Real clang objects, real processes, real Frida.

import * as fs from 'fs';
import * as path from 'path';
import { readUsdtBinary } from '../../host/usdt/stapsdt';
import { runCli, sleep, startCli, waitForOutput } from '../support/cli';
import { finalMaps, jsonLines } from '../support/jsonLines';
import { bpfObjectPath, repoRoot, victimPath } from '../support/paths';
import { isAlive, liveBytes } from '../support/victim';

const ex = (name: string): string => path.join(repoRoot, 'examples', name);
const build = (name: string): string => ex(path.join('build', name));
const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const noStack = (s: string): void => expect(s).not.toMatch(/\n\s+at /);

/** `@name: value` scalars of a human map dump. */
function scalars(stdout: string): Record<string, string> {
  return Object.fromEntries([...stdout.matchAll(/^@(\w+): (.*)$/gm)].map((m) => [m[1], m[2]]));
}

/** `@name[key]: value` rows of one map in a human dump, in print order. */
function rows(stdout: string, name: string): [string, string][] {
  return [...stdout.matchAll(new RegExp(`^@${name}\\[(.*)\\]: (.*)$`, 'gm'))].map((m) => [m[1], m[2]]);
}

/** A table of records (header, then rows) as the human output prints them for one map. */
function records(stdout: string, prefix: string, header: string[]): string[][] {
  const ls = lines(stdout).filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  const h = ls.findIndex((l) => l.split(/\s+/).join(' ') === header.join(' '));
  expect(h).toBeGreaterThanOrEqual(0);
  // Every column but the last is one word; the last keeps its spaces. Rows start with a
  // number (a pid, an id) or a time; what follows the table (maps, stats) does not.
  return ls.slice(h + 1).filter((l) => /^\d/.test(l)).map((l) => {
    const parts = l.split(/\s+/);
    return [...parts.slice(0, header.length - 1), parts.slice(header.length - 1).join(' ')];
  });
}

test('opensnoop + statsnoop: DWARF-only records, sys_enter_newstat by its kernel name, --timestamps', async () => {
  const files = ['/etc/hostname', '/nonexistent/file', '/tmp/with space'];
  const r = await runCli(['spawn', '-T', '-o', build('opensnoop.bpf.o'), '-o', build('statsnoop.bpf.o'), build('opener'), ...files]);
  expect(r.code).toBe(0);
  noStack(r.stderr);
  const did = (what: string) => lines(r.stdout).filter((l) => l.startsWith(`${what} `)).map((l) => /^\w+ (.*) -> (-?\d+)$/.exec(l)!.slice(1));
  expect(did('open').map((x) => x[0])).toEqual(files);
  const opens = records(r.stdout, 'events: ', ['TIME', 'PID', 'UID', 'RET', 'FLAGS', 'COMM', 'FNAME']);
  expect(opens.map((x) => [x[6], x[3]])).toEqual(did('open'));
  expect(opens.every((x) => /^\d\d:\d\d:\d\d$/.test(x[0]) && x[5] === 'opener')).toBe(true);
  const stats = records(r.stdout, 'stat_events: ', ['TIME', 'PID', 'RET', 'PATH']);
  expect(stats.map((x) => [x[3], x[2]])).toEqual(did('stat'));
  expect(r.stdout).toMatch(/tracepoint__syscalls__sys_exit_openat 3 hits/);
});

test('jobqueue: a queue drains FIFO and a stack LIFO, what is left printed in pop order', async () => {
  const r = await runCli(['spawn', '-o', build('jobqueue.bpf.o'), build('jobs'), '6', '2']);
  expect(r.code).toBe(0);
  const submitted = lines(r.stdout).filter((l) => l.startsWith('submit ')).map((l) => l.split(' ').slice(1).map(Number));
  expect(submitted.length).toBe(6);
  const job = (j: number[]) => `{ .id = ${j[0]}, .prio = ${j[1]} }`;
  expect(rows(r.stdout, 'popped_fifo').map((x) => x[1])).toEqual(submitted.slice(0, 2).map(job));
  expect(rows(r.stdout, 'popped_lifo').map((x) => x[1])).toEqual(submitted.slice(-2).reverse().map(job));
  expect(rows(r.stdout, 'jobs')).toEqual(submitted.slice(2).map((j, i) => [String(i), job(j)]));
  expect(rows(r.stdout, 'undo')).toEqual(submitted.slice(0, 4).reverse().map((j, i) => [String(i), job(j)]));
  expect(scalars(r.stdout).pops).toBe('2');
});

test('pathfilter: LPM trie rules from the manifest, each access under its longest prefix', async () => {
  const manifest = JSON.parse(fs.readFileSync(ex('pathfilter.manifest.json'), 'utf8'));
  const rules: { key: { prefixlen: number; path: string }; value: number }[] = manifest.objects[0].maps.rules;
  const r = await runCli(['run', ex('pathfilter.manifest.json')]);
  expect(r.code).toBe(0);
  const accessed = lines(r.stdout).filter((l) => l.startsWith('access ')).map((l) => l.slice('access '.length));
  expect(accessed.length).toBe(6);
  const want = new Map<number, number>();
  let misses = 0;
  for (const p of accessed) {
    const best = rules.filter((x) => p.startsWith(x.key.path.slice(0, x.key.prefixlen / 8))).sort((a, b) => b.key.prefixlen - a.key.prefixlen)[0];
    if (best) want.set(best.value, (want.get(best.value) ?? 0) + 1);
    else misses++;
  }
  expect(Object.fromEntries(rows(r.stdout, 'rule_hits').map(([k, v]) => [k, Number(v)]))).toEqual(Object.fromEntries([...want].map(([k, v]) => [String(k), v])));
  expect(Number(scalars(r.stdout).unmatched)).toBe(misses);
});

test('newclients: a bloom filter never misses a client it saw; false "seen" stay rare', async () => {
  const r = await runCli(['spawn', '-o', build('newclients.bpf.o'), build('requests'), '-n', '300']);
  expect(r.code).toBe(0);
  const [, clients, distinct] = /clients=(\d+) distinct=(\d+)/.exec(r.stdout)!.map(Number);
  const s = scalars(r.stdout);
  // Every repeat is recognised (no false negatives); a first request may be taken for a
  // repeat (a false positive, ~0.1 % each at this fill), never the other way round.
  expect(Number(s.new_clients) + Number(s.repeat_requests)).toBe(clients);
  expect(Number(s.repeat_requests)).toBeGreaterThanOrEqual(clients - distinct);
  expect(Number(s.new_clients)).toBeLessThanOrEqual(distinct);
  expect(Number(s.new_clients)).toBeGreaterThanOrEqual(distinct - 5);
});

test('stackcount: stacks by bpf_get_stackid, symbolised like ustack, counted per call path; bpf_get_stack', async () => {
  const r = await runCli(['spawn', '--json', '-o', build('stackcount.bpf.o'), build('callpaths'), '30', '20']);
  expect(r.code).toBe(0);
  const [, a, b] = /alpha=(\d+) beta=(\d+)/.exec(r.stdout)!.map(Number);
  const leaf = BigInt(/leaf=(0x[0-9a-f]+)/.exec(r.stdout)![1]);
  const maps = finalMaps(r.stdout);
  const stacks = maps.stacks as { key: number; value: string[] }[];
  const count = (id: number) => Number(maps.counts.find((c) => c.key === id)?.value);
  const viaAlpha = stacks.find((s) => s.value[1]?.startsWith('alpha+'))!;
  const viaBeta = stacks.find((s) => s.value[1]?.startsWith('gamma_+'))!;
  expect(viaAlpha.value.slice(0, 3).map((f) => f.replace(/\+\d+$/, ''))).toEqual(['leaf', 'alpha', 'main']);
  expect(viaBeta.value.slice(0, 4).map((f) => f.replace(/\+\d+$/, ''))).toEqual(['leaf', 'gamma_', 'beta', 'main']);
  expect(count(viaAlpha.key)).toBe(a);
  expect(count(viaBeta.key)).toBe(b);
  expect(mapScalar(maps, 'stackid_errors')).toBe(0);
  expect(mapScalar(maps, 'last_stack_bytes')).toBe(32);
  expect(BigInt((maps.last_stack[0].value as (number | string)[])[0])).toBe(leaf);
});

function mapScalar(maps: ReturnType<typeof finalMaps>, name: string): unknown {
  return maps[name]?.[0]?.value;
}

test('usdtreq: usdt.bpf.h unmodified; section and manifest attach points, cookie, semaphore raised while traced', async () => {
  const r = await runCli(['run', '--json', ex('usdtreq.manifest.json')]);
  expect(r.code).toBe(0);
  noStack(r.stderr);
  const served = lines(r.stdout).filter((l) => l.startsWith('request ')).map((l) => l.split(' ').slice(1));
  expect(served.length).toBe(8);
  const events = jsonLines(r.stdout).filter((l) => l.type === 'event').map((l) => l.data as { id: number; tag: number; path: string });
  expect(events).toEqual(served.map((s) => ({ id: Number(s[0]), tag: 7, path: s[1] })));
  const maps = finalMaps(r.stdout);
  const byStatus: Record<string, number> = {};
  for (const s of served) byStatus[s[2]] = (byStatus[s[2]] ?? 0) + 1;
  expect(Object.fromEntries(maps.by_status.map((x) => [String(x.key), x.value]))).toEqual(byStatus);
  expect(mapScalar(maps, 'bytes_total')).toBe(served.reduce((n, s) => n + Number(s[3]), 0));
  // The debug probe sits behind a semaphore: prepared only while we are attached.
  expect(r.stdout).toContain('debug=8');
  expect(mapScalar(maps, 'debug_cost')).toBe([0, 1, 2, 3, 4, 5, 6, 7].reduce((n, i) => n + i * i, 0));
  expect(maps).not.toHaveProperty('__bpf_usdt_specs');
});

// USDT under Frida's Interceptor: the int3 leads to Interceptor's trampoline through the
// process's one SIGTRAP handler (agent/hooks/trapHandler.ts), not the inline engine's probe.
test('usdtreq with --hooks interceptor: every request traced, the semaphore-gated probe too', async () => {
  const r = await runCli(['run', '--json', '--hooks', 'interceptor', ex('usdtreq.manifest.json')]);
  expect(r.code).toBe(0);
  noStack(r.stderr);
  const served = lines(r.stdout).filter((l) => l.startsWith('request '));
  expect(served.length).toBe(8);
  expect(jsonLines(r.stdout).filter((l) => l.type === 'event')).toHaveLength(8);
  expect(r.stdout).toContain('debug=8');
  expect(mapScalar(finalMaps(r.stdout), 'debug_cost')).toBe([0, 1, 2, 3, 4, 5, 6, 7].reduce((n, i) => n + i * i, 0));
});

test('USDT attach and detach under load: int3s and semaphores restored, the target runs on', async () => {
  const bin = build('sdt_app');
  const sites = readUsdtBinary(bin).sites;
  const child = require('child_process').spawn(bin, ['0', '3', '50'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const out = await waitForOutput(child, (t) => /ready \d+/.test(t));
    const pid = Number(/ready (\d+)/.exec(out)![1]);
    const real = fs.realpathSync(bin);
    const base = BigInt('0x' + fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(real))!.split('-')[0]);
    const file = fs.readFileSync(bin);
    const semaphores = () => sites.filter((s) => s.semaphoreOffset !== undefined).map((s) => liveBytes(pid, base + BigInt(s.semaphoreOffset!), 2).readUInt16LE(0));
    // One cycle here (Frida's script unload waits ~10 s after hooks inside a function have
    // fired, README); scripts/stress.sh runs many, with forks.
    for (let cycle = 0; cycle < Number(process.env.USDT_CYCLES ?? 1); cycle++) {
      const cli = startCli(['attach', '--pid', String(pid), '-m', ex('usdtreq.manifest.json')]);
      await waitForOutput(cli, (t) => t.includes('hooks installed'));
      // Every site holds an int3 while attached (a 1-byte hook: code branches right after them).
      expect(sites.map((s) => liveBytes(pid, base + BigInt(s.fileOffset), 1)[0])).toEqual(sites.map(() => 0xcc));
      expect(Math.max(...semaphores())).toBeGreaterThan(0);
      await sleep(300);
      cli.kill('SIGINT');
      const r = await cli.result;
      expect(r.code).toBe(0);
      expect(Number(/^@debug_cost: (\d+)$/m.exec(r.stdout)?.[1])).toBeGreaterThan(0);
      expect(isAlive(pid)).toBe(true);
      for (const s of sites) expect(liveBytes(pid, base + BigInt(s.fileOffset), 1)[0]).toBe(file[s.fileOffset]);
      expect(semaphores().every((v) => v === 0)).toBe(true);
    }
    await sleep(200);
    expect(isAlive(pid)).toBe(true);
  } finally {
    child.kill('SIGKILL');
  }
});

test('dispatch: tail calls through slots from .values and from the manifest; empty slots fall through', async () => {
  const r = await runCli(['run', ex('dispatch.manifest.json')]);
  expect(r.code).toBe(0);
  const [, get, put, del, other] = /get=(\d+) put=(\d+) delete=(\d+) other=(\d+)/.exec(r.stdout)!.map(Number);
  const s = scalars(r.stdout);
  expect([s.gets, s.puts, s.deletes, s.unknown].map(Number)).toEqual([get, put, del, other]);
});

test('sslsniff: one program on two attach points, maps shared, cookies tell them apart', async () => {
  const r = await runCli(['run', ex('sslsniff.manifest.json')]);
  expect(r.code).toBe(0);
  const calls = lines(r.stdout).filter((l) => /^(read|write) /.test(l)).map((l) => /^(\w+) (\d+) (.*)$/.exec(l)!.slice(1));
  const recs = records(r.stdout, '', ['PID', 'RW', 'LEN', 'BUF']);
  expect(recs.map((x) => [x[1] === 'DIR_WRITE' ? 'write' : 'read', x[2], x[3]])).toEqual(calls);
  const sum = (dir: string) => calls.filter((c) => c[0] === dir).reduce((n, c) => n + Number(c[1]), 0);
  expect(rows(r.stdout, 'bytes')).toEqual([['0', String(sum('read'))], ['1', String(sum('write'))]].sort((x, y) => Number(x[1]) - Number(y[1])));
  expect(r.stdout).toContain('probe_ssl_rw 6 hits');
});

describe('refused before anything is spawned', () => {
  test('every unsupported map, helper and extern of an object at once (exit 3)', async () => {
    const r = await runCli(['spawn', '-o', bpfObjectPath('loader_badmap'), victimPath('adder'), '5']);
    expect(r.code).toBe(3);
    expect(lines(r.stderr)).toHaveLength(1);
    for (const what of ['my_socks', 'no_prealloc_flag', 'get_current_task (#35)', 'bpf_prog_active', 'CONFIG_HZ', 'bpf_cast_to_kern_ctx']) expect(r.stderr).toContain(what);
    expect(r.stdout).not.toContain('ready');
    noStack(r.stderr);
  });

  test('an unknown syscall name in a manifest is a usage error naming the JSON path (exit 2)', async () => {
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'compat-'));
    try {
      const m = path.join(dir, 'm.json');
      fs.writeFileSync(m, JSON.stringify({ target: { spawn: [victimPath('adder'), '5'] }, objects: [{ path: bpfObjectPath('cli_bare'), programs: { on_bare: { type: 'syscall', phase: 'enter', syscall: 'umount3' }, on_skipped: { disabled: true } } }] }));
      const r = await runCli(['run', m]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`bpftime-ts: error: ${m}: /objects/0/programs/on_bare/syscall: no x86-64 syscall "umount3" (did you mean "umount"?)\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an override the attach type ignores is a warning, and the function runs unchanged', async () => {
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'compat-'));
    try {
      const m = path.join(dir, 'm.json');
      fs.writeFileSync(m, JSON.stringify({ target: { spawn: [victimPath('adder'), '10'] }, objects: [{ path: bpfObjectPath('cli_override_bare'), programs: { force_zero: { type: 'uprobe', binary: victimPath('adder'), symbol: 'target_add' } } }] }));
      const r = await runCli(['run', m]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('warning: ');
      expect(r.stderr).toContain('program "force_zero" calls bpf_override_return but attaches as a uprobe: the override is ignored (use type "uprobe_override")');
      expect(r.stdout).toContain('done calls=10 sum=45');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
