// ObjectSpecs + per-object configuration → the LoadRequest the agent runs. Attach points are
// decided here (CLI > manifest > section), globals are patched into copies of the data maps
// and initial map entries are encoded to their exact key/value sizes.

import type { AttachSpec, MapSpec, ObjectSpec } from '../../protocol/spec.js';
import type { LoadRequest, ProgramLink } from '../../protocol/messages.js';
import { EncodeError, encodeAt, encodeValue } from './encodeValue.js';
import { ManifestError, pointerKey } from './errors.js';
import type { InitValue, ObjectConfig } from './types.js';

/** A LoadRequest without the engine choice, which is the command line's, not the manifest's. */
export type LinkPlan = Omit<LoadRequest, 'engine'>;

/** An attach point given on the command line for one program (object omitted = every object that has it). */
export interface CliTarget {
  object?: number;
  program: string;
  attach: AttachSpec;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** Error prefix: the manifest location when the config came from one, the object otherwise. */
function where(obj: ObjectSpec, cfg: ObjectConfig | undefined, sub: string): string {
  if (cfg?.source) return `${cfg.source.file}: ${cfg.source.pointer}${sub}`;
  return `${obj.path}${sub ? ` ${sub}` : ''}`;
}

function describeAttachHint(section: string): string {
  if (/^k(ret)?probe/.test(section)) {
    const t = section.startsWith('kret') ? 'uretprobe' : 'uprobe';
    return `{"type": "${t}", "binary": "./prog", "symbol": "func"}`;
  }
  if (section.startsWith('uretprobe')) return '{"type": "uretprobe", "binary": "./prog", "symbol": "func"}';
  if (section.startsWith('usdt')) return '{"type": "usdt", "binary": "./prog", "provider": "provider", "probe": "name"}';
  return '{"type": "uprobe", "binary": "./prog", "symbol": "func"}';
}

/** kprobe sections name kernel functions, which do not exist here; they may only become uprobes. */
function checkKprobeAttach(obj: ObjectSpec, cfg: ObjectConfig | undefined, name: string, section: string, attach: AttachSpec): void {
  if (/^k(ret)?probe/.test(section) && attach.kind !== 'uprobe') {
    throw new ManifestError(`${where(obj, cfg, `/programs/${pointerKey(name)}/type`)}: program "${name}" (section "${section}") is a kprobe; give it type "uprobe", "uretprobe" or "uprobe_override", not "${attach.kind}"`);
  }
}

function globalMaps(obj: ObjectSpec): MapSpec[] {
  return obj.maps.filter((m) => (m.origin === 'rodata' || m.origin === 'data' || m.origin === 'bss') && m.vars !== undefined);
}

/** Copies of the global-data maps with the configured variables written in; the input object is untouched. */
function patchGlobals(obj: ObjectSpec, cfg: ObjectConfig | undefined): ObjectSpec {
  const rodata = cfg?.rodata ?? {};
  const names = Object.keys(rodata);
  if (names.length === 0) return obj;
  const buffers = new Map<number, Uint8Array>();
  const candidates = globalMaps(obj);
  // .rodata first: const volatile is how libbpf programs take configuration.
  candidates.sort((a, b) => Number(b.origin === 'rodata') - Number(a.origin === 'rodata'));
  for (const name of names) {
    const sub = `/rodata/${pointerKey(name)}`;
    let found: { map: MapSpec; v: NonNullable<MapSpec['vars']>[number] } | undefined;
    for (const m of candidates) {
      const v = m.vars!.find((x) => x.name === name);
      if (v) {
        found = { map: m, v };
        break;
      }
    }
    if (!found) {
      const avail = candidates.flatMap((m) => m.vars!.map((v) => v.name));
      throw new ManifestError(`${where(obj, cfg, sub)}: no global variable "${name}" in ${obj.path} (${avail.length ? `available: ${avail.join(', ')}` : 'it has no global variables'})`);
    }
    const { map, v } = found;
    let buf = buffers.get(map.index);
    if (!buf) {
      buf = new Uint8Array(map.valueSize);
      if (map.initialData) buf.set(Buffer.from(map.initialData, 'base64').subarray(0, map.valueSize));
      buffers.set(map.index, buf);
    }
    try {
      encodeAt(buf, v.offset, v.size, rodata[name], obj.btf, v.btfTypeId);
    } catch (err) {
      if (err instanceof EncodeError) throw new ManifestError(`${where(obj, cfg, sub)}: ${err.message}`);
      throw err;
    }
  }
  const maps = obj.maps.map((m) => {
    const buf = buffers.get(m.index);
    return buf ? { ...m, initialData: b64(buf) } : m;
  });
  return { ...obj, maps };
}

function encodeMapInit(obj: ObjectSpec, objectIndex: number, cfg: ObjectConfig | undefined): LoadRequest['mapInit'] {
  const out: LoadRequest['mapInit'] = [];
  for (const [mapName, entries] of Object.entries(cfg?.maps ?? {})) {
    const map = obj.maps.find((m) => m.name === mapName);
    const sub = `/maps/${pointerKey(mapName)}`;
    if (!map) {
      throw new ManifestError(`${where(obj, cfg, sub)}: no map "${mapName}" in ${obj.path} (maps: ${obj.maps.filter((m) => m.origin === 'btf' || m.origin === 'legacy').map((m) => m.name).join(', ') || 'none'})`);
    }
    if (map.type === 'ringbuf' || map.type === 'perf_event_array' || map.type === 'stack_trace' || map.type === 'bloom_filter' || map.type === 'unsupported') {
      throw new ManifestError(`${where(obj, cfg, sub)}: map "${mapName}" is a ${map.unsupported?.kernelType ?? map.type}; it has no entries to set`);
    }
    if (map.type === 'prog_array') {
      entries.forEach((e, i) => out.push(progArraySlot(obj, objectIndex, cfg, map, `${sub}/${i}`, e.key, e.value)));
      continue;
    }
    if (map.readOnly) throw new ManifestError(`${where(obj, cfg, sub)}: "${mapName}" is read-only global data; set its variables under "rodata"`);
    if (entries.length > map.maxEntries) {
      throw new ManifestError(`${where(obj, cfg, sub)}: ${entries.length} entries for map "${mapName}", more than its max_entries ${map.maxEntries}`);
    }
    entries.forEach((e, i) => {
      const enc = (part: 'key' | 'value', value: InitValue, size: number, typeId: number): Uint8Array => {
        try {
          return encodeValue(value, size, obj.btf, typeId);
        } catch (err) {
          if (err instanceof EncodeError) throw new ManifestError(`${where(obj, cfg, `${sub}/${i}/${part}`)}: ${err.message}`);
          throw err;
        }
      };
      const key = enc('key', e.key, map.keySize, map.btfKeyTypeId);
      if ((map.type === 'array' || map.type === 'percpu_array') && map.keySize === 4) {
        const k = Buffer.from(key).readUInt32LE(0);
        if (k >= map.maxEntries) throw new ManifestError(`${where(obj, cfg, `${sub}/${i}/key`)}: index ${k} is out of range for array "${mapName}" (max_entries ${map.maxEntries})`);
      }
      const value = enc('value', e.value, map.valueSize, map.btfValueTypeId);
      out.push({ object: objectIndex, map: map.index, key: b64(key), value: b64(value) });
    });
  }
  return out;
}

/**
 * A prog_array slot: the key is the index, the value a program of the same object, by name
 * (`"handle_open"`, what libbpf users set through the program's fd) or by index in the
 * object's program list. The agent stores the program's index.
 */
function progArraySlot(obj: ObjectSpec, objectIndex: number, cfg: ObjectConfig | undefined, map: MapSpec, sub: string, key: InitValue, value: InitValue): LoadRequest['mapInit'][number] {
  if (typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= map.maxEntries) {
    throw new ManifestError(`${where(obj, cfg, `${sub}/key`)}: a prog_array slot is an index 0..${map.maxEntries - 1}`);
  }
  const names = obj.programs.map((p) => p.name);
  let index = -1;
  if (typeof value === 'string') index = names.indexOf(value);
  else if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < names.length) index = value;
  if (index < 0) {
    const unsupported = typeof value === 'string' ? obj.unsupported.find((u) => u.name === value) : undefined;
    const why = unsupported ? `"${value}" cannot run here: ${unsupported.reason}` : `no program ${JSON.stringify(value)} in ${obj.path}`;
    throw new ManifestError(`${where(obj, cfg, `${sub}/value`)}: ${why} (a prog_array slot holds a program: ${names.join(', ') || 'none'})`);
  }
  const k = new Uint8Array(4);
  const v = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, key, true);
  new DataView(v.buffer).setUint32(0, index, true);
  return { object: objectIndex, map: map.index, key: b64(k), value: b64(v) };
}

/** The prog_array slots an object declares itself (`.values = { [0] = &prog }`), before the manifest's. */
function declaredSlots(obj: ObjectSpec, objectIndex: number): LoadRequest['mapInit'] {
  const out: LoadRequest['mapInit'] = [];
  for (const m of obj.maps) {
    for (const d of m.declaredSlots ?? []) {
      const index = obj.programs.findIndex((p) => p.name === d.program);
      if (index < 0) continue; // a program that cannot run here: the refusal says so
      const k = new Uint8Array(4);
      const v = new Uint8Array(4);
      new DataView(k.buffer).setUint32(0, d.slot, true);
      new DataView(v.buffer).setUint32(0, index, true);
      out.push({ object: objectIndex, map: m.index, key: b64(k), value: b64(v) });
    }
  }
  return out;
}

/** Programs a prog_array slot of `init` points at: tail-call targets, which need no attach point of their own. */
export function tailCallTargets(obj: ObjectSpec, objectIndex: number, init: LoadRequest['mapInit']): Set<string> {
  const out = new Set<string>();
  for (const e of init) {
    if (e.object !== objectIndex || obj.maps[e.map]?.type !== 'prog_array') continue;
    const p = obj.programs[Buffer.from(e.value, 'base64').readUInt32LE(0)];
    if (p) out.add(p.name);
  }
  return out;
}

/**
 * Builds the agent's LoadRequest. `perObject[i]` configures `objects[i]` (missing entries =
 * no configuration, which is how CLI-only runs call this: `buildLoadRequest(objects, [])`).
 * Throws ManifestError naming the object, program and what to write when a program has no
 * attach point. The given objects are never mutated.
 */
export function buildLoadRequest(objects: ObjectSpec[], perObject: ObjectConfig[], cliTargets: CliTarget[] = []): LinkPlan {
  const links: ProgramLink[] = [];
  const mapInit: LoadRequest['mapInit'] = [];
  const outObjects: ObjectSpec[] = [];
  for (const [oi, obj] of objects.entries()) {
    const cfg = perObject[oi];
    const configured = cfg?.programs ?? {};
    // Slots first: a program only reached through bpf_tail_call needs no attach point.
    const slots = [...declaredSlots(obj, oi), ...encodeMapInit(obj, oi, cfg)];
    const targets = tailCallTargets(obj, oi, slots);
    for (const name of Object.keys(configured)) {
      if (!obj.programs.some((p) => p.name === name)) {
        const unsupported = obj.unsupported.find((u) => u.name === name);
        const detail = unsupported ? `"${name}" cannot run here: ${unsupported.reason}` : `no program "${name}" in ${obj.path}`;
        throw new ManifestError(`${where(obj, cfg, `/programs/${pointerKey(name)}`)}: ${detail} (programs: ${obj.programs.map((p) => p.name).join(', ') || 'none'})`);
      }
    }
    for (const prog of obj.programs) {
      const pc = configured[prog.name];
      if (pc?.disabled) continue;
      const cli = cliTargets.find((t) => t.program === prog.name && (t.object === undefined || t.object === oi));
      const attach = cli?.attach ?? pc?.attach ?? prog.attach;
      if (!attach && targets.has(prog.name)) continue;
      if (!attach) {
        const why = prog.attachNote ? `${prog.attachNote}. ` : '';
        const fix = cfg?.source
          ? `add "${prog.name}": ${describeAttachHint(prog.section)} under ${cfg.source.pointer}/programs, or "${prog.name}": {"disabled": true}`
          : `give it in a manifest: "programs": {"${prog.name}": ${describeAttachHint(prog.section)}} (or {"disabled": true})`;
        throw new ManifestError(`${cfg?.source ? `${cfg.source.file}: ` : ''}${obj.path}: program "${prog.name}" (section "${prog.section}") has no attach point: ${why}${fix}`);
      }
      checkKprobeAttach(obj, cfg, prog.name, prog.section, attach);
      const link: ProgramLink = { object: oi, program: prog.name, attach: { ...attach } };
      if (pc?.cookie !== undefined) link.cookie = pc.cookie;
      links.push(link);
      // Further attach points (a manifest list): more links to the same program, so one
      // loaded copy runs on each and its maps are shared, as with several libbpf links.
      if (!cli) {
        for (const m of pc?.more ?? []) {
          checkKprobeAttach(obj, cfg, prog.name, prog.section, m.attach);
          links.push({ object: oi, program: prog.name, attach: { ...m.attach }, ...(m.cookie !== undefined ? { cookie: m.cookie } : {}) });
        }
      }
    }
    outObjects.push(patchGlobals(obj, cfg));
    mapInit.push(...slots);
  }
  return { objects: outObjects, links, mapInit };
}
