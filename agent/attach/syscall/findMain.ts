// The main program's main(), even when the binary is stripped: glibc's _start (the ELF
// entry point) loads main's address into rdi, then calls __libc_start_main. A spawned
// process is already inside __libc_start_main when the agent loads, so main() is the
// first place its main thread can be caught.

const ET_DYN = 3;

/** Address main() is at, or null when neither a symbol nor _start gives it. */
export function findMain(): NativePointer | null {
  const module = Process.mainModule;
  const sym = module.findSymbolByName('main');
  if (sym !== null) return sym;
  try {
    const type = module.base.add(16).readU16();
    const entry = module.base.add(24).readU64();
    let pc = type === ET_DYN ? module.base.add(entry) : ptr(entry.toString());
    for (let i = 0; i < 32; i++) {
      const ins = Instruction.parse(pc) as X86Instruction;
      if (ins.mnemonic === 'call' || ins.mnemonic === 'hlt' || ins.mnemonic === 'jmp') return null;
      const [dst, src] = ins.operands;
      if (dst?.type === 'reg' && dst.value === 'rdi' && src?.type === 'mem' && src.value.base === 'rip') {
        const target = ins.next.add(src.value.disp);
        if (ins.mnemonic === 'lea') return target; // lea main(%rip), %rdi
        if (ins.mnemonic === 'mov') return target.readPointer(); // mov main@GOT(%rip), %rdi
      }
      pc = ins.next;
    }
  } catch {
    /* unreadable or unexpected code: no main */
  }
  return null;
}
