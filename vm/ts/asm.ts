// Assembler for the textual eBPF syntax of the bpf_conformance vectors:
//   mov %r0, 1 / add32 %r1, %r2 / lddw %r0, 0x1122334455667788 / ldxw %r0, [%r1+4]
//   stxdw [%r10-8], %r1 / stb [%r10-1], 0x7f / jeq %r1, 5, label / ja +2 / ja32 label
//   call 5 / call local func / call %r2 / exit / lock [fetch] add[32] [%r10-8], %r1
//   lock xchg / lock cmpxchg / le16 be32 bswap64 (alias swap64) / neg / movsx832 ...
//   lddw %r2, func label (PSEUDO_FUNC, src=4)
// `#` starts a comment; `name:` defines a label. Errors throw AsmError with the line number.

export class AsmError extends Error {
  readonly line: number;
  constructor(line: number, msg: string) {
    super(`line ${line}: ${msg}`);
    this.name = 'AsmError';
    this.line = line;
  }
}

export const ALU_OPS: Record<string, number> = {
  add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70,
  mod: 0x90, xor: 0xa0, mov: 0xb0, arsh: 0xc0, sdiv: 0x30, smod: 0x90,
};
export const JMP_OPS: Record<string, number> = {
  jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70,
  jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0,
};
export const SIZES: Record<string, number> = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 };
export const ATOMIC_OPS: Record<string, number> = { add: 0x00, or: 0x40, and: 0x50, xor: 0xa0, xchg: 0xe1, cmpxchg: 0xf1 };

interface Insn {
  opcode: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  imm64?: bigint; // lddw
  target?: { label?: string; rel?: number; field: 'off' | 'imm' };
  line: number;
  isExit?: boolean;
}

function parseNumber(tok: string, line: number, what: string): bigint {
  const m = /^([+-]?)(0x[0-9a-f]+|[0-9]+)$/i.exec(tok.trim());
  if (!m) throw new AsmError(line, `invalid ${what} '${tok}'`);
  const v = BigInt(m[2]);
  return m[1] === '-' ? -v : v;
}

function isHex(tok: string): boolean {
  return /^[+-]?0x/i.test(tok.trim());
}

function imm32(tok: string, line: number): number {
  const v = parseNumber(tok, line, 'immediate');
  const ok = isHex(tok) ? v >= -(1n << 31n) && v <= 0xffffffffn : v >= -(1n << 31n) && v <= 0x7fffffffn;
  if (!ok) throw new AsmError(line, `immediate ${tok} is out of 32-bit range`);
  return Number(BigInt.asIntN(32, v));
}

function reg(tok: string, line: number): number {
  const m = /^%r([0-9]+)$/.exec(tok.trim());
  if (!m) throw new AsmError(line, `invalid register '${tok}'`);
  const r = Number(m[1]);
  if (r > 10) throw new AsmError(line, `invalid register '${tok}'`);
  return r;
}

function isReg(tok: string): boolean {
  return /^%r[0-9]+$/.test(tok.trim());
}

function memOperand(tok: string, line: number): { reg: number; off: number } {
  const m = /^\[\s*(%r[0-9]+)\s*(?:([+-])\s*(0x[0-9a-f]+|[0-9]+))?\s*\]$/i.exec(tok.trim());
  if (!m) throw new AsmError(line, `invalid memory operand '${tok}' (expected [%rN+off])`);
  const r = reg(m[1], line);
  let off = 0;
  if (m[3] !== undefined) {
    const v = BigInt(m[3]);
    const s = m[2] === '-' ? -v : v;
    if (s < -32768n || s > 32767n) throw new AsmError(line, `offset ${m[2]}${m[3]} is out of 16-bit range`);
    off = Number(s);
  }
  return { reg: r, off };
}

function jumpTarget(tok: string, line: number, field: 'off' | 'imm'): Insn['target'] {
  const t = tok.trim();
  if (/^[+-]?(0x[0-9a-f]+|[0-9]+)$/i.test(t)) {
    const v = parseNumber(t, line, 'jump offset');
    const lim = field === 'off' ? 1n << 15n : 1n << 31n;
    if (v < -lim || v >= lim) throw new AsmError(line, `jump offset ${t} is out of range`);
    return { rel: Number(v), field };
  }
  if (!/^[A-Za-z_.$][\w.$]*$/.test(t)) throw new AsmError(line, `invalid jump target '${t}'`);
  return { label: t, field };
}

function splitOperands(rest: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of rest) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '' || out.length) out.push(cur.trim());
  return out;
}

function expect(ops: string[], n: number, line: number, mnem: string): void {
  if (ops.length !== n || ops.some((o) => o === '')) throw new AsmError(line, `invalid number of operands for ${mnem} (expected ${n}, got ${ops.length})`);
}

function assembleLine(mnem: string, ops: string[], line: number): Insn {
  const ins: Insn = { opcode: 0, dst: 0, src: 0, off: 0, imm: 0, line };
  let m: RegExpExecArray | null;
  if (mnem === 'exit') {
    expect(ops, 0, line, mnem);
    ins.opcode = 0x95;
    ins.isExit = true;
    return ins;
  }
  if (mnem === 'neg' || mnem === 'neg32') {
    expect(ops, 1, line, mnem);
    ins.opcode = 0x80 | (mnem === 'neg' ? 0x07 : 0x04);
    ins.dst = reg(ops[0], line);
    return ins;
  }
  if ((m = /^(le|be|bswap|swap)(16|32|64)$/.exec(mnem))) {
    expect(ops, 1, line, mnem);
    ins.opcode = m[1] === 'le' ? 0xd4 : m[1] === 'be' ? 0xdc : 0xd7;
    ins.dst = reg(ops[0], line);
    ins.imm = Number(m[2]);
    return ins;
  }
  if ((m = /^movsx(8|16|32)(32|64)$/.exec(mnem))) {
    expect(ops, 2, line, mnem);
    if (m[1] === '32' && m[2] === '32') throw new AsmError(line, `unknown mnemonic '${mnem}'`);
    ins.opcode = m[2] === '64' ? 0xbf : 0xbc;
    ins.dst = reg(ops[0], line);
    ins.src = reg(ops[1], line);
    ins.off = Number(m[1]);
    return ins;
  }
  if ((m = /^([a-z]+?)(32)?$/.exec(mnem)) && m[1] in ALU_OPS) {
    expect(ops, 2, line, mnem);
    const cls = m[2] ? 0x04 : 0x07;
    ins.dst = reg(ops[0], line);
    ins.off = m[1] === 'sdiv' || m[1] === 'smod' ? 1 : 0;
    if (isReg(ops[1])) {
      ins.opcode = ALU_OPS[m[1]] | 0x08 | cls;
      ins.src = reg(ops[1], line);
    } else {
      ins.opcode = ALU_OPS[m[1]] | cls;
      ins.imm = imm32(ops[1], line);
    }
    return ins;
  }
  if (mnem === 'ja' || mnem === 'ja32') {
    expect(ops, 1, line, mnem);
    ins.opcode = mnem === 'ja' ? 0x05 : 0x06;
    ins.target = jumpTarget(ops[0], line, mnem === 'ja' ? 'off' : 'imm');
    return ins;
  }
  if ((m = /^([a-z]+?)(32)?$/.exec(mnem)) && m[1] in JMP_OPS) {
    expect(ops, 3, line, mnem);
    const cls = m[2] ? 0x06 : 0x05;
    ins.dst = reg(ops[0], line);
    if (isReg(ops[1])) {
      ins.opcode = JMP_OPS[m[1]] | 0x08 | cls;
      ins.src = reg(ops[1], line);
    } else {
      ins.opcode = JMP_OPS[m[1]] | cls;
      ins.imm = imm32(ops[1], line);
    }
    ins.target = jumpTarget(ops[2], line, 'off');
    return ins;
  }
  if (mnem === 'call') {
    if (ops.length === 1 && /^local\s+/.test(ops[0])) {
      ins.opcode = 0x85;
      ins.src = 1;
      ins.target = jumpTarget(ops[0].replace(/^local\s+/, ''), line, 'imm');
      return ins;
    }
    expect(ops, 1, line, mnem);
    if (isReg(ops[0])) {
      ins.opcode = 0x8d;
      ins.dst = reg(ops[0], line);
      return ins;
    }
    ins.opcode = 0x85;
    ins.imm = imm32(ops[0], line);
    return ins;
  }
  if (mnem === 'lddw') {
    expect(ops, 2, line, mnem);
    ins.opcode = 0x18;
    ins.dst = reg(ops[0], line);
    if (/^func\s+/.test(ops[1])) {
      // address of a subprogram (PSEUDO_FUNC, src=4), e.g. for bpf_loop callbacks
      ins.src = 4;
      ins.imm64 = 0n;
      ins.target = jumpTarget(ops[1].replace(/^func\s+/, ''), line, 'imm');
      return ins;
    }
    const v = parseNumber(ops[1], line, 'immediate');
    if (v < -(1n << 63n) || v > (1n << 64n) - 1n) throw new AsmError(line, `immediate ${ops[1]} is out of 64-bit range`);
    ins.imm64 = BigInt.asUintN(64, v);
    return ins;
  }
  if ((m = /^ldx(s?)(b|h|w|dw)$/.exec(mnem))) {
    expect(ops, 2, line, mnem);
    if (m[1] && m[2] === 'dw') throw new AsmError(line, `unknown mnemonic '${mnem}'`);
    ins.opcode = (m[1] ? 0x80 : 0x60) | SIZES[m[2]] | 0x01;
    ins.dst = reg(ops[0], line);
    const mo = memOperand(ops[1], line);
    ins.src = mo.reg;
    ins.off = mo.off;
    return ins;
  }
  if ((m = /^st(x?)(b|h|w|dw)$/.exec(mnem))) {
    expect(ops, 2, line, mnem);
    const mo = memOperand(ops[0], line);
    ins.dst = mo.reg;
    ins.off = mo.off;
    if (m[1]) {
      ins.opcode = 0x60 | SIZES[m[2]] | 0x03;
      ins.src = reg(ops[1], line);
    } else {
      ins.opcode = 0x60 | SIZES[m[2]] | 0x02;
      ins.imm = imm32(ops[1], line);
    }
    return ins;
  }
  throw new AsmError(line, `unknown mnemonic '${mnem}'`);
}

function assembleLock(words: string, line: number): Insn {
  // words: "[fetch] op[32] [mem], %rS"
  const m = /^(fetch\s+)?([a-z]+?)(32)?\s+(.*)$/.exec(words.trim());
  if (!m || !(m[2] in ATOMIC_OPS)) {
    if (!m && /^(fetch\s+)?[a-z]*(32)?$/.test(words.trim())) throw new AsmError(line, 'invalid number of operands for lock');
    throw new AsmError(line, `invalid lock operation '${words.trim()}'`);
  }
  const ops = splitOperands(m[4]);
  expect(ops, 2, line, 'lock');
  const mo = memOperand(ops[0], line);
  let imm = ATOMIC_OPS[m[2]];
  if (m[1]) {
    if (m[2] === 'xchg' || m[2] === 'cmpxchg') throw new AsmError(line, `'fetch' is implied for ${m[2]}`);
    imm |= 0x01;
  }
  return { opcode: 0xc0 | (m[3] ? 0x00 : 0x18) | 0x03, dst: mo.reg, src: reg(ops[1], line), off: mo.off, imm, line };
}

function encode(dv: DataView, pc: number, opcode: number, dst: number, src: number, off: number, imm: number): void {
  dv.setUint8(pc * 8, opcode);
  dv.setUint8(pc * 8 + 1, ((src & 15) << 4) | (dst & 15));
  dv.setInt16(pc * 8 + 2, off, true);
  dv.setInt32(pc * 8 + 4, imm, true);
}

/** Assembles a program; returns the little-endian instruction bytes. */
export function assemble(text: string): Uint8Array {
  const insns: Insn[] = [];
  const labels = new Map<string, number>();
  const pcOf: number[] = [];
  let pc = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let s = lines[i].replace(/#.*$/, '').trim();
    let lm: RegExpExecArray | null;
    while ((lm = /^([A-Za-z_.$][\w.$]*)\s*:\s*/.exec(s))) {
      if (labels.has(lm[1])) throw new AsmError(lineNo, `duplicate label '${lm[1]}'`);
      labels.set(lm[1], pc);
      s = s.slice(lm[0].length);
    }
    if (s === '') continue;
    const mm = /^([a-z0-9]+)\s*(.*)$/i.exec(s);
    if (!mm) throw new AsmError(lineNo, `cannot parse '${s}'`);
    const mnem = mm[1].toLowerCase();
    let ins: Insn;
    if (mnem === 'lock') {
      if (mm[2].trim() === '') throw new AsmError(lineNo, 'invalid number of operands for lock');
      ins = assembleLock(mm[2], lineNo);
    } else ins = assembleLine(mnem, splitOperands(mm[2]), lineNo);
    insns.push(ins);
    pcOf.push(pc);
    pc += ins.opcode === 0x18 ? 2 : 1;
  }
  const out = new Uint8Array(pc * 8);
  const dv = new DataView(out.buffer);
  insns.forEach((ins, idx) => {
    const at = pcOf[idx];
    let { off, imm } = ins;
    if (ins.target) {
      let rel: number;
      if (ins.target.label !== undefined) {
        let t = labels.get(ins.target.label);
        if (t === undefined && ins.target.label === 'exit') {
          // bpf_conformance convention: an undefined `exit` label means the next exit instruction.
          const j = insns.findIndex((x, k) => k > idx && x.isExit);
          if (j >= 0) t = pcOf[j];
        }
        if (t === undefined) throw new AsmError(ins.line, `undefined label '${ins.target.label}'`);
        rel = t - at - 1;
      } else rel = ins.target.rel!;
      if (ins.target.field === 'off') {
        if (rel < -32768 || rel > 32767) throw new AsmError(ins.line, 'jump offset out of 16-bit range');
        off = rel;
      } else imm = rel;
    }
    if (ins.opcode === 0x18) {
      const v = ins.imm64!;
      encode(dv, at, 0x18, ins.dst, ins.src, 0, ins.target ? imm : Number(BigInt.asIntN(32, v & 0xffffffffn)));
      encode(dv, at + 1, 0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n)));
    } else encode(dv, at, ins.opcode, ins.dst, ins.src, off, imm);
  });
  return out;
}
