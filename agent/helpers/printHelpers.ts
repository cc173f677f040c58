// bpf_trace_printk, bpf_trace_vprintk, bpf_snprintf and bpf_strncmp: the string helpers.
// printk output becomes a host event instead of a line in trace_pipe.

import { bpfFormat, type FormatMemory } from './bprintf.js';
import { EFAULT, EINVAL } from './errno.js';
import { sizeArg, type HelperDef } from './HelperDef.js';
import type { HelperEnv } from './HelperEnv.js';
import { anyBytes, anyCString, latin1ToText, vmCString } from './vmStrings.js';
import { helperId } from '../../protocol/helperTable.js';

/** The kernel's bprintf limits: 12 varargs, 1 KiB of trace_printk output. */
export const MAX_VARARGS = 12;
const MAX_PRINTK_BYTES = 1023;
const MAX_FMT = 4096;

export function printHelpers(env: HelperEnv): HelperDef[] {
  const vm = env.vm;
  const fmem: FormatMemory = {
    str: (addr, max) => anyCString(vm, env.memory, addr, max),
    bytes: (addr, len) => anyBytes(vm, env.memory, addr, len),
  };
  const printkArgs: bigint[] = [0n, 0n, 0n];

  /** fmt/fmt_size as trace_printk takes them: the NUL must be within fmt_size. */
  const sizedFmt = (fmt: bigint, size: bigint): Uint8Array | number => {
    const n = sizeArg(size);
    if (n <= 0) return -EINVAL;
    if (!vm.isAccessible(fmt, n, false)) return -EFAULT;
    const a = Number(fmt);
    const b = vm.memory().subarray(a, a + n);
    const z = b.indexOf(0);
    return z < 0 ? -EINVAL : b.subarray(0, z);
  };

  /** The u64 array of trace_vprintk/snprintf, or a negative errno. */
  const varargs = (data: bigint, dataLen: bigint): bigint[] | number => {
    const n = sizeArg(dataLen);
    if (n < 0 || n % 8 !== 0 || n > MAX_VARARGS * 8) return -EINVAL;
    if (n === 0) return [];
    if (!vm.isAccessible(data, n, false)) return -EFAULT;
    const mem = vm.memory();
    const a = Number(data);
    const out: bigint[] = [];
    for (let o = 0; o < n; o += 8) {
      const lo = (mem[a + o] | (mem[a + o + 1] << 8) | (mem[a + o + 2] << 16) | (mem[a + o + 3] << 24)) >>> 0;
      const hi = (mem[a + o + 4] | (mem[a + o + 5] << 8) | (mem[a + o + 6] << 16) | (mem[a + o + 7] << 24)) >>> 0;
      out.push((BigInt(hi) << 32n) | BigInt(lo));
    }
    return out;
  };

  const emit = (out: string): number => {
    let text = latin1ToText(out.length > MAX_PRINTK_BYTES ? out.slice(0, MAX_PRINTK_BYTES) : out);
    if (text.endsWith('\n')) text = text.slice(0, -1);
    env.events.push({ type: 'printk', tid: env.run.tid, program: env.run.program, text });
    return out.length;
  };

  return [
    {
      id: helperId('trace_printk'), // trace_printk(fmt, fmt_size, a1, a2, a3)
      fn: (fmt, size, a1, a2, a3) => {
        const f = sizedFmt(fmt, size);
        if (typeof f === 'number') return f;
        printkArgs[0] = a1;
        printkArgs[1] = a2;
        printkArgs[2] = a3;
        const out = bpfFormat(f, printkArgs, fmem);
        return typeof out === 'number' ? out : emit(out);
      },
    },
    {
      id: helperId('trace_vprintk'), // trace_vprintk(fmt, fmt_size, data, data_len)
      fn: (fmt, size, data, dataLen) => {
        const f = sizedFmt(fmt, size);
        if (typeof f === 'number') return f;
        const args = varargs(data, dataLen);
        if (typeof args === 'number') return args;
        const out = bpfFormat(f, args, fmem);
        return typeof out === 'number' ? out : emit(out);
      },
    },
    {
      id: helperId('snprintf'), // snprintf(str, str_size, fmt, data, data_len) → length including the NUL
      fn: (str, strSize, fmt, data, dataLen) => {
        const size = sizeArg(strSize);
        if (size < 0) return -EINVAL;
        const f = vmCString(vm, fmt, MAX_FMT);
        if (f === null) return -EFAULT;
        const args = varargs(data, dataLen);
        if (typeof args === 'number') return args;
        const out = bpfFormat(f, args, fmem);
        if (typeof out === 'number') return out;
        if (size > 0) {
          if (!vm.isAccessible(str, size, true)) return -EFAULT;
          const d = Number(str);
          const n = Math.min(out.length, size - 1);
          const mem = vm.memory();
          for (let i = 0; i < n; i++) mem[d + i] = out.charCodeAt(i);
          mem[d + n] = 0;
        }
        return out.length + 1;
      },
    },
    {
      id: helperId('strncmp'), // strncmp(s1, s1_sz, s2): s1 is a sized buffer, s2 a NUL-terminated constant
      fn: (s1, s1Size, s2) => {
        const n = sizeArg(s1Size);
        if (n < 0) return -EINVAL;
        if (n === 0) return 0;
        if (!vm.isAccessible(s1, n, false)) return -EFAULT;
        const b = vmCString(vm, s2, n) ?? anyCString(vm, env.memory, s2, n);
        if (b === null) return -EFAULT;
        const mem = vm.memory();
        const a = Number(s1);
        for (let i = 0; i < n; i++) {
          const c1 = mem[a + i];
          const c2 = i < b.length ? b[i] : 0;
          if (c1 !== c2) return c1 < c2 ? -1 : 1;
          if (c1 === 0) return 0;
        }
        return 0;
      },
    },
  ];
}
