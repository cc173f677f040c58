// What may be patched at an address: instruction boundaries, relocatable prologues,
// alignment padding after short functions, branch targets inside the bytes a jump would
// cover. The answer picks a 5-byte jump (fast) or a 1-byte int3 (always safe: one byte is
// one instruction's first byte, and the trap handler sends the thread to the stub).

export class PlacementError extends Error {}

export interface FunctionExtent {
  start: NativePointer;
  /** 0 when unknown. */
  size: number;
  name: string;
}

export interface SitePlan {
  mode: 'jump' | 'int3';
  /** Bytes of original instructions the stub's relocated copy starts with. */
  relocated: number;
  /** Whether the relocated instructions end the function (ret/jmp): no jump back. */
  endsFunction: boolean;
  /** Bytes the patch overwrites (5 for a jump, 1 for an int3). */
  patchLen: number;
  /** Why a jump was not possible, when mode is int3. */
  why?: string;
}

const JUMP_LEN = 5;

interface ModuleSymbols {
  starts: Set<string>;
  sorted: { address: NativePointer; size: number; name: string }[];
}
const symbolCache = new Map<string, ModuleSymbols>();

function symbolsOf(m: Module): ModuleSymbols {
  let s = symbolCache.get(m.path);
  if (!s) {
    const sorted = m
      .enumerateSymbols()
      .filter((x) => x.type === 'function' && !x.address.isNull())
      .map((x) => ({ address: x.address, size: x.size ?? 0, name: x.name }))
      .sort((a, b) => a.address.compare(b.address));
    s = { starts: new Set(sorted.map((x) => x.address.toString())), sorted };
    symbolCache.set(m.path, s);
  }
  return s;
}

/** The function symbol containing `addr`, when the module's symbol table has one. */
export function functionAt(addr: NativePointer): FunctionExtent | null {
  const m = Process.findModuleByAddress(addr);
  if (!m) return null;
  let best: FunctionExtent | null = null;
  for (const x of symbolsOf(m).sorted) {
    if (x.address.compare(addr) > 0) break;
    if (x.size > 0 && addr.compare(x.address.add(x.size)) >= 0) continue;
    best = { start: x.address, size: x.size, name: x.name };
  }
  return best;
}

/** Bytes our own patches replaced, by address: decoding must see the original instructions. */
let originals: () => Iterable<{ addr: NativePointer; bytes: number[] }> = () => [];
export function setOriginalBytesSource(src: typeof originals): void {
  originals = src;
}

/**
 * A copy of [start, start+len) with the original bytes under our patches put back, and
 * the distance from the code to the copy (decode the copy, report addresses in the code).
 */
function pristineCopy(start: NativePointer, len: number): { copy: NativePointer; delta: bigint } {
  const copy = Memory.alloc(len + 16);
  Memory.copy(copy, start, len);
  const lo = BigInt(start.toString());
  const hi = lo + BigInt(len);
  for (const o of originals()) {
    const a = BigInt(o.addr.toString());
    o.bytes.forEach((b, i) => {
      const at = a + BigInt(i);
      if (at >= lo && at < hi) copy.add(Number(at - lo)).writeU8(b);
    });
  }
  return { copy, delta: BigInt(copy.toString()) - lo };
}

function parse(at: NativePointer): Instruction | null {
  try {
    return Instruction.parse(at);
  } catch {
    return null;
  }
}

/**
 * Refuses an address that is not an instruction boundary of its function, naming the
 * nearest boundaries (a patch there would split an instruction and crash the target).
 */
export function checkBoundary(addr: NativePointer, fn: FunctionExtent, describe: string): void {
  if (addr.equals(fn.start)) return;
  const span = Number(BigInt(addr.toString()) - BigInt(fn.start.toString())) + 16;
  const { copy } = pristineCopy(fn.start, fn.size > 0 ? Math.max(fn.size, span) : span);
  const target = copy.add(addr.sub(fn.start));
  let at = copy;
  let prev = copy;
  while (at.compare(target) < 0) {
    const insn = parse(at);
    if (!insn) throw new PlacementError(`${describe}: cannot decode ${fn.name} at ${fn.start.add(at.sub(copy))} to check that ${addr} is an instruction boundary`);
    prev = at;
    at = insn.next;
  }
  if (at.equals(target)) return;
  const back = (p: NativePointer) => fn.start.add(p.sub(copy));
  prev = back(prev);
  at = back(at);
  const off = (p: NativePointer) => `${fn.name}+0x${p.sub(fn.start).toString(16).replace(/^0x/, '')}`;
  throw new PlacementError(`${describe}: ${off(addr)} is not an instruction boundary (nearest: ${off(prev)} and ${off(at)})`);
}

const BRANCH = /^(j[a-z]+|call|loop[a-z]*|jrcxz|jecxz)$/;

/** Whether a direct branch anywhere in the function lands inside (lo, hi). */
function branchesInto(fn: FunctionExtent, lo: NativePointer, hi: NativePointer): boolean | null {
  if (fn.size <= 0) return null;
  const { copy, delta } = pristineCopy(fn.start, fn.size);
  const end = copy.add(fn.size);
  for (let at = copy; at.compare(end) < 0; ) {
    const insn = parse(at);
    if (!insn) return null;
    if (BRANCH.test(insn.mnemonic)) {
      const ops = (insn as X86Instruction).operands;
      // Targets decoded from the copy are relative to it: move them back to the code.
      const t = ops.length === 1 && ops[0].type === 'imm' ? ptr((BigInt(ops[0].value.toString()) - delta).toString()) : null;
      if (t && t.compare(lo) > 0 && t.compare(hi) < 0) return true;
    }
    at = insn.next;
  }
  return false;
}

/** Padding bytes (nop, int3) from `from` up to at least `to`, with no symbol starting among them. */
function isPadding(from: NativePointer, to: NativePointer): boolean {
  const m = Process.findModuleByAddress(from);
  if (!m) return false;
  const starts = symbolsOf(m).starts;
  let at = from;
  while (at.compare(to) < 0) {
    if (starts.has(at.toString())) return false;
    const insn = parse(at);
    if (!insn || (insn.mnemonic !== 'nop' && insn.mnemonic !== 'int3')) return false;
    // A symbol starting inside a multi-byte nop would also mean this is not padding.
    for (let b = at.add(1); b.compare(insn.next) < 0; b = b.add(1)) if (starts.has(b.toString())) return false;
    at = insn.next;
  }
  return true;
}

const ENDS = /^(ret|retn|jmp|ud2|hlt)$/;

/** How to hook `addr` (inside `fn` when known); `atEntry` when addr is the function's first byte. */
export function planSite(addr: NativePointer, fn: FunctionExtent | null, atEntry: boolean): SitePlan {
  let len = 0;
  let at = addr;
  let ends = false;
  while (len < JUMP_LEN) {
    const insn = parse(at);
    if (!insn) break;
    len += insn.size;
    at = insn.next;
    if (ENDS.test(insn.mnemonic)) {
      ends = true;
      break;
    }
  }
  const first = parse(addr);
  const int3 = (why: string): SitePlan => {
    const e = first !== null && ENDS.test(first.mnemonic);
    return { mode: 'int3', relocated: first?.size ?? 1, endsFunction: e, patchLen: 1, why };
  };
  if (!first) throw new PlacementError(`cannot decode the instruction at ${addr}`);
  if (!atEntry) return int3('not a function entry (code may branch to the instructions a jump would cover)');
  if (fn === null) return int3('no symbol gives the function\'s extent');
  if (len < JUMP_LEN) {
    if (!ends || !isPadding(addr.add(len), addr.add(JUMP_LEN))) return int3(`the function is ${len} bytes and no provable padding follows it`);
  }
  const into = branchesInto(fn, addr, addr.add(JUMP_LEN));
  if (into !== false) return int3(into ? 'a branch lands inside the first 5 bytes' : 'the function could not be scanned for branches');
  return { mode: 'jump', relocated: len, endsFunction: ends, patchLen: JUMP_LEN };
}
