// Stalker stops following a thread on its way out (its thread-exit handling and Frida's
// exit monitor run before the final `syscall`), so the exit_group of a process is never
// seen by the callouts. glibc's _exit() is the one place every process exit passes
// (exit() ends in it too), so an Interceptor hook there reports sys_enter_exit_group
// with the status as args[0], on the exiting thread, before the kernel call. The listener
// is native (syscallFilter.ts): it stays in C when nothing wants exit_group and in a
// forked child, where entering JS could deadlock.

/** x86-64 number of exit_group. */
export const NR_EXIT_GROUP = 231;

export function hookProcessExit(listener: NativePointer): InvocationListener[] {
  const seen = new Set<string>();
  const listeners: InvocationListener[] = [];
  // _Exit is an alias of _exit in glibc: hook each address once.
  for (const name of ['_exit', '_Exit']) {
    const addr = Module.findGlobalExportByName(name);
    if (addr === null || seen.has(addr.toString())) continue;
    seen.add(addr.toString());
    listeners.push(Interceptor.attach(addr, { onEnter: listener }));
  }
  return listeners;
}
