// Value-slot layout shared by the map types: the kernel rounds per-CPU values to 8 bytes
// and we do the same for every slot so each value pointer handed to a program is 8-byte
// aligned (programs do 64-bit loads/atomics on them).

export const round8 = (n: number): number => (n + 7) & ~7;

/**
 * Writes a host- or program-supplied value into `slots` consecutive per-CPU slots at
 * `addr` (stride bytes apart). `cpu === 'all'` (host side): a value of stride*slots bytes
 * gives each CPU its own part (the kernel's user-space layout), a single value is
 * replicated. A program writes only its CPU and, when `zeroOthers`, clears the others (a
 * new per-CPU element starts zeroed on the other CPUs, as in the kernel).
 */
export function writeSlots(
  mem: Uint8Array,
  addr: number,
  stride: number,
  slots: number,
  valueSize: number,
  value: Uint8Array,
  cpu: number | 'all',
  zeroOthers: boolean,
): void {
  if (slots === 1) {
    mem.set(value.length === valueSize ? value : value.subarray(0, valueSize), addr);
    return;
  }
  if (cpu === 'all') {
    const each = value.length >= stride * slots;
    for (let c = 0; c < slots; c++) {
      const src = each ? value.subarray(c * stride, c * stride + valueSize) : value.subarray(0, valueSize);
      mem.set(src, addr + c * stride);
    }
    return;
  }
  if (zeroOthers) mem.fill(0, addr, addr + stride * slots);
  mem.set(value.length === valueSize ? value : value.subarray(0, valueSize), addr + cpu * stride);
}

/** Smallest host value a map accepts: one value, or (per-CPU, host side) one per CPU also ok. */
export function valueTooShort(value: Uint8Array, valueSize: number): boolean {
  return value.length < valueSize;
}

export function validFlags(flags: number): boolean {
  // BPF_ANY, BPF_NOEXIST, BPF_EXIST; BPF_F_LOCK needs bpf_spin_lock, which we do not have.
  return flags === 0 || flags === 1 || flags === 2;
}

/** The CPU slot a program's `cpu` selects (the runtime should never pass one out of range). */
export const cpuSlot = (cpu: number, slots: number): number => (slots === 1 ? 0 : cpu >>> 0 < slots ? cpu >>> 0 : (cpu >>> 0) % slots);
