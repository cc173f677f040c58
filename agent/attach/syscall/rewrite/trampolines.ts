// Per-site trampolines. A rewritten site `mov $NR,%eax; syscall` (7 bytes at S) becomes
// `jmp T` (5 bytes; its `syscall` stays, unreached, for a thread already past the mov).
// T, in an immortal chunk within rel32 reach of S:
//
//   mov $NR,%eax
//   cmpb $0, flag[i](%rip)       one byte per site: is any program on NR (or raw)?
//   jne slow
//   syscall                       the fast path: +1 compare and 2 jumps
//   jmp S+7
// slow:
//   lea -128(%rsp),%rsp           keep the interrupted code's red zone
//   push $i ; call *enter_stub    the handler may set rax (override) and r11 = skip
//   lea 136(%rsp),%rsp
//   test %r11,%r11 ; jne 1f
//   syscall                       in the trampoline: nothing of ours is on the stack
// 1:                              across it, so clone's child on a new stack, vfork's
//   [test %rax,%rax ; jz 2f]      child sharing the stack and kernel restarts all work;
//   lea -128(%rsp),%rsp           (clone-like numbers: no exit call in the child, whose
//   push $i ; call *exit_stub      stack may be brand new and tiny)
//   lea 136(%rsp),%rsp
// 2: jmp S+7
//
// Flags and the two stub cells live at the start of the chunk. rcx and r11 hold garbage
// after the trampoline as they do after any syscall; the flags register is clobbered,
// which glibc's syscall asm already declares ("cc").

import { rel32, stubPage } from './stubs.js';
import { immortalPagesNear } from './immortalPages.js';
import { SYSCALL_SLOTS } from '../../../../protocol/syscalls.js';

export const CHUNK = {
  size: 0x10000,
  enterCell: 0,
  exitCell: 8,
  flags: 64,
  /** Per-number enable bytes (SYSCALL_SLOTS) for sites whose number comes in rax. */
  nrTable: 1024,
  code: 2048,
  slot: 96,
  sites: 640,
} as const;

/** Numbers whose child may return on another stack (or share ours): no exit call when rax is 0. */
const CLONE_LIKE = new Set([56, 57, 58, 435]); // clone, fork, vfork, clone3

export class TrampolineChunk {
  private used = 0;

  private constructor(readonly base: NativePointer) {
    const stubs = stubPage();
    base.add(CHUNK.enterCell).writePointer(stubs.enterStub);
    base.add(CHUNK.exitCell).writePointer(stubs.exitStub);
  }

  /** A chunk every address of [lo, hi) can jump to, or null. */
  static near(lo: NativePointer, hi: NativePointer): TrampolineChunk | null {
    const base = immortalPagesNear(lo, hi, CHUNK.size);
    return base === null ? null : new TrampolineChunk(base);
  }

  get full(): boolean {
    return this.used >= CHUNK.sites;
  }

  /** This chunk's per-number table (see CHUNK.nrTable). */
  get nrTable(): NativePointer {
    return this.base.add(CHUNK.nrTable);
  }

  /**
   * The trampoline of a site whose number comes in rax: `copy` bytes (one instruction) at
   * `site` run first, then the syscall at site + copy. Same slow path, but the number is
   * pushed before the enter call and stays on the stack across the syscall, so the exit
   * handler knows it (rax then holds the result); nothing else of ours is there.
   */
  addDynamic(site: NativePointer, copy: number, index: number): { code: NativePointer } {
    const i = this.used++;
    const code = this.base.add(CHUNK.code + i * CHUNK.slot);
    this.base.add(CHUNK.flags + i).writeU8(0);
    const back = site.add(copy + 2);
    const out: number[] = [...new Uint8Array(site.readByteArray(copy)!)];
    const at = () => code.add(out.length);
    const imm32 = (v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v >>> 0, true);
      return [...b];
    };
    out.push(0x48, 0x3d, ...imm32(SYSCALL_SLOTS - 1)); // cmp $SLOTS-1,%rax
    const ja = out.length;
    out.push(0x77, 0x00); // ja slow
    out.push(0x4c, 0x8d, 0x1d, ...rel32(at().add(3 + 4), this.nrTable)); // lea nrTable(%rip),%r11
    out.push(0x41, 0x80, 0x3c, 0x03, 0x00); // cmpb $0,(%r11,%rax,1)
    const jne = out.length;
    out.push(0x75, 0x00); // jne slow
    out.push(0x0f, 0x05); // syscall
    out.push(0xe9, ...rel32(at().add(1 + 4), back));
    out[ja + 1] = out.length - (ja + 2);
    out[jne + 1] = out.length - (jne + 2);
    out.push(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
    out.push(0x50); // push %rax: the number, for the exit handler
    out.push(0x68, ...imm32(index)); // push $index
    out.push(0xff, 0x15, ...rel32(at().add(2 + 4), this.base.add(CHUNK.enterCell)));
    out.push(0x48, 0x8d, 0x64, 0x24, 0x08); // lea 8(%rsp),%rsp: drop the index, keep the number
    out.push(0x4d, 0x85, 0xdb); // test %r11,%r11
    out.push(0x75, 0x02); // jne +2
    out.push(0x0f, 0x05); // syscall
    out.push(0x68, ...imm32(index)); // push $index
    out.push(0xff, 0x15, ...rel32(at().add(2 + 4), this.base.add(CHUNK.exitCell)));
    out.push(0x48, 0x8d, 0xa4, 0x24, 0x90, 0x00, 0x00, 0x00); // lea 0x90(%rsp),%rsp
    out.push(0xe9, ...rel32(at().add(1 + 4), back));
    if (out.length > CHUNK.slot) throw new Error('trampoline too long');
    code.writeByteArray(out);
    return { code };
  }

  /** Writes the trampoline for the site at `site` (its mov) with global index `index`; returns T and its flag byte. */
  add(site: NativePointer, nr: number, index: number): { code: NativePointer; flag: NativePointer } {
    const i = this.used++;
    const code = this.base.add(CHUNK.code + i * CHUNK.slot);
    const flag = this.base.add(CHUNK.flags + i);
    flag.writeU8(0);
    const back = site.add(7);
    const out: number[] = [];
    const at = () => code.add(out.length);
    const imm32 = (v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v >>> 0, true);
      return [...b];
    };
    out.push(0xb8, ...imm32(nr)); // mov $nr,%eax
    out.push(0x80, 0x3d); // cmpb $0, flag(%rip)
    out.push(...rel32(at().add(5), flag), 0x00);
    out.push(0x75, 0x07); // jne slow
    out.push(0x0f, 0x05); // syscall
    out.push(0xe9); // jmp back
    out.push(...rel32(at().add(4), back));
    const call = (cell: number) => {
      out.push(0x48, 0x8d, 0x64, 0x24, 0x80); // lea -0x80(%rsp),%rsp
      out.push(0x68, ...imm32(index)); // push $index
      out.push(0xff, 0x15); // call *cell(%rip)
      out.push(...rel32(at().add(4), this.base.add(cell)));
      out.push(0x48, 0x8d, 0xa4, 0x24, 0x88, 0x00, 0x00, 0x00); // lea 0x88(%rsp),%rsp
    };
    call(CHUNK.enterCell);
    out.push(0x4d, 0x85, 0xdb); // test %r11,%r11
    out.push(0x75, 0x02); // jne +2
    out.push(0x0f, 0x05); // syscall
    const cloneLike = CLONE_LIKE.has(nr);
    let jz = -1;
    if (cloneLike) {
      out.push(0x48, 0x85, 0xc0); // test %rax,%rax
      jz = out.length;
      out.push(0x74, 0x00); // jz done
    }
    call(CHUNK.exitCell);
    if (cloneLike) out[jz + 1] = out.length - (jz + 2);
    out.push(0xe9); // done: jmp back
    out.push(...rel32(at().add(4), back));
    if (out.length > CHUNK.slot) throw new Error('trampoline too long');
    code.writeByteArray(out);
    return { code, flag };
  }
}

/** The 5 bytes that replace a site's mov: jmp rel32 to its trampoline. */
export function jumpBytes(site: NativePointer, trampoline: NativePointer): number[] {
  return [0xe9, ...rel32(site.add(5), trampoline)];
}
