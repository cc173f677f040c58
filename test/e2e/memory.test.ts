// The target's memory stays flat while it is traced (#12 "flat memory"): a victim runs the
// hooked path tens of thousands of times a second for 20 s; after a warm-up its RSS may not
// grow by 1 MB. Each hot path once: uprobe native/JS, syscall native/JS. The long versions
// are in test/stress/memory.stress.ts.
import { bpfObjectPath } from '../support/paths';
import { finalHits, formatSoak, runSoak } from '../support/soak';

const SECONDS = 20;

const cases: [string, string, string][] = [
  ['uprobe, native path', 'metrics_busy', 'soak_native'],
  ['syscall tracepoint, native path', 'sysbusy', 'bench_sys_hash'],
  ['syscall tracepoint, JS path', 'sysbusy', 'bench_sys_js'],
];

async function flatWhileTraced(victim: string, object: string, extra: string[] = []): Promise<void> {
  const r = await runSoak({ victim, cliArgs: ['-o', bpfObjectPath(object), ...extra], seconds: SECONDS, sampleEverySeconds: 2 });
  const report = formatSoak(r);
  expect([r.targetAlive, r.cliCode]).toEqual([true, 0]);
  expect(finalHits(r.stdout)).toBeGreaterThan(SECONDS * 10_000);
  expect({ flat: r.growthKb.target < 1024, report }).toEqual({ flat: true, report });
}

describe('target memory while attached', () => {
  test.each(cases)(`%s: ${SECONDS} s under load, target RSS grows < 1 MB after warm-up`, (_name, victim, object) => flatWhileTraced(victim, object), 90_000);

  // The JS path on the default (inline) hooks: the stubs call the leak-free gate.
  test(`uprobe, JS path: ${SECONDS} s under load, target RSS grows < 1 MB after warm-up`, () => flatWhileTraced('metrics_busy', 'soak_js'), 90_000);

  // KNOWN BUG, kept visible: on Interceptor listeners the JS-path hit enters JS through a
  // NativeCallback called inside the listener, where Frida's guard keeps the leak-free gate
  // (agent/hotCallback.ts) from firing; Frida 17.25 leaks ~200 B per such call (~16 MB/s
  // here). When this starts passing, make it a plain test.
  test.failing(`uprobe, JS path, --hooks interceptor: ${SECONDS} s under load, target RSS grows < 1 MB after warm-up`, () => flatWhileTraced('metrics_busy', 'soak_js', ['--hooks', 'interceptor']), 90_000);
});
