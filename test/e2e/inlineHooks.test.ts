// The inline hook engine (--hooks inline) end to end: real -O2 victims, real clang-built
// programs, the real CLI. Exact counts on 4-byte leaves, recursion and longjmp, a taken
// override, an int3 mid-function; bad offsets refused. Detach safety: inlineDetach.test.ts.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../support/cli';
import { finalMaps, jsonLines, mapValue } from '../support/jsonLines';
import { bpfObjectPath, victimPath } from '../support/paths';

const victim = victimPath('inlinevictim');
const obj = bpfObjectPath;

function stats(stdout: string): Record<string, number> {
  const line = jsonLines(stdout).find((l) => l.type === 'stats');
  const out: Record<string, number> = {};
  for (const p of (line?.programs ?? []) as { program: string; hits: number }[]) out[p.program] = p.hits;
  return out;
}

describe('exact on -O2 code', () => {
  test('4-byte leaf entry/return, taken override, recursive and longjmp return probes, an int3 mid-function', async () => {
    const r = await runCli(['spawn', '--hooks', 'inline', '--json', '-o', obj('inl_exact'), victim, 'exact', '1000']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/Interceptor/); // nothing fell back
    // leaf_add(i, 1) summed; mid_add overridden to its own value + 1000 on each of 1000 calls.
    expect(r.stdout).toContain('exact leaf=500500 mid=2499500 fib=55 fib_entries=177 jumped=500');
    const s = stats(r.stdout);
    expect(s.ex_leaf).toBe(1000);
    expect(s.ex_leaf_ret).toBe(1000);
    expect(Number(mapValue(finalMaps(r.stdout).leaf_ret_sum, 0) ?? finalMaps(r.stdout).leaf_ret_sum?.[0]?.value)).toBe(500500);
    expect(s.ex_mid).toBe(1000);
    expect(s.ex_fib).toBeGreaterThan(0);
    expect(s.ex_fib_ret).toBe(s.ex_fib); // every real call of the recursion returns through its probe
    expect(s.ex_jumper_ret).toBe(500); // odd calls leave by longjmp and never return
    expect(s.ex_jumper_off).toBe(500); // the int3 inside jumper, reached by even calls
  });

  test('a manifest\'s "hooks": "inline" selects the engine (the Interceptor cannot hook the 4-byte leaf)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inline-manifest-'));
    const manifest = path.join(dir, 'm.json');
    fs.writeFileSync(manifest, JSON.stringify({ hooks: 'inline', target: { spawn: [victim, 'exact', '100'] }, objects: [{ path: obj('inl_exact') }] }));
    const r = await runCli(['run', '--json', manifest]);
    expect(r.code).toBe(0);
    expect(stats(r.stdout).ex_leaf).toBe(100);
    fs.writeFileSync(manifest, JSON.stringify({ hooks: 'sideways', target: { spawn: [victim, 'exact', '1'] }, objects: [{ path: obj('inl_exact') }] }));
    const bad = await runCli(['run', manifest]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/hooks/);
  });

  test('an offset inside an instruction is refused, naming the nearest boundaries', async () => {
    const r = await runCli(['spawn', '--hooks', 'inline', '-o', obj('inl_badoff'), victim, 'exact', '10']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('mid_add+0x1 is not an instruction boundary (nearest: mid_add+0x0 and mid_add+0x4)');
    expect(r.stderr).not.toMatch(/\n\s+at /); // one line, no stack
  });
});
