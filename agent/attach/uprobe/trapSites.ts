// Hooks that overwrite one byte under Frida's Interceptor (--hooks interceptor): USDT sites.
// A probe site is a 1-byte nop, and code often branches to the byte right after it
// (sys/sdt.h sites sit at the end of `if` bodies, two probes can be adjacent), so
// Interceptor's 5-byte jump would break the program. Like a kernel uprobe, the site gets an
// int3 instead; Interceptor still builds its trampoline (listener, relocated nop, jump
// back), through a custom redirect of one byte. The process's one SIGTRAP handler
// (agent/hooks/trapHandler.ts: immortal, no lock, no JS, so a forked child that inherits
// the int3s is served like the parent) sends a thread that hit one of these int3s to that
// trampoline, and passes every other SIGTRAP on. On the default inline hooks USDT sites are
// int3 probes of the inline engine instead (UprobeAttachImpl), with the same handler.
// Measured (bench/usdt.bench.ts, loaded machine): 6 µs per hit with a native-path program,
// against 0.34 µs for a jump hook on the same function: USDT sites mark rare events anyway.
//
// Detaching retires a site first (a thread at its int3 resumes after the nop, skipping the
// probe), then Interceptor restores the nop. The handler's table keeps the retired entry
// (entries are only ever redirected): a thread that trapped a moment ago may reach the
// handler late, and then goes on after the nop, which is right before and after.

import { ensureTrapHandler, setTrapSite } from '../../hooks/trapHandler.js';

class TrapSites {
  /** Sites whose int3 currently leads to an Interceptor trampoline of this script. */
  private readonly live = new Set<string>();

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
    ensureTrapHandler();
    setTrapSite(site, trampoline);
    this.live.add(site.toString());
  }

  /** A thread at `site`'s int3 skips the probe (resumes after the nop) from now on. */
  retire(site: NativePointer): void {
    if (!this.live.delete(site.toString())) return;
    setTrapSite(site, site.add(1));
  }

  /** Every site off its trampoline: for a script unloaded without its detach (the trampolines go with it). */
  retireAll(): void {
    for (const key of [...this.live]) this.retire(ptr(key));
  }

  /** The site's nop is back: nothing to free (the handler and its table are the process's, for good). */
  release(site: NativePointer): void {
    this.live.delete(site.toString());
  }
}

let shared: TrapSites | null = null;

/** The agent's USDT trap sites under Interceptor. */
export function trapSites(): TrapSites {
  shared ??= new TrapSites();
  return shared;
}
