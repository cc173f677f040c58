// Per-site trampolines. A rewritten site `mov $NR,%eax; syscall` (7 bytes at S) becomes
// `jmp T` (5 bytes; its `syscall` stays, unreached, for a thread already past the mov).
// T, in an immortal chunk within rel32 reach of S:
//
//   mov $NR,%eax
//   cmpb $0, flag[i](%rip)        one byte per site: bit 0 an enter program, bit 1 an
//   jne slow                      exit program on NR (or raw_syscalls)
//   syscall                       the fast path: one compare and two jumps
//   jmp S+7
// slow:
//   xor %r11d,%r11d
//   [bit 0: lea -128(%rsp),%rsp   keep the interrupted code's red zone
//    push $i ; call *enter_stub    the handler may set rax (override) and r11 = skip
//    lea 136(%rsp),%rsp]
//   test %r11,%r11 ; jne 1f
//   syscall                       in the trampoline: nothing of ours is on the stack
// 1:                              across it, so clone's child on a new stack, vfork's
//   [test %rax,%rax ; jz 2f]      child sharing the stack and kernel restarts all work
//   [bit 1: the same around      (clone-like numbers: no exit call in the child, whose
//    *exit_stub]                  stack may be brand new and tiny)
// 2: jmp S+7
//
// A site whose number comes in rax (addDynamic) runs its relocated run of instructions
// (siteScanner.ts) and reads the same bits from a per-number table of its chunk. A
// conditional jump taken inside the run leaves for its original target with nothing of
// ours on the stack. clone, vfork and clone3 through such a site go straight to the
// kernel (untraced): the number kept on the stack for the exit side would not be on the
// child's new (or shared) stack.
//
// Flags and the two stub cells live at the start of the chunk. rcx and r11 hold garbage
// after the trampoline as they do after any syscall; the flags register is clobbered,
// which glibc's syscall asm already declares ("cc").

import { rel32, stubPage } from './stubs.js';
import { allocNear, NEAR_REACH } from '../../../hooks/nearMemory.js';
import { SYSCALL_SLOTS } from '../../../../protocol/syscalls.js';
import { INSN, type RunInsn } from './siteScanner.js';

export const CHUNK = {
  size: 0x10000,
  enterCell: 0,
  exitCell: 8,
  flags: 64,
  /** Per-number enable bytes (SYSCALL_SLOTS) for sites whose number comes in rax. */
  nrTable: 1024,
  code: 2048,
  slot: 256,
  sites: 248,
} as const;

/** Numbers whose child may return on another stack (or share ours): no exit call when rax is 0. */
const CLONE_LIKE = new Set([56, 57, 58, 435]); // clone, fork, vfork, clone3
/** Numbers whose child may run on a new stack or share ours: dynamic sites let them through untraced. */
const CHILD_ON_OTHER_STACK = [56, 58, 435]; // clone, vfork, clone3
/** rt_sigreturn: takes the signal frame from rsp. */
const RT_SIGRETURN = 15;

export class TrampolineChunk {
  private used = 0;

  private constructor(readonly base: NativePointer) {
    const stubs = stubPage();
    base.add(CHUNK.enterCell).writePointer(stubs.enterStub);
    base.add(CHUNK.exitCell).writePointer(stubs.exitStub);
  }

  /** A chunk every address of [lo, hi) can jump to, or null. */
  static near(lo: NativePointer, hi: NativePointer): TrampolineChunk | null {
    // The hook engine's near arenas (immortal, within NEAR_REACH of one address): asked
    // for the middle of the range, then checked against both of its ends.
    const mid = lo.add(Math.floor(Number(BigInt(hi.toString()) - BigInt(lo.toString())) / 2));
    let base: NativePointer;
    try {
      base = allocNear(mid, CHUNK.size, 'code', Process.pageSize);
    } catch {
      return null;
    }
    return chunkReaches(base, lo, hi) ? new TrampolineChunk(base) : null;
  }

  get full(): boolean {
    return this.used >= CHUNK.sites;
  }

  /** This chunk's per-number table (see CHUNK.nrTable). */
  get nrTable(): NativePointer {
    return this.base.add(CHUNK.nrTable);
  }

  /**
   * The trampoline of a site whose number comes in rax: the `run` (copy bytes at `site`)
   * runs first, relocated, then the syscall at site + copy. Same slow path, but the number
   * is pushed before the enter call and stays on the stack across the syscall, so the exit
   * side knows it (rax then holds the result); nothing else of ours is there. Throws when
   * a rip-relative operand of the run is out of the chunk's rel32 reach.
   */
  addDynamic(site: NativePointer, copy: number, run: RunInsn[], index: number): { code: NativePointer } {
    const i = this.used++;
    const code = this.base.add(CHUNK.code + i * CHUNK.slot);
    this.base.add(CHUNK.flags + i).writeU8(0);
    const a = new Asm(code);
    let at = site;
    for (const insn of run) {
      const b = [...new Uint8Array(at.readByteArray(insn.len)!)];
      const end = at.add(insn.len);
      if (insn.kind === INSN.ripRelative) {
        const target = end.add(at.add(insn.dispOff).readS32());
        a.bytes(...b.slice(0, insn.dispOff)).rip(target, insn.len - insn.dispOff - 4).bytes(...b.slice(insn.dispOff + 4));
      } else if (insn.kind === INSN.jcc) {
        const short = insn.len === 2;
        const target = end.add(short ? at.add(1).readS8() : at.add(2).readS32());
        a.bytes(0x0f, 0x80 | ((short ? b[0] : b[1]) & 0x0f)).rip(target); // jcc rel32
      } else {
        a.bytes(...b);
      }
      at = end;
    }
    a.bytes(0x48, 0x3d).u32(SYSCALL_SLOTS - 1); // cmp $SLOTS-1,%rax
    a.jcc(0x77, 'slow'); // ja
    a.bytes(0x4c, 0x8d, 0x1d).rip(this.nrTable); // lea nrTable(%rip),%r11
    a.bytes(0x41, 0x80, 0x3c, 0x03, 0x00); // cmpb $0,(%r11,%rax,1)
    a.jcc(0x75, 'slow'); // jne
    a.label('plain');
    a.bytes(0x0f, 0x05); // syscall
    a.jmp(site.add(copy + 2));
    a.label('slow');
    for (const nr of CHILD_ON_OTHER_STACK) {
      a.bytes(0x48, 0x3d).u32(nr); // cmp $nr,%rax
      a.jcc(0x74, 'plain'); // je: straight to the kernel
    }
    a.bytes(0x48, 0x83, 0xf8, RT_SIGRETURN); // cmp $15,%rax
    a.jcc(0x74, 'sigreturn'); // je
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
    a.bytes(0x50); // push %rax: the number, for the exit side
    a.bytes(0x48, 0x3d).u32(SYSCALL_SLOTS - 1); // cmp $SLOTS-1,%rax
    a.jcc(0x77, 'enter'); // ja: not in the table, the handler decides
    a.bytes(0x4c, 0x8d, 0x1d).rip(this.nrTable); // lea nrTable(%rip),%r11
    a.bytes(0x41, 0xf6, 0x04, 0x03, 0x01); // testb $1,(%r11,%rax,1)
    a.jcc(0x75, 'enter'); // jnz
    a.bytes(0x45, 0x31, 0xdb); // xor %r11d,%r11d: no enter program, do the syscall
    a.jcc(0xeb, 'call'); // jmp
    a.label('enter');
    a.bytes(0x68).u32(index); // push $index
    a.bytes(0xff, 0x15).rip(this.base.add(CHUNK.enterCell)); // call *enter_stub
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x08); // lea 8(%rsp),%rsp: drop the index, keep the number
    a.label('call');
    a.bytes(0x4d, 0x85, 0xdb); // test %r11,%r11
    a.jcc(0x75, 'after'); // jne: overridden, no syscall
    a.bytes(0x0f, 0x05); // syscall
    a.label('after');
    a.bytes(0x48, 0x8b, 0x0c, 0x24); // mov (%rsp),%rcx: the number
    a.bytes(0x48, 0x81, 0xf9).u32(SYSCALL_SLOTS - 1); // cmp $SLOTS-1,%rcx
    a.jcc(0x77, 'exit'); // ja
    a.bytes(0x4c, 0x8d, 0x1d).rip(this.nrTable); // lea nrTable(%rip),%r11
    a.bytes(0x41, 0xf6, 0x04, 0x0b, 0x02); // testb $2,(%r11,%rcx,1)
    a.jcc(0x74, 'done'); // jz: no exit program
    a.label('exit');
    a.bytes(0x68).u32(index); // push $index
    a.bytes(0xff, 0x15).rip(this.base.add(CHUNK.exitCell)); // call *exit_stub
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x08); // lea 8(%rsp),%rsp
    a.label('done');
    a.bytes(0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00); // lea 0x88(%rsp),%rsp: the number and the red zone
    a.jmp(site.add(copy + 2));
    // rt_sigreturn (glibc's __restore_rt is `mov $15,%rax; syscall`, a site of this kind)
    // reads the signal frame at rsp: it must reach the kernel with rsp exactly as the site
    // had it. With the number kept on the stack, as above, every handler return with a
    // raw_syscalls program attached restored garbage and the thread jumped to 0. The
    // frame is the same as above for the enter handler; it is dropped before the syscall,
    // which does not come back here, so there is no exit call.
    a.label('sigreturn');
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
    a.bytes(0x50); // push %rax
    a.bytes(0x45, 0x31, 0xdb); // xor %r11d,%r11d
    a.bytes(0xf6, 0x05).rip(this.nrTable.add(RT_SIGRETURN), 1).bytes(0x01); // testb $1,nrTable[15](%rip)
    a.jcc(0x74, 'sigcall'); // jz: no enter program
    a.bytes(0x68).u32(index); // push $index
    a.bytes(0xff, 0x15).rip(this.base.add(CHUNK.enterCell)); // call *enter_stub
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x08); // lea 8(%rsp),%rsp
    a.label('sigcall');
    a.bytes(0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00); // lea 0x88(%rsp),%rsp: the frame at rsp again
    a.bytes(0x4d, 0x85, 0xdb); // test %r11,%r11
    a.jcc(0x75, 'sigskip'); // jne: overridden
    a.bytes(0x0f, 0x05); // syscall
    a.label('sigskip');
    a.jmp(site.add(copy + 2));
    a.finish(CHUNK.slot);
    return { code };
  }

  /** Writes the trampoline for the site at `site` (its mov) with global index `index`; returns T and its flag byte. */
  add(site: NativePointer, nr: number, index: number): { code: NativePointer; flag: NativePointer } {
    const i = this.used++;
    const code = this.base.add(CHUNK.code + i * CHUNK.slot);
    const flag = this.base.add(CHUNK.flags + i);
    flag.writeU8(0);
    const back = site.add(7);
    const a = new Asm(code);
    a.bytes(0xb8).u32(nr); // mov $nr,%eax
    a.bytes(0x80, 0x3d).rip(flag, 1).bytes(0x00); // cmpb $0,flag(%rip)
    a.jcc(0x75, 'slow'); // jne
    a.bytes(0x0f, 0x05); // syscall
    a.jmp(back);
    a.label('slow');
    a.bytes(0x45, 0x31, 0xdb); // xor %r11d,%r11d: do the syscall unless the enter side says no
    a.bytes(0xf6, 0x05).rip(flag, 1).bytes(0x01); // testb $1,flag(%rip)
    a.jcc(0x74, 'call'); // jz: no enter program
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
    a.bytes(0x68).u32(index); // push $index
    a.bytes(0xff, 0x15).rip(this.base.add(CHUNK.enterCell)); // call *enter_stub
    a.bytes(0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00); // lea 0x88(%rsp),%rsp
    a.label('call');
    a.bytes(0x4d, 0x85, 0xdb); // test %r11,%r11
    a.jcc(0x75, 'after'); // jne: overridden, no syscall
    a.bytes(0x0f, 0x05); // syscall
    a.label('after');
    if (CLONE_LIKE.has(nr)) {
      a.bytes(0x48, 0x85, 0xc0); // test %rax,%rax
      a.jcc(0x74, 'done'); // jz: the child, maybe on a new or shared stack
    }
    a.bytes(0xf6, 0x05).rip(flag, 1).bytes(0x02); // testb $2,flag(%rip)
    a.jcc(0x74, 'done'); // jz: no exit program
    a.bytes(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
    a.bytes(0x68).u32(index); // push $index
    a.bytes(0xff, 0x15).rip(this.base.add(CHUNK.exitCell)); // call *exit_stub
    a.bytes(0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00); // lea 0x88(%rsp),%rsp
    a.label('done');
    a.jmp(back);
    a.finish(CHUNK.slot);
    return { code, flag };
  }
}

/** Whether every byte of [lo, hi) reaches every byte of a chunk at `base` with a rel32. */
export function chunkReaches(base: NativePointer, lo: NativePointer, hi: NativePointer): boolean {
  const b = BigInt(base.toString());
  return b + BigInt(CHUNK.size) - BigInt(lo.toString()) < BigInt(NEAR_REACH) && BigInt(hi.toString()) - b < BigInt(NEAR_REACH);
}

/** A tiny assembler for the trampolines: raw bytes, rip-relative operands, rel8 jumps to labels. */
class Asm {
  private readonly out: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string }[] = [];

  constructor(private readonly base: NativePointer) {}

  bytes(...b: number[]): this {
    this.out.push(...b);
    return this;
  }

  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.bytes(...b);
  }

  /** A rel32 to `target` from the end of the instruction, which has `after` more bytes (an immediate). */
  rip(target: NativePointer, after = 0): this {
    return this.bytes(...rel32(this.base.add(this.out.length + 4 + after), target));
  }

  jmp(target: NativePointer): this {
    this.bytes(0xe9);
    return this.rip(target);
  }

  /** A short jump (opcode 0x7x or 0xeb) to a label of this trampoline. */
  jcc(opcode: number, label: string): this {
    this.fixups.push({ at: this.out.length + 1, label });
    return this.bytes(opcode, 0x00);
  }

  label(name: string): this {
    this.labels.set(name, this.out.length);
    return this;
  }

  finish(max: number): void {
    for (const f of this.fixups) {
      const to = this.labels.get(f.label);
      if (to === undefined) throw new Error(`trampoline label ${f.label} missing`);
      const d = to - (f.at + 1);
      if (d < -128 || d > 127) throw new Error(`trampoline jump to ${f.label} too far`);
      this.out[f.at] = d & 0xff;
    }
    if (this.out.length > max) throw new Error('trampoline too long');
    this.base.writeByteArray(this.out);
  }
}

/** The 5 bytes that replace a site's mov: jmp rel32 to its trampoline. */
export function jumpBytes(site: NativePointer, trampoline: NativePointer): number[] {
  return [0xe9, ...rel32(site.add(5), trampoline)];
}
