// Several bpftime-ts sessions on one process (#12 "sessions coexist"): the first CLI's
// sidecar shares its Frida runtime, later CLIs join it (host/session/targetLock.ts), each
// with its own programs, maps and private VM copy. Counts stay exact, either can detach
// first (or be killed), the target is intact and nothing of ours stays in it. Syscall
// tracepoints cannot be shared: a second session asking for them is refused in one line.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startCli, waitForOutput } from '../support/cli';
import { bpfObjectPath, victimPath } from '../support/paths';
import { isAlive, startVictim } from '../support/victim';

const CALLS = 20000;
let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpftime-shared-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function manifest(object: string): string {
  const file = path.join(dir, `${object}.json`);
  fs.writeFileSync(file, JSON.stringify({ objects: [{ path: bpfObjectPath(object), programs: { on_work: { type: 'uprobe', binary: victimPath('metrics_target'), symbol: 'work' } } }] }));
  return file;
}

const sumOf = (stdout: string, map: string) => [...stdout.matchAll(new RegExp(`^@${map}\\[\\d+\\]: (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
const ours = (pid: number) => /frida-agent|libbpfvm/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));

async function attached(args: string[]) {
  const cli = startCli(args);
  await waitForOutput(cli, (t) => /hook installed/.test(t), 30000);
  return cli;
}

describe.each([
  ['the first session detaches first', 'first'],
  ['the second session detaches first', 'second'],
  ['the first CLI is killed (SIGKILL) while the second stays', 'killed'],
])('two sessions on one pid: %s', (_name, order) => {
  test('both count every call exactly, the target finishes its work and keeps nothing of ours', async () => {
    const victim = await startVictim('metrics_target', [String(CALLS)]);
    const a = await attached(['attach', '--pid', String(victim.pid), '-m', manifest('soak_native')]);
    const b = await attached(['attach', '--pid', String(victim.pid), '-m', manifest('soak_js')]);
    try {
      process.kill(victim.pid, 'SIGUSR1');
      await waitForOutput(victim.child, (t) => /done \d+/.test(t), 60000);
      const stop = async (cli: typeof a, how: NodeJS.Signals) => {
        cli.kill(how);
        return cli.result;
      };
      const first = order === 'second' ? b : a;
      const second = order === 'second' ? a : b;
      const r1 = await stop(first, order === 'killed' ? 'SIGKILL' : 'SIGINT');
      expect(isAlive(victim.pid)).toBe(true);
      const r2 = await stop(second, 'SIGINT');
      const [ra, rb] = order === 'second' ? [r2, r1] : [r1, r2];
      if (order !== 'killed') {
        expect(ra.code).toBe(0);
        expect(ra.stdout).toContain(`@total: ${CALLS}`);
        expect(sumOf(ra.stdout, 'by_mod')).toBe(CALLS);
      }
      expect(rb.code).toBe(0);
      expect(sumOf(rb.stdout, 'by_coin')).toBe(CALLS);
      expect(victim.output()).toContain(`done ${(3 * CALLS * (CALLS - 1)) / 2}`);
      expect(isAlive(victim.pid)).toBe(true);
      const end = Date.now() + 5000;
      while (ours(victim.pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(ours(victim.pid)).toBe(false);
    } finally {
      for (const c of [a, b]) if (c.exitCode === null) c.kill('SIGKILL');
      victim.stop();
    }
  }, 120_000);
});

test('a second session with syscall tracepoints is refused in one line (exit 3); the first keeps counting', async () => {
  const victim = await startVictim('sysbusy', []);
  const a = await attached(['attach', '--pid', String(victim.pid), '-o', bpfObjectPath('bench_sys_hash')]);
  try {
    const b = startCli(['attach', '--pid', String(victim.pid), '-o', bpfObjectPath('bench_sys_js')]);
    const rb = await b.result;
    expect(rb.code).toBe(3);
    expect(rb.stderr.trim().split('\n').pop()).toBe(
      `bpftime-ts: error: pid ${victim.pid}: another bpftime-ts session traces its syscalls; syscall tracepoints cannot be shared between sessions (each thread is followed once) — stop that one first, or load both objects in one session (-o a.bpf.o -o b.bpf.o)`,
    );
    a.kill('SIGINT');
    const ra = await a.result;
    expect(ra.code).toBe(0);
    expect(Number(/count_getpid_hash (\d+) hits/.exec(ra.stdout)?.[1])).toBeGreaterThan(10000);
    expect(isAlive(victim.pid)).toBe(true);
  } finally {
    if (a.exitCode === null) a.kill('SIGKILL');
    victim.stop();
  }
}, 90_000);
