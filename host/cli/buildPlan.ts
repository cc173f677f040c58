// Command line + manifest → one RunPlan. All user input is checked here (the manifest by
// its schema, objects by the loader), so what runs behind it receives typed values.

import * as fs from 'fs';
import * as path from 'path';
import type { EngineSpec, HookMechanism, HookTarget } from '../../protocol/messages';
import type { ObjectSpec } from '../../protocol/spec';
import { repoRoot } from '../paths';
import { LoaderError } from '../loader/errors';
import { loadObject } from '../loader/loadObject';
import { describeRefusal, overrideIgnored, refusals } from '../loader/refusals';
import { buildLoadRequest, tailCallTargets } from '../manifest/buildLoadRequest';
import { ManifestError } from '../manifest/errors';
import { loadManifest } from '../manifest/loadManifest';
import type { ObjectConfig } from '../manifest/types';
import { resolveBinaries } from '../session/resolveBinaries';
import { expandUsdt } from '../usdt/usdtLinks';
import type { TargetSpec } from '../session/Session';
import { SessionError } from '../session/SessionError';
import { MetricsConfigError } from '../metrics/metricsConfig';
import { planMetrics } from '../metrics/planMetrics';
import { unknownOutputName } from '../output/EventPrinter';
import type { RunPlan } from '../session/runPlan';

export interface PlanOptions {
  target?: TargetSpec;
  objects: string[];
  manifest?: string;
  count: HookTarget[];
  json: boolean;
  verbose: boolean;
  interval?: number;
  durationSec?: number;
  engine: string;
  /** --hooks interceptor|inline; the manifest's `hooks` when absent. */
  hooks?: HookMechanism;
  /** `--syscalls rewrite|stalker`; the manifest's `syscalls` when absent. */
  syscalls?: string;
  /** `--metrics [HOST:]PORT`. */
  metrics?: string;
  /** --maps: only these maps and globals in map prints. */
  maps?: string[];
  /** --timestamps on records. */
  timestamps?: boolean;
}

/** The native engine is the interpreter's gcc build, loaded into the target from this checkout. */
function engineSpec(name: string): EngineSpec {
  if (name === 'wasm') return { kind: 'wasm' };
  if (name !== 'native') throw new SessionError(`unknown engine "${name}"; use native or wasm`, 'usage');
  const library = path.join(repoRoot(), 'vm', 'build', 'libbpfvm.so');
  if (!fs.existsSync(library)) throw new SessionError(`the native engine ${library} is not built; run \`npm run build\``, 'usage');
  return { kind: 'native', library };
}

export function buildPlan(o: PlanOptions): RunPlan {
  const engine = engineSpec(o.engine);
  let manifest = null;
  try {
    manifest = o.manifest ? loadManifest(o.manifest) : null;
  } catch (e) {
    if (e instanceof ManifestError) throw new SessionError(e.message, 'usage');
    throw e;
  }
  const target = o.target ?? manifest?.target;
  if (!target) throw new SessionError(`${o.manifest}: no target: give "target": {"spawn": [...]} or {"pid": N}`, 'usage');

  // Each object with the path its errors should show: -o objects as the user typed them.
  const sources: { config: ObjectConfig; shown: string }[] = [
    ...(manifest?.objects ?? []).map((config) => ({ config, shown: config.path })),
    ...o.objects.map((p) => ({ config: { path: path.resolve(p), programs: {}, rodata: {}, maps: {} }, shown: p })),
  ];
  const configs = sources.map((x) => x.config);
  let objects;
  try {
    objects = sources.map((x) => loadObject(x.shown));
  } catch (e) {
    if (e instanceof LoaderError) throw new SessionError(e.message, 'attach');
    throw e;
  }
  let load = null;
  const warnings: string[] = [];
  if (objects.length) {
    let linkPlan;
    try {
      linkPlan = buildLoadRequest(objects, configs);
    } catch (e) {
      if (e instanceof ManifestError) throw new SessionError(e.message, 'usage');
      throw e;
    }
    warnings.push(...refuseEarly(objects, sources.map((x) => x.shown), configs, linkPlan));
    try {
      // Under a manifest, paths in section names are relative to its folder like every other
      // path in it; USDT probes become one uprobe per site, with their argument specs (host/usdt);
      // a probe named without a binary is looked for in the target's binaries.
      load = { ...expandUsdt(resolveBinaries(linkPlan, manifest?.dir ?? process.cwd()), target), engine };
      const hooks = o.hooks ?? manifest?.hooks;
      if (hooks) load.hooks = hooks;
      const syscalls = o.syscalls ?? manifest?.syscalls;
      if (syscalls === 'rewrite' || syscalls === 'stalker') load.syscalls = syscalls;
    } catch (e) {
      if (e instanceof LoaderError) throw new SessionError(e.message, 'attach');
      throw e;
    }
  }
  let metrics = null;
  try {
    metrics = planMetrics({ option: o.metrics, manifest: manifest ? { file: manifest.file, metrics: manifest.output.metrics } : undefined, objects });
  } catch (e) {
    if (e instanceof MetricsConfigError) throw new SessionError(e.message, 'usage');
    throw e;
  }
  const output = {
    json: o.json || !!manifest?.output.json,
    verbose: o.verbose,
    interval: o.interval ?? manifest?.output.interval,
    histograms: manifest?.output.histograms ?? [],
    records: manifest?.output.records ?? {},
    syscalls: manifest?.output.syscalls ?? [],
    maps: o.maps ?? manifest?.output.maps,
    timestamps: o.timestamps || !!manifest?.output.timestamps,
  };
  const badName = unknownOutputName(objects, output);
  if (badName !== null) throw new SessionError(`${o.manifest && !badName.startsWith('--') ? `${o.manifest}: ` : ''}${badName}`, 'usage');
  return {
    target,
    count: o.count,
    metrics,
    objects,
    load,
    durationSec: o.durationSec,
    warnings,
    output,
  };
}

/**
 * Everything the agent would refuse, for every object at once, before anything is spawned
 * or looked up (host/loader/refusals.ts); returns the warnings: programs skipped for their
 * section, overrides their attach type ignores.
 */
function refuseEarly(objects: ObjectSpec[], shown: string[], configs: ObjectConfig[], plan: ReturnType<typeof buildLoadRequest>): string[] {
  const problems: string[] = [];
  const warnings: string[] = [];
  objects.forEach((obj, oi) => {
    const linked = new Set([...plan.links.filter((l) => l.object === oi).map((l) => l.program), ...tailCallTargets(obj, oi, plan.mapInit)]);
    const found = refusals(obj, obj.programs.filter((p) => linked.has(p.name)));
    if (found.length) problems.push(`${shown[oi]}: ${found.map(describeRefusal).join('; ')}`);
    for (const u of obj.unsupported) {
      if (!configs[oi].programs[u.name]?.disabled) warnings.push(`${shown[oi]}: program "${u.name}" (section "${u.section}") is not attached: ${u.reason}`);
    }
    for (const l of plan.links.filter((x) => x.object === oi)) {
      const w = overrideIgnored(obj.programs.find((p) => p.name === l.program)!, l.attach);
      if (w !== null) warnings.push(`${shown[oi]}: ${w}`);
    }
  });
  if (problems.length) throw new SessionError(`cannot run: ${problems.join('; ')}`, 'attach');
  return warnings;
}
