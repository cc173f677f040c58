// The hit path shared by every inline probe: native/hookcore.c, built into a flat blob
// (agent/hooks/generated/hookCoreBlob.ts) and copied into immortal code pages once per
// agent. Its per-thread table (recursion guard, uretprobe shadow stacks) is process-wide,
// found through the hook registry, so a thread that entered a hooked function under one
// session returns through it correctly under any later one.

import { HOOKCORE_BASE64, HOOKCORE_EXPORTS, HOOKCORE_SIZE } from './generated/hookCoreBlob.js';
import { REG, hookRegistry } from './hookRegistry.js';
import { rawAlloc } from './rawMemory.js';

/** Mirrors struct probe in hookcore.c; checked against hookcore_layout() at load. */
export const PROBE = {
  active: 0,
  inflight: 4,
  handle: 8,
  kind: 12,
  run: 16,
  runOverride: 24,
  ctxAddr: 32,
  enabled: 40,
  forkState: 48,
  fault: 56,
  threads: 64,
  funcIp: 72,
  js: 80,
  hits: 88,
  returnStub: 96,
  flags: 104,
  skipped: 108,
  unwound: 112,
  size: 120,
} as const;
/** Mirrors struct site (one per hooked address) and struct probe_list in hookcore.c. */
export const SITE = { list: 0, threads: 8, size: 16 } as const;
export const PROBE_LIST = { n: 0, probes: 8 } as const;
export const PROBE_KIND = { entry: 0, return: 1, override: 2, unwind: 3 } as const;
/**
 * Mirrors struct threads / struct thread_state in hookcore.c (the size is checked at load):
 * the syscall rewrite handlers read a thread's `busy` flag to leave alone the syscalls a
 * probe's program (or its JS path) makes. Slots are found by the hash of the thread pointer.
 */
export const HOOK_THREADS = { slot0: 8, slots: 4096, stateSize: 8 + 4 + 4 + 64 * 24, busy: 8, probeLimit: 64 } as const;
export const PROBE_FLAG_JS = 1;
const HOOKCORE_VERSION = 1;
const PT_REGS_BYTES = 168;

export interface HookCore {
  /** int hookcore_site(struct site *, u64 *regs, u64 *ret_slot): every probe of a hooked address */
  site: NativePointer;
  /** void hookcore_return(struct threads *, u64 *regs, u64 *ret_slot) */
  ret: NativePointer;
  threads: NativePointer;
}

let core: HookCore | null = null;

function decodeBase64(b64: string): number[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const out: number[] = [];
  let buf = 0;
  let bits = 0;
  for (const ch of b64) {
    if (ch === '=') break;
    buf = (buf << 6) | alphabet.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((buf >> bits) & 0xff);
    }
  }
  return out;
}

function checkLayout(layoutFn: NativePointer): number {
  const out = Memory.alloc(24 * 4);
  new NativeFunction(layoutFn, 'void', ['pointer'])(out);
  const got = (i: number) => out.add(4 * i).readU32();
  const expect: [number, number, string][] = [
    [0, HOOKCORE_VERSION, 'version'],
    [1, PROBE.size, 'sizeof(struct probe)'],
    [2, PROBE.active, 'active'],
    [3, PROBE.inflight, 'inflight'],
    [4, PROBE.run, 'run'],
    [5, PROBE.fault, 'fault'],
    [6, PROBE.threads, 'threads'],
    [7, PROBE.returnStub, 'return_stub'],
    [8, PROBE.flags, 'flags'],
    [10, PT_REGS_BYTES, 'pt_regs size'],
    [11, PROBE.js, 'js'],
    [12, PROBE.skipped, 'skipped'],
    [13, PROBE.hits, 'hits'],
    [14, PROBE.forkState, 'fork_state'],
    [15, PROBE.kind, 'kind'],
    [16, SITE.size, 'sizeof(struct site)'],
    [17, SITE.list, 'site.list'],
    [18, SITE.threads, 'site.threads'],
    [19, PROBE_LIST.probes, 'probe_list.p'],
    [20, PROBE.unwound, 'unwound'],
  ];
  for (const [i, want, what] of expect) {
    if (got(i) !== want) throw new Error(`hookcore.c and hookCore.ts disagree on ${what}: C says ${got(i)}, TypeScript ${want}`);
  }
  return got(9);
}

/** The agent's copy of the hook core, with the process-wide thread table. */
export function hookCore(): HookCore {
  if (core) return core;
  const code = rawAlloc(HOOKCORE_SIZE, 'code', 64);
  code.writeByteArray(decodeBase64(HOOKCORE_BASE64));
  const threadsSize = checkLayout(code.add(HOOKCORE_EXPORTS.hookcore_layout));
  const mirrored = HOOK_THREADS.slot0 + HOOK_THREADS.slots * HOOK_THREADS.stateSize;
  if (threadsSize !== mirrored) throw new Error(`hookcore.c and hookCore.ts disagree on sizeof(struct threads): C says ${threadsSize}, TypeScript ${mirrored}`);
  const reg = hookRegistry();
  let threads = reg.add(REG.threads).readPointer();
  if (threads.isNull()) {
    threads = rawAlloc(threadsSize, 'data', 4096);
    threads.writeU32(HOOKCORE_VERSION);
    reg.add(REG.threads).writePointer(threads);
  } else if (threads.readU32() !== HOOKCORE_VERSION) {
    throw new Error(`another bpftime-ts (hook core v${threads.readU32()}) hooks this process; v${HOOKCORE_VERSION} cannot share its thread table`);
  }
  core = { site: code.add(HOOKCORE_EXPORTS.hookcore_site), ret: code.add(HOOKCORE_EXPORTS.hookcore_return), threads };
  return core;
}
