// The loaded object: what host/loader produces from a clang-built .bpf.o and what the
// agent runtime consumes. Plain JSON (binary fields are base64) so it crosses the
// host→agent protocol unchanged.

import type { BtfSpec } from './btf.js';

export type MapType =
  | 'hash'
  | 'array'
  | 'percpu_hash'
  | 'percpu_array'
  | 'lru_hash'
  | 'lru_percpu_hash'
  | 'ringbuf'
  | 'perf_event_array'
  | 'prog_array'
  | 'stack_trace'
  | 'lpm_trie'
  | 'queue'
  | 'stack'
  | 'bloom_filter'
  /** A kernel map type this runtime does not have; MapSpec.unsupported says which and why. */
  | 'unsupported';

/** Kernel numeric ids of the map types we accept (enum bpf_map_type). */
export const MAP_TYPE_IDS: Record<Exclude<MapType, 'unsupported'>, number> = {
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  queue: 22,
  stack: 23,
  ringbuf: 27,
  bloom_filter: 30,
};

/** Map flags (include/uapi/linux/bpf.h) the map implementations look at. */
export const BPF_F_NO_PREALLOC = 1 << 0;
export const BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
export const BPF_F_STACK_BUILD_ID = 1 << 5;
export const BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7;
export const BPF_F_WRONLY_PROG = 1 << 8;

export interface MapSpec {
  /** Index in ObjectSpec.maps; lddw pseudo-instructions refer to maps by this index. */
  index: number;
  /** Map name from the symbol (`counts`), or the section for global data (`.rodata`, `.data`, `.bss`, `.rodata.str1.1`). */
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** Where it came from: BTF `.maps`, legacy `maps`, or a global-data section. */
  origin: 'btf' | 'legacy' | 'data' | 'rodata' | 'bss';
  /** Global data sections are read-only at run time when they come from .rodata*. */
  readOnly: boolean;
  /** Initial contents of the single value of a global-data map (base64). */
  initialData?: string;
  /** BTF type ids of key and value when known (0 otherwise). */
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** For global-data maps: variables in the section (name → offset/size/BTF type) so constants can be set by name. */
  vars?: { name: string; offset: number; size: number; btfTypeId: number }[];
  /** `map_extra` of a BTF definition: the bloom filter's number of hash functions (0 = the kernel's 5). */
  mapExtra?: number;
  /** Set when `type` is 'unsupported': the kernel's name of the type and why it cannot run here. */
  unsupported?: { kernelType: string; reason: string };
  /**
   * Initial entries the object itself declares (libbpf's `.values = { [i] = &prog }` for a
   * prog_array): slot → index in ObjectSpec.programs of the program it holds.
   */
  declaredSlots?: { slot: number; program: string }[];
  /**
   * For ring buffers and perf event arrays: BTF ids of the structs the programs that write
   * to this map keep their records in (from DWARF locals), the candidates for decoding them.
   */
  recordTypes?: number[];
}

export type AttachSpec =
  | {
      kind: 'uprobe';
      /** uprobe: entry; uretprobe: return; override: Interceptor.replace at entry. */
      mode: 'entry' | 'return' | 'override';
      /** Binary or library as written by the user (`./victim`, `libc.so.6`, `/bin/bash`); absent when only an address is given. */
      binary?: string;
      symbol?: string;
      /** Offset added to the symbol, or a file offset within the binary when there is no symbol. */
      offset?: number;
      /** Absolute address in the target (decimal or 0x string); exclusive with binary/symbol. */
      address?: string;
      /**
       * Hook with a 1-byte breakpoint instead of a jump: a USDT site is a 1-byte nop that
       * code may branch to right after, so nothing wider may be overwritten there.
       */
      trap?: boolean;
      /** A USDT semaphore to raise while attached: its offset from the module's load base. */
      semaphoreOffset?: number;
    }
  | {
      /** A USDT probe (sys/sdt.h); the host turns it into one trap uprobe per site before the agent sees it. */
      kind: 'usdt';
      /** Absent (section usdt/PROVIDER:NAME): the target's main executable and its loaded libraries. */
      binary?: string;
      provider: string;
      name: string;
    }
  | {
      kind: 'syscall';
      phase: 'enter' | 'exit';
      /** Syscall name (`openat`) or `*` for raw_syscalls. */
      syscall: string;
    };

export interface ProgramSpec {
  /** The function symbol name (what a manifest refers to). */
  name: string;
  section: string;
  /** Little-endian 8-byte instructions after subprogram linking and relocation (base64). */
  code: string;
  insnCount: number;
  /**
   * Attach point from the section name; null when the section does not say (bare `uprobe`,
   * `kprobe/...`), so the manifest or the CLI must supply it.
   */
  attach: AttachSpec | null;
  /** Why `attach` is null, to show the user (e.g. "bare uprobe section: give binary and symbol in the manifest"). */
  attachNote?: string;
  /** Helper ids called (sorted, unique). */
  helpers: number[];
  /** Extern symbols the program reaches that could not be resolved (`__ksym` variables, kfuncs, unknown `__kconfig`s), with why. */
  unresolvedExterns?: { name: string; reason: string }[];
  /** Map indices referenced. */
  maps: number[];
}

export interface UnsupportedProgram {
  name: string;
  section: string;
  reason: string;
}

export interface ObjectSpec {
  /** Path as given by the user. */
  path: string;
  license: string;
  kernelVersion: number;
  programs: ProgramSpec[];
  maps: MapSpec[];
  unsupported: UnsupportedProgram[];
  btf: BtfSpec | null;
}

/**
 * lddw pseudo source values as the loader emits them (same numbers as the kernel's).
 * The agent rewrites them to plain imm64 before the VM sees the program.
 *  - MAP_FD: imm = map index; the VM value is the map's handle.
 *  - MAP_VALUE: imm = map index, imm of the second half = byte offset into the value.
 *  - FUNC: imm = instruction offset of a subprogram relative to the next instruction (bpf_loop callbacks).
 */
export const PSEUDO_MAP_FD = 1;
export const PSEUDO_MAP_VALUE = 2;
export const PSEUDO_FUNC = 4;
