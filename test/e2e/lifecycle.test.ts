// Session life cycles for every hook kind, end to end through the real CLI, on a victim
// whose 4 threads call the hooked functions back to back while its main thread sits in
// read(). Each cycle attaches, has the victim make an exact burst of calls, and stops the
// CLI with Ctrl-C right after it: the final dump must hold every one of those calls, the
// detach (SIGINT → nothing of ours mapped in the target) must take under 1 s (median), and
// after the last cycle no agent, library or thread of ours is left, the hooked code is the
// file's again and every result the victim checked was right.
import * as fs from 'fs';
import { readUsdtBinary } from '../../host/usdt/stapsdt';
import { fileBytes, liveBytes, symbolAddress } from '../support/victim';
import { startCli, waitForOutput } from '../support/cli';
import { bpfObjectPath } from '../support/paths';
import { HookKind, hookKinds, lifecycleBinary, lifecycleCycle, LifecycleVictim, median, ours, startLifecycle, taskCount } from '../support/lifecycle';

const BURST = 1000;
jest.setTimeout(20 * 15_000);

function loadBase(pid: number): bigint {
  const real = fs.realpathSync(lifecycleBinary);
  return BigInt('0x' + fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(real))!.split('-')[0]);
}

/** `cycles` attach/detach cycles of `kinds` in one session each; returns the detach times. */
async function cycles(v: LifecycleVictim, kinds: HookKind[], n: number): Promise<number[]> {
  const detachMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = await lifecycleCycle(v, kinds, 'inline');
    if (c.result.code !== 0) throw new Error(`cycle ${i}: exit ${c.result.code}\n${c.result.stderr}`);
    expect(c.result.stderr).toContain(`detached from pid ${v.pid}`);
    expect(c.expected).toBe(BURST);
    // [cycle, counter, value] so that a failure says which.
    for (const [counter, value] of Object.entries(c.counted)) expect([i, counter, value]).toEqual([i, counter, c.expected]);
    expect(c.detachMs).not.toBeNaN();
    detachMs.push(c.detachMs);
  }
  return detachMs;
}

/** After the last cycle: nothing of ours mapped, our threads gone, code and results intact. */
async function leavesNothing(v: LifecycleVictim, threads: number): Promise<void> {
  expect(taskCount(v.pid)).toBe(threads);
  // The inline engine's immortal hook pages are anonymous; nothing named is ours.
  expect(fs.readFileSync(`/proc/${v.pid}/maps`, 'utf8')).not.toMatch(ours);
  for (const fn of ['target_add', 'counted_add']) {
    expect(liveBytes(v.pid, symbolAddress(v.pid, lifecycleBinary, fn), 16)).toEqual(fileBytes(lifecycleBinary, fn, 16));
  }
  const base = loadBase(v.pid);
  const file = fs.readFileSync(lifecycleBinary);
  for (const site of readUsdtBinary(lifecycleBinary).sites) {
    expect(liveBytes(v.pid, base + BigInt(site.fileOffset), 1)[0]).toBe(file[site.fileOffset]);
  }
  const end = await v.quit();
  expect(end).toMatchObject({ bad: 0, code: 0 });
  expect(end.calls).toBeGreaterThan(0);
}

// The same site with probes of every kind in one session, in other attach orders: whatever
// the order, the entry and return probes see every call and the override is taken (the
// victim checks each result). Three cycles each, then nothing of ours is left.
const byObject = (o: string) => hookKinds.find((k) => k.object === o)!;
const mixedOrders: [string, string[]][] = [
  ['an override, then an entry probe', ['lc_override', 'lc_uprobe']],
  ['an entry probe, an override, then a uretprobe', ['lc_uprobe', 'lc_override', 'lc_uretprobe']],
  ['a uretprobe, an override, then an entry probe', ['lc_uretprobe', 'lc_override', 'lc_uprobe']],
];
test.each(mixedOrders)('inline hooks on one function, one session: %s, all count', async (_name, objects) => {
  const v = await startLifecycle(4, BURST);
  try {
    const threads = taskCount(v.pid);
    await cycles(v, objects.map(byObject), 3);
    await leavesNothing(v, threads);
  } finally {
    v.stop();
  }
});

// Detaching one probe of a function leaves the other counting: an override session, an
// entry probe session joining it, either one stopped first, then one more burst for the one
// left. (Sessions keep their own sites: the later one's stub is in front, so this order —
// the override's session first — is the one where both count; README, Known limitations.)
describe.each([
  ['the entry probe', 'entry'],
  ['the override', 'override'],
])('inline hooks, two sessions on one function: %s detaches first, the other counts on', (_name, first) => {
  test('exact counts, results right', async () => {
    const v = await startLifecycle(4, BURST);
    const attach = async (object: string) => {
      const cli = startCli(['attach', '--pid', String(v.pid), '-o', bpfObjectPath(object), '--hooks', 'inline']);
      await waitForOutput(cli, (t) => / installed in pid/.test(t), 30000);
      return cli;
    };
    const counted = (stdout: string) => Number(/^@counted_hits: (\d+)$/m.exec(stdout)?.[1] ?? NaN);
    try {
      const override = await attach('lc_override');
      const entry = await attach('lc_uprobe');
      expect(await v.burst()).toBe(BURST);
      const [gone, stays] = first === 'entry' ? [entry, override] : [override, entry];
      gone.kill('SIGINT');
      const g = await gone.result;
      expect([g.code, counted(g.stdout)]).toEqual([0, BURST]);
      expect(await v.burst()).toBe(BURST);
      stays.kill('SIGINT');
      const st = await stays.result;
      expect([st.code, counted(st.stdout)]).toEqual([0, 2 * BURST]);
      expect(await v.quit()).toMatchObject({ bad: 0, code: 0 });
    } finally {
      v.stop();
    }
  });
});

// Each group runs on one victim: every kind alone for 5 cycles (its detach median), then
// the group's kinds together in one session for 5 more, so each kind is attached and
// detached 10 times on that pid. Overrides have a group of their own (with the other kinds
// on one function in the tests above); syscall tracepoints stay apart from USDT (Known
// limitations).
const groups: [string, HookKind[]][] = [
  ['uprobe, uretprobe, uprobe+uretprobe, JS path, USDT', hookKinds.filter((k) => !/^lc_(sys|override)/.test(k.object))],
  ['override', hookKinds.filter((k) => k.object === 'lc_override')],
  ['syscall tracepoints, native and JS path', hookKinds.filter((k) => k.object.startsWith('lc_sys'))],
];

describe('every hook kind: detach under 1 s (median of 5 Ctrl-C), 10 attaches per kind, exact dumps, nothing left', () => {
  test.each(groups)('%s (uprobes with --hooks inline)', async (_name, kinds) => {
    const v = await startLifecycle(4, BURST);
    try {
      const threads = taskCount(v.pid);
      const medians: Record<string, number> = {};
      for (const kind of kinds) medians[kind.name] = median(await cycles(v, [kind], 5));
      await cycles(v, kinds, 5);
      // [kind, median] of every kind over 1 s: none.
      expect(Object.entries(medians).filter(([, ms]) => !(ms < 1000))).toEqual([]);
      await leavesNothing(v, threads);
    } finally {
      v.stop();
    }
  });
});

// Found with the groups above: with inline hooks, an entry probe attached before an override
// of the same function stopped counting once the override was in (each probe had its own
// stub, and a taken override returned before the older ones ran). The hook core now runs
// every probe of a site: entries, then return hijacks, then overrides.
test('inline hooks: an entry probe and an override on one function, one session, both count', async () => {
  const v = await startLifecycle(4, BURST);
  try {
    const kinds = hookKinds.filter((k) => k.object === 'lc_uprobe' || k.object === 'lc_override');
    await cycles(v, kinds, 1);
  } finally {
    v.stop();
  }
});
