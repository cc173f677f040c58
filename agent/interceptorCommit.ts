// Makes "attached" true for hooks made with Frida's Interceptor: returns only once the
// hook's redirect is really written in the target's code.
//
// Why it is needed: Interceptor.attach/replace only schedule the write; it happens when
// Interceptor's last open transaction closes, and Frida's JS runtime opens one for every
// JS entry on any thread *before* that thread waits for the runtime's lock. With a JS-path
// hook hot on several threads there is nearly always a thread waiting, so Interceptor.flush()
// from our thread never closes the last one. Measured on the lifecycle victim with
// --hooks interceptor and the JS-path object: target_add's hook went in first, its 4 threads
// started entering JS, and counted_add's hook (5 bytes further on) was still unwritten 4 s
// after the CLI had said "2 hooks installed": a burst made meanwhile counted 0 of 1000.
// (Three adjacent USDT sites under three threads landed ~100 ms late the same way.)
//
// So when the first flush does not do it, we take the JS hold (agent/cmodules/jsHold.h):
// gated threads wait natively instead of entering JS, and Thread.sleep() lets go of the JS
// lock so the threads already queued for it run their callbacks and leave; the next flush
// then closes the last transaction and Interceptor writes the hook. No hit is lost, the
// held ones are late by the time it takes (a few ms).

import { JS_HOLD_C } from './cmodules/generated/jsHold_c.js';
import { checkLayout } from './cmodules/checkLayout.js';
import { REG, hookRegistry } from './hooks/hookRegistry.js';

/** jsHold.h's JS_HOLD_WORDS: the hold's size in gint words. */
const JS_HOLD_WORDS = 4;
/** How long the hold may make gated threads wait beyond our own bound (the deadline's slack). */
const HOLD_SLACK_MS = 100;

/** The process-wide hold words every gate reads (forkGuard.ts passes them to its CModule). */
export function jsHoldWords(): NativePointer {
  return hookRegistry().add(REG.jsHold);
}

interface Hold {
  take: NativeFunction<void, [number, number]>;
  release: NativeFunction<void, []>;
  module: CModule;
}
let hold: Hold | null = null;

function jsHold(): Hold {
  if (hold) return hold;
  const module = new CModule(JS_HOLD_C, { js_hold: jsHoldWords() });
  checkLayout(module, 'js_hold_layout', [['JS_HOLD_WORDS', JS_HOLD_WORDS]]);
  hold = {
    module,
    take: new NativeFunction(module.js_hold_take, 'void', ['int', 'int'], { scheduling: 'exclusive' }),
    release: new NativeFunction(module.js_hold_release, 'void', [], { scheduling: 'exclusive' }),
  };
  return hold;
}

/**
 * Flushes Interceptor until `written()` says the change is in the code, for at most
 * `timeoutMs`; false if it never was. Call from JS with the hooks already scheduled.
 */
export function commitInterceptor(written: () => boolean, timeoutMs = 1000): boolean {
  Interceptor.flush();
  if (written()) return true;
  const h = jsHold();
  h.take(Process.getCurrentThreadId(), timeoutMs + HOLD_SLACK_MS);
  try {
    const end = Date.now() + timeoutMs;
    for (;;) {
      Thread.sleep(0.001); // lets go of the JS lock: threads queued for it run and leave
      Interceptor.flush();
      if (written()) return true;
      if (Date.now() >= end) return false;
    }
  } finally {
    h.release();
  }
}

const PROBE_BYTES = 16;

function bytesAt(p: NativePointer): string {
  return Array.from(new Uint8Array(p.readByteArray(PROBE_BYTES)!), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Where a jump at the start of `code` (hex) at `p` leads, or null when it is none. */
function jumpTarget(p: NativePointer, code: string): NativePointer | null {
  const byte = (i: number) => parseInt(code.slice(2 * i, 2 * i + 2), 16);
  if (byte(0) === 0xe9) return p.add(5).add(p.add(1).readS32());
  if (byte(0) === 0xeb) return p.add(2).add(p.add(1).readS8());
  if (byte(0) === 0xff && byte(1) === 0x25) return p.add(6).add(p.add(2).readS32()).readPointer();
  return null;
}

/**
 * Call right before Interceptor.attach/replace at `addr`: the returned check says whether
 * the hook's redirect has been written since. Interceptor writes a jump (or, for a trap
 * site, an int3) at `addr`, so the bytes change; they do not when the function was already
 * hooked (another program or session: the new listener is live at once, no write) and when
 * it begins with a jump into a module, which Interceptor follows and hooks where it leads.
 */
export function redirectCheck(addr: NativePointer): () => boolean {
  const before = bytesAt(addr);
  const jump = jumpTarget(addr, before);
  const hookedAlready = before.startsWith('cc') || (jump !== null && Process.findModuleByAddress(jump) === null);
  const followed = jump !== null && !hookedAlready ? { at: jump, before: bytesAt(jump) } : null;
  return () => {
    if (hookedAlready || bytesAt(addr) !== before) return true;
    return followed !== null && bytesAt(followed.at) !== followed.before;
  };
}
