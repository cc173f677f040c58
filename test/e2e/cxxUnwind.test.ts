// C++ exceptions and pthread_cancel unwinding through a frame whose return address a
// uretprobe has hijacked (--hooks inline), on a g++ -O2 victim with 4 threads: the
// unwinder must never meet the return stub (no unwind info there: std::terminate). The
// victim checks every result and caught value itself; the return probe must count exactly
// the calls that returned normally, the entry probe every call.

import { spawn } from 'child_process';
import { runCli, waitForOutput } from '../support/cli';
import { finalMaps, jsonLines, mapValue } from '../support/jsonLines';
import { bpfObjectPath, victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, symbolAddress } from '../support/victim';

const victim = victimPath('cxxthrow');
jest.setTimeout(240_000);

function slot(stdout: string, i: number): number {
  const rows = finalMaps(stdout).hits;
  return Number(mapValue(rows, i) ?? 0);
}

function result(out: string): { normal: number; thrown: number; bad: number; cancelled: number } | null {
  const m = /normal=(\d+) thrown=(\d+) bad=(\d+) cancelled=(\d+)/.exec(out);
  return m ? { normal: Number(m[1]), thrown: Number(m[2]), bad: Number(m[3]), cancelled: Number(m[4]) } : null;
}

test('spawned: exceptions through a uretprobe\'d frame in 4 threads, and pthread_cancel of 2 threads blocked in one', async () => {
  const calls = 30000;
  const r = await runCli(['spawn', '--hooks', 'inline', '--json', '-o', bpfObjectPath('cxx_unwind'), victim, '4', String(calls)]);
  const res = result(r.stdout);
  expect([r.code, res, r.stderr.includes('Interceptor')]).toEqual([0, { normal: 80000, thrown: 40000, bad: 0, cancelled: 2 }, false]);
  expect(slot(r.stdout, 0)).toBe(4 * calls); // every call entered
  expect(slot(r.stdout, 1)).toBe(res!.normal); // every normal return, and no other
  expect(slot(r.stdout, 3)).toBe(0); // with the right values
  expect(slot(r.stdout, 2)).toBe(0); // blocked() never returns
  expect(jsonLines(r.stdout).some((l) => l.type === 'fault')).toBe(false);
});

test('attached: 10 detach cycles while 4 threads throw through the hooked frame back to back', async () => {
  const child = spawn(victim, ['4', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  try {
    await waitForOutput(child, (t) => /ready \d+/.test(t));
    const pid = child.pid!;
    const addr = symbolAddress(pid, victim, 'hooked');
    const original = fileBytes(victim, 'hooked', 16);
    for (let i = 0; i < 10; i++) {
      const r = await runCli(['attach', '--hooks', 'inline', '--json', '--pid', String(pid), '-o', bpfObjectPath('cxx_unwind'), '--duration', '0.5']);
      if (r.code !== 0 || !isAlive(pid)) throw new Error(`cycle ${i}: exit ${r.code}, victim ${isAlive(pid) ? 'alive' : 'dead'}\n${r.stderr}`);
      // Both probes saw calls in every cycle: returns, and entries of calls that threw.
      expect([i, slot(r.stdout, 1) > 0, slot(r.stdout, 0) > slot(r.stdout, 1), slot(r.stdout, 3)]).toEqual([i, true, true, 0]);
      expect(liveBytes(pid, addr, 16)).toEqual(original);
    }
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    child.stdin!.end('q\n');
    expect(await exited).toBe(0);
    const res = result(out);
    expect(res).toMatchObject({ bad: 0, cancelled: 2 });
    expect(res!.thrown).toBeGreaterThan(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
