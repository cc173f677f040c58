// The inline hook engine under stress (npm run stress): attach/detach cycles per hook kind
// (--hooks inline, --duration 0.3) on a victim whose 4 threads call the hooked functions
// back-to-back while a fifth sleeps inside a hooked function across each detach. A dead
// victim counts as a crash and is restarted; every victim's own result checks must pass.
// Prints a table: kind, cycles, target crashes, CLI failures, result mismatches.
// STRESS_CYCLES (default 10) cycles per kind; STRESS_HOOKS=interceptor for the comparison;
// STRESS_KINDS=all for one row instead, every kind attached at once in each cycle
// (inl_all.bpf.o), so that N cycles detach every kind N times in a fraction of the time.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli, waitForOutput } from '../support/cli';
import { bpfObjectPath, victimPath } from '../support/paths';
import { isAlive, startVictim, type RunningVictim } from '../support/victim';

const CYCLES = Number(process.env.STRESS_CYCLES ?? 10);
const HOOKS = process.env.STRESS_HOOKS ?? 'inline';
jest.setTimeout(6 * CYCLES * 30_000 + 60_000); // generous: a cycle takes ~2 s

const bin = victimPath('inlinevictim');

/** A manifest enabling only `programs` of object `name` (the others disabled). */
function only(name: string, programs: string[], all: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inline-stress-'));
  const file = path.join(dir, 'm.json');
  const cfg = Object.fromEntries(all.map((p) => [p, programs.includes(p) ? {} : { disabled: true }]));
  fs.writeFileSync(file, JSON.stringify({ objects: [{ path: bpfObjectPath(name), programs: cfg }] }));
  return file;
}

const RET = ['ret_leaf', 'ret_fib', 'ret_jumper', 'ret_sleepy', 'entry_jumper'];
const OV = ['ov_mid', 'ov_sum10', 'ov_fmix', 'ov_leaf'];
const KINDS: { kind: string; manifest: () => string }[] = [
  { kind: 'UPROBE', manifest: () => only('inl_uprobe', ['up_leaf', 'up_fmix', 'up_sum10', 'up_sleepy'], ['up_leaf', 'up_fmix', 'up_sum10', 'up_sleepy']) },
  { kind: 'URETPROBE', manifest: () => only('inl_uretprobe', ['ret_leaf', 'ret_fib', 'ret_jumper', 'ret_sleepy'], RET) },
  { kind: 'UPROBE+URETPROBE', manifest: () => only('inl_uretprobe', RET, RET) },
  { kind: 'UPROBE_OVERRIDE taken', manifest: () => only('inl_override', ['ov_mid'], OV) },
  { kind: 'UPROBE_OVERRIDE not taken', manifest: () => only('inl_override', ['ov_sum10', 'ov_fmix'], OV) },
  { kind: 'JS path', manifest: () => only('inl_js', ['js_mid', 'js_leaf_ret'], ['js_mid', 'js_leaf_ret']) },
];
const ALL = ['all_leaf', 'all_sum10', 'all_fib_ret', 'all_jumper_ret', 'all_sleepy_ret', 'all_mid_ov', 'all_fmix_ov', 'all_sleepy_js'];
const ALL_AT_ONCE = { kind: 'every kind at once (inl_all)', manifest: () => only('inl_all', ALL, ALL) };
const RUN = process.env.STRESS_KINDS === 'all' ? [ALL_AT_ONCE] : KINDS;

interface Row {
  kind: string;
  cycles: number;
  crashes: number;
  cliFailures: number;
  mismatches: number;
}

/** Stops the victim; its mismatch count (1 if it never said), and its last line for the report. */
async function finish(v: RunningVictim): Promise<{ mismatches: number; said: string }> {
  v.child.kill('SIGUSR1');
  const out = await waitForOutput(v.child, (t) => t.includes('done '), 15000).catch(() => v.output());
  const m = /mismatches=(\d+)/.exec(out);
  const said = m ? (/done [^\n]*/.exec(out)?.[0] ?? '') : `no "done" line within 15 s; last output: ${out.trim().split('\n').pop() ?? ''}`;
  return { mismatches: m ? Number(m[1]) : 1, said };
}

test(`${CYCLES} attach/detach cycles per hook kind (--hooks ${HOOKS}) under 4 busy threads and one inside a hooked function`, async () => {
  const rows: Row[] = [];
  const deaths: string[] = [];
  for (const k of RUN) {
    const row: Row = { kind: k.kind, cycles: 0, crashes: 0, cliFailures: 0, mismatches: 0 };
    rows.push(row);
    const manifest = k.manifest();
    let v = await startVictim('inlinevictim', ['4', '1']);
    try {
      for (let c = 0; c < CYCLES; c++) {
        const r = await runCli(['attach', '--hooks', HOOKS, '--pid', String(v.pid), '-m', manifest, '--duration', '0.3']);
        row.cycles++;
        if (!isAlive(v.pid)) {
          row.crashes++;
          // How it died, and what the CLI said: the first clue of each crash, kept.
          await new Promise((res) => (v.child.exitCode !== null || v.child.signalCode !== null ? res(null) : v.child.once('exit', res)));
          const last = r.stderr.trim().split('\n').pop() ?? '';
          deaths.push(`${k.kind}, cycle ${c + 1}: pid ${v.pid} ${v.child.signalCode ? `killed by ${v.child.signalCode}` : `exited ${v.child.exitCode}`}; CLI exit ${r.code}: ${last}`);
          process.stderr.write(`${deaths[deaths.length - 1]}\n`);
          v.stop();
          v = await startVictim('inlinevictim', ['4', '1']);
        } else if (r.code !== 0) row.cliFailures++;
        // Progress for long runs, on stderr so the table stays the only stdout.
        if ((c + 1) % 100 === 0) process.stderr.write(`${k.kind}: ${c + 1} cycles, ${row.crashes} crashes, ${row.cliFailures} CLI failures\n`);
      }
      const end = await finish(v);
      row.mismatches += end.mismatches;
      if (end.mismatches) deaths.push(`${k.kind}: victim pid ${v.pid} at the end: ${end.said}`);
    } finally {
      v.stop();
    }
  }
  const lines = ['| kind | cycles | target crashes | CLI failures | result mismatches |', '| --- | --- | --- | --- | --- |', ...rows.map((r) => `| ${r.kind} | ${r.cycles} | ${r.crashes} | ${r.cliFailures} | ${r.mismatches} |`)];
  process.stdout.write(`\ninline hooks stress (--hooks ${HOOKS}, ${bin}):\n${lines.join('\n')}\n${deaths.join('\n')}\n`);
  for (const r of rows) expect({ kind: r.kind, crashes: r.crashes, cliFailures: r.cliFailures, mismatches: r.mismatches }).toEqual({ kind: r.kind, crashes: 0, cliFailures: 0, mismatches: 0 });
});
