import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import { waitForOutput } from './cli';
import * as path from 'path';
import { repoRoot, victimPath } from './paths';

export interface RunningVictim {
  child: ChildProcess;
  pid: number;
  output: () => string;
  stop: () => void;
}

/** Starts a victim that prints `ready <pid>` and waits for that line. */
export async function startVictim(name: string, args: string[]): Promise<RunningVictim> {
  const child = spawn(victimPath(name), args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitForOutput(child, (t) => /ready \d+/.test(t));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** Address of a symbol in a running process: its file offset (from nm) plus the load base. */
export function symbolAddress(pid: number, binary: string, symbol: string): bigint {
  const nm = execFileSync('nm', [binary], { encoding: 'utf8' });
  const line = nm.split('\n').find((l) => l.endsWith(` ${symbol}`));
  if (!line) throw new Error(`${symbol} not in ${binary}`);
  const value = BigInt('0x' + line.split(' ')[0]);
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const real = fs.realpathSync(binary);
  const first = maps.find((l) => l.endsWith(real));
  if (!first) throw new Error(`${binary} not mapped in ${pid}`);
  return BigInt('0x' + first.split('-')[0]) + value; // PIE: vaddr 0 is the first mapping
}

/** The bytes a function starts with in the live process, to compare with the file. */
export function liveBytes(pid: number, addr: bigint, len: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, Number(addr));
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes a function starts with in its ELF file (PIE: file offset = vaddr for .text). */
export function fileBytes(binary: string, symbol: string, len: number): Buffer {
  const nm = execFileSync('nm', [binary], { encoding: 'utf8' });
  const line = nm.split('\n').find((l) => l.endsWith(` ${symbol}`))!;
  const off = Number('0x' + line.split(' ')[0]);
  const buf = fs.readFileSync(binary);
  return buf.subarray(off, off + len);
}

/**
 * Pids of this checkout's sidecar processes still around (a leaked one is a bug). Other
 * checkouts' sidecars (a second clone running its own suite) are not ours to count.
 */
export function sidecarPids(): number[] {
  const script = path.join(repoRoot, 'host', 'backend', 'sidecar', 'frida_sidecar.py');
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(script);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Parent pid of `pid` from /proc (0 when it is gone). */
function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** The sidecar started by the CLI process `cliPid` (a child or grandchild of it), if running. */
export function sidecarOf(cliPid: number): number | null {
  for (const p of sidecarPids()) {
    for (let q = parentOf(p), hops = 0; q > 1 && hops < 4; q = parentOf(q), hops++) if (q === cliPid) return p;
  }
  return null;
}

/**
 * The target's memory map once nothing matching `re` is mapped, or as it is after `ms`.
 * Frida unmaps its agent from its own thread shortly after the session closes (over 500 ms
 * on a loaded machine), so a detach test polls rather than reading the map once.
 */
export async function mapsOnceUnmapped(pid: number, re: RegExp, ms = 3000): Promise<string> {
  const end = Date.now() + ms;
  let maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  while (re.test(maps) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  }
  return maps;
}
