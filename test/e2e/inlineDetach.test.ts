// The inline hook engine's detach safety: every hook kind attached and detached again and
// again (--hooks inline) while threads call the hooked functions back-to-back and one
// thread sits inside a hooked function across each detach; the victim checks every result.

import { runCli, waitForOutput } from '../support/cli';
import { jsonLines } from '../support/jsonLines';
import { bpfObjectPath, victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, startVictim, symbolAddress } from '../support/victim';

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
