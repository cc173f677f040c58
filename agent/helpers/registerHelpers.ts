// The helpers this runtime implements, registered on the VM by kernel id. The runtime
// checks a program's helper ids against SUPPORTED_HELPERS at load, so a program calling
// anything else is refused with the helper's name instead of faulting mid-run.
// bpf_loop (181) is listed but not registered: the VM implements it as an intrinsic
// (PSEUDO_FUNC callbacks run inside the interpreter), see vm/README.md.

import { SUPPORTED_HELPER_IDS } from '../../protocol/helperSupport.js';
import { helperName } from '../../protocol/helperNames.js';
import { eventHelpers } from './eventHelpers.js';
import type { HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { mapHelpers } from './mapHelpers.js';
import { printHelpers } from './printHelpers.js';
import { probeHelpers } from './probeHelpers.js';
import { queueHelpers } from './queueHelpers.js';
import { stackHelpers } from './stackHelpers.js';
import { taskHelpers } from './taskHelpers.js';

/** Kernel helper id → name (enum bpf_func_id, without the bpf_ prefix) for every helper we implement. */
export const SUPPORTED_HELPERS: ReadonlyMap<number, string> = new Map(SUPPORTED_HELPER_IDS.map((id) => [id, helperName(id)]));

export function helperDefs(env: HelperEnv): HelperDef[] {
  return [...mapHelpers(env), ...queueHelpers(env), ...stackHelpers(env), ...probeHelpers(env), ...printHelpers(env), ...eventHelpers(env), ...taskHelpers(env)];
}

/** Registers every supported helper on env.vm. Call once per VM, after the maps exist or not: maps are found per call. */
export function registerHelpers(env: HelperEnv): void {
  for (const d of helperDefs(env)) {
    if (!SUPPORTED_HELPERS.has(d.id)) throw new Error(`helper ${d.id} is implemented but missing from SUPPORTED_HELPERS`);
    env.vm.registerHelper(d.id, d.fn);
  }
}
