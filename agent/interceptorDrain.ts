// Waits until no thread is still inside one of Interceptor's trampolines. Our listeners are
// CModule code, unmapped when the script unloads; after we detach them ourselves, Frida's
// unload has nothing of its own left to wait for, and a thread preempted in a trampoline,
// about to call our listener, called into unmapped memory (measured: 2 of 20 detaches of
// 4 threads calling a native-path uprobe back-to-back; a 50 ms pause still lost some).
// gum_interceptor_flush() is true once every detached hook's trampoline is out of use
// (agent/cmodules/interceptorDrain.c).

import { INTERCEPTOR_DRAIN_C } from './cmodules/generated/interceptorDrain_c.js';

let drained: NativeFunction<number, []> | null | undefined;
let module: CModule | null = null;

/**
 * Frida 17.25's CModule runtime neither declares nor links gum_interceptor_obtain/flush
 * ("unresolved reference"), so the poll is not always available. Then: commit pending
 * changes and stay quiet for a moment, which measured 0 crashes in 120 detaches
 * (../shared notes, frida-hooks.md §2); the script's own unload flushes again.
 */
const QUIET_MS = 50;

/** Polls until Interceptor has no trampoline in use, for at most `timeoutMs`; false on timeout. */
export function drainInterceptor(timeoutMs = 2000): boolean {
  if (drained === undefined) {
    try {
      module = new CModule(INTERCEPTOR_DRAIN_C);
      drained = new NativeFunction(module.interceptor_drained, 'int', [], { scheduling: 'exclusive' });
    } catch {
      drained = null;
    }
  }
  if (drained === null) {
    Interceptor.flush();
    Thread.sleep(QUIET_MS / 1000);
    return true;
  }
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (drained() !== 0) return true;
    if (Date.now() >= end) return false;
    Thread.sleep(0.005);
  }
}
