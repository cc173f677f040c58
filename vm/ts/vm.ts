// TypeScript wrapper around the wasm build of the eBPF VM (vm/src/, see vm/README.md).
// Runs in Node on the host and inside the Frida agent, so it uses only WebAssembly and typed
// arrays: no Node modules, no Buffer, no TextDecoder.

import { toWasmModule, type WasmModule } from './wasmApi.js';
import { wasmCore } from './wasmCore.js';

export type { WasmModule } from './wasmApi.js';

/** A helper receives r1..r5 as unsigned 64-bit values and returns r0. Only as many arguments
 * as the function declares (fn.length) are converted when that is 1 or 2, so do not give
 * helper parameters default values. */
export type Helper = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint | number;

export class VmLoadError extends Error {
  readonly pc: number;
  readonly reason: string;
  constructor(pc: number, reason: string) {
    super(`pc ${pc}: ${reason}`);
    this.name = 'VmLoadError';
    this.pc = pc;
    this.reason = reason;
  }
}

export type VmFaultKind = 'memory' | 'budget' | 'helper' | 'stack' | 'tail_call';

export class VmFault extends Error {
  readonly pc: number;
  readonly addr?: bigint;
  readonly kind: VmFaultKind;
  constructor(kind: VmFaultKind, pc: number, message: string, addr?: bigint, cause?: unknown) {
    super(message);
    this.name = 'VmFault';
    this.kind = kind;
    this.pc = pc;
    if (addr !== undefined) this.addr = addr;
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

export interface VmOptions {
  rwArenaBytes?: number;
  roArenaBytes?: number;
  budget?: number;
}

/**
 * Memory a program may reach besides its stack and context: a map's values ('values': the
 * program gets element pointers from lookups or lddw and may touch valueSize bytes of each
 * element base + k * stride), a ring buffer ('ringbuf': only records it reserved) or a map
 * with no program-visible memory ('handle': the program may only name it to helpers).
 */
export interface VmRegion {
  name: string;
  kind: 'values' | 'ringbuf' | 'handle';
  handle: bigint;
  base: number;
  size: number;
  stride: number;
  valueSize: number;
  readOnly?: boolean;
}

export interface LoadOptions {
  name?: string;
  resolvePseudo?: (src: number, imm: number, nextImm: number, pc: number) => bigint;
  /** What the program owns besides its stack and context; default: every region defined on this VM. */
  regions?: readonly VmRegion[];
  /** The context's size when known at load (constant offsets past it are rejected). */
  ctxSize?: number;
  /** Stores into the context are rejected (pt_regs and tracepoint records are read-only in the kernel). */
  ctxReadOnly?: boolean;
}

/** Bytes of one bpfvm_region_t (vm/src/bpfvm.h). */
export const REGION_BYTES = 32;
const REGION_FLAGS = { readOnly: 1, values: 2, ringbuf: 4 } as const;
/** enum bpfvm_check (vm/src/bpfvm_internal.h): which run-time check failed. */
const CHECK_NULL = 1, CHECK_STACK = 2, CHECK_CTX = 3, CHECK_ELEM = 4, CHECK_OWNED = 5, CHECK_RECORD = 7;

/** The regions as the C struct array bpfvm_set_load_env takes. */
export function encodeRegions(regions: readonly VmRegion[]): Uint8Array {
  const out = new Uint8Array(Math.max(8, regions.length * REGION_BYTES));
  const dv = new DataView(out.buffer);
  regions.forEach((r, i) => {
    const o = i * REGION_BYTES;
    const flags = (r.readOnly ? REGION_FLAGS.readOnly : 0) | (r.kind === 'values' ? REGION_FLAGS.values : r.kind === 'ringbuf' ? REGION_FLAGS.ringbuf : 0);
    dv.setBigUint64(o, BigInt.asUintN(64, r.handle), true);
    dv.setUint32(o + 8, r.base >>> 0, true);
    dv.setUint32(o + 12, r.size >>> 0, true);
    dv.setUint32(o + 16, Math.max(1, r.stride) >>> 0, true);
    dv.setUint32(o + 20, r.valueSize >>> 0, true);
    dv.setUint32(o + 24, flags, true);
  });
  return out;
}

/**
 * The interpreter behind a BpfVm: the wasm build (wasmCore.ts, host and tests) or the
 * native build loaded into a Frida agent (agent/engine). Same C source, same API; only
 * how bytes reach it and how helpers are called back differ.
 */
export interface VmCore {
  /** Memory indexed by VM address (only the arena [roLo, rwHi) is ever touched). */
  buffer(): ArrayBuffer;
  bpfvm_init(ro: number, rw: number): number;
  bpfvm_register_helper(id: number): void;
  bpfvm_register_array_map(handle: bigint, base: number, stride: number, max: number): number;
  /** Copies `prog` (n instructions) into the core and validates it: handle, or negative. */
  loadProgram(prog: Uint8Array, n: number): number;
  /** The load error message after loadProgram failed. */
  errorMessage(): string;
  /** bpfvm_set_load_env: the regions (encodeRegions) and context of the next loadProgram; 0 or negative. */
  setLoadEnv(regions: Uint8Array, n: number, ctxSize: number, ctxFlags: number): number;
  /** bpfvm_accessible32: may the running program (inside a helper) touch [addr, addr + len)? */
  bpfvm_accessible32(addr: number, len: number, write: number): number;
  bpfvm_fault_check(): number;
  bpfvm_fault_region(): number;
  bpfvm_run(handle: number, ctx: bigint, len: bigint): number;
  bpfvm_set_budget(b: bigint): void;
  bpfvm_result(): bigint;
  bpfvm_insn_count(): bigint;
  bpfvm_fault_pc(): number;
  bpfvm_fault_addr(): bigint;
  bpfvm_err_pc(): number;
  bpfvm_ro_lo(): number;
  bpfvm_rw_lo(): number;
  bpfvm_rw_hi(): number;
  bpfvm_alloc_start(): number;
  bpfvm_prog_count(): number;
  bpfvm_request_tail_call(h: number): void;
  bpfvm_request_exit(r0: bigint): void;
  bpfvm_in_helper(): number;
  bpfvm_reset_after_trap(): void;
  /**
   * Points the fault registers (bpfvm_fault_pc and the rest) at program `handle`'s last
   * fault. The native core needs it: a native hook's run has released the run lock, and
   * another thread's run, before its fault is reported here. The wasm core's registers
   * already describe it (one thread).
   */
  selectFault?(handle: number): void;
}

/** Builds a core that calls back into `helpers` (indexed by helper id) when programs call them. */
export type VmCoreFactory = (helpers: readonly (Helper | undefined)[]) => VmCore;

const MAX_HELPERS = 4096;
const FAULT_KINDS: Record<number, VmFaultKind> = { 1: 'memory', 2: 'budget', 3: 'helper', 4: 'stack', 5: 'tail_call' };

const hex = (v: bigint | number): string => '0x' + v.toString(16);

/** Minimal UTF-8 decoder (invalid sequences become U+FFFD). */
export function decodeUtf8(b: Uint8Array): string {
  let out = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i++];
    let cp: number;
    if (c < 0x80) cp = c;
    else if (c >= 0xc2 && c < 0xe0 && i < b.length && (b[i] & 0xc0) === 0x80) cp = ((c & 0x1f) << 6) | (b[i++] & 0x3f);
    else if (c >= 0xe0 && c < 0xf0 && i + 1 < b.length && (b[i] & 0xc0) === 0x80 && (b[i + 1] & 0xc0) === 0x80) {
      cp = ((c & 0x0f) << 12) | ((b[i] & 0x3f) << 6) | (b[i + 1] & 0x3f);
      i += 2;
    } else if (c >= 0xf0 && c < 0xf5 && i + 2 < b.length && (b[i] & 0xc0) === 0x80 && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80) {
      cp = ((c & 0x07) << 18) | ((b[i] & 0x3f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
      i += 3;
    } else cp = 0xfffd;
    out += String.fromCodePoint(cp);
  }
  return out;
}

export class BpfVm {
  private readonly exp: VmCore;
  private u8: Uint8Array;
  private readonly helpers: (Helper | undefined)[] = new Array(MAX_HELPERS);
  private readonly names: string[] = [];
  /** Regions each loaded program owns (by handle), for fault messages. */
  private readonly progRegions: (readonly VmRegion[])[] = [];
  private readonly definedRegions: VmRegion[] = [];
  private readonly roLo: number;
  private readonly rwLo: number;
  private readonly rwHi: number;
  private roNext: number;
  private rwNext: number;
  private budget: number;

  static create(wasm: ArrayBuffer | ArrayBufferView | WasmModule, opts: VmOptions = {}): BpfVm {
    return new BpfVm(wasmCore(toWasmModule(wasm)), opts);
  }

  /** A VM over another build of the same interpreter (the agent's native one). */
  static withCore(factory: VmCoreFactory, opts: VmOptions = {}): BpfVm {
    return new BpfVm(factory, opts);
  }

  private constructor(factory: VmCoreFactory, opts: VmOptions) {
    this.exp = factory(this.helpers);
    const ro = opts.roArenaBytes ?? 4 << 20;
    const rw = opts.rwArenaBytes ?? 16 << 20;
    const rc = this.exp.bpfvm_init(ro, rw);
    if (rc !== 0) throw new Error(`bpfvm: bpfvm_init failed (${rc})`);
    this.roLo = this.exp.bpfvm_ro_lo();
    this.rwLo = this.exp.bpfvm_rw_lo();
    this.rwHi = this.exp.bpfvm_rw_hi();
    this.roNext = this.roLo;
    this.rwNext = this.exp.bpfvm_alloc_start();
    this.budget = 0;
    this.setBudget(opts.budget ?? 1_000_000);
    this.u8 = new Uint8Array(this.exp.buffer());
  }

  /** Current view of the linear memory (VM addresses equal offsets into it). */
  memory(): Uint8Array {
    const buf = this.exp.buffer();
    if (this.u8.buffer !== buf || this.u8.byteLength === 0) this.u8 = new Uint8Array(buf);
    return this.u8;
  }

  /** Arena bounds: loads allowed in [roLo, rwHi), stores in [rwLo, rwHi). */
  get bounds(): { roLo: number; rwLo: number; rwHi: number } {
    return { roLo: this.roLo, rwLo: this.rwLo, rwHi: this.rwHi };
  }

  registerHelper(id: number, fn: Helper): void {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_HELPERS) throw new RangeError(`helper id ${id} out of range 0..${MAX_HELPERS - 1}`);
    this.helpers[id] = fn;
    this.exp.bpfvm_register_helper(id);
  }

  /**
   * Lets the interpreter resolve bpf_map_lookup_elem on this array map by itself (value =
   * base + index * stride, NULL past maxEntries) instead of calling the helper, as the
   * kernel inlines array lookups. False when the VM's table of such maps is full.
   */
  inlineArrayMap(handle: bigint, base: number, stride: number, maxEntries: number): boolean {
    return this.exp.bpfvm_register_array_map(handle, base, stride, maxEntries) === 0;
  }

  /** Makes `region` part of the default region set of programs loaded without `regions`. */
  defineRegion(region: VmRegion): void {
    this.definedRegions.push(region);
  }

  /** Every region defined on this VM (maps register theirs when they are created). */
  regions(): readonly VmRegion[] {
    return this.definedRegions;
  }

  setBudget(budget: number): void {
    if (!(budget >= 0) || !Number.isSafeInteger(Math.floor(budget))) throw new RangeError(`bad budget ${budget}`);
    budget = Math.floor(budget);
    this.budget = budget;
    this.exp.bpfvm_set_budget(BigInt(budget));
  }

  /** Instructions charged to the last run (an upper bound: skipped forward-jump targets count). */
  lastInsnCount(): bigint {
    return this.exp.bpfvm_insn_count();
  }

  allocRw(size: number, align = 8): number {
    if (!(size >= 0) || !(align > 0) || (align & (align - 1)) !== 0) throw new RangeError(`allocRw: bad size ${size} / align ${align}`);
    const addr = Math.ceil(this.rwNext / align) * align;
    if (addr + size > this.rwHi) throw new RangeError(`allocRw: rw arena full (${size} bytes requested, ${Math.max(0, this.rwHi - addr)} free)`);
    this.rwNext = addr + size;
    this.memory().fill(0, addr, addr + size);
    return addr;
  }

  allocRo(data: Uint8Array): number {
    const addr = Math.ceil(this.roNext / 8) * 8;
    if (addr + data.length > this.rwLo) throw new RangeError(`allocRo: ro arena full (${data.length} bytes requested)`);
    this.roNext = addr + data.length;
    this.memory().set(data, addr);
    return addr;
  }

  isAccessible(addr: bigint | number, len: number, write: boolean): boolean {
    // Arena addresses are below 2^32, so plain numbers suffice (no BigInt arithmetic).
    const a = typeof addr === 'bigint' ? (addr >= 0n && addr < 0x100000000n ? Number(addr) : -1) : addr;
    if (!(len >= 0) || !Number.isInteger(a) || a < 0 || len > 0xffffffff) return false;
    // Inside a helper: only what the running program owns (its live stack frames, context
    // and its object's map values), so a helper cannot be used to reach other memory.
    if (this.exp.bpfvm_in_helper()) return this.exp.bpfvm_accessible32(a, len, write ? 1 : 0) === 1;
    return a >= (write ? this.rwLo : this.roLo) && a + len <= this.rwHi;
  }

  read(addr: number | bigint, len: number): Uint8Array {
    if (!this.isAccessible(addr, len, false)) throw new RangeError(`read of ${len} bytes at ${hex(addr)} is outside the VM arena`);
    const a = Number(addr);
    return this.memory().slice(a, a + len);
  }

  write(addr: number | bigint, data: Uint8Array): void {
    if (!this.isAccessible(addr, data.length, true)) throw new RangeError(`write of ${data.length} bytes at ${hex(addr)} is outside the VM rw arena`);
    this.memory().set(data, Number(addr));
  }

  writeRo(addr: number, data: Uint8Array): void {
    if (!(addr >= this.roLo && addr + data.length <= this.rwLo)) throw new RangeError(`writeRo of ${data.length} bytes at ${hex(addr)} is outside the VM ro arena`);
    this.memory().set(data, addr);
  }

  readCString(addr: number | bigint, maxLen: number): string | null {
    if (!this.isAccessible(addr, 1, false)) return null;
    const a = Number(addr);
    const end = Math.min(this.rwHi, a + Math.max(0, maxLen));
    const m = this.memory();
    let i = a;
    while (i < end && m[i] !== 0) i++;
    return decodeUtf8(m.subarray(a, i));
  }

  load(code: Uint8Array, opts: LoadOptions = {}): number {
    if (code.length % 8 !== 0) throw new VmLoadError(Math.floor(code.length / 8), `program size ${code.length} is not a multiple of 8 bytes`);
    const n = code.length / 8;
    const prog = code.slice();
    const dv = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
    for (let pc = 0; pc < n; pc++) {
      if (prog[pc * 8] !== 0x18 || pc + 1 >= n) continue;
      const src = prog[pc * 8 + 1] >> 4;
      // src=4 (PSEUDO_FUNC) is handled by the VM; without a resolver the VM rejects the
      // other pseudo loads itself (in instruction order).
      if (src !== 0 && src <= 6 && src !== 4 && opts.resolvePseudo) {
        const imm = dv.getInt32(pc * 8 + 4, true);
        const nextImm = dv.getInt32(pc * 8 + 12, true);
        let v: bigint;
        try {
          v = BigInt.asUintN(64, opts.resolvePseudo(src, imm, nextImm, pc));
        } catch (e) {
          throw new VmLoadError(pc, `cannot resolve lddw src=${src} imm=${imm}: ${(e as Error).message ?? e}`);
        }
        // The VM keeps map handles (1) and map value addresses (2) apart from plain numbers.
        prog[pc * 8 + 1] = (prog[pc * 8 + 1] & 0x0f) | ((src === 2 || src === 6 ? 2 : 1) << 4);
        dv.setUint32(pc * 8 + 4, Number(v & 0xffffffffn), true);
        dv.setUint32(pc * 8 + 12, Number(v >> 32n), true);
      }
      pc++;
    }
    const regions = opts.regions ?? this.definedRegions;
    const flags = (opts.ctxReadOnly ? 1 : 0) | (opts.resolvePseudo ? 2 : 0);
    const env = this.exp.setLoadEnv(encodeRegions(regions), regions.length, opts.ctxSize ?? 0, flags);
    if (env < 0) throw new VmLoadError(0, `invalid memory regions for the program (${env})`);
    const h = this.exp.loadProgram(prog, n);
    if (h < 0) {
      const msg = this.exp.errorMessage().replace(/region #(\d+)/g, (_m, i: string) => `map ${regions[Number(i)]?.name ?? '#' + i}`);
      throw new VmLoadError(this.exp.bpfvm_err_pc(), msg);
    }
    this.names[h] = opts.name ?? `prog${h}`;
    this.progRegions[h] = regions;
    return h;
  }

  /**
   * Runs a loaded program with r1 = ctxAddr, r2 = ctxLen; returns r0 as an unsigned 64-bit
   * value, or 0n without reading it when `wantResult` is false (hooks whose r0 nobody
   * reads save a call into the core).
   */
  run(handle: number, ctxAddr: number, ctxLen: number, wantResult = true): bigint {
    const exp = this.exp;
    let st: number;
    try {
      st = exp.bpfvm_run(handle, BigInt(ctxAddr), BigInt(ctxLen));
    } catch (e) {
      const pc = exp.bpfvm_fault_pc();
      exp.bpfvm_reset_after_trap();
      if (e instanceof VmFault) throw e;
      throw new VmFault('helper', pc, `pc ${pc}: helper failed in ${this.names[handle]}: ${(e as Error)?.message ?? e}`, undefined, e);
    }
    if (st === 0) return wantResult ? BigInt.asUintN(64, exp.bpfvm_result()) : 0n;
    throw this.faultFor(handle, st);
  }

  /**
   * The error for a non-zero run status, read from the core's fault registers. Also for
   * runs made outside this object (native hooks), on the thread that made them.
   */
  faultFor(handle: number, st: number): Error {
    const exp = this.exp;
    if (st === 6) return new RangeError(`run: invalid program handle ${handle} (or VM already running)`);
    exp.selectFault?.(handle);
    const kind = FAULT_KINDS[st] ?? 'helper';
    const pc = exp.bpfvm_fault_pc();
    const addr = BigInt.asUintN(64, exp.bpfvm_fault_addr());
    const where = `pc ${pc}`;
    const name = this.names[handle];
    switch (kind) {
      case 'memory':
        return new VmFault(kind, pc, `${where}: out-of-region memory access at address ${hex(addr)} in ${name}: ${this.faultRegion(handle)}`, addr);
      case 'budget':
        return new VmFault(kind, pc, `${where}: instruction budget (${this.budget}) exhausted in ${name}`);
      case 'stack':
        return new VmFault(kind, pc, `${where}: call depth limit exceeded in ${name}`);
      case 'tail_call':
        return new VmFault(kind, pc, `${where}: tail call to program ${addr} failed (invalid handle or more than 33 chained tail calls) in ${name}`, addr);
      default:
        return new VmFault(kind, pc, `${where}: helper call failed in ${name}` + (addr ? ` (helper id ${addr} not registered)` : ''), addr || undefined);
    }
  }

  /** Which region the faulting access left, from the check the verifier gave the instruction. */
  private faultRegion(handle: number): string {
    const check = this.exp.bpfvm_fault_check();
    switch (check) {
      case CHECK_NULL:
        return 'NULL pointer (a map lookup or ringbuf reservation that returned NULL)';
      case CHECK_STACK: {
        const level = this.exp.bpfvm_fault_region();
        return level === 0 ? 'outside the stack frame [r10-512, r10)' : `outside the stack frame of the caller ${level} level(s) up`;
      }
      case CHECK_RECORD:
        return 'a ringbuf record at an offset not known at load time (record bounds are checked only for constant offsets)';
      case CHECK_CTX:
        return 'outside the context';
      case CHECK_ELEM: {
        const r = this.progRegions[handle]?.[this.exp.bpfvm_fault_region()];
        return r ? `outside a value of map ${r.name} (value_size ${r.valueSize})` : 'outside a map value';
      }
      case CHECK_OWNED:
        return 'not inside any region the program owns (its stack, its context, its maps\' values)';
      default:
        return 'outside the VM arena';
    }
  }

  /** Called from within a helper: after it returns, jump to the start of `handle` (same r1, fresh stack). */
  requestTailCall(handle: number): void {
    if (!this.exp.bpfvm_in_helper()) throw new Error('requestTailCall is only valid while a helper is running');
    if (!Number.isInteger(handle) || handle < 0) throw new RangeError(`requestTailCall: bad handle ${handle}`);
    this.exp.bpfvm_request_tail_call(handle);
  }

  /** Called from within a helper: the program ends with r0 = value once the helper returns. */
  requestExit(r0: bigint | number): void {
    if (!this.exp.bpfvm_in_helper()) throw new Error('requestExit is only valid while a helper is running');
    this.exp.bpfvm_request_exit(BigInt.asIntN(64, BigInt(r0)));
  }

  /** Number of programs loaded. */
  programCount(): number {
    return this.exp.bpfvm_prog_count();
  }
}
