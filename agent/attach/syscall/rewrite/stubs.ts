// The shared, immortal half of every trampoline: one page holding the `armed` word, the
// `inflight` count, the C handler cells and two register-saving stubs (enter and exit)
// that call the handlers. A trampoline's slow path calls a stub through a cell in its own
// chunk; the stub counts itself in, re-reads `armed` and only then calls into the
// handlers' CModule, so once detach has cleared `armed` and seen inflight reach 0, no
// thread can enter code that the script's unload frees. The stubs themselves never go.
//
// Frame handed to the handler (rsp at the call, growing down; mirrors Frame in
// rewriteHandlers.ts): flags, rbp, rbx, r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax, the
// return address into the trampoline, the site index the trampoline pushed. The handler
// may write rax (the override, or the result the exit program changed) and r11 (1 = skip
// the syscall: its enter program overrode it).
//
// Vector state. The interrupted code may keep values in any vector register across its
// syscall (the kernel keeps them all), so what the handler's path may touch must come back:
// - The native path (the handlers' C, the VM library, the libc calls they make) touches at
//   most xmm0-15, and only their low 128 bits with legacy SSE, which leaves the upper bits
//   alone: the stub saves those with movups (about 4 ns; fxsave64 took 60 ns a phase and
//   was most of a traced syscall's cost). The VM library is built so that it touches none
//   (vm/src/native_mem.c: glibc's AVX-512 memcpy used zmm16-31, which no stub saved).
// - Anything that enters JS (V8 and Frida use AVX) goes through fullSaveCall, which saves
//   and restores every state component XCR0 enables with xsave64 (x87, ymm, zmm, masks).
// Of the flags register only DF is put back (the stub clears it for the C code); the
// trampoline itself clobbers the arithmetic flags, as glibc's syscall asm declares, and
// popfq cost 10 ns a phase.

import { rawAlloc } from '../../../hooks/rawMemory.js';

export const STUB_PAGE = {
  armed: 0,
  inflight: 4,
  enterFn: 8,
  exitFn: 16,
  enterStub: 64,
  exitStub: 512,
  xchg16: 960,
  xchg64: 976,
  rawSyscall0: 992,
  patchSplit5: 1024,
  xsaveSize: 1088,
  fullSaveCall: 1152,
  size: 4096,
} as const;

/** Bytes of the stub's own vector save area: xmm0-15, 16 bytes each. */
const XMM_AREA = 256;

/** Frame offsets (bytes from the frame pointer the handler receives). */
export const FRAME = { flags: 0, rbp: 8, rbx: 16, r11: 24, rax: 88, ret: 96, site: 104, size: 112 } as const;

function rel32(from: NativePointer, to: NativePointer): number[] {
  const d = Number(BigInt(to.toString()) - BigInt(from.toString()));
  if (d < -0x80000000 || d > 0x7fffffff) throw new Error('rel32 out of reach');
  return u32(d);
}

/** A 32-bit value (signed or not) as its 4 little-endian bytes. */
function u32(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
}

/** movups xmmN, off(%rsp) (store) or movups off(%rsp), xmmN (load), with a 32-bit offset. */
function movups(store: boolean, n: number, off: number): number[] {
  const rex = n >= 8 ? [0x44] : [];
  return [...rex, 0x0f, store ? 0x11 : 0x10, 0x84 | ((n & 7) << 3), 0x24, ...u32(off)];
}

function stubBytes(page: NativePointer, at: number, fnCell: number): number[] {
  const out: number[] = [];
  const here = () => page.add(at + out.length);
  const ripRel = (opcode: number[], target: number, after: number) => {
    out.push(...opcode);
    out.push(...rel32(here().add(4 + after), page.add(target)));
  };
  // push rax rcx rdx rsi rdi r8 r9 r10 r11 rbx rbp; pushfq; cld
  out.push(0x50, 0x51, 0x52, 0x56, 0x57, 0x41, 0x50, 0x41, 0x51, 0x41, 0x52, 0x41, 0x53, 0x53, 0x55, 0x9c, 0xfc);
  out.push(0x48, 0xc7, 0x44, 0x24, FRAME.r11, 0, 0, 0, 0); // movq $0, r11(%rsp): do the syscall unless told
  ripRel([0xf0, 0xff, 0x05], STUB_PAGE.inflight, 0); // lock incl inflight(%rip)
  ripRel([0x83, 0x3d], STUB_PAGE.armed, 1); // cmpl $0, armed(%rip)
  out.push(0x00);
  const je = out.length;
  out.push(0x0f, 0x84, 0, 0, 0, 0); // je out (rel32)
  const jeEnd = out.length;
  out.push(0x48, 0x89, 0xe3); // mov %rsp,%rbx
  out.push(0x48, 0x83, 0xe4, 0xf0); // and $-16,%rsp
  out.push(0x48, 0x81, 0xec, ...u32(XMM_AREA)); // sub $256,%rsp
  for (let n = 0; n < 16; n++) out.push(...movups(true, n, 16 * n));
  out.push(0x48, 0x89, 0xdf); // mov %rbx,%rdi
  ripRel([0xff, 0x15], fnCell, 0); // call *fn(%rip)
  for (let n = 0; n < 16; n++) out.push(...movups(false, n, 16 * n));
  out.push(0x48, 0x89, 0xdc); // mov %rbx,%rsp
  const rel = out.length - jeEnd;
  out.splice(je + 2, 4, ...u32(rel));
  ripRel([0xf0, 0xff, 0x0d], STUB_PAGE.inflight, 0); // lock decl inflight(%rip)
  out.push(0xf7, 0x04, 0x24, 0x00, 0x04, 0x00, 0x00); // testl $0x400,(%rsp): DF as the site had it
  out.push(0x48, 0x8d, 0x64, 0x24, 0x08); // lea 8(%rsp),%rsp: drop the saved flags
  out.push(0x74, 0x01, 0xfd); // jz 1f; std; 1:
  // pop rbp rbx r11 r10 r9 r8 rdi rsi rdx rcx rax; ret
  out.push(0x5d, 0x5b, 0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, 0x5f, 0x5e, 0x5a, 0x59, 0x58, 0xc3);
  return out;
}

/**
 * fullSaveCall(a0, a1, fn): fn(a0, a1) with every enabled state component saved around it
 * (xsave64/xrstor64, all of XCR0), on a 64-byte aligned area of `size` bytes (CPUID
 * 0xD.0:EBX) below the caller's stack. The area's 64-byte header must be zero before
 * xsave (xrstor faults on stale reserved bytes); the stack holds garbage there.
 */
function fullSaveCallBytes(size: number): number[] {
  const out: number[] = [];
  out.push(0x55); // push %rbp
  out.push(0x48, 0x89, 0xe5); // mov %rsp,%rbp
  out.push(0x53); // push %rbx
  out.push(0x48, 0x89, 0xd3); // mov %rdx,%rbx: fn
  out.push(0x48, 0x81, 0xec, ...u32(size + 64)); // sub $size+64,%rsp
  out.push(0x48, 0x83, 0xe4, 0xc0); // and $-64,%rsp
  out.push(0x31, 0xc0); // xor %eax,%eax
  for (let i = 0; i < 8; i++) out.push(0x48, 0x89, 0x84, 0x24, ...u32(512 + 8 * i)); // mov %rax,512+8i(%rsp)
  out.push(0x83, 0xc8, 0xff, 0x89, 0xc2); // or $-1,%eax; mov %eax,%edx: every component
  out.push(0x48, 0x0f, 0xae, 0x24, 0x24); // xsave64 (%rsp)
  out.push(0xff, 0xd3); // call *%rbx
  out.push(0x83, 0xc8, 0xff, 0x89, 0xc2); // or $-1,%eax; mov %eax,%edx
  out.push(0x48, 0x0f, 0xae, 0x2c, 0x24); // xrstor64 (%rsp)
  out.push(0x48, 0x8d, 0x65, 0xf8); // lea -8(%rbp),%rsp
  out.push(0x5b, 0x5d, 0xc3); // pop %rbx; pop %rbp; ret
  return out;
}

export interface StubPage {
  readonly base: NativePointer;
  readonly enterStub: NativePointer;
  readonly exitStub: NativePointer;
  /** long raw_syscall0(long nr): a syscall no rewritten site sees. */
  readonly rawSyscall0: NativePointer;
  /** xchg16(addr, value): a locked 2-byte store, for the code patcher. */
  readonly xchg16: NativeFunction<number, [NativePointer, number]>;
  /** xchg64(addr, value): a locked 8-byte store. */
  readonly xchg64: NativeFunction<UInt64, [NativePointer, UInt64]>;
  /**
   * patchSplit5(addr, first2, last3): `jmp .` over the first two bytes, the last three,
   * then the first two, in one native call. Done from JS in three steps, the JS thread ran
   * Frida/V8 code between them that called pthread_getattr_np, whose
   * pthread_getaffinity_np was the very site being patched: it spun on its own `jmp .`
   * forever (a dlopen test hung a clean-clone CI run).
   */
  readonly patchSplit5: NativeFunction<void, [NativePointer, number, number]>;
  /** void fullSaveCall(a0, a1, fn): fn(a0, a1) with the whole vector and x87 state saved around it. */
  readonly fullSaveCall: NativePointer;
}

let page: StubPage | null = null;

/** The process's one stub page, made on first use and never freed. */
export function stubPage(): StubPage {
  if (page) return page;
  const base = rawAlloc(STUB_PAGE.size, 'code', Process.pageSize);
  const write = (at: number, bytes: number[]) => base.add(at).writeByteArray(bytes);
  const enter = stubBytes(base, STUB_PAGE.enterStub, STUB_PAGE.enterFn);
  if (enter.length > STUB_PAGE.exitStub - STUB_PAGE.enterStub) throw new Error(`syscall stub too long: ${enter.length} bytes`);
  write(STUB_PAGE.enterStub, enter);
  write(STUB_PAGE.exitStub, stubBytes(base, STUB_PAGE.exitStub, STUB_PAGE.exitFn));
  write(STUB_PAGE.xchg16, [0x89, 0xf0, 0x66, 0x87, 0x07, 0xc3]); // mov %esi,%eax; xchg %ax,(%rdi); ret
  write(STUB_PAGE.xchg64, [0x48, 0x89, 0xf0, 0x48, 0x87, 0x07, 0xc3]); // mov %rsi,%rax; xchg %rax,(%rdi); ret
  // The handlers' own getpid/gettid: libc's syscall() is itself a rewritten site, and a
  // handler reaching it would recurse until the stack ran out (it did, in forked children).
  write(STUB_PAGE.rawSyscall0, [0x89, 0xf8, 0x0f, 0x05, 0xc3]); // mov %edi,%eax; syscall; ret
  write(STUB_PAGE.patchSplit5, [
    0xb8, 0xeb, 0xfe, 0x00, 0x00, // mov $0xfeeb,%eax  (eb fe: jmp .)
    0x66, 0x87, 0x07, //             xchg %ax,(%rdi)   (locked)
    0x88, 0x57, 0x02, //             mov %dl,2(%rdi)
    0xc1, 0xea, 0x08, //             shr $8,%edx
    0x66, 0x89, 0x57, 0x03, //       mov %dx,3(%rdi)
    0x89, 0xf0, //                   mov %esi,%eax
    0x66, 0x87, 0x07, //             xchg %ax,(%rdi)   (locked)
    0xc3, //                         ret
  ]);
  // CPUID 0xD.0:EBX, the xsave area XCR0's components need; fullSaveCall is written for it.
  write(STUB_PAGE.xsaveSize, [0x53, 0xb8, 0x0d, 0, 0, 0, 0x31, 0xc9, 0x0f, 0xa2, 0x89, 0xd8, 0x5b, 0xc3]);
  const xsaveSize = new NativeFunction(base.add(STUB_PAGE.xsaveSize), 'uint', [])() as number;
  if (xsaveSize < 576 || xsaveSize > 65536) throw new Error(`unexpected xsave area size ${xsaveSize}`);
  write(STUB_PAGE.fullSaveCall, fullSaveCallBytes(xsaveSize));
  page = {
    base,
    fullSaveCall: base.add(STUB_PAGE.fullSaveCall),
    enterStub: base.add(STUB_PAGE.enterStub),
    exitStub: base.add(STUB_PAGE.exitStub),
    rawSyscall0: base.add(STUB_PAGE.rawSyscall0),
    xchg16: new NativeFunction(base.add(STUB_PAGE.xchg16), 'int', ['pointer', 'int']),
    xchg64: new NativeFunction(base.add(STUB_PAGE.xchg64), 'uint64', ['pointer', 'uint64']),
    patchSplit5: new NativeFunction(base.add(STUB_PAGE.patchSplit5), 'void', ['pointer', 'uint32', 'uint32']),
  };
  return page;
}

export { rel32 };
