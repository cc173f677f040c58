// NativeCallbacks that native code calls on every hit (JS-path probes, JS helpers the VM
// calls, the syscall filter's callouts) must not be called directly.
//
// Why: Frida 17.25's V8 runtime leaks about 200 bytes per NativeCallback invocation that is
// not a live Interceptor replacement (gum_v8_native_callback_invoke builds a callback
// context whose CPU-context copy is handed to a weak handle and then deleted, so the weak
// callback that frees the copy never runs). Measured: a CModule thread calling a
// NativeCallback 110k times a second grew the target by 16 MB/s; the QuickJS runtime and
// plain JS Interceptor callbacks do not leak.
//
// The invocation takes the leak-free path when the callback runs as the replacement of a
// function Interceptor.replace()d on this thread. So each hot callback gets a small gate
// function of its own that is replaced by the callback; native code calls the gate.
// Interceptor passes every register through, so any signature works, and the callback's
// return value comes back to the caller. Inside an Interceptor listener (onEnter/onLeave)
// Frida's guard keeps other hooks from firing, so there the gate's own body runs: 16
// relocatable nops, then a jump straight to the callback (correct, but it leaks as before).
// Callers on our own hooks (inline stubs, Stalker callouts, VM helpers called from them)
// take the replacement path. test/e2e/memory.test.ts checks the target's memory stays flat.

const GATE_SIZE = 32;
const GATES_PER_PAGE = Math.floor(Process.pageSize / GATE_SIZE);

let page: NativePointer | null = null;
let used = GATES_PER_PAGE;
/** Gates and their callbacks live as long as the script: a thread may be inside one. */
const keep: unknown[] = [];

function newGate(): NativePointer {
  if (used === GATES_PER_PAGE) {
    page = Memory.alloc(Process.pageSize);
    Memory.protect(page, Process.pageSize, 'rwx');
    keep.push(page);
    used = 0;
  }
  return page!.add(used++ * GATE_SIZE);
}

/** 16 nops Interceptor can relocate, then `jmp [rip+0]` to the callback itself. */
function writeGate(gate: NativePointer, target: NativePointer): void {
  const nops = new Array<number>(16).fill(0x90);
  gate.writeByteArray([...nops, 0xff, 0x25, 0, 0, 0, 0]);
  gate.add(22).writePointer(target);
}

/**
 * The address native code should call instead of `new NativeCallback(fn, ret, args)`.
 * Same calling convention and result; no per-call leak.
 */
export function hotCallback<R extends NativeCallbackReturnType, A extends NativeCallbackArgumentType[] | []>(
  fn: NativeCallbackImplementation<GetNativeCallbackReturnValue<R>, Extract<GetNativeCallbackArgumentValue<A>, unknown[]>>,
  ret: R,
  args: A,
): NativePointer {
  const cb = new NativeCallback(fn, ret, args);
  const gate = newGate();
  writeGate(gate, cb);
  Interceptor.replace(gate, cb);
  keep.push(cb);
  return gate;
}
