// Target memory over long attaches (npm run stress): each hot path for
// STRESS_MEMORY_SECONDS (default 600, the 10 minutes) with `--interval 1` printing
// maps every second; the target's RSS may not grow by 1 MB after the warm-up.
import { bpfObjectPath } from '../support/paths';
import { finalHits, formatSoak, runSoak } from '../support/soak';

const SECONDS = Number(process.env.STRESS_MEMORY_SECONDS ?? 600);
jest.setTimeout(SECONDS * 1000 + 120_000);

const cases: [string, string, string][] = [
  ['uprobe, native path', 'metrics_busy', 'soak_native'],
  ['uprobe, JS path', 'metrics_busy', 'soak_js'],
  ['syscall tracepoint, native path', 'sysbusy', 'bench_sys_hash'],
  ['syscall tracepoint, JS path', 'sysbusy', 'bench_sys_js'],
];

test.each(cases)(`%s: ${SECONDS} s with --interval 1, target RSS flat`, async (_name, victim, object) => {
  const r = await runSoak({ victim, cliArgs: ['-o', bpfObjectPath(object), '--interval', '1'], seconds: SECONDS, sampleEverySeconds: Math.max(5, Math.round(SECONDS / 40)) });
  console.log(`${_name}\n${formatSoak(r)}`);
  expect([r.targetAlive, r.cliCode]).toEqual([true, 0]);
  expect(finalHits(r.stdout)).toBeGreaterThan(SECONDS * 10_000);
  expect(r.growthKb.target).toBeLessThan(1024);
});
