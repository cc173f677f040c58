// The uprobe family end to end: real clang-built programs, real victims, the real CLI.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../support/cli';
import { finalMaps, jsonLines, mapValue } from '../support/jsonLines';
import { bpfObjectPath, repoRoot, victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, mapsOnceUnmapped, startVictim, symbolAddress } from '../support/victim';

const probed = victimPath('probed');
const obj = bpfObjectPath;

function stats(stdout: string): { program: string; hits: number; faults: number; disabled?: string }[] {
  const line = jsonLines(stdout).find((l) => l.type === 'stats');
  return (line?.programs ?? []) as { program: string; hits: number; faults: number; disabled?: string }[];
}

describe('UPROBE: exact counts', () => {
  test('N calls give N hits; map, per-thread hash and a .bss global agree', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_count'), probed, 'add', '1000']);
    expect(r.code).toBe(0);
    const maps = finalMaps(r.stdout);
    expect(mapValue(maps.total, 0)).toBe(1000);
    expect(maps.per_thread).toHaveLength(1);
    expect(maps.per_thread[0].value).toBe(1000);
    expect(maps.arg_sum[0].value).toBe((1000 * 1001) / 2); // sum of (i + 1)
    expect(stats(r.stdout)).toEqual([{ object: 0, program: 'count_add', hits: 1000, faults: 0 }]);
  });

  test('8 threads calling concurrently: exact totals and exact per-thread counts', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_count'), probed, 'add', '5000', '8']);
    expect(r.code).toBe(0);
    const maps = finalMaps(r.stdout);
    expect(mapValue(maps.total, 0)).toBe(40000);
    expect(maps.per_thread.map((e) => e.value)).toEqual(Array(8).fill(5000));
    expect(maps.arg_sum[0].value).toBe(8 * ((5000 * 5001) / 2));
  });
});

describe('the native path (programs that need no JS run from a native listener)', () => {
  test('8 threads: exact entry counts, argument sums and return-value sums', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_native'), probed, 'add', '5000', '8']);
    expect(r.code).toBe(0);
    const maps = finalMaps(r.stdout);
    expect(mapValue(maps.calls, 0)).toBe(40000);
    expect(maps.arg_sum[0].value).toBe(8 * ((4999 * 5000) / 2)); // add(i, 1), i = 0..4999
    expect(maps.ret_sum[0].value).toBe(8 * ((5000 * 5001) / 2));
    expect(stats(r.stdout)).toEqual([
      { object: 0, program: 'native_entry', hits: 40000, faults: 0 },
      { object: 0, program: 'native_task', hits: 40000, faults: 0 },
      { object: 0, program: 'native_return', hits: 40000, faults: 0 },
    ]);
  });

  test('pid/tid, ktime and CPU helpers from C: the right process and thread, sane clock and CPU', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_native'), probed, 'add', '1000']);
    expect(r.code).toBe(0);
    const pid = Number(/ready (\d+)/.exec(r.stdout)![1]);
    const maps = finalMaps(r.stdout);
    const pidTgid = BigInt(maps.last_pid_tgid[0].value as number | string);
    expect(Number(pidTgid >> 32n)).toBe(pid);
    expect(Number(pidTgid & 0xffffffffn)).toBe(pid); // single-threaded: the main thread
    expect(maps.time_went_back[0].value).toBe(0);
    expect(Number(maps.last_ns[0].value)).toBeGreaterThan(0);
    expect(Number(maps.max_cpu[0].value)).toBeLessThan(os.cpus().length);
  });

  test('hash maps inside the VM: NOEXIST/EXIST, E2BIG when full, ENOENT, slot reuse; the wasm engine (JS maps) agrees', async () => {
    const native = await runCli(['spawn', '--json', '-o', obj('rt_hash'), probed, 'add', '100']);
    expect(native.stderr).not.toMatch(/fault/);
    expect(native.code).toBe(0);
    const maps = finalMaps(native.stdout);
    expect(maps.by_mod.map((e) => [e.key, e.value])).toEqual([[0, 25], [1, 25], [2, 25], [3, 25]]);
    expect(maps.inserted[0].value).toBe(4);
    expect(maps.existed[0].value).toBe(96);
    // small holds 2: keys 0 and 1; 2..99 do not fit, except 8 once 0 was deleted at 7.
    expect(maps.full[0].value).toBe(97);
    expect(maps.small.map((e) => e.key)).toEqual([1, 8]);
    expect(maps.missing_delete[0].value).toBe(100);
    expect(maps.missing_exist[0].value).toBe(100);
    expect(maps.deleted[0].value).toBe(1);
    // 100 keys came and went through a 4-entry map beside 3 that stayed (deleted buckets are reused or rebuilt away).
    expect(maps.churn_fail[0].value).toBe(0);
    expect(maps.churn.map((e) => [e.key, e.value])).toEqual([[1, 10], [2, 20], [3, 30]]);
    const wasm = await runCli(['spawn', '--json', '--engine', 'wasm', '-o', obj('rt_hash'), probed, 'add', '100']);
    expect(finalMaps(wasm.stdout)).toEqual(maps);
  });

  test('probe_read_user(_str) in C: -EFAULT and a zeroed buffer for unreadable memory, the stack reads; wasm (JS helpers) agrees', async () => {
    const native = await runCli(['spawn', '--json', '-o', obj('rt_probe_read'), probed, 'add', '10']);
    expect(native.code).toBe(0);
    const maps = finalMaps(native.stdout);
    expect(maps.rc_null[0].value).toBe(-14);
    expect(maps.rc_low[0].value).toBe(-14);
    expect(maps.zeroed[0].value).toBe(10);
    expect(maps.rc_stack[0].value).toBe(0);
    expect(maps.rc_str_null[0].value).toBe(-14);
    expect(Number(maps.rc_str_stack[0].value)).toBeGreaterThanOrEqual(1);
    expect(Number(maps.rc_str_stack[0].value)).toBeLessThanOrEqual(16);
    const wasm = await runCli(['spawn', '--json', '--engine', 'wasm', '-o', obj('rt_probe_read'), probed, 'add', '10']);
    const w = finalMaps(wasm.stdout);
    for (const k of ['rc_null', 'rc_low', 'zeroed', 'rc_stack', 'rc_str_null', 'runs']) expect(w[k]).toEqual(maps[k]);
  });

  // 100 µs between calls: with none at all, Frida's own Interceptor teardown can crash the
  // target (a plain Frida JS listener: 6 of 30 detaches), see README, Known limitations.
  test('attach to a running 4-thread victim, detach while they hit it: hooks removed, the victim runs on', async () => {
    const victim = await startVictim('adder', ['0', '100', '4']);
    try {
      const adder = victimPath('adder');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
      const manifest = path.join(dir, 'm.json');
      const at = { binary: adder, symbol: 'target_add' };
      fs.writeFileSync(manifest, JSON.stringify({ objects: [{ path: obj('rt_native'), programs: { native_entry: { type: 'uprobe', ...at }, native_return: { type: 'uretprobe', ...at } } }] }));
      const r = await runCli(['attach', '--json', '--pid', String(victim.pid), '-m', manifest, '--duration', '1']);
      expect(r.code).toBe(0);
      const maps = finalMaps(r.stdout);
      expect(Number(mapValue(maps.calls, 0))).toBeGreaterThan(10000);
      const addr = symbolAddress(victim.pid, adder, 'target_add');
      expect(liveBytes(victim.pid, addr, 16)).toEqual(fileBytes(adder, 'target_add', 16));
      expect(await mapsOnceUnmapped(victim.pid, /frida|libbpfvm/)).not.toMatch(/frida|libbpfvm/);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });
});

describe('URETPROBE and several programs on one function', () => {
  test('two uprobes see the arguments, two uretprobes the return value', async () => {
    const n = 300;
    const r = await runCli(['spawn', '--json', '-o', obj('rt_multi'), probed, 'add', String(n)]);
    expect(r.code).toBe(0);
    const sums = finalMaps(r.stdout).sums;
    expect(mapValue(sums, 0)).toBe((n * (n - 1)) / 2); // sum of a = i
    expect(mapValue(sums, 1)).toBe(n); // sum of b = 1
    expect(mapValue(sums, 2)).toBe((n * (n + 1)) / 2); // sum of ret = i + 1
    expect(mapValue(sums, 3)).toBe((n * (n + 1)) / 2);
  });

  test('the latency example prints a sane log2 histogram', async () => {
    const calls = 500;
    const r = await runCli(['spawn', '-o', path.join(repoRoot, 'examples/build/latency.bpf.o'), path.join(repoRoot, 'examples/build/victim'), String(calls)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('@latency_ns:');
    const rows = r.stdout.split('\n').filter((l) => /^\[\d+[KMG]?, \d+[KMG]?\)\s+\d+ \|@*\s*\|$/.test(l));
    expect(rows.length).toBeGreaterThan(0);
    const total = rows.reduce((n, l) => n + Number(/\)\s+(\d+)/.exec(l)![1]), 0);
    expect(total).toBe(calls);
  });
});

describe('UPROBE_OVERRIDE', () => {
  test('the victim sees the injected value; calls the program lets through run the original; a uprobe beside it sees every call', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_override'), probed, 'check', '100']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('overridden 1 doubled 99');
    expect(mapValue(finalMaps(r.stdout).seen, 0)).toBe(100);
  });

  test('without the override program the function is unchanged', async () => {
    const r = await runCli(['spawn', '--count', 'check', probed, 'check', '100']);
    expect(r.stdout).toContain('overridden 0 doubled 100');
  });
});

describe('events, faults and libraries', () => {
  test('printk lines and ring-buffer records stream to the host, decoded through BTF', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_events'), probed, 'add', '20']);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    const printk = lines.filter((l) => l.type === 'printk');
    expect(printk.map((l) => l.text)).toEqual([expect.stringMatching(/^add\(0, 1\) tid=\d+$/), expect.stringMatching(/^add\(1, 1\) tid=\d+$/)]);
    const events = lines.filter((l) => l.type === 'event').map((l) => l.data as { a: number; ret: number; comm: string; tid: number });
    expect(events).toHaveLength(20);
    events.forEach((e, i) => expect(e).toMatchObject({ a: i, ret: i + 1, comm: 'probed' }));
    expect(events[0].tid).toBe(printk[0].tid);
  });

  test('a faulting program is reported with its name and pc and disabled; the target keeps running', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_fault'), probed, 'add', '100']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`sum ${(100 * 101) / 2}`);
    expect(r.stdout).toContain('done');
    const fault = jsonLines(r.stdout).find((l) => l.type === 'fault');
    expect(fault).toMatchObject({ type: 'fault', program: 'wild_read', pc: expect.any(Number) });
    expect(String(fault?.message)).toMatch(/^pc \d+: out-of-region memory access at address 0x[0-9a-f]+ in wild_read: outside a value of map cells/);
    const human = await runCli(['spawn', '-o', obj('rt_fault'), probed, 'add', '10']);
    expect(human.stderr).toMatch(/warning: program wild_read faulted and is disabled: pc \d+: .*outside a value of map cells/);
    expect(stats(r.stdout)[0]).toMatchObject({ program: 'wild_read', hits: 1, faults: 1 });
  });

  test('a helper bpftime-ts does not provide is rejected at load, by name', async () => {
    const r = await runCli(['spawn', '-o', obj('rt_unsupported'), probed, 'add', '10']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('get_current_task (#35)');
    expect(r.stdout).not.toContain('ready');
  });

  test('libc.so.6:malloc by symbol', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_events'), probed, 'malloc', '500']);
    expect(r.code).toBe(0);
    expect(mapValue(finalMaps(r.stdout).mallocs, 0)).toBeGreaterThanOrEqual(500);
  });

  test('libc malloc by file offset (manifest)', async () => {
    const libc = execFileSync('sh', ['-c', "ldd /bin/true | awk '/libc.so.6/ {print $3}'"], { encoding: 'utf8' }).trim();
    const vaddr = Number('0x' + execFileSync('sh', ['-c', `nm -D --defined-only ${libc} | awk '$3 ~ /^malloc(@|$)/ {print $1; exit}'`], { encoding: 'utf8' }).trim());
    // File offset = vaddr - p_vaddr + p_offset of the executable segment holding it.
    const segs = execFileSync('readelf', ['-lW', libc], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^\s+LOAD/.test(l))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => ({ off: Number(f[1]), va: Number(f[2]), size: Number(f[5]) }));
    const seg = segs.find((s) => vaddr >= s.va && vaddr < s.va + s.size)!;
    const fileOffset = vaddr - seg.va + seg.off;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
    const manifest = path.join(dir, 'm.json');
    fs.writeFileSync(
      manifest,
      JSON.stringify({
        target: { spawn: [probed, 'malloc', '300'] },
        objects: [{ path: obj('rt_events'), programs: { on_malloc: { type: 'uprobe', binary: 'libc.so.6', offset: fileOffset }, on_add: { disabled: true }, on_add_ret: { disabled: true } } }],
        output: { json: true },
      }),
    );
    const r = await runCli(['run', manifest]);
    expect(r.code).toBe(0);
    expect(mapValue(finalMaps(r.stdout).mallocs, 0)).toBeGreaterThanOrEqual(300);
  });

  test('a library loaded later with dlopen is hooked when it appears', async () => {
    const r = await runCli(['spawn', '--json', '-o', obj('rt_plugin'), probed, 'plugin', '50']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plugin sum');
    expect(mapValue(finalMaps(r.stdout).plugin_calls, 0)).toBe(50);
  });

  test('a library that never loads is a warning at attach and again at the end, not a silent nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
    const manifest = path.join(dir, 'm.json');
    fs.writeFileSync(manifest, JSON.stringify({ objects: [{ path: obj('rt_plugin'), programs: { on_plugin: { type: 'uprobe', binary: 'libnotthere.so', symbol: 'plugin_fn' } } }] }));
    const r = await runCli(['spawn', '-m', manifest, probed, 'add', '3']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: on_plugin → libnotthere.so:plugin_fn: pending: waiting for libnotthere.so to be loaded');
    expect(r.stderr).toContain('warning: libnotthere.so:plugin_fn: never attached');
  });

  test('a symbol missing from the binary is a clear error naming it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
    const manifest = path.join(dir, 'm.json');
    fs.writeFileSync(
      manifest,
      JSON.stringify({
        target: { spawn: [probed, 'add', '1'] },
        objects: [{ path: obj('rt_count'), programs: { count_add: { type: 'uprobe', binary: probed, symbol: 'no_such_fn' } } }],
      }),
    );
    const r = await runCli(['run', manifest]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('symbol no_such_fn not found in probed');
  });
});

describe('detach', () => {
  test('attach to a running victim, detach: every hook is removed and the victim runs on', async () => {
    const victim = await startVictim('adder', ['0', '500']);
    try {
      const adder = victimPath('adder');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
      const manifest = path.join(dir, 'm.json');
      fs.writeFileSync(
        manifest,
        JSON.stringify({
          objects: [
            { path: obj('rt_multi'), programs: Object.fromEntries(['entry_a', 'entry_b', 'ret_a', 'ret_b'].map((p) => [p, { type: p.startsWith('ret') ? 'uretprobe' : 'uprobe', binary: adder, symbol: 'target_add' }])) },
          ],
        }),
      );
      const r = await runCli(['attach', '--json', '--pid', String(victim.pid), '-m', manifest, '--duration', '1']);
      expect(r.code).toBe(0);
      expect(Number(mapValue(finalMaps(r.stdout).sums, 1))).toBeGreaterThan(100);
      const addr = symbolAddress(victim.pid, adder, 'target_add');
      expect(liveBytes(victim.pid, addr, 16)).toEqual(fileBytes(adder, 'target_add', 16));
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });
});

describe('host access to maps while the target runs', () => {
  test('lookup, update, delete and dump over RPC, seen by the running program', async () => {
    const { SidecarBackend } = await import('../../host/backend/SidecarBackend');
    const { Session } = await import('../../host/session/Session');
    const { buildPlan } = await import('../../host/cli/buildPlan');
    const victim = await startVictim('adder', ['0', '500']);
    const backend = await SidecarBackend.start();
    const session = new Session(backend, { kind: 'pid', pid: victim.pid });
    try {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
      const manifest = path.join(dir, 'm.json');
      const adder = victimPath('adder');
      fs.writeFileSync(
        manifest,
        JSON.stringify({ objects: [{ path: obj('rt_count'), programs: { count_add: { type: 'uprobe', binary: adder, symbol: 'target_add' } } }] }),
      );
      const plan = buildPlan({ manifest, objects: [], target: { kind: 'pid', pid: victim.pid }, count: [], json: true, verbose: false, engine: 'native' });
      await session.start();
      const results = await session.agent.load(plan.load!);
      expect(results.map((r) => r.state)).toEqual(['attached']);
      const total = plan.objects[0].maps.findIndex((m) => m.name === 'total');
      const perThread = plan.objects[0].maps.findIndex((m) => m.name === 'per_thread');
      const key0 = Buffer.alloc(4).toString('base64');
      const u64 = (b64: string | string[] | null) => Buffer.from(b64 as string, 'base64').readBigUInt64LE(0);
      await new Promise((r) => setTimeout(r, 300));
      const before = u64(await session.agent.mapLookup(0, total, key0));
      expect(before).toBeGreaterThan(10n);
      // Reset the counter from the host; the program keeps counting from there.
      const big = Buffer.alloc(8);
      big.writeBigUInt64LE(1_000_000n);
      expect(await session.agent.mapUpdate(0, total, key0, big.toString('base64'), 0)).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      const after = u64(await session.agent.mapLookup(0, total, key0));
      expect(after).toBeGreaterThan(1_000_000n);
      // Iterate and delete: the per-thread hash has the victim's thread, and loses it.
      const dump = await session.agent.mapDump();
      const rows = dump.find((d) => d.map === perThread)!.entries;
      expect(rows.map((e) => Buffer.from(e.key, 'base64').readUInt32LE(0))).toEqual([victim.pid]);
      expect(await session.agent.mapDelete(0, perThread, rows[0].key)).toBe(0);
      expect(await session.agent.mapDelete(0, perThread, Buffer.from([1, 2, 3, 4]).toString('base64'))).toBe(-2); // -ENOENT
      expect(await session.agent.mapUpdate(0, total, Buffer.from([9, 0, 0, 0]).toString('base64'), big.toString('base64'), 0)).toBe(-7); // index past max_entries: -E2BIG
    } finally {
      await session.detach();
      await backend.close();
      expect(isAlive(victim.pid)).toBe(true);
      victim.stop();
    }
  });

  test('an absolute address as the attach point', async () => {
    const victim = await startVictim('adder', ['0', '500']);
    try {
      const adder = victimPath('adder');
      const addr = '0x' + symbolAddress(victim.pid, adder, 'target_add').toString(16);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-ts-'));
      const manifest = path.join(dir, 'm.json');
      fs.writeFileSync(manifest, JSON.stringify({ objects: [{ path: obj('rt_count'), programs: { count_add: { type: 'uprobe', address: addr } } }] }));
      const r = await runCli(['attach', '--json', '--pid', String(victim.pid), '-m', manifest, '--duration', '0.5']);
      expect(r.code).toBe(0);
      expect(Number(mapValue(finalMaps(r.stdout).total, 0))).toBeGreaterThan(50);
    } finally {
      victim.stop();
    }
  });
});

// Inline hooks are the default; Frida's Interceptor stays selectable (and is what the inline
// engine falls back to), so its core cases run here explicitly.
describe("Frida's Interceptor (--hooks interceptor)", () => {
  const interceptor = (args: string[]) => runCli(['spawn', '--hooks', 'interceptor', ...args]);

  test('8 threads: exact entry counts, argument and return-value sums on the native path', async () => {
    const r = await interceptor(['--json', '-o', obj('rt_native'), probed, 'add', '5000', '8']);
    expect(r.code).toBe(0);
    const maps = finalMaps(r.stdout);
    expect(mapValue(maps.calls, 0)).toBe(40000);
    expect(maps.arg_sum[0].value).toBe(8 * ((4999 * 5000) / 2));
    expect(maps.ret_sum[0].value).toBe(8 * ((5000 * 5001) / 2));
  });

  test('8 threads: exact totals and per-thread counts', async () => {
    const r = await interceptor(['--json', '-o', obj('rt_count'), probed, 'add', '5000', '8']);
    expect(r.code).toBe(0);
    const maps = finalMaps(r.stdout);
    expect(mapValue(maps.total, 0)).toBe(40000);
    expect(maps.per_thread.map((e) => e.value)).toEqual(Array(8).fill(5000));
  });

  test('JS-path programs (printk, ring buffer) on entry and return', async () => {
    const r = await interceptor(['--json', '-o', obj('rt_events'), probed, 'add', '20']);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.filter((l) => l.type === 'printk')).toHaveLength(2);
    const events = lines.filter((l) => l.type === 'event').map((l) => l.data as { a: number; ret: number });
    expect(events.map((e) => [e.a, e.ret])).toEqual(Array.from({ length: 20 }, (_, i) => [i, i + 1]));
  });

  test('two uprobes and two uretprobes on one function', async () => {
    const n = 300;
    const r = await interceptor(['--json', '-o', obj('rt_multi'), probed, 'add', String(n)]);
    expect(r.code).toBe(0);
    const sums = finalMaps(r.stdout).sums;
    expect([0, 1, 2, 3].map((i) => mapValue(sums, i))).toEqual([(n * (n - 1)) / 2, n, (n * (n + 1)) / 2, (n * (n + 1)) / 2]);
  });

  test('an override: the victim sees the injected value, the rest run the original', async () => {
    const r = await interceptor(['--json', '-o', obj('rt_override'), probed, 'check', '100']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('overridden 1 doubled 99');
    expect(mapValue(finalMaps(r.stdout).seen, 0)).toBe(100);
  });
});
