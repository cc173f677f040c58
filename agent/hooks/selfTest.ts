// A test-only agent entry (test/e2e/hookPrimitives.test.ts builds it with frida-compile):
// drives rawMemory, nearMemory and codePatcher inside a real victim through RPC, with a
// minimal counting hook built from them.

import { allocNear, rel32Reaches } from './nearMemory.js';
import { patchCodeLive, syncMechanism } from './codePatcher.js';
import { rawAlloc, rawBytesHandedOut } from './rawMemory.js';
import { trapHandlerAddress, trapSiteDest } from './trapHandler.js';
import { hookRegistry } from './hookRegistry.js';

interface MiniHook {
  addr: NativePointer;
  original: number[];
  stub: NativePointer;
  counter: NativePointer;
}

const hooks = new Map<string, MiniHook>();

function relocate(addr: NativePointer, into: NativePointer, room: number): number {
  let size = 0;
  Memory.patchCode(into, room, (c) => {
    const w = new X86Writer(c, { pc: into });
    const r = new X86Relocator(addr, w);
    let eob = false;
    while (size < 5) {
      const n = r.readOne();
      if (n === 0) throw new Error(`cannot relocate at ${addr}`);
      size = n;
      eob = r.eob;
      if (eob) break;
    }
    r.writeAll();
    if (!eob) w.putJmpAddress(addr.add(size));
    w.flush();
  });
  if (size < 5) throw new Error(`${addr}: only ${size} bytes before the function ends`);
  return size;
}

rpc.exports = {
  rawExec(): number {
    const code = rawAlloc(16, 'code');
    code.writeByteArray([0xb8, 42, 0, 0, 0, 0xc3]); // mov eax, 42; ret
    return new NativeFunction(code, 'int', [])();
  },
  nearDistance(addr: string): string {
    const at = ptr(addr);
    const p = allocNear(at, 256);
    if (!rel32Reaches(at.add(5), p) || !rel32Reaches(p.add(256), at)) throw new Error(`${p} out of reach of ${at}`);
    return (BigInt(p.toString()) - BigInt(at.toString())).toString();
  },
  info(): { sync: string; registry: string; trap: string; bytes: number } {
    return { sync: syncMechanism(), registry: hookRegistry().toString(), trap: trapHandlerAddress().toString(), bytes: rawBytesHandedOut() };
  },
  hook(addr: string): void {
    const at = ptr(addr);
    const key = at.toString();
    let h = hooks.get(key);
    if (!h) {
      const stub = allocNear(at, 128);
      const counter = allocNear(at, 8, 'data', 8);
      // lock inc qword [rip + counter]: 8 bytes, then the relocated instructions.
      const disp = Number(BigInt(counter.toString()) - BigInt(stub.add(8).toString()));
      const d = new DataView(new ArrayBuffer(4));
      d.setInt32(0, disp, true);
      stub.writeByteArray([0xf0, 0x48, 0xff, 0x05, d.getUint8(0), d.getUint8(1), d.getUint8(2), d.getUint8(3)]);
      const len = relocate(at, stub.add(8), 120);
      h = { addr: at, original: Array.from(new Uint8Array(at.readByteArray(len)!)), stub, counter };
      hooks.set(key, h);
    }
    const rel = Number(BigInt(h.stub.toString()) - BigInt(at.add(5).toString()));
    const d = new DataView(new ArrayBuffer(4));
    d.setInt32(0, rel, true);
    const jmp = [0xe9, d.getUint8(0), d.getUint8(1), d.getUint8(2), d.getUint8(3)];
    while (jmp.length < h.original.length) jmp.push(0xcc); // never executed: the jmp leaves first
    patchCodeLive(at, jmp, h.stub);
  },
  unhook(addr: string): string {
    const h = hooks.get(ptr(addr).toString())!;
    patchCodeLive(h.addr, h.original, h.stub);
    return h.counter.readU64().toString();
  },
  trapDest(addr: string): string {
    return trapSiteDest(ptr(addr)).toString();
  },
};
