// The inline hook engine's detach safety: every hook kind attached and detached again and
// again (--hooks inline) while threads call the hooked functions back-to-back and one
// thread sits inside a hooked function across each detach; the victim checks every result.

import { runCli, sleep, startCli, waitForOutput } from '../support/cli';
import { jsonLines } from '../support/jsonLines';
import { bpfObjectPath, victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, sidecarOf, startVictim, symbolAddress } from '../support/victim';

const victim = victimPath('inlinevictim');
const obj = bpfObjectPath;

function stats(stdout: string): Record<string, number> {
  const line = jsonLines(stdout).find((l) => l.type === 'stats');
  const out: Record<string, number> = {};
  for (const p of (line?.programs ?? []) as { program: string; hits: number }[]) out[p.program] = p.hits;
  return out;
}

async function detachCycles(threads: number, cycles: number): Promise<void> {
  const v = await startVictim('inlinevictim', [String(threads), '1']);
  try {
    const addr = symbolAddress(v.pid, victim, 'leaf_add');
    const original = fileBytes(victim, 'leaf_add', 16);
    for (let i = 0; i < cycles; i++) {
      const r = await runCli(['attach', '--hooks', 'inline', '--json', '--pid', String(v.pid), '-o', obj('inl_all'), '--duration', '0.3']);
      if (r.code !== 0 || !isAlive(v.pid)) throw new Error(`cycle ${i}: exit ${r.code}, victim ${isAlive(v.pid) ? 'alive' : 'dead'}\n${r.stderr}`);
      const s = stats(r.stdout);
      // The busy functions were hit in every cycle, by native and JS programs alike.
      expect(s.all_leaf).toBeGreaterThan(0);
      expect(s.all_mid_ov).toBeGreaterThan(0);
      expect(s.all_sum10).toBeGreaterThan(0);
      expect(liveBytes(v.pid, addr, 16)).toEqual(original);
    }
    v.child.kill('SIGUSR1');
    const out = await waitForOutput(v.child, (t) => t.includes('done '), 10000);
    expect(out).toMatch(/done calls=\d+ mismatches=0/);
  } finally {
    v.stop();
  }
}

describe('detach under load (every kind in each cycle)', () => {
  test('4 threads + 1 inside sleepy(): 20 attach/detach cycles, no crash, results unchanged', () => detachCycles(4, 20), 600_000);
  test('8 threads + 1 inside sleepy(): 10 attach/detach cycles', () => detachCycles(8, 10), 400_000);
});

// The sidecar itself killed outright: Frida drops the script without our detachAll. The
// agent's script-unload hook (rpc.exports.dispose) must still take every inline stub out
// of the program before the script's JS callbacks and VM go, or a thread in a JS-path stub
// calls freed code.
describe('overrides not taken leave every argument alone', () => {
  // inl_override on sum10 (10 arguments, four on the stack), fmix (float arguments and a
  // double return) and the 4-byte leaf, none of them taken, and on mid_add taken with the
  // value it would return: 4 threads check every result themselves, across 5 detaches.
  test('4 threads + 1 inside sleepy(): 5 attach/detach cycles, results unchanged', async () => {
    const v = await startVictim('inlinevictim', ['4', '1']);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await runCli(['attach', '--hooks', 'inline', '--json', '--pid', String(v.pid), '-o', obj('inl_override'), '--duration', '0.3']);
        if (r.code !== 0 || !isAlive(v.pid)) throw new Error(`cycle ${i}: exit ${r.code}, victim ${isAlive(v.pid) ? 'alive' : 'dead'}\n${r.stderr}`);
        const s = stats(r.stdout);
        for (const p of ['ov_mid', 'ov_sum10', 'ov_fmix', 'ov_leaf']) expect({ p, hit: (s[p] ?? 0) > 0 }).toEqual({ p, hit: true });
      }
      v.child.kill('SIGUSR1');
      const out = await waitForOutput(v.child, (t) => t.includes('done '), 10000);
      expect(out).toMatch(/done calls=\d+ mismatches=0/);
    } finally {
      v.stop();
    }
  }, 120_000);
});

describe('sidecar SIGKILLed while inline hooks run', () => {
  test('4 threads + 1 inside sleepy(): the victim keeps running with right results and a new session attaches', async () => {
    const v = await startVictim('inlinevictim', ['4', '1']);
    try {
      const hooked = ['leaf_add', 'mid_add', 'sum10', 'fib', 'sleepy'];
      const original = hooked.map((f) => fileBytes(victim, f, 16));
      const addrs = hooked.map((f) => symbolAddress(v.pid, victim, f));
      for (let i = 0; i < 3; i++) {
        const cli = startCli(['attach', '--hooks', 'inline', '--pid', String(v.pid), '-o', obj('inl_all')]);
        await waitForOutput(cli, (t) => t.includes('installed in pid'), 30000);
        await sleep(300); // JS-path and native stubs busy on every worker
        const sidecar = sidecarOf(cli.pid!);
        if (sidecar === null) throw new Error('no sidecar under the CLI');
        process.kill(sidecar, 'SIGKILL');
        const r = await cli.result;
        expect(r.code).toBe(4);
        await sleep(1000); // let Frida unload the script and its agent
        expect(isAlive(v.pid)).toBe(true);
        addrs.forEach((a, k) => expect(liveBytes(v.pid, a, 16)).toEqual(original[k]));
      }
      // The stubs left behind are inert, and a new session hooks the same functions.
      const r = await runCli(['attach', '--hooks', 'inline', '--json', '--pid', String(v.pid), '-o', obj('inl_all'), '--duration', '0.5']);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
      expect(stats(r.stdout).all_leaf).toBeGreaterThan(0);
      expect(stats(r.stdout).all_mid_ov).toBeGreaterThan(0);
      expect(isAlive(v.pid)).toBe(true);
      v.child.kill('SIGUSR1');
      const out = await waitForOutput(v.child, (t) => t.includes('done '), 10000);
      expect(out).toMatch(/done calls=\d+ mismatches=0/);
    } finally {
      v.stop();
    }
  }, 240_000);
});
