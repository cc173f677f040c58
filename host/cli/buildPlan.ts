// Command line + manifest → one RunPlan. All user input is checked here (the manifest by
// its schema, objects by the loader), so what runs behind it receives typed values.

import * as fs from 'fs';
import * as path from 'path';
import type { EngineSpec, HookTarget } from '../../protocol/messages';
import { repoRoot } from '../paths';
import { LoaderError } from '../loader/errors';
import { loadObject } from '../loader/loadObject';
import { buildLoadRequest } from '../manifest/buildLoadRequest';
import { ManifestError } from '../manifest/errors';
import { loadManifest } from '../manifest/loadManifest';
import type { ObjectConfig } from '../manifest/types';
import { resolveBinaries } from '../session/resolveBinaries';
import type { TargetSpec } from '../session/Session';
import { SessionError } from '../session/SessionError';
import { MetricsConfigError } from '../metrics/metricsConfig';
import { planMetrics } from '../metrics/planMetrics';
import type { RunPlan } from './runTarget';

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
  /** `--metrics [HOST:]PORT`. */
  metrics?: string;
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
  if (engine.kind === 'wasm' && (target.kind === 'pid' || o.durationSec !== undefined)) {
    // Measured: Frida's V8 crashes the target when it tears down a script whose hooks ran
    // WebAssembly, so the wasm engine is only for targets that run to their end.
    throw new SessionError('--engine wasm cannot detach from a process that keeps running (Frida tears WebAssembly down unsafely); use --engine native, or spawn without --duration', 'usage');
  }

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
  if (objects.length) {
    try {
      // Under a manifest, paths in section names are relative to its folder like every other path in it.
      load = { ...resolveBinaries(buildLoadRequest(objects, configs), manifest?.dir ?? process.cwd()), engine };
    } catch (e) {
      if (e instanceof ManifestError) throw new SessionError(e.message, 'usage');
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
  return {
    target,
    count: o.count,
    metrics,
    objects,
    load,
    durationSec: o.durationSec,
    output: {
      json: o.json || !!manifest?.output.json,
      verbose: o.verbose,
      interval: o.interval ?? manifest?.output.interval,
      histograms: manifest?.output.histograms ?? [],
      records: manifest?.output.records ?? {},
    },
  };
}
