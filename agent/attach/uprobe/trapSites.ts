// Hooks that overwrite one byte: USDT sites. A probe site is a 1-byte nop, and code often
// branches to the byte right after it (sys/sdt.h sites sit at the end of `if` bodies, two
// probes can be adjacent), so Interceptor's 5-byte jump would break the program. Like a
// kernel uprobe, the site gets an int3 instead; Interceptor still builds its trampoline
// (listener, relocated nop, jump back), through a custom redirect of one byte. A native
// SIGTRAP handler sends a thread that hit one of our int3s to that trampoline, and passes
// every other SIGTRAP to the handler that was there before. No JS runs in the handler, so
// a forked child (which inherits the int3s) is served like the parent: the trampoline's
// listener is gated by forkGuard as usual.
// Measured here: about 3 µs per hit for the trap and its return (the listener's own cost
// comes on top), against ~0.3 µs for a jump hook: USDT sites are for rare events anyway.
//
// Detaching retires a site first (its thread resumes after the nop, skipping the probe),
// then Interceptor restores the nop; the handler is removed once no site is left and no
// thread is inside it.

/** Sites at once; each USDT probe site of every attached program takes one. */
const MAX_SITES = 1024;
/** trap_state: [0] sites in use, [1] threads inside the handler. */
const SOURCE = `
#include <gum/guminterceptor.h>

typedef struct { guint64 site; guint64 dest; } Site;
typedef void (* Handler) (int, void *, void *);
extern volatile gint trap_state[];
extern volatile Site trap_sites[];
extern volatile gpointer trap_prev;
extern int sigaction_default (int sig);

/* offsetof (ucontext_t, uc_mcontext.gregs[REG_RIP]) on x86-64 Linux. */
#define UC_RIP 168

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
  if (GPOINTER_TO_SIZE (trap_prev) > 1)
  {
    ((Handler) trap_prev) (sig, info, uc);
    return;
  }
  /* Nobody else handles SIGTRAP: let it do what it would have done (stop the process),
   * by restoring the default and running the trapping instruction again. */
  sigaction_default (sig);
  *rip = at;
}
`;

const SIGTRAP = 5;
const SA_SIGINFO = 4;
const SA_ONSTACK = 0x08000000;
/** glibc's struct sigaction: handler, sa_mask (128 bytes), sa_flags, sa_restorer. */
const SIGACTION_SIZE = 152;
const SA_FLAGS_OFFSET = 136;

interface SiteEntry {
  index: number;
  site: NativePointer;
}

class TrapSites {
  private readonly state = Memory.alloc(8);
  private readonly table = Memory.alloc(16 * MAX_SITES);
  private readonly prev = Memory.alloc(8);
  private readonly oldAction = Memory.alloc(SIGACTION_SIZE);
  private readonly module: CModule;
  private readonly sigaction: NativeFunction<number, [number, NativePointerValue, NativePointerValue]>;
  private readonly sites = new Map<string, SiteEntry>();
  private installed = false;

  constructor() {
    const sigaction = Module.getGlobalExportByName('sigaction');
    const setDefault = new CModule(`
      extern int sigaction (int sig, const void * act, void * old);
      int sigaction_default (int sig) { char act[${SIGACTION_SIZE}] = { 0 }; return sigaction (sig, act, 0); }
    `, { sigaction });
    this.module = new CModule(SOURCE, { trap_state: this.state, trap_sites: this.table, trap_prev: this.prev, sigaction_default: setDefault.sigaction_default });
    (this as unknown as { keep: CModule }).keep = setDefault;
    this.sigaction = new NativeFunction(sigaction, 'int', ['int', 'pointer', 'pointer'], { scheduling: 'exclusive' });
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
    this.sigaction(SIGTRAP, this.oldAction, NULL);
    while (this.state.add(4).readS32() !== 0) Thread.sleep(0.001);
    this.state.writeS32(0);
    this.installed = false;
  }

  private install(): void {
    if (this.installed) return;
    const act = Memory.alloc(SIGACTION_SIZE);
    act.writePointer(this.module.on_sigtrap);
    act.add(SA_FLAGS_OFFSET).writeS32(SA_SIGINFO | SA_ONSTACK);
    if (this.sigaction(SIGTRAP, act, this.oldAction) !== 0) throw new Error('cannot install the SIGTRAP handler USDT breakpoints need');
    // The previous SA_SIGINFO or plain handler (or SIG_DFL / SIG_IGN as 0 / 1).
    this.prev.writePointer(this.oldAction.readPointer());
    this.installed = true;
  }
}

let shared: TrapSites | null = null;

/** The agent's one SIGTRAP handler and site table. */
export function trapSites(): TrapSites {
  shared ??= new TrapSites();
  return shared;
}
