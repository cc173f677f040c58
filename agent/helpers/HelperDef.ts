// A helper implementation tagged with its kernel id, as the helper groups hand them to
// registerHelpers.
import type { Helper } from '../../vm/ts/vm.js';

export interface HelperDef {
  id: number;
  fn: Helper;
}

/** Pointer/size arguments arrive as unsigned 64-bit; sizes beyond this are program bugs. */
export const MAX_HELPER_SIZE = 1 << 30;

/** A u32-or-smaller size argument as a number, or -1 when it cannot be one. */
export function sizeArg(v: bigint): number {
  return v <= BigInt(MAX_HELPER_SIZE) ? Number(v) : -1;
}
