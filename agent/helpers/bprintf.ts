// The format language of bpf_trace_printk, bpf_trace_vprintk and bpf_snprintf, following
// the kernel's bpf_bprintf_prepare: printable ASCII only; %d %i %u %x %X with optional
// l/ll (and h/hh/z, accepted as C does); %c %s %%; %p and its bpf variants (%pK %px %ps
// %pS %pB print the pointer, %pks %pus a string, %pi4 %pI4 %pi6 %pI6 an address); flags
// "0 + - space" and a width. No precision (the kernel refuses it too). Every conversion
// consumes one 64-bit argument; running out of arguments is -EINVAL, as in the kernel.
// The output is a byte string (one char per byte) so callers can write exact bytes.

import { EINVAL } from './errno.js';

export interface FormatMemory {
  /** A string argument's bytes (no NUL), at most `max` bytes; null when unreadable. */
  str(addr: bigint, max: number): Uint8Array | null;
  /** `len` bytes at `addr`, or null when unreadable. */
  bytes(addr: bigint, len: number): Uint8Array | null;
}

/** Longest string a %s copies (the kernel's per-call bprintf buffer is 512 bytes). */
export const MAX_STR_ARG = 512;

const PCT = 37;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
const isPunct = (c: number): boolean => (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);

/** Formats `fmt` (bytes up to, not including, the NUL) or returns a negative errno. */
export function bpfFormat(fmt: Uint8Array, args: ArrayLike<bigint>, mem: FormatMemory): string | number {
  let out = '';
  let argi = 0;
  const n = fmt.length;
  for (let i = 0; i < n; i++) {
    const c = fmt[i];
    if (!((c >= 32 && c < 127) || isSpace(c))) return -EINVAL;
    if (c !== PCT) {
      out += String.fromCharCode(c);
      continue;
    }
    if (++i >= n) return -EINVAL;
    if (fmt[i] === PCT) {
      out += '%';
      continue;
    }
    let left = false;
    let zero = false;
    let plus = false;
    let space = false;
    for (; i < n; i++) {
      const f = fmt[i];
      if (f === 45) left = true;
      else if (f === 48) zero = true;
      else if (f === 43) plus = true;
      else if (f === 32) space = true;
      else break;
    }
    let width = 0;
    while (i < n && isDigit(fmt[i])) width = Math.min(width * 10 + (fmt[i++] - 48), 1024);
    if (i >= n) return -EINVAL;
    if (argi >= args.length) return -EINVAL;
    const arg = BigInt.asUintN(64, args[argi++]);
    let prefix = '';
    let body: string;
    let numeric = true;
    const conv = fmt[i];
    if (conv === 112 /* p */) {
      const nx = i + 1 < n ? fmt[i + 1] : 0;
      const nx2 = i + 2 < n ? fmt[i + 2] : 0;
      if (nx === 0 || isSpace(nx) || isPunct(nx)) {
        prefix = '0x';
        body = arg.toString(16);
      } else if (nx === 75 /* K */ || nx === 120 /* x */ || nx === 115 /* s */ || nx === 83 /* S */ || nx === 66 /* B */) {
        // No kernel symbols or pointer hashing in a user process: the raw address says most.
        i++;
        prefix = '0x';
        body = arg.toString(16);
      } else if ((nx === 107 /* k */ || nx === 117 /* u */) && nx2 === 115 /* s */) {
        i += 2;
        body = strArg(mem, arg);
        numeric = false;
      } else if ((nx === 105 /* i */ || nx === 73 /* I */) && (nx2 === 52 || nx2 === 54)) {
        i += 2;
        body = ipArg(mem, arg, nx === 105, nx2 === 52);
        numeric = false;
      } else return -EINVAL;
    } else if (conv === 115 /* s */) {
      body = strArg(mem, arg);
      numeric = false;
    } else if (conv === 99 /* c */) {
      body = String.fromCharCode(Number(arg & 0xffn));
      numeric = false;
    } else {
      let bits = 32;
      let k = i;
      if (fmt[k] === 108 /* l */) {
        bits = 64;
        k++;
        if (fmt[k] === 108) k++;
      } else if (fmt[k] === 104 /* h */) {
        bits = 16;
        k++;
        if (fmt[k] === 104) {
          bits = 8;
          k++;
        }
      } else if (fmt[k] === 122 /* z */) {
        bits = 64;
        k++;
      }
      if (k >= n) return -EINVAL;
      i = k;
      const t = fmt[k];
      if (t === 100 /* d */ || t === 105 /* i */) {
        const v = BigInt.asIntN(bits, arg);
        if (v < 0n) {
          prefix = '-';
          body = (-v).toString(10);
        } else {
          prefix = plus ? '+' : space ? ' ' : '';
          body = v.toString(10);
        }
      } else if (t === 117 /* u */) body = BigInt.asUintN(bits, arg).toString(10);
      else if (t === 120 /* x */) body = BigInt.asUintN(bits, arg).toString(16);
      else if (t === 88 /* X */) body = BigInt.asUintN(bits, arg).toString(16).toUpperCase();
      else return -EINVAL;
    }
    const len = prefix.length + body.length;
    if (width <= len) out += prefix + body;
    else if (left) out += prefix + body + ' '.repeat(width - len);
    else if (zero && numeric) out += prefix + '0'.repeat(width - len) + body;
    else out += ' '.repeat(width - len) + prefix + body;
  }
  return out;
}

function strArg(mem: FormatMemory, addr: bigint): string {
  // A faulting string prints as empty, like the kernel's bprintf (it copies "" on error).
  const b = mem.str(addr, MAX_STR_ARG);
  if (b === null) return '';
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function ipArg(mem: FormatMemory, addr: bigint, padded: boolean, v4: boolean): string {
  const b = mem.bytes(addr, v4 ? 4 : 16);
  if (b === null) return '';
  if (v4) return Array.from(b, (x) => (padded ? x.toString().padStart(3, '0') : x.toString())).join('.');
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(((b[2 * g] << 8) | b[2 * g + 1]).toString(16).padStart(4, '0'));
  // %pi6 is the colon-less form; %pI6 keeps colons (uncompressed, like the kernel's %pI6).
  return groups.join(padded ? '' : ':');
}
