// "N hooks installed" must mean the hooks are in the code: a burst of calls made right after
// the CLI says so is counted exactly, on both hook mechanisms, native and JS path. Found
// with --hooks interceptor and the JS-path object: target_add's hook went in first, its 4
// threads entered JS back to back, and Frida's Interceptor left counted_add's hook unwritten
// for seconds (0 of 1000 counted). The cycle ends with the victim's own exit, not a detach,
// so that Interceptor's detach race (README, Known limitations) plays no part here.
import { startCli, waitForOutput } from '../support/cli';
import { hookKinds, lifecycleBinary, startLifecycle } from '../support/lifecycle';
import { bpfObjectPath } from '../support/paths';
import { fileBytes, liveBytes, symbolAddress } from '../support/victim';

const BURST = 1000;
jest.setTimeout(120_000);

const objects = hookKinds.filter((k) => k.object === 'lc_uprobe' || k.object === 'lc_js');
const cases = (['inline', 'interceptor'] as const).flatMap((hooks) => objects.map((k) => [k.name, hooks, k.object] as const));

test.each(cases)('%s, --hooks %s: a burst right after "installed" is counted exactly', async (_name, hooks, object) => {
  const v = await startLifecycle(4, BURST);
  try {
    const fns = ['target_add', 'counted_add'].map((fn) => ({ fn, at: symbolAddress(v.pid, lifecycleBinary, fn), file: fileBytes(lifecycleBinary, fn, 5) }));
    const cli = startCli(['attach', '--pid', String(v.pid), '-o', bpfObjectPath(object), '--hooks', hooks]);
    await waitForOutput(cli, (t) => / installed in pid/.test(t), 30000);
    // Both functions' first bytes are the hook's, not the file's, from the moment it is said.
    const unwritten = fns.filter((f) => liveBytes(v.pid, f.at, 5).equals(f.file)).map((f) => f.fn);
    const made = await v.burst();
    const end = await v.quit();
    const r = await cli.result;
    expect(unwritten).toEqual([]);
    expect(made).toBe(BURST);
    expect([r.code, /^@counted_hits: (\d+)$/m.exec(r.stdout)?.[1]]).toEqual([0, String(BURST)]);
    expect(end).toMatchObject({ bad: 0, code: 0 });
  } finally {
    v.stop();
  }
});
