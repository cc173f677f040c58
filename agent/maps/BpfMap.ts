// The map interface every map type implements. Values live in the VM's read-write arena
// so a program can use the pointer bpf_map_lookup_elem returns; keys are compared as
// bytes. Results follow the kernel: 0 or a negative errno.

import type { MapSpec } from '../../protocol/spec.js';
import type { VmRegion } from '../../vm/ts/vm.js';

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

export const ENOENT = 2;
export const E2BIG = 7;
export const ENOMEM = 12;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOTSUPP = 524;

export interface BpfMap {
  readonly spec: MapSpec;
  /** The value programs receive for this map from lddw (PSEUDO_MAP_FD). */
  readonly handle: bigint;

  /** VM address of the value for `key` (this CPU's slot for per-CPU maps), or 0. */
  lookupAddr(key: Uint8Array, cpu: number): number;
  /** Program-side and host-side update; per-CPU maps: host writes all CPUs, programs their own. */
  update(key: Uint8Array, value: Uint8Array, flags: number, cpu: number | 'all'): number;
  delete(key: Uint8Array): number;

  /** Host side: the value (one per CPU for per-CPU maps), or null. */
  lookup(key: Uint8Array): Uint8Array | Uint8Array[] | null;
  /** Host side: every entry, in a stable order. */
  entries(): { key: Uint8Array; value: Uint8Array | Uint8Array[] }[];

  /** lookupAddr with the key read in place from `mem` at `off` (the helper fast path: no key view allocated). */
  lookupAddrAt?(mem: Uint8Array, off: number, cpu: number): number;

  /** Per-run reset (ring buffers rewind their reservation area); the runtime calls it before each run. */
  beginRun?(): void;

  /** The VM memory programs may reach through this map (absent: none; see regions.ts). */
  valueRegion?(): VmRegion;
}
