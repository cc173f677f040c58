// The target-side facts helpers need, read through Frida: target memory (reads that
// fault return null instead of crashing the target), clocks, ids, comm, CPUs.

import type { TargetMemory } from '../helpers/HelperEnv.js';

const libc = (name: string) => Module.getGlobalExportByName(name);

// 'exclusive': keep the JS lock across the call. The default releases it, and another
// thread's hit would then run on the shared run context and context area mid-run
// (seen as per-thread counts off by a few under 8 threads).
const EXCLUSIVE = { scheduling: 'exclusive', exceptions: 'propagate' } as const;
const clockGettime = new NativeFunction(libc('clock_gettime'), 'int', ['int', 'pointer'], EXCLUSIVE);
const schedGetcpu = new NativeFunction(libc('sched_getcpu'), 'int', [], EXCLUSIVE);
const getuid = new NativeFunction(libc('getuid'), 'uint', [], EXCLUSIVE);
const getgid = new NativeFunction(libc('getgid'), 'uint', [], EXCLUSIVE);
const getNprocsConf = new NativeFunction(libc('get_nprocs_conf'), 'int', [], EXCLUSIVE);
const timespec = Memory.alloc(16);

const PAGE = Process.pageSize;
const CLOCK_MONOTONIC = 1;
const CLOCK_BOOTTIME = 7;

function clockNs(clock: number): bigint {
  clockGettime(clock, timespec);
  return BigInt(timespec.readS64().toString()) * 1_000_000_000n + BigInt(timespec.add(8).readS64().toString());
}

export const monotonicNs = (): bigint => clockNs(CLOCK_MONOTONIC);
export const boottimeNs = (): bigint => clockNs(CLOCK_BOOTTIME);
export const currentCpu = (): number => Math.max(0, schedGetcpu() as number);
export const uid = (): number => getuid() as number;
export const gid = (): number => getgid() as number;

let cpus = 0;
export function cpuCount(): number {
  cpus ||= Math.max(1, getNprocsConf() as number);
  return cpus;
}

/** The calling thread's name, as /proc/self/task/TID/comm gives it. */
export function threadComm(tid: number): string {
  try {
    return File.readAllText(`/proc/self/task/${tid}/comm`).replace(/\n$/, '');
  } catch {
    return Process.mainModule.name.slice(0, 15);
  }
}

export const targetMemory: TargetMemory = {
  read(addr: bigint, len: number): Uint8Array | null {
    if (len === 0) return new Uint8Array(0);
    try {
      const bytes = ptr(addr.toString()).readByteArray(len);
      return bytes === null ? null : new Uint8Array(bytes);
    } catch {
      return null; // unmapped or unreadable: Frida turned the fault into an exception
    }
  },
  readCString(addr: bigint, max: number): Uint8Array | null {
    // Page by page: a string may end right before an unmapped page, and a read that
    // crossed into it would fail as a whole.
    const out: number[] = [];
    let p = ptr(addr.toString());
    while (out.length < max) {
      const toPageEnd = PAGE - p.and(PAGE - 1).toUInt32();
      const n = Math.min(max - out.length, toPageEnd);
      let chunk: Uint8Array;
      try {
        const bytes = p.readByteArray(n);
        if (bytes === null) break;
        chunk = new Uint8Array(bytes);
      } catch {
        break;
      }
      const nul = chunk.indexOf(0);
      const take = nul >= 0 ? nul + 1 : chunk.length;
      for (let i = 0; i < take; i++) out.push(chunk[i]);
      if (nul >= 0) break;
      p = p.add(n);
    }
    return out.length === 0 ? null : new Uint8Array(out);
  },
};

/**
 * An instruction address as bpftrace's ustack prints it: `symbol+offset` (decimal), else
 * `module+0xoffset`, else the address in hex. Frida reads the ELF symbol tables (and DWARF,
 * where its answer is the bare function name: the offset is then taken from the symbol).
 */
export function symbolize(addr: bigint): string {
  const p = ptr(addr.toString());
  try {
    const name = DebugSymbol.fromAddress(p).name;
    const m = name === null ? null : /^(.+)\+0x([0-9a-f]+)$/.exec(name);
    if (m && !/^0x[0-9a-f]+$/.test(m[1])) return `${m[1]}+${parseInt(m[2], 16)}`;
    if (name !== null && name !== '' && !/^0x[0-9a-f]+$/.test(name)) {
      const start = Process.findModuleByAddress(p)?.findSymbolByName(name) ?? null;
      const off = start === null ? -1 : p.sub(start).toInt32();
      return off > 0 ? `${name}+${off}` : name;
    }
    // No symbol (a static function of a stripped library): the module and offset stay
    // meaningful across runs, where the address does not.
    const mod = Process.findModuleByAddress(p);
    if (mod !== null) return `${mod.name}+0x${p.sub(mod.base).toString(16).replace(/^0x/, '')}`;
  } catch {
    // fall through: an address Frida cannot place
  }
  return `0x${addr.toString(16)}`;
}
