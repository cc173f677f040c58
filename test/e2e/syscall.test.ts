// Syscall tracepoints on Stalker, against real multi-threaded victims: exact counts,
// arguments and return values, the enter override, strace as the reference, and attach /
// detach of a running process through fork, exec and signals. These drive
// SyscallAttachImpl through the test harness agent (fake runtime services, JS callbacks
// instead of eBPF programs); syscall_bpf.test.ts runs real programs through the runtime.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli, startCli, waitForOutput } from '../support/cli';
import { bpfObjectPath, victimPath } from '../support/paths';
import { attachHarness, spawnWithHarness, startLoopVictim, type Mechanism, type Stats } from '../support/syscallHarness';
import { isAlive, mapsOnceUnmapped } from '../support/victim';

const victim = victimPath('sysvictim');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'syscall-e2e-'));
const okPath = path.join(tmp, 'ok');
const denyPath = path.join(tmp, 'deny');
fs.writeFileSync(okPath, '');
fs.writeFileSync(denyPath, 'secret\n');

const ITER = 300;
const WORKERS = 5; // main + 4 threads

/** Every test runs on both mechanisms (SYSCALLS=rewrite|stalker picks one). */
const MECHANISMS = (process.env.SYSCALLS ? [process.env.SYSCALLS] : ['stalker', 'rewrite']) as Mechanism[];
let mechanism: Mechanism = 'stalker';

/** Runs a burst victim spawned under the harness; returns the stats written at exit_group and the output. */
async function burst(probes: object[], iter = ITER): Promise<{ stats: Stats & { at: string; tid: number }; output: string; exitCount: number }> {
  const marker = path.join(tmp, `stats-${Date.now()}-${Math.random()}.json`);
  const h = await spawnWithHarness([victim, 'burst', String(iter), String(WORKERS - 1), okPath, denyPath], mechanism);
  try {
    await h.start([...probes, { phase: 'enter', syscall: 'exit_group', markerFile: marker }]);
    await h.resume();
    await h.exited;
  } finally {
    await h.close();
  }
  const stats = JSON.parse(fs.readFileSync(marker, 'utf8'));
  return { stats, output: h.output(), exitCount: stats.counts['enter:exit_group'] ?? 0 };
}

describe.each(MECHANISMS)('--syscalls %s', (m) => {
  beforeAll(() => {
    mechanism = m;
  });

  describe('spawned victim, main thread + 4 threads', () => {
    test('exact per-syscall counts, arguments and return values', async () => {
      const { stats, output, exitCount } = await burst([
        { phase: 'enter', syscall: 'getpid' },
        { phase: 'exit', syscall: 'getpid' },
        { phase: 'enter', syscall: 'openat' },
        { phase: 'exit', syscall: 'openat' },
        { phase: 'enter', syscall: 'write' },
        { phase: 'exit', syscall: 'write' },
      ]);
      const total = ITER * WORKERS;
      expect(output).toContain(`done iters=${total} denied=0 opened=${total} bad=0`);
      // Two per iteration: the raw syscall(SYS_getpid) and libc's getpid() it is compared with
      // (under rewrite: libc's mov/syscall pair and the generic wrapper's rax site).
      expect(stats.counts['enter:getpid']).toBe(2 * total);
      expect(stats.counts['exit:getpid']).toBe(2 * total);
      // Stalker starts at main(); rewritten sites also see what Frida itself does on the
      // spawned main thread while it resumes it (rewrite/README.md "Not covered"): an open
      // of /proc/self/maps and 8-byte eventfd writes, counted apart here and bounded.
      const fridaOpens = Object.entries(stats.openPaths).filter(([p]) => p !== okPath && p !== denyPath);
      expect(fridaOpens.map(([p]) => p).every((p) => p === '/proc/self/maps')).toBe(true);
      const extraOpens = fridaOpens.reduce((n, [, c]) => n + c, 0);
      const eventfdWrites = stats.writeLens['8'] ?? 0;
      expect({ extraOpens, eventfdWrites }).toEqual(mechanism === 'stalker' ? { extraOpens: 0, eventfdWrites: 0 } : { extraOpens: Math.min(extraOpens, 2), eventfdWrites: Math.min(eventfdWrites, 8) });
      expect(stats.counts['enter:openat']).toBe(2 * total + extraOpens);
      expect(stats.counts['exit:openat']).toBe(2 * total + extraOpens);
      // The victim's writes (13 bytes each) plus its one summary line.
      expect(stats.writeLens['13']).toBe(total);
      expect(stats.counts['enter:write']).toBe(total + 1 + eventfdWrites);
      // openat's filename argument is a readable user pointer.
      expect(Object.fromEntries(Object.entries(stats.openPaths).filter(([p]) => p === okPath || p === denyPath))).toEqual({ [okPath]: total, [denyPath]: total });
      // getpid returns the pid in every thread; openat returns fds; write returns 13.
      const pid = Object.keys(stats.rets.getpid);
      expect(pid).toHaveLength(1);
      expect(stats.rets.getpid[pid[0]]).toBe(2 * total);
      expect(Object.keys(stats.rets.openat).every((fd) => Number(fd) >= 3)).toBe(true);
      expect(stats.rets.write['13']).toBe(total);
      // Hits came from 5 distinct threads; trace_entry.pid is the thread id every time.
      expect(Object.keys(stats.tids)).toHaveLength(WORKERS);
      expect(stats.counts['bad-pid']).toBeUndefined();
      expect(stats.counts['bad-len']).toBeUndefined();
      // exit_group's enter program ran before the process ended (it wrote these stats).
      expect(stats.at).toBe('exit_group');
      expect(exitCount).toBe(1);
    });

    test('enter override: openat of one path fails with EACCES, other opens succeed', async () => {
      const { stats, output } = await burst([{ phase: 'enter', syscall: 'openat', denyPath, errno: 13 }, { phase: 'exit', syscall: 'openat' }]);
      const total = ITER * WORKERS;
      expect(output).toContain(`done iters=${total} denied=${total} opened=0 bad=0`);
      expect(stats.rets.openat['-13']).toBe(total);
    });

    // Under rewrite this JS probe on every syscall used to hang the target (2 of 13 runs):
    // the agent's heap grew with mmap() under its spin lock, the rewritten site entered JS,
    // and JS allocated from that heap (rewriteHandlers.c, agent_heap_syscall). It runs under both.
    test('raw sys_enter counts agree with strace -f for everything the victim does from main() on', async () => {
      const { stats } = await burst([{ phase: 'enter', syscall: '*' }], 100);
      const raw: Record<string, number> = {};
      for (const [k, v] of Object.entries(stats.counts)) if (k.startsWith('enter:')) raw[k.slice(6)] = v;
      // The stats were written inside exit_group's enter hit, counted there by both probes.
      raw.exit_group = 1;
      const strace = straceFromMain([victim, 'burst', '100', String(WORKERS - 1), okPath, denyPath]);
      if (mechanism === 'rewrite') return expectRewriteAgreesWithStrace(raw, strace);
      // What main() and the workers do themselves is seen exactly as strace sees it.
      for (const name of ['getpid', 'openat', 'write', 'close', 'clone3', 'newfstatat', 'exit_group']) {
        expect([name, raw[name]]).toEqual([name, strace[name]]);
      }
      // Everything else strace sees at least as often, and each difference has a known cause:
      //  - thread start: rseq, set_robust_list and one rt_sigprocmask per new thread run in
      //    libc's start_thread before Frida's thread observer reports the thread;
      //  - thread end: Stalker lets go of a thread when it starts to exit, so its madvise
      //    (stack release), rt_sigprocmask and exit are not seen;
      //  - process-wide lazy initialisation that Frida's agent already triggered inside the
      //    victim: malloc's brk/getrandom, pthread's first rt_sigaction(SIGRT_1) and
      //    rt_sigprocmask, a thread stack (mmap + mprotect) reused from glibc's cache after
      //    an agent thread ended, and stdio's isatty ioctl (stdout is a pipe under Frida,
      //    /dev/null under strace).
      const newThreads = WORKERS - 1;
      const allowed: Record<string, number> = {
        rseq: newThreads,
        set_robust_list: newThreads,
        madvise: newThreads,
        exit: newThreads,
        rt_sigprocmask: 2 * newThreads + 1,
        rt_sigaction: 1,
        brk: 2,
        getrandom: 1,
        mmap: 1,
        mprotect: 1,
        ioctl: 1,
      };
      // futex depends on lock contention in pthread_join (timing), in both runs alike.
      for (const name of new Set([...Object.keys(raw), ...Object.keys(strace)])) {
        if (name === 'futex') continue;
        const missing = (strace[name] ?? 0) - (raw[name] ?? 0);
        expect([name, missing >= 0 && missing <= (allowed[name] ?? 0)]).toEqual([name, true]);
      }
    });
  });

  /**
   * Rewritten sites see every syscall of the process's threads from the entry point on, not
   * from main(): compared with strace from the same point, per syscall, the victim's own
   * work exactly and every other difference bounded by its cause.
   */
  function expectRewriteAgreesWithStrace(raw: Record<string, number>, fromMain: Record<string, number>): void {
    const strace = straceFrom([victim, 'burst', '100', String(WORKERS - 1), okPath, denyPath], (l) => /^\d+\s+munmap\(/.test(l));
    // The victim's own work and its threads' start and end as they do them: exact.
    for (const name of ['getpid', 'clone3', 'madvise', 'newfstatat', 'exit_group']) expect([name, raw[name]]).toEqual([name, strace[name]]);
    const newThreads = WORKERS - 1;
    // [fewer, more] than strace, by cause:
    //  - more: Frida's own work on the spawned main thread while it resumes it (an open,
    //    read and close of /proc/self/maps, 8-byte eventfd writes, an access check);
    //  - fewer, as under Stalker: each new thread's rseq and set_robust_list (before the
    //    thread observer reports it), and the lazy set-up Frida's agent already did in the
    //    process (malloc's brk/getrandom, pthread's SIGRT_1 rt_sigaction and masks, a
    //    cached thread stack's mmap and mprotect);
    //  - fewer, not rewritable (rewrite/README.md): a thread's final exit (2 bytes before
    //    its syscall) and some of glibc's rt_sigprocmask sites.
    const bounds: Record<string, [number, number]> = {
      openat: [0, 2],
      close: [0, 2],
      read: [0, 2],
      write: [0, 8],
      access: [0, 1],
      ioctl: [0, 1],
      rseq: [newThreads, 0],
      set_robust_list: [newThreads, 0],
      exit: [newThreads, 0],
      rt_sigprocmask: [2 * newThreads + 1, 0],
      rt_sigaction: [1, 0],
      brk: [2, 0],
      getrandom: [1, 0],
      mmap: [1, 0],
      mprotect: [1, 0],
    };
    for (const name of new Set([...Object.keys(raw), ...Object.keys(strace)])) {
      if (name === 'futex') continue; // lock contention in pthread_join: timing, in both runs alike
      const diff = (raw[name] ?? 0) - (strace[name] ?? 0);
      const [fewer, more] = bounds[name] ?? [0, 0];
      expect(diff >= -fewer && diff <= more ? name : `${name}: ours ${raw[name] ?? 0}, strace ${strace[name] ?? 0} (from main(): ${fromMain[name] ?? 0}), allowed -${fewer}..+${more}`).toBe(name);
    }
  }

  /** Per-syscall counts from `strace -f`, from main()'s first syscall (sigaction(SIGUSR1)) on. */
  function straceFromMain(argv: string[]): Record<string, number> {
    return straceFrom(argv, (l) => l.includes('rt_sigaction(SIGUSR1'), 0);
  }

  /** Per-syscall counts from `strace -f`, from the first line `start` matches (plus `skip` lines: 1 starts after it). */
  function straceFrom(argv: string[], start: (line: string) => boolean, skip = 1): Record<string, number> {
    const out = path.join(tmp, `strace-${Date.now()}.txt`);
    execFileSync('strace', ['-f', '-o', out, ...argv], { stdio: 'ignore' });
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    const first = lines.findIndex(start) + skip;
    const counts: Record<string, number> = {};
    for (const line of lines.slice(first)) {
      const m = /^\d+\s+([a-z_0-9]+)\(/.exec(line);
      if (m) counts[m[1]] = (counts[m[1]] ?? 0) + 1;
    }
    return counts;
  }

  describe('running victim', () => {
    test('attach, trace, detach: signals while traced, fork and exec after; the victim finishes correctly', async () => {
      const v = await startLoopVictim(victim, ['loop', '4', okPath, denyPath]);
      try {
        const h = await attachHarness(v.child.pid!, v.output, mechanism);
        try {
          const started = (await h.start([
            { phase: 'enter', syscall: 'getpid' },
            { phase: 'exit', syscall: 'openat' },
            { phase: 'enter', syscall: 'openat', denyPath, errno: 13 },
          ])) as { followed: number[]; describe: string };
          // Stalker: main + 4 workers, followed through the ptrace helper, no Frida thread
          // among them. Rewrite follows no thread: every thread meets the rewritten sites.
          if (mechanism === 'stalker') expect(started.followed).toHaveLength(5);
          else expect({ followed: started.followed, describe: /\(rewrite, \d+ sites/.test(started.describe) }).toEqual({ followed: [], describe: true });
          await new Promise((r) => setTimeout(r, 300));
          // Handlers run (unstalked, or through rewritten sites, their rt_sigreturn included)
          // on every worker and the main thread; nothing breaks.
          expect(await v.send('signal', /signalled handled=\d+/)).toBe('signalled handled=5');
          const s = (await h.script.call('stats')) as Stats;
          expect(Object.keys(s.tids).length).toBeGreaterThanOrEqual(4);
          expect(s.counts['enter:getpid']).toBeGreaterThan(100);
          // The override held for every worker while attached.
          expect(s.rets.openat['-13']).toBeGreaterThan(100);
          const stopped = (await h.script.call('stop')) as { followed: number[] };
          expect(stopped.followed).toEqual([]);
          // Compared once nothing is traced: while threads run, a denied open can be between
          // its enter (path counted) and its exit (result counted) at the moment of a snapshot.
          await new Promise((r) => setTimeout(r, 100));
          const last = (await h.script.call('stats')) as Stats;
          // A worker whose denied open ran its enter program just before `stop` took the
          // programs out misses the exit one (as with a kernel tracepoint detached between
          // the two; 1453 results for 1454 paths in one clean-clone run): at most one call in
          // flight per worker, never a result without its enter.
          const inFlight = last.openPaths[denyPath] - last.rets.openat['-13'];
          expect(inFlight).toBeGreaterThanOrEqual(0);
          expect(inFlight).toBeLessThanOrEqual(4);
          await h.script.call('reset');
          await new Promise((r) => setTimeout(r, 200));
          const after = (await h.script.call('stats')) as Stats;
          expect(after.counts).toEqual({});
        } finally {
          // Unloading waits until every thread has left Stalker's code; the main thread sits
          // in read() on stdin until the next command, so the detach completes once it wakes.
          // Under rewrite it is blocked inside a trampoline, which is never freed: the
          // detach does not wait for it.
          const closing = h.close();
          if (mechanism === 'rewrite') {
            await closing;
            expect(await mapsOnceUnmapped(v.child.pid!, /frida/)).not.toMatch(/frida/);
          }
          await new Promise((r) => setTimeout(r, 300));
          expect(await v.send('signal', /signalled handled=10/)).toBe('signalled handled=10');
          await closing;
        }
        // Detached: no agent left, fork and exec work, opens of the denied path succeed again.
        expect(await mapsOnceUnmapped(v.child.pid!, /frida/)).not.toMatch(/frida/);
        expect(await v.send('fork', /forked status=(\d+)/)).toBe('forked status=7');
        expect(await v.send('exec', /exec status=(\d+)/)).toBe('exec status=0');
        expect(isAlive(v.child.pid!)).toBe(true);
        const opened0 = Number(/opened=(\d+)/.exec(v.output())?.[1] ?? 0);
        expect(opened0).toBe(0); // nothing printed totals yet
        await v.send('quit', /done .*\n/);
        expect(v.output()).toMatch(/done iters=\d+ denied=\d+ opened=[1-9]\d* bad=0 signals=10/);
        expect(await v.exit).toBe(0);
      } finally {
        if (v.child.exitCode === null) v.child.kill('SIGKILL');
      }
    });

    // A thread inside a syscall when it is unfollowed still runs that block's on_exit callout;
    // its state block was freed at detach and gave the victim garbage syscall results
    // (getpid returned 0xcccccccc, open a negative number) until followers were kept.
    test.each([
      ['a native-path program', 'sys_native', 'by_id', 'count_ids'],
      ['a JS-path program', 'sys_count', 'counts', 'count_all'],
    ])('CLI attach with %s while 5 threads run it, detach after --duration: every syscall result stays right', async (_name, object, map, program) => {
      const v = await startLoopVictim(victim, ['loop', '4', okPath, denyPath]);
      try {
        const cli = startCli(['attach', '--pid', String(v.child.pid), '--syscalls', mechanism, '-o', bpfObjectPath(object), '--duration', '1']);
        // Wake the main thread (it waits in read() on stdin) while it is followed: it makes
        // syscalls under Stalker and goes back into read() there.
        await waitForOutput(cli, (t) => / installed in pid/.test(t), 20000);
        await v.send('signal', /signalled handled=5/);
        const r = await cli.result;
        expect(r.code).toBe(0);
        expect(r.stderr).toContain('detached');
        const opens = Number(new RegExp(`@${map}\\[257\\]: (\\d+)`).exec(r.stdout)?.[1]);
        expect(opens).toBeGreaterThan(100);
        expect(r.stdout).toMatch(new RegExp(`${program} [1-9]\\d* hits, 0 faults`));
        if (mechanism === 'stalker') {
          // The main thread went back into read() while followed: it returns through Stalker's
          // code, so the agent (not the hooks) stays until it does, and the CLI says so.
          expect(r.stderr).toContain(`thread ${v.child.pid} is blocked in read()`);
        } else {
          // Blocked in read() inside a trampoline (immortal): nothing to wait for, the agent
          // and the VM leave at once.
          expect(r.stderr).not.toContain('is blocked in');
          expect(await mapsOnceUnmapped(v.child.pid!, /frida|libbpfvm/)).not.toMatch(/frida|libbpfvm/);
        }
        await v.send('signal', /signalled handled=10/);
        expect(await mapsOnceUnmapped(v.child.pid!, /frida|libbpfvm/)).not.toMatch(/frida|libbpfvm/);
        await v.send('quit', /done .*\n/);
        expect(v.output()).toMatch(/done iters=\d+ denied=0 opened=[1-9]\d* bad=0 signals=10/);
        expect(await v.exit).toBe(0);
      } finally {
        if (v.child.exitCode === null) v.child.kill('SIGKILL');
      }
    });
  });
});
