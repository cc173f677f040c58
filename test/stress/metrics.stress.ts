// Metrics over a long run (npm run stress): `attach --metrics` scraped ten times a second while
// the target calls the hooked function ~100k times a second. Memory of the target, the CLI and
// the sidecar must stay bounded. STRESS_METRICS_SECONDS sets the length (default 600; hours work).
import { bpfObjectPath } from '../support/paths';
import { formatSoak, runSoak } from '../support/soak';

const SECONDS = Number(process.env.STRESS_METRICS_SECONDS ?? 600);
jest.setTimeout(SECONDS * 1000 + 120_000);

test(`metrics: ${SECONDS} s attached and scraped at 10 Hz, memory bounded everywhere`, async () => {
  const r = await runSoak({
    victim: 'metrics_busy',
    cliArgs: ['-o', bpfObjectPath('soak_native'), '--metrics', '127.0.0.1:0'],
    seconds: SECONDS,
    sampleEverySeconds: Math.max(5, Math.round(SECONDS / 40)),
    scrapeHz: 10,
  });
  console.log(formatSoak(r));
  expect([r.targetAlive, r.cliCode, r.failedScrapes]).toEqual([true, 0, 0]);
  expect(r.scrapes).toBeGreaterThan(SECONDS * 5);
  expect(r.hitsAtLastScrape).toBeGreaterThan(SECONDS * 10_000);
  expect(r.growthKb.target).toBeLessThan(1024);
  expect(r.growthKb.cli).toBeLessThan(8 * 1024);
  expect(r.growthKb.sidecar).toBeLessThan(4 * 1024);
});
