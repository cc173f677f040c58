// Not part of the agent bundle: test/e2e/syscall*.test.ts compile it as its own entry.
// Test-only agent: drives SyscallAttachImpl with fake runtime services (a plain buffer as
// the context area, JS callbacks instead of eBPF programs) so the Stalker mechanics can
// be tested on real victims independently of the runtime and the VM.

import { SyscallAttachImpl } from './SyscallAttachImpl.js';
import { syscallName } from '../../../protocol/syscalls.js';
import type { HitInfo } from '../../runtime/AttachImpl.js';

interface Probe {
  phase: 'enter' | 'exit';
  syscall: string;
  /** openat enters with this path are made to return `errno` negated. */
  denyPath?: string;
  errno?: number;
  /** Write the stats so far to this file when the probe fires (for exit_group: proves it ran before the end). */
  markerFile?: string;
}

const ctxBuf = new ArrayBuffer(256);
const ctx = new DataView(ctxBuf);
const logs: string[] = [];
const impl = new SyscallAttachImpl();
const ctxNative = Memory.alloc(8);
impl.init({ ctxAddr: 0, ctxView: () => ctx, ctxPtr: () => ctxNative, nativeRunner: () => null, log: (level, text) => logs.push(`${level}: ${text}`) });

/** key: `${phase}:${name}` → count; per-phase extras below. */
let counts: Record<string, number> = {};
let openPaths: Record<string, number> = {};
let writeLens: Record<string, number> = {};
let rets: Record<string, Record<string, number>> = {};
let tids: Record<string, number> = {};
const ids: number[] = [];

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

function onHit(p: Probe, hit: HitInfo): boolean {
  const nr = Number(ctx.getBigInt64(8, true));
  const name = syscallName(nr);
  const pid = ctx.getInt32(4, true);
  if (pid !== hit.tid) bump(counts, 'bad-pid');
  bump(counts, `${p.phase}:${name}`);
  bump(tids, String(hit.tid));
  if (p.phase === 'enter') {
    if (hit.ctxLen !== 64) bump(counts, 'bad-len');
    if (name === 'openat') {
      const path = ptr(ctx.getBigUint64(24, true).toString()).readUtf8String() ?? '';
      bump(openPaths, path);
      if (p.denyPath !== undefined && path === p.denyPath) hit.override!(BigInt(-(p.errno ?? 13)));
    }
    if (name === 'write') bump(writeLens, String(ctx.getBigUint64(32, true)));
    // Synchronous, from inside the hit: for exit_group this is the last moment to report.
    if (p.markerFile) File.writeAllText(p.markerFile, JSON.stringify({ at: name, tid: hit.tid, ...stats() }));
  } else {
    if (hit.ctxLen !== 24) bump(counts, 'bad-len');
    const r = ctx.getBigInt64(16, true);
    rets[name] ??= {};
    bump(rets[name], r.toString());
  }
  return true;
}

function stats() {
  return { counts, openPaths, writeLens, rets, tids, logs, followed: impl.followedThreads() };
}

rpc.exports = {
  threads() {
    return { current: Process.getCurrentThreadId(), mainStat: File.readAllText(`/proc/self/task/${Process.id}/stat`), threads: Process.enumerateThreads().map((t) => ({ id: t.id, name: t.name ?? '' })) };
  },
  start(probes: Probe[], mechanism: 'stalker' | 'rewrite' = 'stalker') {
    impl.setMechanism(mechanism);
    for (const p of probes) {
      const data = impl.createPrivateData({ kind: 'syscall', phase: p.phase, syscall: p.syscall });
      ids.push(impl.createAttach((hit) => onHit(p, hit), data, 'syscall_tracepoint'));
    }
    return { followed: impl.followedThreads(), ids, describe: impl.describeAttach(ids[0]), coverage: impl.rewriteCoverage() };
  },
  stats,
  reset() {
    counts = {};
    openPaths = {};
    writeLens = {};
    rets = {};
    tids = {};
  },
  stop() {
    for (const id of ids.splice(0)) impl.detachById(id);
    return { followed: impl.followedThreads() };
  },
};
