// The rewrite mechanism (agent/attach/syscall/rewrite/) against real multi-threaded
// victims through the test harness agent: exact per-syscall counts, arguments and
// return values, the enter override, and strace as the reference for a whole program.

import { execFileSync, spawn as spawnChild } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../support/cli';
import { bpfObjectPath, victimPath } from '../support/paths';
import { attachHarness, spawnWithHarness, startLoopVictim, type Stats } from '../support/syscallHarness';
import { mapsOnceUnmapped } from '../support/victim';
import { syscallName } from '../../protocol/syscalls';

const victim = victimPath('sysvictim');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'syscall-rw-'));
const okPath = path.join(tmp, 'ok');
const denyPath = path.join(tmp, 'deny');
fs.writeFileSync(okPath, '');
fs.writeFileSync(denyPath, 'secret\n');

const ITER = 300;
const WORKERS = 5; // main + 4 threads

async function burst(probes: object[], iter = ITER, forks = 0, mechanism: 'rewrite' | 'stalker' = 'rewrite'): Promise<{ stats: Stats & { at: string; tid: number }; output: string; started: { describe: string; coverage: { module: string; syscalls: number; rewritten: number; skipped: number }[] } }> {
  const marker = path.join(tmp, `stats-${Date.now()}-${Math.random()}.json`);
  const mode = forks > 0 ? ['forks', String(iter), String(WORKERS - 1), okPath, denyPath, String(forks)] : ['burst', String(iter), String(WORKERS - 1), okPath, denyPath];
  const h = await spawnWithHarness([victim, ...mode]);
  let started;
  try {
    started = await h.script.call('start', [[...probes, { phase: 'enter', syscall: 'exit_group', markerFile: marker }], mechanism]);
    await h.resume();
    await h.exited;
  } finally {
    await h.close();
  }
  if (!fs.existsSync(marker)) throw new Error(`no stats written; victim output:\n${h.output()}\nagent logs:\n${h.logs.join('\n')}\nstarted: ${JSON.stringify(started)}`);
  const stats = JSON.parse(fs.readFileSync(marker, 'utf8'));
  return { stats, output: h.output(), started: started as never };
}

// The harness's exact counts and the enter override run on both mechanisms in
// syscall.test.ts (with the rewrite-only extras of Frida's own work bounded there).

describe('rewrite mechanism, override and real programs', () => {
  test('CLI --syscalls rewrite: native-path array-map counters over 5 threads are exact', async () => {
    const n = 100;
    const r = await runCli(['spawn', '-v', '--syscalls', 'rewrite', '-o', bpfObjectPath('sys_native'), victim, 'burst', String(n), '4', okPath, denyPath]);
    const t = n * WORKERS;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/count_ids → raw_syscalls:sys_enter .*\(rewrite, \d+ sites, native path\)/);
    expect(r.stdout).toContain(`done iters=${t} denied=0 opened=${t} bad=0`);
    const by = (k: string) => Number(new RegExp(`@by_id\\[${k}\\]: (\\d+)`).exec(r.stdout)?.[1]);
    expect(by('39')).toBeGreaterThanOrEqual(2 * t); // raw + libc per iteration, + Frida's own on the main thread
    expect(by('39')).toBeLessThanOrEqual(2 * t + 2);
    expect(by('231')).toBe(1); // exit_group, from the _exit hook
    // Exact for the victim's own opens (the JS-path harness test checks the paths); the rest
    // are opens made on the new threads (4 here) while Frida's thread observer reports them,
    // which native programs count as the kernel would (JS-path programs start on a new
    // thread once it is reported, and do not see them).
    expect(by('257')).toBeGreaterThanOrEqual(2 * t);
    expect(by('257')).toBeLessThanOrEqual(2 * t + 2 + 3 * 4);
  });

  test('CLI --syscalls rewrite: bpf_override_return in sys_enter_openat, exit programs see the result', async () => {
    const n = 100;
    const r = await runCli(['spawn', '-v', '--syscalls', 'rewrite', '-o', bpfObjectPath('sys_inject'), victim, 'burst', String(n), '4', okPath, denyPath]);
    const t = n * WORKERS;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/deny_open → syscalls:sys_enter_openat .*rewrite.*native path/);
    expect(r.stdout).toContain(`done iters=${t} denied=${t} opened=0 bad=0`);
    expect(Number(/@results\[-13\]: (\d+)/.exec(r.stdout)?.[1])).toBe(t);
  });
});

describe('rewrite mechanism, code loaded later and forks', () => {
  test('a library dlopened after attach is rewritten before dlopen returns: its own syscall sites are traced', async () => {
    const lib = path.join(path.dirname(victimPath('sysdlopen')), 'libsysplugin.so');
    const child = spawnChild(victimPath('sysdlopen'), [lib, '200'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const marker = path.join(tmp, `dlopen-${Date.now()}.json`);
    try {
      const h = await attachHarness(child.pid!, () => out);
      try {
        const started = (await h.script.call('start', [[{ phase: 'enter', syscall: 'getpid' }, { phase: 'exit', syscall: 'getpid' }, { phase: 'enter', syscall: 'exit_group', markerFile: marker }], 'rewrite'])) as { coverage: { module: string }[] };
        expect(started.coverage.map((c) => c.module)).not.toContain('libsysplugin.so');
        child.stdin!.write('go\n');
        expect(await exit).toBe(0);
      } finally {
        await h.close();
      }
      expect(out).toContain('plugin calls=200 bad=0');
      const stats = JSON.parse(fs.readFileSync(marker, 'utf8')) as Stats;
      // 200 from the plugin's own `mov $39,%eax; syscall`, one from the victim's getpid(),
      // and a few that Frida's own C makes on this thread while it handles the new module
      // (it formats /proc/PID/maps paths). Without the module observer there would be 1.
      const enters = stats.counts['enter:getpid'];
      expect(enters).toBeGreaterThanOrEqual(201);
      expect(enters).toBeLessThanOrEqual(220);
      expect(stats.counts['exit:getpid']).toBe(enters);
      expect(Object.keys(stats.rets.getpid)).toEqual([String(child.pid)]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  // Forked children inherit the rewritten code. They are not traced (forkGuard marks the
  // child; the handlers then let every syscall through untouched), and must run correctly.
  test.each([
    ['native-path syscall programs, 4 threads inside them', 'sys_native', '4'],
    ['JS-path syscall programs', 'sys_count', '0'],
  ])('forks with %s: children run, exit with their status, and the parent goes on', async (_name, object, threads) => {
    const r = await runCli(['spawn', '--syscalls', 'rewrite', '-o', bpfObjectPath(object), victimPath('forker'), '10', threads]);
    expect(r.stdout).toContain('forks ok 10');
    expect(r.code).toBe(0);
  });
});

describe('forked children under load, both mechanisms', () => {
  // The children inherit the rewritten code (and Frida's hooks) but run untraced: forkGuard
  // marks the child, and the handlers let each of its syscalls straight through. 24 forks
  // while 4 threads are inside JS-path programs: every child's getpid/getppid are its own
  // and its 50 iterations succeed, and the parent's counts stay exact (the child's
  // syscalls reach no program of the parent's, the clone inside fork() none either).
  test.each(['rewrite', 'stalker'] as const)('%s: 24 forks, exact parent counts, children correct', async (mechanism) => {
    const forks = 24;
    const { stats, output } = await burst([{ phase: 'enter', syscall: 'getpid' }, { phase: 'exit', syscall: 'getpid' }, { phase: 'enter', syscall: 'openat' }, { phase: 'enter', syscall: 'clone' }], ITER, forks, mechanism);
    const total = ITER * WORKERS;
    expect(output).toContain(`forks ok ${forks}`);
    expect(output).toContain(`done iters=${total} denied=0 opened=${total} bad=0`);
    // Each worker's pair per iteration, and main's one getpid before the forks.
    expect(stats.counts['enter:getpid']).toBe(2 * total + 1);
    expect(stats.counts['exit:getpid']).toBe(2 * total + 1);
    expect(Object.keys(stats.rets.getpid)).toHaveLength(1);
    const fridaOpens = Object.entries(stats.openPaths).filter(([p]) => p !== okPath && p !== denyPath);
    expect(fridaOpens.map(([p]) => p).every((p) => p === '/proc/self/maps')).toBe(true);
    expect(Object.fromEntries(Object.entries(stats.openPaths).filter(([p]) => p === okPath || p === denyPath))).toEqual({ [okPath]: total, [denyPath]: total });
    expect(stats.counts['enter:clone']).toBeUndefined();
    expect(stats.at).toBe('exit_group');
  });
});

describe('generated code', () => {
  // Syscalls from code written at run time (an mmap'ed page, no module): Stalker follows
  // every instruction a thread runs, so it sees them; rewritten sites are only in modules,
  // so rewrite does not (no catch-all yet, rewrite/README.md "Not covered"). Either way the
  // calls return the pid.
  test.each([
    ['stalker', 1001, 1001],
    ['rewrite', 1, 3],
  ] as const)('%s: getpid from an mmap-ed page, 1000 calls', async (mechanism, lo, hi) => {
    const r = await runCli(['spawn', '--syscalls', mechanism, '-o', bpfObjectPath('sys_native'), victimPath('sysloop'), 'jit', '1000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('jit calls=1000 bad=0');
    // Plus the one libc getpid() the victim compares with (and, under rewrite, at most
    // two of Frida's own on the main thread).
    const n = Number(/@by_id\[39\]: (\d+)/.exec(r.stdout)?.[1]);
    expect(n >= lo && n <= hi).toBe(true);
  });
});

describe('vector registers across a traced syscall', () => {
  // The kernel keeps every vector register across `syscall`, so code may hold values in
  // them across one. sysvec fills ymm0-15 (all 256 bits) and, on AVX-512 CPUs, zmm16-31,
  // makes a raw getpid and checks every bit. Under rewrite, glibc's AVX-512 memcpy in the
  // VM library changed zmm16-31 on the native path, and V8 changed ymm0-15 on the JS path
  // (fxsave64 in the stub saved neither); see stubs.ts and vm/src/native_mem.c.
  test.each([
    ['rewrite', 'bench_sys_hash'],
    ['rewrite', 'bench_sys_js'],
    ['stalker', 'bench_sys_hash'],
    ['stalker', 'bench_sys_js'],
  ] as const)('%s, %s: 2000 rounds, every register intact, every getpid counted', async (mechanism, program) => {
    const r = await runCli(['spawn', '--syscalls', mechanism, '-o', bpfObjectPath(program), victimPath('sysvec'), '2000']);
    expect(r.code).toBe(0);
    const m = /vec rounds=2000 bad=(\d+) avx512=([01])/.exec(r.stdout);
    expect(m?.[1]).toBe('0');
    const calls = m?.[2] === '1' ? 4000 : 2000;
    expect(r.stdout + r.stderr).toMatch(new RegExp(`count_getpid\\w* ${calls} hits, 0 faults`));
  });
});

describe('rewrite mechanism, running victim', () => {
  // Three attach/trace/detach cycles on one victim whose 5 threads run syscalls back to
  // back (some are blocked in read() on stdin or inside a trampoline at each detach): every
  // site is restored each time, and the victim's results stay right throughout.
  test.each([
    ['a native-path program', 'sys_native', 'by_id', 'count_ids'],
    ['a JS-path program', 'sys_count', 'counts', 'count_all'],
  ])('CLI attach with %s, detach after --duration, three times: every syscall result stays right and every site is restored', async (_name, object, map, program) => {
    const v = await startLoopVictim(victim, ['loop', '4', okPath, denyPath]);
    try {
      const libc = fs.readFileSync(`/proc/${v.child.pid}/maps`, 'utf8');
      const libcPath = /\s(\/\S*libc\.so\.6)$/m.exec(libc)![1];
      const text = (pid: number) => {
        // The first executable mapping of libc, read through /proc/PID/mem: rewritten sites show up as changed bytes.
        const line = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(libcPath) && / r-xp /.test(l))!;
        const [lo, hi] = line.split(' ')[0].split('-').map((x) => parseInt(x, 16));
        const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
        const buf = Buffer.alloc(hi - lo);
        fs.readSync(fd, buf, 0, buf.length, lo);
        fs.closeSync(fd);
        return buf;
      };
      const before = text(v.child.pid!);
      for (let cycle = 0; cycle < 3; cycle++) {
        const cli = runCli(['attach', '--pid', String(v.child.pid), '--syscalls', 'rewrite', '-o', bpfObjectPath(object), '--duration', '1']);
        const r = await cli;
        expect(r.code).toBe(0);
        expect(r.stderr).toContain('detached');
        const opens = Number(new RegExp(`@${map}\\[257\\]: (\\d+)`).exec(r.stdout)?.[1]);
        expect(opens).toBeGreaterThan(100);
        expect(r.stdout).toMatch(new RegExp(`${program} [1-9]\\d* hits, 0 faults`));
        // Frida reverts its own hooks in libc (fork, pthread_create, _exit) as the agent goes.
        await mapsOnceUnmapped(v.child.pid!, /frida|libbpfvm/);
        const after = text(v.child.pid!);
        const diffs: string[] = [];
        for (let i = 0; i < after.length && diffs.length < 10; i++) if (after[i] !== before[i]) diffs.push(`${i.toString(16)}: ${before[i].toString(16)}->${after[i].toString(16)}`);
        expect(diffs).toEqual([]);
      }
      expect(await mapsOnceUnmapped(v.child.pid!, /frida|libbpfvm/)).not.toMatch(/frida|libbpfvm/);
      expect(await v.send('signal', /signalled handled=5/)).toBe('signalled handled=5');
      expect(await v.send('fork', /forked status=(\d+)/)).toBe('forked status=7');
      await v.send('quit', /done .*\n/);
      expect(v.output()).toMatch(/done iters=\d+ denied=0 opened=[1-9]\d* bad=0 signals=5/);
      expect(await v.exit).toBe(0);
    } finally {
      if (v.child.exitCode === null) v.child.kill('SIGKILL');
    }
  });
});

describe('rewrite mechanism against strace -f', () => {
  // A whole spawned program, rewritten while Frida holds it at its entry point (before
  // resume): libc's start-up from _start on, main(), and exit()'s stdio flush. seq's only
  // write is that flush (stdout is a pipe, so fully buffered), after an isatty ioctl and an
  // fstat of fd 1 made by the same flush; Stalker, which starts at main() and lets go of
  // the thread inside exit(), sees none of the three. Native-path programs (sys_writes).
  test('spawned /usr/bin/seq 1 10: every syscall from the entry point on, the write inside exit() included', async () => {
    const argv = ['/usr/bin/seq', '1', '10'];
    const r = await runCli(['spawn', '--syscalls', 'rewrite', '-o', bpfObjectPath('sys_writes'), ...argv]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    const ours: Record<string, number> = {};
    for (const m of r.stdout.matchAll(/@by_id\[(\w+)\]: (\d+)/g)) ours[syscallName(Number(m[1])) ?? m[1]] = Number(m[2]);
    const lens: Record<string, number> = {};
    for (const m of r.stdout.matchAll(/@write_lens\[(\d+)\]: (\d+)/g)) lens[m[1]] = Number(m[2]);
    const out = path.join(tmp, `strace-seq-${Date.now()}.txt`);
    // stdout a character device that is no terminal, as Frida gives the spawned program:
    // the flush's fstat of fd 1 is followed by an isatty ioctl, and output is fully buffered.
    execFileSync('strace', ['-f', '-o', out, ...argv], { stdio: ['ignore', 'ignore', 'ignore'] });
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    // Frida's spawn stop is the program's entry point: the dynamic loader's work (up to its
    // munmap of ld.so.cache) is done by then, before the agent exists.
    const entry = lines.findIndex((l) => /^\d+\s+munmap\(/.test(l)) + 1;
    expect(entry).toBeGreaterThan(0);
    const strace: Record<string, number> = {};
    for (const line of lines.slice(entry)) {
      const m = /^\d+\s+([a-z_0-9]+)\(/.exec(line);
      if (m) strace[m[1]] = (strace[m[1]] ?? 0) + 1;
    }
    expect(strace.write).toBe(1);
    expect(lens['21']).toBe(1); // "1\n2\n...10\n", written by exit()
    // Besides it, only Frida's 8-byte eventfd writes on the main thread (while it resumes
    // it, and while the agent reports the final maps).
    expect(Object.keys(lens).sort()).toEqual(['21', '8'].filter((k) => k in lens).sort());
    expect(ours.exit_group).toBe(1);
    // The isatty ioctl of exit()'s flush; a thread Frida starts meanwhile may make one or
    // two before the agent has it in its table of Frida threads (native-path programs
    // count those; README "Not covered").
    expect(ours.ioctl >= strace.ioctl && ours.ioctl <= strace.ioctl + 2).toBe(true);
    // gconv's cache: Frida's agent loaded it into this process before seq's setlocale, so
    // its openat, fstat, mmap and close do not happen again (strace shows them).
    expect(strace.openat).toBeGreaterThan(0);
    expect(lines.some((l) => /openat\(.*gconv-modules\.cache/.test(l))).toBe(true);
    // (A thread Frida starts meanwhile may add one before the agent knows it as Frida's.)
    expect(ours.mmap >= strace.mmap - 1 && ours.mmap <= strace.mmap).toBe(true);
    // Frida opens, reads and closes /proc/self/maps on the main thread while it resumes it.
    for (const name of ['openat', 'newfstatat', 'close']) {
      const inRange = ours[name] >= strace[name] - 1 && ours[name] <= strace[name] + 2;
      expect(inRange ? name : `${name}: ours ${ours[name]}, strace ${strace[name]}, allowed -1..+2`).toBe(name);
    }
    // What strace sees and rewritten sites do not (rewrite/README.md): reads through
    // __read_nocancel (locale.alias here), whose `xor %eax,%eax; syscall` opens the
    // function, leaving no room for a jump; and lazy set-up Frida's agent already did in
    // this process: malloc's first brk and getrandom, and the futex of a once-lock.
    expect(ours.read ?? 0).toBeLessThanOrEqual(strace.read);
    for (const name of ['brk', 'getrandom']) expect([name, ours[name] ?? 0]).toEqual([name, 0]);
  });

  // raw sys_enter counts by number (sys_native, native path) for a whole spawned program,
  // against strace -f on the same command. Where Stalker starts at main() and loses
  // threads as they end, rewritten sites see thread start and end too; what remains
  // different is explained per syscall.
  test('raw sys_enter counts agree with strace -f, thread start and end included', async () => {
    const n = 100;
    const argv = [victim, 'burst', String(n), String(WORKERS - 1), okPath, denyPath];
    const r = await runCli(['spawn', '--syscalls', 'rewrite', '-o', bpfObjectPath('sys_native'), ...argv]);
    expect(r.code).toBe(0);
    const ours: Record<string, number> = {};
    for (const m of r.stdout.matchAll(/@by_id\[(\w+)\]: (\d+)/g)) ours[syscallName(Number(m[1])) ?? m[1]] = Number(m[2]);
    const out = path.join(tmp, `strace-${Date.now()}.txt`);
    execFileSync('strace', ['-f', '-o', out, ...argv], { stdio: 'ignore' });
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    // From main()'s first syscall on (before it: the dynamic loader, which runs before
    // Frida's spawn stop and so before the agent exists).
    const first = lines.findIndex((l) => l.includes('rt_sigaction(SIGUSR1'));
    const strace: Record<string, number> = {};
    for (const line of lines.slice(first)) {
      const m = /^\d+\s+([a-z_0-9]+)\(/.exec(line);
      if (m) strace[m[1]] = (strace[m[1]] ?? 0) + 1;
    }
    // The threads' start and end as the victim does them: exact.
    for (const name of ['clone3', 'madvise', 'exit_group']) expect([name, ours[name]]).toEqual([name, strace[name]]);
    // The victim's own work, exactly, plus what Frida does on its threads (eventfd writes,
    // /proc reads while it reports new threads, its own getpid): a few, never fewer.
    for (const [name, extra] of [['getpid', 4], ['write', 8], ['openat', 24], ['close', 24]] as const) {
      const inRange = ours[name] >= strace[name] && ours[name] <= strace[name] + extra;
      expect(inRange ? name : `${name}: ours ${ours[name]}, strace ${strace[name]}, allowed +${extra}`).toBe(name);
    }
    // Each new thread's first syscalls, before Frida's thread observer has reported it, are
    // not traced (as with Stalker): until then the thread runs Frida's own reads of /proc
    // for it too, and only threads known to be the target's reach programs.
    for (const name of ['rseq', 'set_robust_list']) expect([name, (ours[name] ?? 0) <= strace[name]]).toEqual([name, true]);
    // Not rewritable here, so fewer than strace sees (agent/attach/syscall/rewrite/README.md):
    // a thread's final `exit` (start_thread's `xor %edi,%edi; mov %edx,%eax; syscall`: the
    // instruction before the syscall is 2 bytes) and some of glibc's rt_sigprocmask sites.
    expect(ours.exit ?? 0).toBe(0);
    expect(ours.rt_sigprocmask).toBeLessThanOrEqual(strace.rt_sigprocmask);
  });
});
