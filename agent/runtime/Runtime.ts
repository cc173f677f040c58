// The agent runtime, after bpftime's bpf_attach_ctx: the registry of attach
// implementations (known only through the base interface; each registers itself with its
// attach types in agent/index.ts) and of the attach entries that link programs to them.
// A load makes one LoadedInstance (engine, maps, programs) and walks the links: program →
// VM, attach point → private data, link → attach entry whose callback runs the program.
// Detaching everything removes the hooks first, then releases the instance.

import type { AttachResult, LoadRequest, MapDump, ProgramStats, RecordStats } from '../../protocol/messages.js';
import { decodeBase64 } from '../base64.js';
import type { EventQueue } from '../events.js';
import { AttachError, attachTypeOf, type AttachImpl, type AttachType } from './AttachImpl.js';
import { LoadedInstance, type LoadedProgram } from './LoadedInstance.js';

/** One link made real: which implementation holds the hook, under which id, for which program. */
interface Attachment {
  impl: AttachImpl;
  id: number;
  program: LoadedProgram;
  description: string;
}

export class Runtime {
  private readonly impls = new Map<AttachType, AttachImpl>();
  private instance: LoadedInstance | null = null;
  private attachments: Attachment[] = [];
  /** Programs whose hooks detachAll removed: still in the final stats. */
  private readonly detachedPrograms = new Set<LoadedProgram>();

  constructor(private readonly events: EventQueue) {}

  registerAttachImpl(impl: AttachImpl): void {
    for (const t of impl.attachTypes) this.impls.set(t, impl);
  }

  load(req: LoadRequest): AttachResult[] {
    if (this.instance) throw new Error('objects are already loaded in this process; detach first');
    const instance = new LoadedInstance(req, this.events);
    this.instance = instance;
    for (const impl of new Set(this.impls.values())) impl.init(instance.services);
    for (const impl of new Set(this.impls.values())) {
      impl.registerCustomHelpers?.((id, _name, fn) => instance.registerHelper(id, fn));
    }

    const results: AttachResult[] = [];
    // Tail-call targets are loaded now, not on their first bpf_tail_call in the middle of a run.
    for (const init of req.mapInit) {
      const map = instance.maps.byObject[init.object]?.[init.map];
      if (map?.spec.type !== 'prog_array') continue;
      const slot = decodeBase64(init.value);
      const spec = req.objects[init.object]?.programs[new DataView(slot.buffer, slot.byteOffset, 4).getUint32(0, true)];
      if (!spec) continue;
      try {
        instance.loadProgram(init.object, spec.name);
      } catch (e) {
        results.push({ state: 'failed', target: `${spec.name} (in prog_array ${map.spec.name})`, error: e instanceof Error ? e.message : String(e) });
      }
    }
    for (const link of req.links) {
      const obj = req.objects[link.object];
      const label = `${link.program}`;
      try {
        const program = instance.loadProgram(link.object, link.program);
        const type = attachTypeOf(link.attach);
        const impl = this.impls.get(type);
        if (!impl) throw new AttachError(`no attach implementation for ${type} in this agent`);
        const data = impl.createPrivateData(link.attach, type);
        const cookie = link.cookie !== undefined ? BigInt(link.cookie) : 0n;
        const id = impl.createAttach(instance.callbackFor(program, cookie, link.attach), data, type);
        this.attachments.push({ impl, id, program, description: data.description });
        const target = `${label} → ${data.description}`;
        const waitingFor = impl.waitingFor?.(id);
        results.push(waitingFor !== undefined ? { state: 'pending', target, waitingFor } : { state: 'attached', target, where: impl.describeAttach?.(id) });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        results.push({ state: 'failed', target: `${label}${obj ? '' : ' (unknown object)'}`, error: msg });
      }
    }
    return results;
  }

  private loaded(): LoadedInstance {
    if (!this.instance) throw new Error('no eBPF objects are loaded');
    return this.instance;
  }

  mapLookup(object: number, index: number, key: string): string | string[] | null {
    return this.loaded().maps.lookup(object, index, key);
  }

  mapUpdate(object: number, index: number, key: string, value: string, flags: number): number {
    return this.loaded().maps.update(object, index, key, value, flags);
  }

  mapDelete(object: number, index: number, key: string): number {
    return this.loaded().maps.delete(object, index, key);
  }

  mapDump(): MapDump[] {
    return this.instance?.maps.dump() ?? [];
  }

  /** Hits that ran on the JS path (native-path hits are counted by the VM instead). */
  jsHits(): number {
    return this.instance?.jsHits() ?? 0;
  }

  /** Programs that are, or were until detachAll, attached somewhere. */
  stats(): ProgramStats[] {
    return this.instance?.programStats((p) => this.attachments.some((a) => a.program === p) || this.detachedPrograms.has(p)) ?? [];
  }

  /** Attach points still waiting for their library (a typo, or never dlopen'ed). */
  pending(): string[] {
    return this.attachments.filter((a) => a.impl.waitingFor?.(a.id) !== undefined).map((a) => a.description);
  }

  /** Per record map (ring buffer, perf array): produced and dropped so far. */
  recordStats(): RecordStats[] {
    return this.instance?.maps.recordStats() ?? [];
  }

  /** Removes every hook and then releases the instance; `beforeDispose` sees the maps as the hooks left them. */
  detachAll(beforeDispose: () => void = () => undefined): void {
    this.removeHooks();
    try {
      beforeDispose();
    } finally {
      this.instance?.dispose();
    }
  }

  private removeHooks(): void {
    for (const a of this.attachments) this.detachedPrograms.add(a.program);
    for (const a of this.attachments.splice(0)) {
      try {
        a.impl.detachById(a.id);
      } catch (e) {
        this.events.push({ type: 'log', level: 'error', text: `detaching ${a.description}: ${(e as Error).message}` });
      }
    }
    Interceptor.flush();
  }
}
