// The interpreter's native build (vm/build/libbpfvm.so, gcc -O2 from the same C as the
// wasm build) as a VmCore inside the target. The agent runs programs here rather than in
// V8's WebAssembly: a script whose hooks touched wasm memory from the target's threads
// crashes the target when Frida tears the script down (measured: 3 of 6 detaches in a
// minimal harness), and a detach must leave the target unharmed.

import type { Helper, VmCore, VmCoreFactory } from '../../vm/ts/vm.js';
import type { NativeHashApi } from '../maps/NativeHashMap.js';
import { hotCallback } from '../hotCallback.js';
import { HELPERS } from '../../protocol/helperTable.js';

// Keep the JS lock across calls: programs call helpers (JS) back on the same thread, and
// another thread must not run a program on the VM's global state in between. Exceptions
// propagate: Frida's per-call fault guard costs ~0.6 µs per hit (measured), and the VM
// checks every access itself; helper errors never unwind through C (see HelperFailure).
const EXCLUSIVE = { scheduling: 'exclusive', exceptions: 'propagate' } as const;

/**
 * Helpers libbpfvm.so implements in C (bpfvm_use_builtin_helper): ktime_get_ns,
 * get_smp_processor_id, get_current_pid_tgid, get_current_uid_gid, get_current_comm,
 * probe_read_user, probe_read_user_str, ktime_get_boot_ns.
 */
export const NATIVE_BUILTIN_HELPERS: readonly number[] = HELPERS.filter((h) => h.runs === 'native' && h.name !== 'override_return').map((h) => h.id);

export interface NativeVm {
  factory: VmCoreFactory;
  /** `int bpfvm_run_with_ctx(uint handle, uint64 ctxVaddr, const void *src, uint64 len)`, for native hooks. */
  runWithCtx: NativePointer;
  /** The same with an override target (see NativeRunner.runWithOverride). */
  runWithOverride: NativePointer;
  /** `int bpfvm_thread_in_run(void)` (see NativeRunner.threadInRun). */
  threadInRun: NativePointer;
  /** Runs made through runWithCtx for a program. */
  nativeHits(handle: number): number;
  /** Hash maps with their index in the library (NativeHashMap). */
  hash: NativeHashApi;
  /** Frees the VM's memory and unloads the library (after every hook is gone). */
  unload(): void;
}

/** Offsets in bpfvm_outcome (vm/src/bpfvm.h), as the library reports them. */
interface OutcomeLayout {
  size: number;
  result: number;
  insns: number;
  faultAddr: number;
  status: number;
  faultPc: number;
  faultCheck: number;
  faultRegion: number;
}

function outcomeLayout(query: NativeFunction<void, [NativePointerValue]>): OutcomeLayout {
  const words = Memory.alloc(8 * 4);
  query(words);
  const [size, result, insns, faultAddr, status, faultPc, faultCheck, faultRegion] = Array.from({ length: 8 }, (_, i) => words.add(4 * i).readU32());
  return { size, result, insns, faultAddr, status, faultPc, faultCheck, faultRegion };
}

/** A helper failure cannot unwind through C frames: it is parked here and rethrown by bpfvm_run. */
class HelperFailure {
  constructor(readonly error: unknown) {}
}

export function loadNativeVm(libraryPath: string): NativeVm {
  const lib = openPrivateCopy(libraryPath);
  const fn = <R extends NativeFunctionReturnType, A extends NativeFunctionArgumentType[] | []>(name: string, ret: R, args: A) =>
    new NativeFunction(lib.symbol(name), ret, args, EXCLUSIVE);

  const vmInit = fn('bpfvm_init', 'int', ['uint', 'uint']);
  const vmRegisterHelper = fn('bpfvm_register_helper', 'void', ['uint']);
  const setHelperFn = fn('bpfvm_set_helper_fn', 'void', ['uint', 'pointer']);
  const vmRegisterArrayMap = fn('bpfvm_register_array_map', 'int', ['uint64', 'uint', 'uint', 'uint']);
  const hostPtr = fn('bpfvm_host_ptr', 'pointer', ['uint64']);
  const vmLoad = fn('bpfvm_load', 'int', ['pointer', 'uint']);
  const vmErrMsg = fn('bpfvm_err_msg', 'pointer', []);
  const vmSetLoadEnv = fn('bpfvm_set_load_env', 'int', ['pointer', 'uint', 'uint', 'uint']);
  const vmAccessible32 = fn('bpfvm_accessible32', 'int', ['uint', 'uint', 'uint']);
  const vmRunOut = fn('bpfvm_run_out', 'int', ['uint', 'uint64', 'uint64', 'pointer']);
  const vmProgFault = fn('bpfvm_prog_fault', 'void', ['uint', 'pointer']);
  const vmSetBudget = fn('bpfvm_set_budget', 'void', ['uint64']);
  const layout = outcomeLayout(fn('bpfvm_outcome_layout', 'void', ['pointer']));
  const vmErrPc = fn('bpfvm_err_pc', 'uint', []);
  const vmRoLo = fn('bpfvm_ro_lo', 'uint', []);
  const vmRwLo = fn('bpfvm_rw_lo', 'uint', []);
  const vmRwHi = fn('bpfvm_rw_hi', 'uint', []);
  const vmAllocStart = fn('bpfvm_alloc_start', 'uint', []);
  const vmProgCount = fn('bpfvm_prog_count', 'uint', []);
  const vmRequestTailCall = fn('bpfvm_request_tail_call', 'void', ['uint']);
  const vmRequestExit = fn('bpfvm_request_exit', 'void', ['uint64']);
  const vmRequestFault = fn('bpfvm_request_fault', 'void', []);
  const vmInHelper = fn('bpfvm_in_helper', 'int', []);
  const vmResetAfterTrap = fn('bpfvm_reset_after_trap', 'void', []);
  const vmFini = fn('bpfvm_fini', 'void', []);
  const vmNativeHits = fn('bpfvm_native_hits', 'uint64', ['uint']);
  const useBuiltinHelper = fn('bpfvm_use_builtin_helper', 'int', ['uint']);
  const vmRegisterHashMap = fn('bpfvm_register_hash_map', 'int', ['uint64', 'uint', 'uint', 'uint', 'uint64']);
  const vmHashOp = fn('bpfvm_hash_op', 'int64', ['uint64', 'uint', 'pointer', 'pointer', 'uint64']);
  const vmHashEntries = fn('bpfvm_hash_entries', 'int', ['uint64', 'pointer', 'pointer', 'uint']);

  const big = (v: UInt64 | Int64 | number): bigint => BigInt(v.toString());
  const u64 = (v: bigint): UInt64 => uint64(BigInt.asUintN(64, v).toString());
  const callbacks: NativePointer[] = [];
  let failure: HelperFailure | null = null;

  const builtins = new Set(NATIVE_BUILTIN_HELPERS.filter((id) => (useBuiltinHelper(id) as number) === 1));
  const factory: VmCoreFactory = (helpers: readonly (Helper | undefined)[]): VmCore => {
    let buffer: ArrayBuffer | null = null;
    // What the last run (or selectFault) left, copied under the VM's run lock: the library's
    // own registers may already be another thread's run. JS runs one at a time (JS lock).
    const outcome = Memory.alloc(layout.size);
    return {
      buffer(): ArrayBuffer {
        // VM address a lives at bpfvm_host_ptr(a); only the arena part of this view is real.
        buffer ??= ArrayBuffer.wrap(hostPtr(0), vmRwHi() as number);
        return buffer;
      },
      bpfvm_init(ro: number, rw: number): number {
        buffer = null;
        return vmInit(ro, rw) as number;
      },
      bpfvm_register_helper(id: number): void {
        // Helpers the library has in C (NATIVE_BUILTIN_HELPERS) never call back into JS.
        if (!callbacks[id] && !builtins.has(id)) {
          // Convert only the arguments the helper declares, as the wasm core does.
          callbacks[id] = hotCallback(
            (a, b, c, d, e) => {
              const h = helpers[id];
              try {
                if (h === undefined) throw new Error(`helper ${id} is not registered`);
                let v: bigint | number;
                switch (h.length) {
                  case 1: v = (h as (x: bigint) => bigint | number)(big(a)); break;
                  case 2: v = (h as (x: bigint, y: bigint) => bigint | number)(big(a), big(b)); break;
                  default: v = h(big(a), big(b), big(c), big(d), big(e));
                }
                if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
                return int64(BigInt.asIntN(64, BigInt(v)).toString());
              } catch (err) {
                failure = new HelperFailure(err);
                vmRequestFault();
                return 0;
              }
            },
            'int64',
            ['uint64', 'uint64', 'uint64', 'uint64', 'uint64'],
          );
          setHelperFn(id, callbacks[id]);
        }
        vmRegisterHelper(id);
      },
      bpfvm_register_array_map: (handle: bigint, base: number, stride: number, max: number) =>
        vmRegisterArrayMap(u64(handle), base, stride, max) as number,
      loadProgram(prog: Uint8Array, n: number): number {
        const mem = Memory.alloc(Math.max(8, prog.length));
        mem.writeByteArray(prog.buffer.slice(prog.byteOffset, prog.byteOffset + prog.byteLength) as ArrayBuffer);
        return vmLoad(mem, n) as number;
      },
      setLoadEnv(regions: Uint8Array, n: number, ctxSize: number, ctxFlags: number): number {
        const mem = Memory.alloc(Math.max(8, regions.length));
        mem.writeByteArray(regions.buffer.slice(regions.byteOffset, regions.byteOffset + regions.byteLength) as ArrayBuffer);
        return vmSetLoadEnv(mem, n, ctxSize, ctxFlags) as number;
      },
      bpfvm_accessible32: (addr: number, len: number, write: number) => vmAccessible32(addr, len, write) as number,
      bpfvm_fault_check: () => outcome.add(layout.faultCheck).readU32(),
      bpfvm_fault_region: () => outcome.add(layout.faultRegion).readU32(),
      errorMessage(): string {
        const p = vmErrMsg();
        return p.isNull() ? 'out of memory' : p.readUtf8String() ?? '';
      },
      bpfvm_run(handle: number, ctx: bigint, len: bigint): number {
        failure = null;
        const st = vmRunOut(handle, Number(ctx), Number(len), outcome) as number;
        if (failure !== null) {
          const f = failure as HelperFailure;
          failure = null;
          throw f.error;
        }
        return st;
      },
      bpfvm_set_budget: (b: bigint) => vmSetBudget(u64(b)),
      bpfvm_result: () => big(outcome.add(layout.result).readU64()),
      bpfvm_insn_count: () => big(outcome.add(layout.insns).readU64()),
      bpfvm_fault_pc: () => outcome.add(layout.faultPc).readU32(),
      bpfvm_fault_addr: () => big(outcome.add(layout.faultAddr).readU64()),
      selectFault: (handle: number) => vmProgFault(handle, outcome),
      bpfvm_err_pc: () => vmErrPc() as number,
      bpfvm_ro_lo: () => vmRoLo() as number,
      bpfvm_rw_lo: () => vmRwLo() as number,
      bpfvm_rw_hi: () => vmRwHi() as number,
      bpfvm_alloc_start: () => vmAllocStart() as number,
      bpfvm_prog_count: () => vmProgCount() as number,
      bpfvm_request_tail_call: (h: number) => vmRequestTailCall(h),
      bpfvm_request_exit: (r0: bigint) => vmRequestExit(u64(r0)),
      bpfvm_in_helper: () => vmInHelper() as number,
      bpfvm_reset_after_trap: () => vmResetAfterTrap(),
    };
  };

  return {
    factory,
    runWithCtx: lib.symbol('bpfvm_run_with_ctx'),
    runWithOverride: lib.symbol('bpfvm_run_with_override'),
    threadInRun: lib.symbol('bpfvm_thread_in_run'),
    nativeHits: (handle) => Number(vmNativeHits(handle)),
    hash: {
      register: (handle, keySize, valueSize, max, values) => vmRegisterHashMap(u64(handle), keySize, valueSize, max, values) as number,
      op: (handle, op, key, value, flags) => Number(vmHashOp(u64(handle), op, key, value, flags)),
      entries: (handle, keysOut, slotsOut, max) => vmHashEntries(u64(handle), keysOut, slotsOut, max) as number,
    },
    unload(): void {
      vmFini();
      lib.close();
    },
  };
}

interface PrivateLibrary {
  symbol(name: string): NativePointer;
  /** dlclose: the copy leaves the process (call only once nothing can run its code). */
  close(): void;
}

let copies = 0;

/**
 * dlopen()s a private copy of the library: its bytes in a new file under /dev/shm with a
 * name no other session uses, unlinked once it is mapped. The dynamic loader shares one
 * instance per file name and per file (same device and inode), so two sessions on one
 * process that both dlopen'd vm/build/libbpfvm.so would run on one set of VM globals and
 * corrupt each other's programs (measured: the target died 5 of 5). A /proc/self/fd/N path
 * of a memfd is not enough: fd numbers are reused, and the loader matched the second
 * session's "/proc/self/fd/N" by name to the first one's copy. Nothing is left on disk; the
 * name keeps "libbpfvm" visible in /proc/PID/maps.
 */
function openPrivateCopy(libraryPath: string): PrivateLibrary {
  const bytes = File.readAllBytes(libraryPath);
  const sym = (name: string) => Module.getGlobalExportByName(name);
  const open = new NativeFunction(sym('open'), 'int', ['pointer', 'int', 'int'], EXCLUSIVE);
  const unlink = new NativeFunction(sym('unlink'), 'int', ['pointer'], EXCLUSIVE);
  const write = new NativeFunction(sym('write'), 'int64', ['int', 'pointer', 'uint64'], EXCLUSIVE);
  const close = new NativeFunction(sym('close'), 'int', ['int'], EXCLUSIVE);
  const dlopen = new NativeFunction(sym('dlopen'), 'pointer', ['pointer', 'int'], EXCLUSIVE);
  const dlsym = new NativeFunction(sym('dlsym'), 'pointer', ['pointer', 'pointer'], EXCLUSIVE);
  const dlclose = new NativeFunction(sym('dlclose'), 'int', ['pointer'], EXCLUSIVE);
  const dlerror = new NativeFunction(sym('dlerror'), 'pointer', [], EXCLUSIVE);
  const O_WRONLY_CREAT_EXCL_CLOEXEC = 0o1 | 0o100 | 0o200 | 0o2000000;
  const RTLD_NOW = 2;

  // Unique across the scripts of one process too: each has its own `copies`.
  const unique = `${Process.id}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}-${copies++}`;
  const path = Memory.allocUtf8String(`/dev/shm/libbpfvm-${unique}.so`);
  const fd = open(path, O_WRONLY_CREAT_EXCL_CLOEXEC, 0o700) as number;
  if (fd < 0) throw new Error(`cannot copy ${libraryPath} to /dev/shm`);
  let handle: NativePointer;
  try {
    const buf = Memory.alloc(bytes.byteLength);
    buf.writeByteArray(bytes);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = Number(write(fd, buf.add(done), bytes.byteLength - done));
      if (n <= 0) throw new Error(`cannot copy ${libraryPath}: write to memfd failed`);
      done += n;
    }
    handle = dlopen(path, RTLD_NOW);
    if (handle.isNull()) {
      const why = dlerror();
      throw new Error(`cannot load ${libraryPath}: ${why.isNull() ? 'dlopen failed' : why.readUtf8String()}`);
    }
  } finally {
    close(fd);
    unlink(path); // the mapping keeps the copy alive; nothing stays on disk
  }
  let loaded = true;
  return {
    symbol(symbolName: string): NativePointer {
      const p = dlsym(handle, Memory.allocUtf8String(symbolName));
      if (p.isNull()) throw new Error(`${libraryPath}: no symbol ${symbolName}`);
      return p;
    },
    close(): void {
      if (loaded) dlclose(handle);
      loaded = false;
    },
  };
}
