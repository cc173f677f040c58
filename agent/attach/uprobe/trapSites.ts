// Hooks that overwrite one byte: USDT sites. A probe site is a 1-byte nop, and code often
// branches to the byte right after it (sys/sdt.h sites sit at the end of `if` bodies, two
// probes can be adjacent), so Interceptor's 5-byte jump would break the program. Like a
// kernel uprobe, the site gets an int3 instead; Interceptor still builds its trampoline
// (listener, relocated nop, jump back), through a custom redirect of one byte. A native
// SIGTRAP handler sends a thread that hit one of our int3s to that trampoline, and passes
// every other SIGTRAP to the handler that was there before.
// The handler is installed with the raw rt_sigaction syscall, in front of Frida's own
// (which libc's sigaction would have kept first): a forked child inherits the int3s, and
// Frida's signal path in a child waits for locks that threads of the parent held at fork
// (seen: a child spinning in sched_yield forever). Ours takes no lock and enters no JS, so
// a child is served like the parent; the trampoline's listener is gated by forkGuard.
// Measured (bench/usdt.bench.ts, loaded machine): 6 µs per hit with a native-path program,
// against 0.34 µs for a jump hook on the same function: USDT sites mark rare events anyway.
//
// Detaching retires a site first (its thread resumes after the nop, skipping the probe),
// then Interceptor restores the nop; the handler is removed once no site is left and no
// thread is inside it.

/** Sites at once; each USDT probe site of every attached program takes one. */
const MAX_SITES = 1024;
/** trap_state: [0] sites in use, [1] threads inside the handler. trap_prev: the previous kernel action. */
const SOURCE = `
#include <gum/guminterceptor.h>

typedef struct { guint64 site; guint64 dest; } Site;
typedef struct { gpointer handler; guint64 flags; gpointer restorer; guint64 mask; } KernelAction;
typedef void (* Handler3) (int, void *, void *);
typedef void (* Handler1) (int);
extern volatile gint trap_state[];
extern volatile Site trap_sites[];
extern KernelAction trap_prev;
extern long syscall (long nr, ...);

/* What sigreturn needs after a handler (the kernel requires SA_RESTORER on x86-64). */
__asm__ (".global trap_restorer\\ntrap_restorer:\\n  mov $15, %rax\\n  syscall\\n");

/* offsetof (ucontext_t, uc_mcontext.gregs[REG_RIP]) on x86-64 Linux. */
#define UC_RIP 168
#define SA_SIGINFO 4
#define SYS_rt_sigaction 13

void
on_sigtrap (int sig, void * info, void * uc)
{
  guint64 * rip = (guint64 *) ((guint8 *) uc + UC_RIP);
  guint64 at = *rip - 1; /* int3 leaves rip after itself */
  gint i, n;
  g_atomic_int_add (&trap_state[1], 1);
  n = trap_state[0];
  for (i = 0; i < n; i++)
  {
    if (trap_sites[i].site == at)
    {
      *rip = trap_sites[i].dest;
      g_atomic_int_add (&trap_state[1], -1);
      return;
    }
  }
  g_atomic_int_add (&trap_state[1], -1);
  if (GPOINTER_TO_SIZE (trap_prev.handler) > 1)
  {
    if (trap_prev.flags & SA_SIGINFO)
      ((Handler3) trap_prev.handler) (sig, info, uc);
    else
      ((Handler1) trap_prev.handler) (sig);
    return;
  }
  {
    /* Nobody else handles SIGTRAP: let it do what it would have done (stop the process),
     * by restoring the default and running the trapping instruction again. */
    KernelAction dfl = { 0, 0, 0, 0 };
    syscall (SYS_rt_sigaction, sig, &dfl, 0, 8);
    *rip = at;
  }
}
`;

const SIGTRAP = 5;
const SYS_RT_SIGACTION = 13;
const SA_SIGINFO = 4;
const SA_ONSTACK = 0x08000000;
const SA_RESTORER = 0x04000000;
/** The kernel's struct sigaction: handler, flags, restorer, mask (8 bytes each on x86-64). */
const KACTION_SIZE = 32;

interface SiteEntry {
  index: number;
  site: NativePointer;
}

class TrapSites {
  private readonly state = Memory.alloc(8);
  private readonly table = Memory.alloc(16 * MAX_SITES);
  private readonly prev = Memory.alloc(KACTION_SIZE);
  private readonly module: CModule;
  private readonly rtSigaction: NativeFunction<number, [number, number, NativePointerValue, NativePointerValue, number]>;
  private readonly sites = new Map<string, SiteEntry>();
  private installed = false;

  constructor() {
    const syscall = Module.getGlobalExportByName('syscall');
    this.module = new CModule(SOURCE, { trap_state: this.state, trap_sites: this.table, trap_prev: this.prev, syscall });
    this.rtSigaction = new NativeFunction(syscall, 'int', ['long', 'int', 'pointer', 'pointer', 'long'], { scheduling: 'exclusive' });
  }

  /** The Interceptor target for a trap hook at `addr`; `onTrampoline` receives where the int3 must lead. */
  target(addr: NativePointer, onTrampoline: (t: NativePointer) => void): InstrumentationTarget {
    return {
      target: addr,
      redirectSpaceHint: 1,
      writeRedirect: (d: WriteRedirectDetails) => {
        onTrampoline(d.target);
        (d.writer as X86Writer).putBreakpoint();
      },
    };
  }

  /** From now on a thread at `site`'s int3 continues at `trampoline`. */
  activate(site: NativePointer, trampoline: NativePointer): void {
    this.install();
    const key = site.toString();
    let e = this.sites.get(key);
    if (!e) {
      const index = this.state.readS32();
      if (index >= MAX_SITES) throw new Error(`more than ${MAX_SITES} USDT sites`);
      e = { index, site };
      this.table.add(index * 16).writePointer(site);
      this.table.add(index * 16 + 8).writePointer(trampoline);
      this.state.writeS32(index + 1); // published after the entry is complete
      this.sites.set(key, e);
      return;
    }
    this.table.add(e.index * 16 + 8).writePointer(trampoline);
  }

  /**
   * Waits until the int3 is really in place. Interceptor defers writing a site's page while
   * another thread is executing in the range it rewrites (measured: the second and third of
   * three adjacent sites, under three threads running through them, landed ~100 ms after
   * attach returned); without this wait "hooks installed" would be said early.
   */
  awaitCommitted(site: NativePointer, timeoutMs = 1000): boolean {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (site.readU8() === 0xcc) return true;
      if (Date.now() >= end) return false;
      Interceptor.flush();
      Thread.sleep(0.002);
    }
  }

  /** A thread at `site`'s int3 skips the probe (resumes after the nop) from now on. */
  retire(site: NativePointer): void {
    const e = this.sites.get(site.toString());
    if (e) this.table.add(e.index * 16 + 8).writePointer(site.add(1));
  }

  /** Forgets retired sites once their bytes are restored, and removes the handler when none is left. */
  release(site: NativePointer): void {
    this.sites.delete(site.toString());
    if (this.sites.size > 0 || !this.installed) return;
    // A thread that trapped just before the nop came back may still be on its way in.
    Thread.sleep(0.05);
    this.rtSigaction(SYS_RT_SIGACTION, SIGTRAP, this.prev, NULL, 8);
    while (this.state.add(4).readS32() !== 0) Thread.sleep(0.001);
    this.state.writeS32(0);
    this.installed = false;
  }

  private install(): void {
    if (this.installed) return;
    const act = Memory.alloc(KACTION_SIZE);
    act.writePointer(this.module.on_sigtrap);
    act.add(8).writeU64(SA_SIGINFO | SA_ONSTACK | SA_RESTORER);
    act.add(16).writePointer(this.module.trap_restorer);
    act.add(24).writeU64(0);
    // The previous action (Frida's handler, or the program's) is saved to chain to and to put back.
    if (this.rtSigaction(SYS_RT_SIGACTION, SIGTRAP, act, this.prev, 8) !== 0) throw new Error('cannot install the SIGTRAP handler USDT breakpoints need');
    this.installed = true;
  }
}

let shared: TrapSites | null = null;

/** The agent's one SIGTRAP handler and site table. */
export function trapSites(): TrapSites {
  shared ??= new TrapSites();
  return shared;
}
