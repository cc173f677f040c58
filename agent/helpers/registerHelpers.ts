// The helpers this runtime implements, registered on the VM by kernel id. The runtime
// checks a program's helper ids against SUPPORTED_HELPERS at load, so a program calling
// anything else is refused with the helper's name instead of faulting mid-run.
// bpf_loop (181) is listed but not registered: the VM implements it as an intrinsic
// (PSEUDO_FUNC callbacks run inside the interpreter), see vm/README.md.

import { eventHelpers } from './eventHelpers.js';
import type { HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { mapHelpers } from './mapHelpers.js';
import { printHelpers } from './printHelpers.js';
import { probeHelpers } from './probeHelpers.js';
import { taskHelpers } from './taskHelpers.js';

/** Kernel helper id → name (enum bpf_func_id, without the bpf_ prefix) for every helper we implement. */
export const SUPPORTED_HELPERS: ReadonlyMap<number, string> = new Map<number, string>([
  [1, 'map_lookup_elem'],
  [2, 'map_update_elem'],
  [3, 'map_delete_elem'],
  [4, 'probe_read'],
  [5, 'ktime_get_ns'],
  [6, 'trace_printk'],
  [7, 'get_prandom_u32'],
  [8, 'get_smp_processor_id'],
  [12, 'tail_call'],
  [14, 'get_current_pid_tgid'],
  [15, 'get_current_uid_gid'],
  [16, 'get_current_comm'],
  [25, 'perf_event_output'],
  [45, 'probe_read_str'],
  [58, 'override_return'],
  [112, 'probe_read_user'],
  [113, 'probe_read_kernel'],
  [114, 'probe_read_user_str'],
  [115, 'probe_read_kernel_str'],
  [125, 'ktime_get_boot_ns'],
  [130, 'ringbuf_output'],
  [131, 'ringbuf_reserve'],
  [132, 'ringbuf_submit'],
  [133, 'ringbuf_discard'],
  [134, 'ringbuf_query'],
  [165, 'snprintf'],
  [173, 'get_func_ip'],
  [174, 'get_attach_cookie'],
  [177, 'trace_vprintk'],
  [181, 'loop'],
  [182, 'strncmp'],
]);

export function helperDefs(env: HelperEnv): HelperDef[] {
  return [...mapHelpers(env), ...probeHelpers(env), ...printHelpers(env), ...eventHelpers(env), ...taskHelpers(env)];
}

/** Registers every supported helper on env.vm. Call once per VM, after the maps exist or not: maps are found per call. */
export function registerHelpers(env: HelperEnv): void {
  for (const d of helperDefs(env)) {
    if (!SUPPORTED_HELPERS.has(d.id)) throw new Error(`helper ${d.id} is implemented but missing from SUPPORTED_HELPERS`);
    env.vm.registerHelper(d.id, d.fn);
  }
}
