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
// the syscall: its enter program overrode it). xmm0-15 and x87 state are saved with
// fxsave64 because the VM and libc (AVX memcpy) clobber them and the interrupted code may
// keep values there across its syscall.

import { rawAlloc } from '../../../hooks/rawMemory.js';

export const STUB_PAGE = {
  armed: 0,
  inflight: 4,
  enterFn: 8,
  exitFn: 16,
  enterStub: 64,
  exitStub: 256,
  xchg16: 448,
  xchg64: 464,
  rawSyscall0: 480,
  patchSplit5: 512,
  size: 4096,
} as const;

/** Frame offsets (bytes from the frame pointer the handler receives). */
export const FRAME = { flags: 0, rbp: 8, rbx: 16, r11: 24, rax: 88, ret: 96, site: 104, size: 112 } as const;

function rel32(from: NativePointer, to: NativePointer): number[] {
  const d = Number(BigInt(to.toString()) - BigInt(from.toString()));
  if (d < -0x80000000 || d > 0x7fffffff) throw new Error('rel32 out of reach');
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, d, true);
  return [...b];
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
  out.push(0x74, 0x00); // je out
  out.push(0x48, 0x89, 0xe3); // mov %rsp,%rbx
  out.push(0x48, 0x83, 0xe4, 0xf0); // and $-16,%rsp
  out.push(0x48, 0x81, 0xec, 0x00, 0x02, 0x00, 0x00); // sub $512,%rsp
  out.push(0x48, 0x0f, 0xae, 0x04, 0x24); // fxsave64 (%rsp)
  out.push(0x48, 0x89, 0xdf); // mov %rbx,%rdi
  ripRel([0xff, 0x15], fnCell, 0); // call *fn(%rip)
  out.push(0x48, 0x0f, 0xae, 0x0c, 0x24); // fxrstor64 (%rsp)
  out.push(0x48, 0x89, 0xdc); // mov %rbx,%rsp
  out[je + 1] = out.length - (je + 2);
  ripRel([0xf0, 0xff, 0x0d], STUB_PAGE.inflight, 0); // lock decl inflight(%rip)
  // popfq; pop rbp rbx r11 r10 r9 r8 rdi rsi rdx rcx rax; ret
  out.push(0x9d, 0x5d, 0x5b, 0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, 0x5f, 0x5e, 0x5a, 0x59, 0x58, 0xc3);
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
}

let page: StubPage | null = null;

/** The process's one stub page, made on first use and never freed. */
export function stubPage(): StubPage {
  if (page) return page;
  const base = rawAlloc(STUB_PAGE.size, 'code', Process.pageSize);
  const write = (at: number, bytes: number[]) => base.add(at).writeByteArray(bytes);
  write(STUB_PAGE.enterStub, stubBytes(base, STUB_PAGE.enterStub, STUB_PAGE.enterFn));
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
  page = {
    base,
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
