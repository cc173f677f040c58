// The process's one SIGTRAP handler for int3s the hook engine plants: the temporary int3
// of a code patch in progress (codePatcher.ts) and, later, int3 probes on code too short
// for a jump. A site table maps an int3's address to where a thread that hits it goes on;
// any other SIGTRAP goes to the handler that was installed before ours, or, when there was
// none, gets its default action back and re-executes the int3.
// Handler, restorer and table are written into immortal pages and recorded in the hook
// registry, so every session of this process uses the same ones, and a thread still in a
// signal frame of a finished session returns into valid code. The handler takes no lock,
// calls nothing and enters no JS, so it also serves a forked child.
// It is installed with the raw rt_sigaction syscall, in front of Frida's exceptor (which
// libc's sigaction would have kept first), and installed again whenever someone replaced
// it (Frida's exceptor puts back what it found when its agent unloads).

import { REG, hookRegistry } from './hookRegistry.js';
import { rawAlloc } from './rawMemory.js';
import { syscall4 } from './libc.js';
import { fetchAdd } from './atomics.js';

/** Entries of the site table; an entry is reused when the same address is patched again. */
export const TRAP_SLOTS = 4096;
/** State block: [0] u32 slots reserved; [8..40) the previous kernel action; [64..) slots {site u64, dest u64}. */
const S = { reserved: 0, prev: 8, slots: 64 } as const;
const STATE_SIZE = S.slots + 16 * TRAP_SLOTS;
/** offsetof(ucontext_t, uc_mcontext.gregs[REG_RIP]) on x86-64 Linux. */
const UC_RIP = 168;

const SIGTRAP = 5;
const SYS_RT_SIGACTION = 13;
const SA_SIGINFO = 4;
const SA_ONSTACK = 0x08000000;
const SA_RESTORER = 0x04000000;
/** The kernel's struct sigaction: handler, flags, restorer, mask. */
const KACTION_SIZE = 32;

interface TrapCode {
  state: NativePointer;
  handler: NativePointer;
  restorer: NativePointer;
}

function writeHandler(state: NativePointer): TrapCode {
  const code = rawAlloc(256, 'code');
  let restorer = NULL;
  Memory.patchCode(code, 256, (c) => {
    const w = new X86Writer(c, { pc: code });
    // rdi = signal, rsi = siginfo, rdx = ucontext. Only rax, rcx, r8-r11 are touched before a tail call.
    w.putMovRegAddress('r8', state);
    w.putMovRegRegOffsetPtr('r9', 'rdx', UC_RIP);
    w.putDecReg('r9'); // the int3's own address: rip points after it
    w.putMovRegRegOffsetPtr('ecx', 'r8', S.reserved);
    w.putMovRegReg('r10', 'r8');
    w.putAddRegImm('r10', S.slots);
    w.putLabel('loop');
    w.putTestRegReg('ecx', 'ecx');
    w.putJccShortLabel('je', 'foreign', 'no-hint');
    w.putMovRegRegOffsetPtr('r11', 'r10', 0);
    w.putCmpRegReg('r11', 'r9');
    w.putJccShortLabel('jne', 'next', 'no-hint');
    w.putMovRegRegOffsetPtr('r11', 'r10', 8);
    w.putTestRegReg('r11', 'r11');
    w.putJccShortLabel('je', 'next', 'no-hint');
    w.putMovRegOffsetPtrReg('rdx', UC_RIP, 'r11');
    w.putRet();
    w.putLabel('next');
    w.putAddRegImm('r10', 16);
    w.putDecReg('ecx');
    w.putJmpShortLabel('loop');
    w.putLabel('foreign');
    // Not one of ours: the previous handler (SIG_DFL is 0, SIG_IGN 1) gets it as it would have.
    w.putMovRegRegOffsetPtr('rax', 'r8', S.prev);
    w.putMovRegU64('r11', 1);
    w.putCmpRegReg('rax', 'r11');
    w.putJccShortLabel('jbe', 'default', 'no-hint');
    w.putJmpReg('rax');
    w.putLabel('default');
    // Nobody handles SIGTRAP: restore the default action and run the int3 again, which then
    // does what it would have done without us (stop the process with a core).
    w.putMovRegOffsetPtrReg('rdx', UC_RIP, 'r9');
    w.putXorRegReg('eax', 'eax');
    w.putPushReg('rax');
    w.putPushReg('rax');
    w.putPushReg('rax');
    w.putPushReg('rax');
    w.putMovRegReg('rsi', 'rsp');
    w.putXorRegReg('edx', 'edx');
    w.putMovRegU64('r10', 8);
    w.putMovRegU32('eax', SYS_RT_SIGACTION);
    w.putBytes([0x0f, 0x05]); // syscall
    w.putAddRegImm('rsp', 32);
    w.putRet();
    // What sigreturn needs after a handler (x86-64 requires SA_RESTORER).
    w.putLabel('restorer');
    restorer = code.add(w.offset);
    w.putMovRegU32('eax', 15);
    w.putBytes([0x0f, 0x05]);
    w.flush();
  });
  return { state, handler: code, restorer };
}

let cached: TrapCode | null = null;

/** The process's trap handler: found in the registry, or written now and recorded there. */
function trapCode(): TrapCode {
  if (cached) return cached;
  const reg = hookRegistry();
  const known = reg.add(REG.trapState).readPointer();
  if (!known.isNull()) {
    cached = { state: known, handler: reg.add(REG.trapHandler).readPointer(), restorer: reg.add(REG.trapRestorer).readPointer() };
  } else {
    const t = writeHandler(rawAlloc(STATE_SIZE, 'data', 64));
    reg.add(REG.trapHandler).writePointer(t.handler);
    reg.add(REG.trapRestorer).writePointer(t.restorer);
    reg.add(REG.trapState).writePointer(t.state); // published last: readers take the others after it
    cached = t;
  }
  return cached;
}

/** Puts the handler in front of whatever SIGTRAP action is current, unless it already is. */
export function ensureTrapHandler(): void {
  const t = trapCode();
  const cur = Memory.alloc(KACTION_SIZE);
  if (syscall4(SYS_RT_SIGACTION, SIGTRAP, NULL, cur, 8) !== 0) throw new Error('cannot read the SIGTRAP action');
  if (cur.readPointer().equals(t.handler)) return;
  // The action we chain to is saved before ours goes live, so the handler never reads a stale one.
  Memory.copy(t.state.add(S.prev), cur, KACTION_SIZE);
  const act = Memory.alloc(KACTION_SIZE);
  act.writePointer(t.handler);
  act.add(8).writeU64(SA_SIGINFO | SA_ONSTACK | SA_RESTORER);
  act.add(16).writePointer(t.restorer);
  act.add(24).writeU64(0);
  if (syscall4(SYS_RT_SIGACTION, SIGTRAP, act, NULL, 8) !== 0) throw new Error('cannot install the SIGTRAP handler int3 hooks need');
}

/**
 * From now on a thread that hits an int3 at `site` continues at `dest` (immortal code that
 * does what the bytes at `site` mean). Entries are never removed, only redirected: a thread
 * that trapped a moment ago may not have reached the handler yet.
 */
export function setTrapSite(site: NativePointer, dest: NativePointer): void {
  const t = trapCode();
  const n = Math.min(t.state.add(S.reserved).readU32(), TRAP_SLOTS);
  for (let i = 0; i < n; i++) {
    const e = t.state.add(S.slots + 16 * i);
    if (e.readPointer().equals(site)) {
      e.add(8).writePointer(dest);
      return;
    }
  }
  const i = fetchAdd(t.state.add(S.reserved), 1);
  if (i >= TRAP_SLOTS) throw new Error(`more than ${TRAP_SLOTS} int3 sites in this process`);
  const e = t.state.add(S.slots + 16 * i);
  e.add(8).writePointer(dest);
  e.writePointer(site); // the site last: a reader skips the slot until it is complete
}

/** Where a thread at `site`'s int3 goes now (NULL: not ours), for tests and diagnostics. */
export function trapSiteDest(site: NativePointer): NativePointer {
  const t = trapCode();
  const n = Math.min(t.state.add(S.reserved).readU32(), TRAP_SLOTS);
  for (let i = 0; i < n; i++) {
    const e = t.state.add(S.slots + 16 * i);
    if (e.readPointer().equals(site)) return e.add(8).readPointer();
  }
  return NULL;
}

/** The handler's address (to tell ours from another SIGTRAP action). */
export function trapHandlerAddress(): NativePointer {
  return trapCode().handler;
}
