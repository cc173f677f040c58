import * as fs from 'fs';
import * as path from 'path';

// A test that fails half-way can leave its victim or a Frida sidecar behind; they would
// keep jest (and CI) waiting forever. What this run left is killed here, and named, so the
// leak is visible rather than silent: descendants of this jest process, and processes
// running this checkout's fixtures or sidecar that started after the run began (victims
// orphaned when their sidecar died). Other runs' processes are left alone.

interface Proc {
  pid: number;
  ppid: number;
  startMs: number;
  cmdline: string;
}

function processes(): Proc[] {
  const bootMs = Number(/btime (\d+)/.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]) * 1000;
  const out: Proc[] = [];
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({
        pid: Number(d),
        ppid: Number(fields[1]),
        startMs: bootMs + (Number(fields[19]) * 1000) / 100, // starttime, in clock ticks (100 Hz)
        cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(),
      });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export default async function globalTeardown(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const marks = [path.join(root, 'test', 'fixtures', 'build'), path.join(root, 'host', 'backend', 'sidecar')];
  const runStart = Number(process.env.BPFTIME_TS_TEST_START ?? Date.now());
  const all = processes();
  const mine = new Set<number>([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!mine.has(p.pid) && mine.has(p.ppid)) (mine.add(p.pid), (grew = true));
  }
  mine.delete(process.pid);
  const orphans = all.filter((p) => p.startMs >= runStart - 1000 && marks.some((m) => p.cmdline.includes(m)));
  for (const p of [...all.filter((q) => mine.has(q.pid)), ...orphans]) {
    try {
      process.kill(p.pid, 'SIGKILL');
      process.stderr.write(`globalTeardown: killed leftover process ${p.pid}: ${p.cmdline}\n`);
    } catch {
      /* already gone */
    }
  }
}
