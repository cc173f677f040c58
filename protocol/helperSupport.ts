// The kernel helper ids bpftime-ts provides: the agent registers exactly these
// (agent/helpers/registerHelpers.ts checks it) and the host refuses a program calling any
// other before anything is spawned (host/loader/refusals.ts), so both read this one list.
// bpf_loop (181) is an interpreter intrinsic, not a registered helper (vm/README.md).
// The list is the helper table's (protocol/helperTable.ts).

import { HELPERS } from './helperTable.js';

export const SUPPORTED_HELPER_IDS: readonly number[] = HELPERS.map((h) => h.id);

const SUPPORTED = new Set(SUPPORTED_HELPER_IDS);

export function isSupportedHelper(id: number): boolean {
  return SUPPORTED.has(id);
}
