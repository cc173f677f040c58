// Per-site entry stubs and the agent's return stub, written with X86Writer into immortal
// near pages. A stub saves what a function may read and what the hook core may clobber
// (flags, every general register, xmm0-7), builds struct pt_regs on an aligned stack,
// calls the hook core (which runs every probe of the site), restores everything and goes on
// to `cont` (the relocated original instructions, or another session's stub at the same
// address), or, when an override was taken,
// returns the value to the caller with the callee's frame untouched.
//
// Frame (rsp 16-aligned at the call): [0,168) pt_regs, [176,304) xmm0-7, [304] base (where
// the saved rax and flags are), [312] the hook core's answer.

import { hookCore } from './hookCore.js';

const FRAME = 320;
const XMM = 176;
const BASE = 304;
const ANSWER = 312;
/** pt_regs offsets of the registers the stub stores directly. */
const GPR: [X86Register, number][] = [
  ['r15', 0], ['r14', 8], ['r13', 16], ['r12', 24], ['rbp', 32], ['rbx', 40], ['r11', 48], ['r10', 56],
  ['r9', 64], ['r8', 72], ['rcx', 88], ['rdx', 96], ['rsi', 104], ['rdi', 112],
];
/** Caller-saved registers: the only ones the C call can change, so the only ones reloaded. */
const RELOAD: [X86Register, number][] = GPR.filter(([r]) => ['r11', 'r10', 'r9', 'r8', 'rcx', 'rdx', 'rsi', 'rdi'].includes(r));
const PT = { ax: 80, origAx: 120, ip: 128, cs: 136, flags: 144, sp: 152, ss: 160 } as const;

function disp32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

/** movdqu [rsp+off], xmmN / movdqu xmmN, [rsp+off] */
function movdqu(w: X86Writer, store: boolean, n: number, off: number): void {
  w.putBytes([0xf3, 0x0f, store ? 0x7f : 0x6f, 0x84 | (n << 3), 0x24, ...disp32(off)]);
}

/**
 * Saves the thread's state and leaves rax = base (saved rax at [base], flags at
 * [base+8]); `above` is the distance from base to the interrupted rsp.
 */
function saveState(w: X86Writer, redZone: number, ip: NativePointer | null, above: number): void {
  if (redZone) w.putLeaRegRegOffset('rsp', 'rsp', -redZone); // leaves the interrupted code's red zone alone
  w.putPushfx();
  w.putPushReg('rax');
  w.putMovRegReg('rax', 'rsp');
  w.putBytes([0x48, 0x83, 0xe4, 0xf0]); // and rsp, -16
  w.putSubRegImm('rsp', FRAME);
  w.putMovRegOffsetPtrReg('rsp', BASE, 'rax');
  for (const [r, off] of GPR) w.putMovRegOffsetPtrReg('rsp', off, r);
  w.putMovRegRegOffsetPtr('rcx', 'rax', 0);
  w.putMovRegOffsetPtrReg('rsp', PT.ax, 'rcx');
  w.putMovRegOffsetPtrReg('rsp', PT.origAx, 'rcx');
  w.putMovRegRegOffsetPtr('rcx', 'rax', 8);
  w.putMovRegOffsetPtrReg('rsp', PT.flags, 'rcx');
  w.putLeaRegRegOffset('rcx', 'rax', above);
  w.putMovRegOffsetPtrReg('rsp', PT.sp, 'rcx');
  if (ip) w.putMovRegAddress('rcx', ip);
  // else: the hook core fills ip (return probes)
  w.putMovRegOffsetPtrReg('rsp', PT.ip, 'rcx');
  w.putMovRegU32('ecx', 0x33);
  w.putMovRegOffsetPtrReg('rsp', PT.cs, 'rcx');
  w.putMovRegU32('ecx', 0x2b);
  w.putMovRegOffsetPtrReg('rsp', PT.ss, 'rcx');
  for (let i = 0; i < 8; i++) movdqu(w, true, i, XMM + 16 * i);
  w.putCld();
}

/** Calls fn(arg0, pt_regs, base+slotOff) and keeps its answer at [rsp+ANSWER]. */
function callCore(w: X86Writer, fn: NativePointer, arg0: NativePointer, slotOff: number): void {
  w.putLeaRegRegOffset('rdx', 'rax', slotOff);
  w.putMovRegAddress('rdi', arg0);
  w.putMovRegReg('rsi', 'rsp');
  w.putMovRegAddress('rax', fn);
  w.putCallReg('rax');
  w.putMovRegOffsetPtrReg('rsp', ANSWER, 'rax');
}

function restoreState(w: X86Writer): void {
  for (let i = 0; i < 8; i++) movdqu(w, false, i, XMM + 16 * i);
  for (const [r, off] of RELOAD) w.putMovRegRegOffsetPtr(r, 'rsp', off);
}

/**
 * The entry stub of site block `siteBlock` at address `site` (pt_regs ip = site),
 * continuing at `cont`. Returns its size. `room` bytes are available at `at`.
 */
export function writeEntryStub(at: NativePointer, room: number, siteBlock: NativePointer, site: NativePointer, cont: NativePointer): number {
  const core = hookCore();
  let size = 0;
  Memory.patchCode(at, room, (c) => {
    const w = new X86Writer(c, { pc: at });
    saveState(w, 128, site, 16 + 128);
    callCore(w, core.site, siteBlock, 16 + 128);
    restoreState(w);
    w.putBytes([0x48, 0x83, 0xbc, 0x24, ...disp32(ANSWER), 0x00]); // cmp qword [rsp+ANSWER], 0
    w.putJccShortLabel('jne', 'override', 'no-hint');
    w.putMovRegRegOffsetPtr('rsp', 'rsp', BASE);
    w.putPopReg('rax');
    w.putPopfx();
    w.putLeaRegRegOffset('rsp', 'rsp', 128);
    w.putJmpAddress(cont);
    w.putLabel('override');
    // Only at a function entry (attach refuses overrides elsewhere): return the value to the caller.
    w.putMovRegRegOffsetPtr('rax', 'rsp', PT.ax);
    w.putMovRegRegOffsetPtr('rsp', 'rsp', BASE);
    w.putLeaRegRegOffset('rsp', 'rsp', 8);
    w.putPopfx();
    w.putLeaRegRegOffset('rsp', 'rsp', 128);
    w.putRet();
    w.flush();
    size = w.offset;
  });
  if (size > room) throw new Error(`entry stub overflowed its ${room} bytes`);
  return size;
}

/** Bytes an entry stub takes, with margin (it is about 500). */
export const ENTRY_STUB_ROOM = 640;

let returnStub: NativePointer | null = null;

/**
 * The agent's return stub: a hijacked `ret` lands here with rsp just above the slot that
 * held the return address. The hook core puts the real address back in that slot, runs the
 * probe's program, and the stub returns through the slot.
 */
export function agentReturnStub(alloc: (size: number) => NativePointer): NativePointer {
  if (returnStub) return returnStub;
  const core = hookCore();
  const at = alloc(ENTRY_STUB_ROOM);
  Memory.patchCode(at, ENTRY_STUB_ROOM, (c) => {
    const w = new X86Writer(c, { pc: at });
    w.putPushReg('rax'); // the slot, at exactly the address the return address had
    saveState(w, 0, null, 24);
    callCore(w, core.ret, core.threads, 16);
    restoreState(w);
    w.putMovRegRegOffsetPtr('rsp', 'rsp', BASE);
    w.putPopReg('rax');
    w.putPopfx();
    w.putRet();
    w.flush();
  });
  returnStub = at;
  return at;
}
