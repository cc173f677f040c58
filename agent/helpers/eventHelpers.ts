// Helpers that send records to the host: bpf_perf_event_output and the bpf_ringbuf_*
// family. A record becomes a {type:'record'} event at once; when the event queue is full
// the record is dropped, counted on its map, and the program sees -ENOSPC (output) or the
// submission silently lost (submit returns void in the kernel too).

import type { AgentEvent } from '../../protocol/messages.js';
import { encodeBase64 } from '../base64.js';
import { PerfEventArrayMap } from '../maps/PerfEventArrayMap.js';
import { BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, RingBufMap } from '../maps/RingBufMap.js';
import type { RecordMap } from '../maps/RecordMap.js';
import { EAGAIN, EFAULT, EINVAL, ENOSPC } from './errno.js';
import { sizeArg, type HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { helperId } from '../../protocol/helperTable.js';

const WAKEUP_FLAGS = BigInt(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP);

export function eventHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;
  /** Rings that handed out reservations: submit/discard get only the record pointer. */
  const rings: RingBufMap[] = [];

  /** Queues a record for the host, counted on its map either way (queued, or dropped). */
  const send = (map: RecordMap, cpu: number, data: Uint8Array): boolean => {
    const ev: AgentEvent = { type: 'record', object: env.run.object, map: map.spec.index, cpu, data: encodeBase64(data), timeMs: Date.now() };
    if (env.events.push(ev)) {
      map.queued++;
      return true;
    }
    map.drops++;
    return false;
  };
  const ring = (h: bigint): RingBufMap | undefined => {
    const m = env.mapByHandle(h);
    return m instanceof RingBufMap ? m : undefined;
  };
  const commit = (addr: bigint, discard: boolean): number => {
    const a = Number(addr);
    for (let i = 0; i < rings.length; i++) {
      const r = rings[i];
      if (!r.owns(a)) continue;
      const data = r.commit(a, discard);
      if (data !== null) send(r, env.run.cpu, data);
      return 0;
    }
    return 0;
  };

  return [
    {
      id: helperId('perf_event_output'), // perf_event_output(ctx, map, flags, data, size)
      fn: (_ctx, m, flags, data, size) => {
        const map = env.mapByHandle(m);
        if (!(map instanceof PerfEventArrayMap)) return -EINVAL;
        const cpu = map.cpuFor(flags, env.run.cpu);
        if (cpu < 0) return cpu;
        const n = sizeArg(size);
        if (n < 0) return -EINVAL;
        if (!vm.isAccessible(data, n, false)) return -EFAULT;
        const a = Number(data);
        return send(map, cpu, vm.memory().slice(a, a + n)) ? 0 : -ENOSPC;
      },
    },
    {
      id: helperId('ringbuf_output'), // ringbuf_output(ringbuf, data, size, flags)
      fn: (m, data, size, flags) => {
        const r = ring(m);
        if (r === undefined || (flags & ~WAKEUP_FLAGS) !== 0n) return -EINVAL;
        const n = sizeArg(size);
        if (n < 0) return -EINVAL;
        if (!vm.isAccessible(data, n, false)) return -EFAULT;
        if (!r.accept(n)) return -EAGAIN;
        const a = Number(data);
        return send(r, env.run.cpu, vm.memory().slice(a, a + n)) ? 0 : -ENOSPC;
      },
    },
    {
      id: helperId('ringbuf_reserve'), // ringbuf_reserve(ringbuf, size, flags) → pointer or NULL
      fn: (m, size, flags) => {
        const r = ring(m);
        const n = sizeArg(size);
        if (r === undefined || flags !== 0n || n < 0) return 0;
        if (rings.indexOf(r) < 0) rings.push(r);
        return r.reserve(n);
      },
    },
    { id: helperId('ringbuf_submit'), fn: (data) => commit(data, false) }, // ringbuf_submit(data, flags)
    { id: helperId('ringbuf_discard'), fn: (data) => commit(data, true) }, // ringbuf_discard(data, flags)
    {
      id: helperId('ringbuf_query'), // ringbuf_query(ringbuf, flags)
      fn: (m, flags) => {
        const r = ring(m);
        return r === undefined || flags > 3n ? 0 : r.query(Number(flags));
      },
    },
  ];
}
