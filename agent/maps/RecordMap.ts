// Base of the maps that carry records to the host rather than keys and values (ring
// buffers, perf event arrays): the key/value API has nothing to offer there, as in the
// kernel (-ENOTSUPP, no value pointers, nothing to dump).

import type { MapSpec } from '../../protocol/spec.js';
import { ENOTSUPP, type BpfMap } from './BpfMap.js';

export abstract class RecordMap implements BpfMap {
  /** Records lost (no room, or the host-bound queue was full). */
  drops = 0;
  /** Records handed to the host-bound queue; produced = queued + drops, delivered = what the host counted. */
  queued = 0;

  constructor(
    readonly spec: MapSpec,
    readonly handle: bigint,
  ) {}

  lookupAddr(_key: Uint8Array, _cpu: number): number {
    return 0;
  }

  update(_key: Uint8Array, _value: Uint8Array, _flags: number, _cpu: number | 'all'): number {
    return -ENOTSUPP;
  }

  delete(_key: Uint8Array): number {
    return -ENOTSUPP;
  }

  lookup(_key: Uint8Array): null {
    return null;
  }

  entries(): { key: Uint8Array; value: Uint8Array }[] {
    return [];
  }
}
