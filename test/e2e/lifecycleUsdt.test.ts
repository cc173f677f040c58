// USDT probes named the way bpftrace users name them, provider:name with no binary
// (section usdt/PROVIDER:NAME): they resolve against the target itself, its main executable
// and loaded libraries for attach --pid, the program it starts for spawn. When no binary of
// the target has the probe, one error line names the section and where it looked.
import * as path from 'path';
import { runCli } from '../support/cli';
import { bpfObjectPath, repoRoot } from '../support/paths';
import { lifecycleCycle, ours, startLifecycle } from '../support/lifecycle';
import * as fs from 'fs';

const sdtApp = path.join(repoRoot, 'examples', 'build', 'sdt_app');

test('attach --pid: usdt/lc:tick and usdt/lc:burst found in the target, every burst hit counted', async () => {
  const v = await startLifecycle(2, 500);
  try {
    const kind = { name: 'USDT (provider:name)', object: 'lc_usdt_bare', counters: ['counted_hits'] };
    const c = await lifecycleCycle(v, [kind], 'inline');
    expect(c.result.code).toBe(0);
    expect(c.result.stderr).not.toMatch(/error/);
    expect(c.counted.counted_hits).toBe(c.expected);
    expect(c.expected).toBe(500);
    expect(c.result.stdout).toMatch(/lc_tick [1-9]\d* hits/);
    expect(ours.test(fs.readFileSync(`/proc/${v.pid}/maps`, 'utf8'))).toBe(false);
    const end = await v.quit();
    expect(end).toMatchObject({ bad: 0, code: 0 });
  } finally {
    v.stop();
  }
}, 60000);

test('spawn: usdt/app:request_done found in the spawned program, one hit per request', async () => {
  const r = await runCli(['spawn', '-o', bpfObjectPath('sdt_bare'), sdtApp, '8']);
  expect(r.code).toBe(0);
  const served = r.stdout.split('\n').filter((l) => l.startsWith('request '));
  expect(served.length).toBe(8);
  expect(r.stdout).toMatch(/^@done_hits: 8$/m);
});

test('a provider:name no binary of the target has: one line naming the section, exit 3, nothing started', async () => {
  const r = await runCli(['spawn', '-o', bpfObjectPath('lc_usdt_bare'), sdtApp, '1']);
  expect(r.code).toBe(3);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/section "usdt\/lc:tick" names no binary and no binary of the target has lc:tick \(looked in .*sdt_app\)/);
  expect(r.stdout).not.toMatch(/^request /m);
});
