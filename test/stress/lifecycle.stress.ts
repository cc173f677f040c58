// Detach times per hook kind and hook engine under load (npm run stress): the lifecycle
// victim's 4 threads call the hooked functions back to back and its main thread sits in
// read(); each cycle attaches one kind, has the victim make an exact burst of calls, and
// stops the CLI with Ctrl-C right after it. Prints one table (the README's Reliability
// section quotes it): detach = SIGINT until nothing of ours is mapped in the target.
// A target lost to a detach is counted and replaced by a fresh one, so that every row runs
// its cycles.
import { hookKinds, lifecycleCycle, LifecycleVictim, median, startLifecycle } from '../support/lifecycle';
import { isAlive } from '../support/victim';

const CYCLES = Number(process.env.STRESS_CYCLES ?? 10);
const BURST = 1000;
jest.setTimeout(CYCLES * 2 * hookKinds.length * 20_000 + 60_000);

interface Row {
  kind: string;
  hooks: string;
  cycles: number;
  lost: number;
  failed: number;
  inexact: number;
  detachMs: number[];
  exitMs: number[];
  /** What the first lost, failed or inexact cycle said: printed under the table. */
  firstProblem?: string;
}

const rows: Row[] = [];
const fmt = (xs: number[]) => (xs.length ? `${median(xs)} / ${Math.max(...xs)}` : 'n/a');

afterAll(() => {
  const lines = [
    '| hook kind | hooks | cycles | target lost | failed attaches | inexact dumps | detach, median / max (ms) | Ctrl-C to exit, median / max (ms) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.kind} | ${r.hooks} | ${r.cycles} | ${r.lost} | ${r.failed} | ${r.inexact} | ${fmt(r.detachMs)} | ${fmt(r.exitMs)} |`),
    '',
    ...rows.filter((r) => r.firstProblem).map((r) => `${r.kind}, ${r.hooks}: ${r.firstProblem}`),
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
});

const cases = hookKinds.flatMap((k) => (k.object.startsWith('lc_sys') ? [[k.name, 'inline'] as const] : [[k.name, 'inline'] as const, [k.name, 'interceptor'] as const]));

test.each(cases)(`${CYCLES} cycles: %s, --hooks %s`, async (name, hooks) => {
  const kind = hookKinds.find((k) => k.name === name)!;
  const row: Row = { kind: name, hooks: kind.object.startsWith('lc_sys') ? 'n/a' : hooks, cycles: 0, lost: 0, failed: 0, inexact: 0, detachMs: [], exitMs: [] };
  rows.push(row);
  let v: LifecycleVictim = await startLifecycle(4, BURST);
  try {
    for (let i = 0; i < CYCLES; i++) {
      row.cycles++;
      try {
        const c = await lifecycleCycle(v, [kind], hooks);
        const said = `cycle ${i}: exit ${c.result.code}, target ${isAlive(v.pid) ? 'alive' : 'gone'}, counted ${JSON.stringify(c.counted)} of ${c.expected}; ${c.result.stderr.trim().split('\n').slice(-2).join(' | ')}`;
        if (c.result.code !== 0 || !isAlive(v.pid)) {
          row.lost++;
          row.firstProblem ??= said;
        } else {
          if (!Number.isNaN(c.detachMs)) row.detachMs.push(c.detachMs);
          row.exitMs.push(c.exitMs);
          if (Object.values(c.counted).some((n) => n !== c.expected)) {
            row.inexact++;
            row.firstProblem ??= said;
          }
        }
      } catch (e) {
        if (isAlive(v.pid)) row.failed++;
        else row.lost++;
        row.firstProblem ??= `cycle ${i}: ${(e as Error).message.split('\n').slice(0, 3).join(' | ')}`;
      }
      if (!isAlive(v.pid)) {
        v.stop();
        v = await startLifecycle(4, BURST);
      }
    }
  } finally {
    v.stop();
  }
  // Inline hooks and syscall programs must not lose a target; Interceptor's detach race may.
  if (hooks === 'inline') expect(row).toMatchObject({ lost: 0, failed: 0, inexact: 0 });
});
