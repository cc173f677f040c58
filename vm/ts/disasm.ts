// Disassembler producing the same textual syntax as vm/ts/asm.ts accepts (one line per
// instruction; lddw occupies one line for its two slots). Jump targets are printed as
// relative offsets (+N / -N) so that assemble(disassemble(x)) reproduces x.
import { ALU_OPS, ATOMIC_OPS, JMP_OPS, SIZES } from './asm.js';

const invert = (o: Record<string, number>): Record<number, string> => {
  const r: Record<number, string> = {};
  for (const [k, v] of Object.entries(o)) if (!(v in r)) r[v] = k;
  return r;
};
const ALU_NAME = invert(ALU_OPS);
const JMP_NAME = invert(JMP_OPS);
const SIZE_NAME = invert(SIZES);
const ATOMIC_NAME = invert(ATOMIC_OPS);

const rel = (v: number): string => (v >= 0 ? `+${v}` : `${v}`);
const mem = (r: number, off: number): string => (off === 0 ? `[%r${r}]` : off > 0 ? `[%r${r}+${off}]` : `[%r${r}-${-off}]`);
const immStr = (v: number): string => (v >= -1024 && v <= 1024 ? `${v}` : `0x${(v >>> 0).toString(16)}`);

export interface DisasmOptions {
  /** Prefix each line with its instruction index. */
  withPc?: boolean;
}

/** Disassembles one instruction (plus the next word for lddw). */
export function disassembleInsn(dv: DataView, pc: number, n: number): { text: string; slots: number } {
  const opc = dv.getUint8(pc * 8);
  const regs = dv.getUint8(pc * 8 + 1);
  const dst = regs & 15;
  const src = regs >> 4;
  const off = dv.getInt16(pc * 8 + 2, true);
  const imm = dv.getInt32(pc * 8 + 4, true);
  const cls = opc & 7;
  const code = opc & 0xf0;
  const x = (opc & 0x08) !== 0;
  const bad = { text: `.invalid 0x${opc.toString(16).padStart(2, '0')} # dst=${dst} src=${src} off=${off} imm=${imm}`, slots: 1 };
  switch (cls) {
    case 0x04:
    case 0x07: {
      const sfx = cls === 0x04 ? '32' : '';
      if (code === 0x80) return { text: `neg${sfx} %r${dst}`, slots: 1 };
      if (code === 0xd0) {
        const name = cls === 0x07 ? 'bswap' : x ? 'be' : 'le';
        return { text: `${name}${imm} %r${dst}`, slots: 1 };
      }
      if (code === 0xb0 && x && off !== 0) return { text: `movsx${off}${cls === 0x04 ? '32' : '64'} %r${dst}, %r${src}`, slots: 1 };
      let name = ALU_NAME[code];
      if (name === undefined) return bad;
      if (off === 1 && name === 'div') name = 'sdiv';
      if (off === 1 && name === 'mod') name = 'smod';
      return { text: `${name}${sfx} %r${dst}, ${x ? `%r${src}` : immStr(imm)}`, slots: 1 };
    }
    case 0x05:
    case 0x06: {
      const sfx = cls === 0x06 ? '32' : '';
      if (code === 0x00) return { text: cls === 0x06 ? `ja32 ${rel(imm)}` : `ja ${rel(off)}`, slots: 1 };
      if (code === 0x80) {
        if (x) return { text: `call %r${dst}`, slots: 1 };
        if (src === 1) return { text: `call local ${rel(imm)}`, slots: 1 };
        if (src === 2) return { text: `call ${imm} # btf id`, slots: 1 };
        return { text: `call ${imm}`, slots: 1 };
      }
      if (code === 0x90) return { text: 'exit', slots: 1 };
      const name = JMP_NAME[code];
      if (name === undefined) return bad;
      return { text: `${name}${sfx} %r${dst}, ${x ? `%r${src}` : immStr(imm)}, ${rel(off)}`, slots: 1 };
    }
    case 0x00: {
      if (opc !== 0x18) return bad;
      if (pc + 1 >= n) return { text: `lddw %r${dst}, <truncated>`, slots: 1 };
      const hi = dv.getUint32(pc * 8 + 12, true);
      const v = (BigInt(hi) << 32n) | BigInt(imm >>> 0);
      if (src === 4 && hi === 0) return { text: `lddw %r${dst}, func ${rel(imm)}`, slots: 2 };
      if (src !== 0) {
        const kinds: Record<number, string> = { 1: 'map_by_idx', 2: 'map_value', 3: 'var_addr', 4: 'func', 5: 'map_by_fd', 6: 'map_value_by_fd' };
        return { text: `lddw %r${dst}, ${imm} # pseudo src=${src} (${kinds[src] ?? '?'}) next_imm=${hi | 0}`, slots: 2 };
      }
      return { text: `lddw %r${dst}, 0x${v.toString(16)}`, slots: 2 };
    }
    case 0x01: {
      const size = SIZE_NAME[opc & 0x18];
      const mode = opc & 0xe0;
      if (mode === 0x60) return { text: `ldx${size} %r${dst}, ${mem(src, off)}`, slots: 1 };
      if (mode === 0x80 && size !== 'dw') return { text: `ldxs${size} %r${dst}, ${mem(src, off)}`, slots: 1 };
      return bad;
    }
    case 0x02:
      if ((opc & 0xe0) !== 0x60) return bad;
      return { text: `st${SIZE_NAME[opc & 0x18]} ${mem(dst, off)}, ${immStr(imm)}`, slots: 1 };
    case 0x03: {
      const mode = opc & 0xe0;
      if (mode === 0x60) return { text: `stx${SIZE_NAME[opc & 0x18]} ${mem(dst, off)}, %r${src}`, slots: 1 };
      if (mode === 0xc0 && (opc & 0x18) !== 0x08 && (opc & 0x18) !== 0x10) {
        const sfx = (opc & 0x18) === 0x00 ? '32' : '';
        const fetch = imm & 1 && imm !== 0xe1 && imm !== 0xf1;
        const name = ATOMIC_NAME[imm] ?? ATOMIC_NAME[imm & ~1];
        if (name === undefined) return bad;
        return { text: `lock ${fetch ? 'fetch ' : ''}${name}${sfx} ${mem(dst, off)}, %r${src}`, slots: 1 };
      }
      return bad;
    }
  }
  return bad;
}

export function disassemble(code: Uint8Array, opts: DisasmOptions = {}): string[] {
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength - (code.byteLength % 8));
  const n = Math.floor(code.byteLength / 8);
  const out: string[] = [];
  for (let pc = 0; pc < n; ) {
    const { text, slots } = disassembleInsn(dv, pc, n);
    out.push(opts.withPc ? `${String(pc).padStart(4)}: ${text}` : text);
    pc += slots;
  }
  return out;
}
