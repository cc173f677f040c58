// UPROBE, URETPROBE and UPROBE_OVERRIDE on the inline hook engine (agent/hooks): the
// program runs from the probe's immortal stub, natively through the VM library when it
// needs no JS, else through a JS callback the stub calls only while the probe is active.
// What the engine cannot place (PlacementError other than a bad offset) falls back to
// Frida's Interceptor in the caller.

import type { AttachServices, EbpfRunCallback } from '../../runtime/AttachImpl.js';
import { InlineProbe, type InlineKind, type ProbeRunner } from '../../hooks/inlineProbe.js';
import { forkGuard } from '../../forkGuard.js';
import { hotCallback } from '../../hotCallback.js';
import { PT_REGS_SIZE } from './ptRegs.js';
import { ensureUnwindGuard } from '../../hooks/unwindGuard.js';

/** pt_regs.ax, where an override's value goes. */
const PT_AX = 80;

/** Callbacks the stubs may call (JS path, fault reports): kept for the agent's lifetime. */
const keep: NativeCallback<'int', ['pointer', 'pointer']>[] = [];
let faultCallback: NativeCallback<'void', ['uint', 'int']> | null = null;
let faultTarget: AttachServices | null = null;

function faultFn(services: AttachServices): NativePointer {
  faultTarget = services;
  faultCallback ??= new NativeCallback((handle: number, status: number) => faultTarget?.nativeRunner()?.fault(handle, status), 'void', ['uint', 'int']);
  return faultCallback;
}

export function kindOf(type: string): InlineKind {
  return type === 'uprobe' ? 'entry' : type === 'uretprobe' ? 'return' : 'override';
}

/** Hooks `addr` inline for `cb`; throws PlacementError (the caller decides whether to fall back). */
export function attachInline(addr: NativePointer, kind: InlineKind, cb: EbpfRunCallback, services: AttachServices, describe: string, boundaryCheck: boolean): InlineProbe {
  const nr = services.nativeRunner();
  const nativeOk = cb.nativeHandle !== undefined && nr !== null && (kind === 'override' || !cb.nativeOverride);
  let runner: ProbeRunner;
  if (nativeOk) {
    runner = { native: true, run: nr.run, runOverride: nr.runWithOverride, ctxAddr: nr.ctxAddr, enabled: nr.enabled, handle: cb.nativeHandle!, fault: faultFn(services) };
  } else {
    const funcIp = BigInt(addr.toString());
    // Through a gate: a plain NativeCallback called from the stub leaks in Frida's V8 (hotCallback.ts).
    const js = hotCallback(
      (_probe: NativePointer, regs: NativePointer): number => {
        const dst = services.ctxPtr();
        if (dst === null) return 0;
        Memory.copy(dst, regs, PT_REGS_SIZE);
        let value: bigint | null = null;
        const override = kind === 'override' ? (v: bigint) => void (value = v) : null;
        cb({ ctxLen: PT_REGS_SIZE, tid: Process.getCurrentThreadId(), funcIp, override });
        if (value === null) return 0;
        regs.add(PT_AX).writeU64(uint64(BigInt.asUintN(64, value).toString()));
        return 1;
      },
      'int',
      ['pointer', 'pointer'],
    );
    keep.push(js);
    runner = { native: false, js };
  }
  // Before the first hijack: an exception or a cancel through a hijacked frame would kill the target.
  if (kind === 'return') ensureUnwindGuard((what) => services.log('warn', what));
  return InlineProbe.attach(addr, { kind, runner, forkState: forkGuard().state, describe }, boundaryCheck);
}
