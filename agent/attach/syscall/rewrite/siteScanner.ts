// Finds the syscall sites of loaded code that can be rewritten: the 7-byte
// `mov $NR,%eax; syscall` pair (b8 imm32 0f 05), which a 5-byte jmp to a per-site
// trampoline can replace with the number known per site; and a `syscall` after a short
// run of straight-line instructions (at most PREFIX_MAX, ending at the syscall) whose
// first is at least 5 bytes long, which the trampoline runs first, relocated, with the
// number read from rax at run time: glibc's read (`cmpb $0,single_threaded(%rip); je;
// xor %eax,%eax; syscall`), its generic syscall(), and ~60 more in libc. Only the first
// instruction's bytes are overwritten, so a thread stopped between two later ones (or
// returning from the syscall) still finds the original code there; the run may hold
// rip-relative operands (re-aimed) and conditional jumps (made rel32), nothing else that
// branches. A linear sweep with capstone (the way objdump reads .text; on a decode
// failure it resyncs one byte on) finds the instruction boundaries, and every direct
// branch target on the way: a site with a branch target anywhere after its first byte, up
// to its syscall, is left alone, since such a path would skip the trampoline. Indirect
// branches into a site are not seen; in glibc such a target would be a case label made of
// a bare `syscall`. The sweep is C (agent/cmodules/siteScanner.c): libc is ~400k instructions.

import { cDefines } from '../../../cmodules/cDefines.js';
import { SITE_SCANNER_C } from '../../../cmodules/generated/siteScanner_c.js';

/** Instructions a relocated run may hold before its syscall. */
export const PREFIX_MAX = 6;

/** How an instruction of a relocated run is copied (classify() in siteScanner.c returns these). */
export const INSN = { plain: 0, ripRelative: 1, jcc: 2 } as const;

/** agent/cmodules/siteScanner.c with the constants it needs, from their one definition here. */
const SOURCE = cDefines({ PREFIX_MAX, INSN_PLAIN: INSN.plain, INSN_RIP_RELATIVE: INSN.ripRelative, INSN_JCC: INSN.jcc }) + SITE_SCANNER_C;

/** One instruction of a relocated run (see INSN). */
export interface RunInsn {
  len: number;
  kind: number;
  /** For a rip-relative one: where its disp32 starts. */
  dispOff: number;
}

export interface ScanResult {
  /**
   * Where each rewritable site starts, and its number: the `mov $NR,%eax` of a pair, or
   * (nr -1, `copy` bytes in `run`) the relocatable run before a `syscall` that takes its
   * number from rax.
   */
  sites: { at: NativePointer; nr: number; copy: number; run: RunInsn[] }[];
  /** Every `syscall` instruction found, pattern or not. */
  syscalls: number;
  /** Candidate sites found before the branch-target check. */
  pairs: number;
  /** Candidates with a branch target inside (left alone). */
  cut: number;
}

type ScanFn = NativeFunction<number, [NativePointer, number | UInt64, NativePointer, NativePointer, NativePointer, NativePointer, number, NativePointer]>;
let scanner: { fn: ScanFn; cm: CModule } | null = null;

/** Scans one executable range [base, base + size). */
export function scanRange(base: NativePointer, size: number): ScanResult {
  scanner ??= (() => {
    const cm = new CModule(SOURCE);
    return { cm, fn: new NativeFunction(cm.scan_sites, 'int', ['pointer', 'uint64', 'pointer', 'pointer', 'pointer', 'pointer', 'int', 'pointer']) };
  })();
  const targets = Memory.alloc((size >> 3) + 1);
  const capacity = 4096;
  const sites = Memory.alloc(8 * capacity);
  const stats = Memory.alloc(24);
  const kinds = Memory.alloc(capacity);
  const runs = Memory.alloc(capacity * PREFIX_MAX * 3);
  const n = scanner.fn(base, size, targets, sites, kinds, runs, capacity, stats);
  if (n < 0) throw new Error('capstone is not available to CModule');
  const out: ScanResult['sites'] = [];
  for (let i = 0; i < n; i++) {
    const at = sites.add(8 * i).readPointer();
    const copy = kinds.add(i).readU8();
    if (copy === 0) {
      out.push({ at, nr: at.add(1).readU32(), copy: 0, run: [] });
      continue;
    }
    const raw = new Uint8Array(runs.add(i * PREFIX_MAX * 3).readByteArray(PREFIX_MAX * 3)!);
    const run: RunInsn[] = [];
    for (let j = 0; j < PREFIX_MAX && raw[j * 3] !== 0; j++) run.push({ len: raw[j * 3], kind: raw[j * 3 + 1], dispOff: raw[j * 3 + 2] });
    out.push({ at, nr: -1, copy, run });
  }
  return { sites: out, syscalls: stats.readS64().toNumber(), pairs: stats.add(8).readS64().toNumber(), cut: stats.add(16).readS64().toNumber() };
}
