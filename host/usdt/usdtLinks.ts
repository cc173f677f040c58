// USDT links → what the agent attaches, done as libbpf's usdt.c does it: one uprobe per
// probe site (here a 1-byte breakpoint hook, `trap`), the site's semaphore raised while
// attached, and for objects built with usdt.bpf.h, one argument spec per distinct (argument
// string, cookie) written into its `__bpf_usdt_specs` map. The spec's id is the link's BPF
// cookie: this runtime answers LINUX_HAS_BPF_COOKIE = 1 (loader/externs.ts), so usdt.bpf.h
// finds the spec through bpf_get_attach_cookie and never needs `__bpf_usdt_ip_to_spec_id`.
// The user's cookie (manifest) becomes the spec's usdt_cookie (bpf_usdt_cookie()).

import * as fs from 'fs';
import * as path from 'path';
import type { BtfSpec } from '../../protocol/btf';
import { resolveType } from '../../protocol/btfWalk';
import type { LoadRequest, ProgramLink } from '../../protocol/messages';
import type { MapSpec, ObjectSpec } from '../../protocol/spec';
import { parseUsdtArgs, type UsdtArgSpec } from './usdtArgs';
import type { TargetSpec } from '../session/Session';
import { readUsdtBinary, UsdtError, type UsdtBinary, type UsdtSite } from './stapsdt';

const SPECS_MAP = '__bpf_usdt_specs';
/** Where a library named without a path is looked for (Debian's multiarch layout first). */
const LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

type Plan = Pick<LoadRequest, 'objects' | 'links' | 'mapInit'>;

/**
 * The file a USDT binary names: a path (already absolute after resolveBinaries), else, as
 * libbpf resolves it, a library in the usual folders or a program in PATH.
 */
export function usdtBinaryPath(binary: string): string | undefined {
  if (binary.includes('/')) return fs.existsSync(binary) ? fs.realpathSync(binary) : undefined;
  const dirs = /\.so(\.|$)/.test(binary) ? LIBRARY_DIRS : (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const dir of dirs) {
    const p = path.join(dir, binary);
    if (fs.existsSync(p)) return fs.realpathSync(p);
  }
  return undefined;
}

/**
 * Where a probe named without a binary is looked for, as bpftrace's usdt:PROVIDER:NAME with
 * -p does: an attached process's main executable and every file it has mapped executable
 * (its loaded libraries); a spawned one's program, resolved like execvp (its libraries are
 * not loaded yet when the plan is made).
 */
function targetBinaries(target: TargetSpec | undefined): string[] {
  if (target === undefined) return [];
  if (target.kind === 'spawn') {
    const prog = target.argv[0] ?? '';
    const file = prog.includes('/') ? usdtBinaryPath(path.resolve(target.cwd ?? process.cwd(), prog)) : usdtBinaryPath(prog);
    return file === undefined ? [] : [file];
  }
  const files: string[] = [];
  try {
    files.push(fs.realpathSync(`/proc/${target.pid}/exe`));
  } catch {
    return files;
  }
  let maps = '';
  try {
    maps = fs.readFileSync(`/proc/${target.pid}/maps`, 'utf8');
  } catch {
    return files;
  }
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path: file-backed executable mappings only.
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !f[1].includes('x') || !f[5].startsWith('/')) continue;
    const file = f.slice(5).join(' ');
    if (!files.includes(file) && fs.existsSync(file)) files.push(file);
  }
  return files;
}

/** A binary's USDT notes, read once; an unreadable library of the target just has none. */
function cachedBinary(cache: Map<string, UsdtBinary>, file: string, mustRead: boolean): UsdtBinary | undefined {
  let bin = cache.get(file);
  if (bin) return bin;
  try {
    bin = readUsdtBinary(file);
  } catch (e) {
    if (mustRead) throw e;
    return undefined;
  }
  cache.set(file, bin);
  return bin;
}

interface Member {
  offset: number;
  size: number;
}

/** Byte offsets of a struct's members, by name (following typedefs), from BTF. */
function members(btf: BtfSpec, id: number): Map<string, Member & { type: number }> {
  const out = new Map<string, Member & { type: number }>();
  const t = resolveType(btf, id);
  if (!t || t.kind !== 'struct') return out;
  for (const m of t.members) out.set(m.name, { offset: m.offsetBits / 8, size: 0, type: m.type });
  return out;
}

/** struct __bpf_usdt_spec bytes for `args` and `cookie`, laid out by the object's own BTF. */
function encodeSpec(map: MapSpec, btf: BtfSpec | null, args: UsdtArgSpec[], cookie: bigint): Uint8Array {
  const out = new Uint8Array(map.valueSize);
  const view = new DataView(out.buffer);
  const spec = btf ? members(btf, map.btfValueTypeId) : new Map();
  const argsM = spec.get('args');
  const cookieM = spec.get('usdt_cookie');
  const cntM = spec.get('arg_cnt');
  let argBase = 0;
  let argStride = 16;
  let f = { val_off: 0, arg_type: 8, reg_off: 12, arg_signed: 14, arg_bitshift: 15 };
  if (btf && argsM) {
    argBase = argsM.offset;
    const arr = btf.types[argsM.type];
    if (arr?.kind === 'array') {
      const m = members(btf, arr.type);
      const at = (n: string, d: number) => m.get(n)?.offset ?? d;
      f = { val_off: at('val_off', 0), arg_type: at('arg_type', 8), reg_off: at('reg_off', 12), arg_signed: at('arg_signed', 14), arg_bitshift: at('arg_bitshift', 15) };
      const elem = btf.types[arr.type];
      if (elem?.kind === 'struct') argStride = elem.size;
    }
  }
  args.forEach((a, i) => {
    const o = argBase + i * argStride;
    view.setBigUint64(o + f.val_off, BigInt.asUintN(64, a.valOff), true);
    view.setInt32(o + f.arg_type, a.argType, true);
    view.setInt16(o + f.reg_off, a.regOff, true);
    view.setUint8(o + f.arg_signed, a.signed ? 1 : 0);
    view.setInt8(o + f.arg_bitshift, a.bitshift);
  });
  view.setBigUint64(cookieM?.offset ?? 192, BigInt.asUintN(64, cookie), true);
  view.setInt16(cntM?.offset ?? 200, args.length, true);
  return out;
}

const u32Key = (n: number): string => Buffer.from(new Uint32Array([n]).buffer).toString('base64');

/**
 * Replaces every USDT link of `plan` by its sites' uprobe links and adds the spec-map
 * entries. Throws UsdtError (one line, naming the object, program and probe) when a binary,
 * probe or argument cannot be used.
 */
export function expandUsdt<T extends Plan>(plan: T, target?: TargetSpec): T {
  if (!plan.links.some((l) => l.attach.kind === 'usdt')) return plan;
  const binaries = new Map<string, UsdtBinary>();
  const specIds = new Map<number, Map<string, number>>();
  const links: ProgramLink[] = [];
  const mapInit = [...plan.mapInit];
  for (const link of plan.links) {
    const a = link.attach;
    if (a.kind !== 'usdt') {
      links.push(link);
      continue;
    }
    const obj: ObjectSpec = plan.objects[link.object];
    const what = `${obj.path}: program ${link.program}: USDT ${a.provider}:${a.name}`;
    const found: { file: string; bin: UsdtBinary; sites: UsdtSite[] }[] = [];
    if (a.binary === undefined) {
      const section = obj.programs.find((p) => p.name === link.program)?.section ?? `usdt/${a.provider}:${a.name}`;
      const files = targetBinaries(target);
      for (const file of files) {
        const bin = cachedBinary(binaries, file, false);
        const sites = bin?.sites.filter((s) => s.provider === a.provider && s.name === a.name) ?? [];
        if (bin && sites.length) found.push({ file, bin, sites });
      }
      if (found.length === 0) {
        const where = files.length ? files.join(', ') : 'nothing: the target is not known yet';
        throw new UsdtError(`${what}: section "${section}" names no binary and no binary of the target has ${a.provider}:${a.name} (looked in ${where})`);
      }
    } else {
      const file = usdtBinaryPath(a.binary);
      if (file === undefined) throw new UsdtError(`${what}: binary ${a.binary} not found`);
      const bin = cachedBinary(binaries, file, true)!;
      const sites = bin.sites.filter((s) => s.provider === a.provider && s.name === a.name);
      if (sites.length === 0) {
        const have = [...new Set(bin.sites.map((s) => `${s.provider}:${s.name}`))];
        throw new UsdtError(`${what}: no such probe in ${file} (${have.length ? `it has ${have.join(', ')}` : 'it has no USDT probes; was it built with sys/sdt.h?'})`);
      }
      found.push({ file, bin, sites });
    }
    const specMap = obj.maps.find((m) => m.name === SPECS_MAP && m.type === 'array');
    const ids = specIds.get(link.object) ?? new Map<string, number>();
    specIds.set(link.object, ids);
    const userCookie = link.cookie !== undefined ? BigInt(link.cookie) : 0n;
    for (const { file, bin, sites } of found) for (const site of sites) {
      const base = { kind: 'uprobe' as const, mode: 'entry' as const, binary: file, offset: site.fileOffset, trap: true };
      const attach = site.semaphoreOffset !== undefined ? { ...base, semaphoreOffset: site.semaphoreOffset } : base;
      if (!specMap) {
        // Not built with usdt.bpf.h: the program reads pt_regs itself; the cookie is the user's.
        links.push({ ...link, attach });
        continue;
      }
      let args: UsdtArgSpec[];
      try {
        args = parseUsdtArgs(site.args, site.vaddr, bin.symbol);
      } catch (e) {
        throw new UsdtError(`${what}: site at 0x${site.vaddr.toString(16)}: ${(e as Error).message}`);
      }
      const key = `${site.args}\0${userCookie}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = ids.size;
        if (id >= specMap.maxEntries) throw new UsdtError(`${what}: more than ${specMap.maxEntries} distinct USDT argument specs (raise BPF_USDT_MAX_SPEC_CNT)`);
        ids.set(key, id);
        mapInit.push({ object: link.object, map: specMap.index, key: u32Key(id), value: Buffer.from(encodeSpec(specMap, obj.btf, args, userCookie)).toString('base64') });
      }
      links.push({ ...link, attach, cookie: String(id) });
    }
  }
  return { ...plan, links, mapInit };
}
