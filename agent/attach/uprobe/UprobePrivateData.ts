import type { HookTarget } from '../../../protocol/messages.js';
import type { AttachSpec } from '../../../protocol/spec.js';
import { AttachError, type AttachPrivateData } from '../../runtime/AttachImpl.js';
import { describeTarget } from './resolveTarget.js';

/** A uprobe's attach point: module (path or name) + symbol, or + file offset, or an absolute address. */
export class UprobePrivateData implements AttachPrivateData {
  readonly description: string;

  /** Hook with a 1-byte breakpoint (USDT sites, see trapSites.ts). */
  trap = false;
  /** A USDT semaphore to raise while attached: offset from the module's load base. */
  semaphoreOffset: number | undefined;

  constructor(readonly target: HookTarget) {
    this.description = describeTarget(target);
  }

  static fromSpec(spec: AttachSpec): UprobePrivateData {
    if (spec.kind !== 'uprobe') throw new AttachError(`not a uprobe attach point: ${JSON.stringify(spec)}`);
    if (spec.address !== undefined) return new UprobePrivateData({ address: spec.address });
    if (spec.symbol === undefined && spec.offset === undefined) {
      throw new AttachError('a uprobe needs a symbol, an offset or an address');
    }
    const t: HookTarget = {};
    if (spec.binary !== undefined) t.module = spec.binary;
    if (spec.symbol !== undefined) t.symbol = spec.symbol;
    if (spec.offset !== undefined) t.offset = spec.offset;
    const d = new UprobePrivateData(t);
    d.trap = spec.trap === true;
    d.semaphoreOffset = spec.semaphoreOffset;
    return d;
  }
}
