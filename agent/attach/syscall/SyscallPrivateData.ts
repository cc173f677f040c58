import type { AttachSpec } from '../../../protocol/spec.js';
import { AttachError, type AttachPrivateData } from '../../runtime/AttachImpl.js';
import { syscallByName } from '../../../protocol/syscalls.js';

/**
 * A syscall tracepoint's attach point: enter or exit, and one syscall number or all of
 * them (raw_syscalls), after bpftime's syscall_trace_attach_private_data.
 */
export class SyscallPrivateData implements AttachPrivateData {
  readonly description: string;

  constructor(
    readonly phase: 'enter' | 'exit',
    /** x86-64 syscall number; null for raw_syscalls (every syscall). */
    readonly nr: number | null,
    name: string,
  ) {
    this.description = nr === null ? `raw_syscalls:sys_${phase}` : `syscalls:sys_${phase}_${name}`;
  }

  static fromSpec(spec: AttachSpec): SyscallPrivateData {
    if (spec.kind !== 'syscall') throw new AttachError(`not a syscall tracepoint: ${JSON.stringify(spec)}`);
    if (spec.phase !== 'enter' && spec.phase !== 'exit') throw new AttachError(`syscall phase must be enter or exit, not ${String(spec.phase)}`);
    if (spec.syscall === '*') return new SyscallPrivateData(spec.phase, null, '*');
    // The host refused unknown names already; either spelling (stat / newstat) is accepted,
    // and the description uses the kernel's tracepoint name.
    const info = syscallByName(spec.syscall);
    if (info === undefined) throw new AttachError(`unknown x86-64 syscall ${spec.syscall} (tracepoint syscalls/sys_${spec.phase}_${spec.syscall})`);
    return new SyscallPrivateData(spec.phase, info.nr, info.tracepoint ?? info.name);
  }
}
