// What helper implementations may use. The agent supplies a Frida-backed environment;
// unit tests supply one over plain memory, so helper logic is testable in Node with the
// real wasm VM.

import type { BpfVm } from '../../vm/ts/vm.js';
import type { EventQueue } from '../events.js';
import type { BpfMap } from '../maps/BpfMap.js';
import type { RunContext } from '../runtime/RunContext.js';

export interface TargetMemory {
  /** Bytes of the target's memory, or null when any of them is unreadable (never throws). */
  read(addr: bigint, len: number): Uint8Array | null;
  /** A NUL-terminated string of at most `max` bytes including the NUL, or null when unreadable. */
  readCString(addr: bigint, max: number): Uint8Array | null;
}

export interface HelperEnv {
  vm: BpfVm;
  memory: TargetMemory;
  events: EventQueue;
  /** The run in progress (valid only while a helper runs). */
  run: RunContext;
  /** Map by the handle programs got from lddw (PSEUDO_MAP_FD). */
  mapByHandle(handle: bigint): BpfMap | undefined;
  /** VM program handle for a prog_array slot's program, for bpf_tail_call. */
  programHandleForTailCall(map: BpfMap, index: number): number | undefined;
  /** CLOCK_MONOTONIC and CLOCK_BOOTTIME in ns. */
  monotonicNs(): bigint;
  boottimeNs(): bigint;
  pid(): number;
  uid(): number;
  gid(): number;
  /** The thread's comm (16 bytes max, NUL padded by the helper). */
  comm(): string;
  /** Number of possible CPUs (per-CPU maps have one slot each). */
  cpuCount(): number;
}
