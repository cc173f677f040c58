// push/pop/peek, get_stackid and get_stack run by real eBPF programs on the wasm VM, with
// a fake target address space holding a frame-pointer chain.
import { registerHelpers, SUPPORTED_HELPERS, helperDefs } from '../../agent/helpers/registerHelpers';
import { walkUserStack, PT_REGS_BP, PT_REGS_IP, PT_REGS_SP } from '../../agent/helpers/userStack';
import type { StackTraceMap } from '../../agent/maps/StackTraceMap';
import { SUPPORTED_HELPER_IDS } from '../../protocol/helperSupport';
import { assemble } from '../../vm/ts/asm';
import { fakeEnv, FakeTarget, type FakeEnv } from '../support/fakeEnv';
import { ownedRw } from '../support/vmRegions';

const u64 = (v: bigint | number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(v)]).buffer);
const h = (v: bigint | number): string => '0x' + v.toString(16);

function harness(env: FakeEnv = fakeEnv()) {
  registerHelpers(env);
  const ctx = env.vm.allocRw(256);
  env.run.ctxAddr = ctx;
  env.run.ctxLen = 168;
  return {
    env,
    ctx,
    run: (text: string): bigint => BigInt.asIntN(64, env.vm.run(env.vm.load(assemble(text)), ctx, 168)),
  };
}

test('every supported helper id is registered (or is the bpf_loop intrinsic), and only those', () => {
  const ids = helperDefs(fakeEnv()).map((d) => d.id).sort((a, b) => a - b);
  expect(ids).toEqual(SUPPORTED_HELPER_IDS.filter((id) => id !== 181));
  expect([...SUPPORTED_HELPERS.keys()]).toEqual([...SUPPORTED_HELPER_IDS]);
});

describe('push / pop / peek', () => {
  test('a queue filled and drained by programs', () => {
    const t = harness();
    const q = t.env.addMap({ type: 'queue', keySize: 0, valueSize: 8, maxEntries: 2 });
    const push = (v: number, flags = 0) => t.run(`stdw [%r10-8], ${v}\nlddw %r1, ${h(q.handle)}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, ${flags}\ncall 87\nexit`);
    const take = (id: 88 | 89) => t.run(`stdw [%r10-8], -1\nlddw %r1, ${h(q.handle)}\nmov %r2, %r10\nadd %r2, -8\ncall ${id}\njne %r0, 0, out\nldxdw %r0, [%r10-8]\nout:\nexit`);
    expect(push(1)).toBe(0n);
    expect(push(2)).toBe(0n);
    expect(push(3)).toBe(-7n); // -E2BIG
    expect(push(3, 2)).toBe(0n); // BPF_EXIST: 1 goes
    expect(take(89)).toBe(2n);
    expect(take(88)).toBe(2n);
    expect(take(88)).toBe(3n);
    expect(take(88)).toBe(-2n);
    // The generic helpers do not apply to a queue (the verifier would refuse them).
    expect(t.run(`lddw %r1, ${h(q.handle)}\nmov %r2, %r10\nadd %r2, -8\ncall 1\nexit`)).toBe(0n);
    // A value pointer outside the program's memory is -EFAULT, not a fault.
    expect(t.run(`lddw %r1, ${h(q.handle)}\nmov %r2, 16\ncall 88\nexit`)).toBe(-14n);
  });

  test('a bloom filter: push, then peek says maybe (0) or no (-ENOENT); pop is -EOPNOTSUPP', () => {
    const t = harness();
    const b = t.env.addMap({ type: 'bloom_filter', keySize: 0, valueSize: 8, maxEntries: 64 });
    const call = (id: number, v: number) => t.run(`stdw [%r10-8], ${v}\nlddw %r1, ${h(b.handle)}\nmov %r2, %r10\nadd %r2, -8\nmov %r3, 0\ncall ${id}\nexit`);
    expect(call(87, 1234)).toBe(0n);
    expect(call(89, 1234)).toBe(0n);
    expect(call(89, 4321)).toBe(-2n);
    expect(call(88, 1234)).toBe(-95n);
  });
});

test('bpftime-style generic helpers on a bloom filter: lookup tests, update adds', () => {
  const t = harness();
  const b = t.env.addMap({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 64 });
  const lookup = (v: number) => t.run(`stw [%r10-4], ${v}\nlddw %r1, ${h(b.handle)}\nmov %r2, %r10\nadd %r2, -4\ncall 1\njeq %r0, 0, out\nmov %r0, 1\nout:\nexit`);
  const update = (v: number) => t.run(`stw [%r10-4], ${v}\nstw [%r10-8], 1\nlddw %r1, ${h(b.handle)}\nmov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 0\ncall 2\nexit`);
  expect(lookup(7)).toBe(0n);
  expect(update(7)).toBe(0n);
  expect(lookup(7)).toBe(1n);
  expect(lookup(8)).toBe(0n);
});

describe('user stacks', () => {
  // A fake stack: main → mid → leaf, frame pointers chained, probed at leaf's first instruction.
  const SP = 0x7ff000n;
  function stackTarget(): FakeTarget {
    const t = new FakeTarget();
    const mem = new Uint8Array(0x200);
    const put = (addr: bigint, v: bigint) => mem.set(u64(v), Number(addr - SP));
    put(SP, 0x401111n); // [rsp] at entry: return into mid
    put(SP + 0x20n, SP + 0x60n); // mid's frame: saved rbp → main's frame
    put(SP + 0x28n, 0x402222n); // return into main
    put(SP + 0x60n, 0n); // main's frame: end of chain
    put(SP + 0x68n, 0x403333n); // return into __libc_start_call_main
    t.map(SP, mem);
    return t;
  }
  const regs = { ip: 0x400500n, sp: SP, bp: SP + 0x20n };

  test('frame-pointer walk, with the caller taken from [rsp] at a function entry', () => {
    expect(walkUserStack(stackTarget(), regs, true, 127)).toEqual([0x400500n, 0x401111n, 0x402222n, 0x403333n]);
    expect(walkUserStack(stackTarget(), regs, false, 127)).toEqual([0x400500n, 0x402222n, 0x403333n]);
    expect(walkUserStack(stackTarget(), regs, true, 2)).toEqual([0x400500n, 0x401111n]);
    // A garbage frame pointer (below rsp, unaligned, unreadable) ends the walk, never faults.
    expect(walkUserStack(stackTarget(), { ...regs, bp: 5n }, false, 127)).toEqual([0x400500n]);
    expect(walkUserStack(stackTarget(), { ...regs, bp: SP + 0x1000n }, false, 127)).toEqual([0x400500n]);
  });

  function withPtRegs(env: FakeEnv, ctx: number): void {
    const w = (off: number, v: bigint) => env.vm.write(ctx + off, u64(v));
    w(PT_REGS_IP, regs.ip);
    w(PT_REGS_SP, regs.sp);
    w(PT_REGS_BP, regs.bp);
  }

  test('bpf_get_stackid: user stacks only, skip frames, same stack same id', () => {
    const env = fakeEnv({ run: { ctxIsPtRegs: true, atFunctionEntry: true } });
    env.target.regions.push(...stackTarget().regions);
    const t = harness(env);
    withPtRegs(env, t.ctx);
    const sm = env.addMap({ type: 'stack_trace', keySize: 4, valueSize: 8 * 8, maxEntries: 16 }) as StackTraceMap;
    const stackid = (flags: number) => t.run(`lddw %r2, ${h(sm.handle)}\nlddw %r3, ${h(flags)}\ncall 27\nexit`);
    const id = stackid(0x100);
    expect(id).toBeGreaterThanOrEqual(0n);
    expect(sm.stack(Number(id))).toEqual([0x400500n, 0x401111n, 0x402222n, 0x403333n]);
    expect(stackid(0x100)).toBe(id);
    const skipped = stackid(0x101);
    expect(sm.stack(Number(skipped))).toEqual([0x401111n, 0x402222n, 0x403333n]);
    expect(stackid(0)).toBe(-14n); // no kernel stack here
    expect(stackid(1 << 12)).toBe(-22n);
    env.run.ctxIsPtRegs = false; // a hook without pt_regs and without registers: nothing to walk
    expect(stackid(0x100)).toBe(-14n);
    // A syscall tracepoint hands the registers it took at the `syscall` instruction.
    env.run.atFunctionEntry = false;
    env.run.userRegs = () => regs;
    expect(sm.stack(Number(stackid(0x100)))).toEqual([0x400500n, 0x402222n, 0x403333n]);
  });

  test('bpf_get_stack: bytes written, the rest of the buffer zeroed; errors clear it', () => {
    const env = fakeEnv({ run: { ctxIsPtRegs: true, atFunctionEntry: false } });
    env.target.regions.push(...stackTarget().regions);
    const t = harness(env);
    withPtRegs(env, t.ctx);
    const buf = ownedRw(env.vm, 64);
    env.vm.write(buf, new Uint8Array(64).fill(0xee));
    const get = (size: number, flags: number) => t.run(`lddw %r2, ${h(buf)}\nmov %r3, ${size}\nlddw %r4, ${h(flags)}\ncall 67\nexit`);
    expect(get(64, 0x100)).toBe(24n);
    const out = env.vm.read(buf, 64);
    const view = new DataView(out.buffer, out.byteOffset);
    expect([0, 8, 16, 24].map((o) => view.getBigUint64(o, true))).toEqual([0x400500n, 0x402222n, 0x403333n, 0n]);
    expect(get(16, 0x100)).toBe(16n);
    env.vm.write(buf, new Uint8Array(64).fill(0xee));
    expect(get(12, 0x100)).toBe(-22n);
    expect(env.vm.read(buf, 12).every((b) => b === 0)).toBe(true);
    expect(get(64, 0)).toBe(-14n);
    expect(get(64, 0x100 | (1 << 11))).toBe(-22n); // build ids
  });
});

