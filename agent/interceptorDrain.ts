// Waits until no thread is still inside one of Interceptor's trampolines. Our listeners are
// CModule code, unmapped when the script unloads; after we detach them ourselves, Frida's
// unload has nothing of its own left to wait for, and a thread preempted in a trampoline,
// about to call our listener, called into unmapped memory (measured: 2 of 20 detaches of
// 4 threads calling a native-path uprobe back-to-back; a 50 ms pause still lost some).
// gum_interceptor_flush() is true once every detached hook's trampoline is out of use.

const SOURCE = `
#include <gum/guminterceptor.h>

int
interceptor_drained (void)
{
  GumInterceptor * interceptor = gum_interceptor_obtain ();
  gboolean done = gum_interceptor_flush (interceptor);
  g_object_unref (interceptor);
  return done;
}
`;

let drained: NativeFunction<number, []> | null = null;
let module: CModule | null = null;

/** Polls until Interceptor has no trampoline in use, for at most `timeoutMs`; false on timeout. */
export function drainInterceptor(timeoutMs = 2000): boolean {
  if (drained === null) {
    module = new CModule(SOURCE);
    drained = new NativeFunction(module.interceptor_drained, 'int', [], { scheduling: 'exclusive' });
  }
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (drained() !== 0) return true;
    if (Date.now() >= end) return false;
    Thread.sleep(0.005);
  }
}
