// The kernel helper ids bpftime-ts provides: the agent registers exactly these
// (agent/helpers/registerHelpers.ts checks it) and the host refuses a program calling any
// other before anything is spawned (host/loader/refusals.ts), so both read this one list.
// bpf_loop (181) is an interpreter intrinsic, not a registered helper (vm/README.md).

export const SUPPORTED_HELPER_IDS: readonly number[] = [
  1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15, 16, 25, 27, 45, 58, 67, 87, 88, 89, 112, 113, 114, 115, 125, 130, 131, 132, 133, 134, 165, 173,
  174, 177, 181, 182,
];

const SUPPORTED = new Set(SUPPORTED_HELPER_IDS);

export function isSupportedHelper(id: number): boolean {
  return SUPPORTED.has(id);
}
