// What one run is asked to do, fully checked: host/cli/buildPlan.ts turns the command line and
// the manifest into this, and runSession.ts carries it out. Nothing in it is user input any more.

import type { HookTarget, LoadRequest } from '../../protocol/messages';
import type { ObjectSpec } from '../../protocol/spec';
import type { MetricsConfig } from '../metrics/metricsConfig';
import type { TargetSpec } from './Session';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
  /** Seconds between map prints while the target runs. */
  interval?: number;
  histograms?: string[];
  records?: Record<string, string>;
  syscalls?: string[];
  /** Only these maps and globals in map prints (--maps). */
  maps?: string[];
  timestamps?: boolean;
}

export interface RunPlan {
  target: TargetSpec;
  /** `--count` functions (no eBPF). */
  count: HookTarget[];
  objects: ObjectSpec[];
  /** What to load into the agent; null when no objects were given. */
  load: LoadRequest | null;
  output: OutputOptions;
  durationSec?: number;
  /** Prometheus endpoint to serve while attached; null when not asked for. */
  metrics?: MetricsConfig | null;
  /** Said before attaching: programs skipped, overrides an attach type ignores (host/loader/refusals.ts). */
  warnings?: string[];
}
