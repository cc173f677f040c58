// Typed manifest values: what the rest of the host receives after loadManifest validated the
// JSON once. Paths in here are already absolute.

import type { AttachSpec } from '../../protocol/spec.js';

/** A value for a global or a map key/value: numbers (decimal strings beyond 2^53), booleans,
 *  raw bytes as `0x` hex (memory order) or a byte array, text for char arrays, enum names,
 *  or an object of struct fields. */
export type InitValue = number | boolean | string | number[] | { [field: string]: InitValue };

export type Target =
  | { kind: 'spawn'; argv: string[]; env?: Record<string, string>; cwd?: string }
  | { kind: 'pid'; pid: number };

export interface ProgramConfig {
  /** Skip the program: not attached at all. */
  disabled: boolean;
  /** Replaces the section's attach point when present. */
  attach?: AttachSpec;
  /** Passed through to ProgramLink.cookie (bpf_get_attach_cookie). */
  cookie?: string;
  /** Further attach points when the manifest gives a list: the same program (one copy, its maps shared) runs on each. */
  more?: { attach: AttachSpec; cookie?: string }[];
}

export interface MapEntryConfig {
  key: InitValue;
  value: InitValue;
}

export interface ObjectConfig {
  /** Absolute path of the .bpf.o. */
  path: string;
  programs: Record<string, ProgramConfig>;
  rodata: Record<string, InitValue>;
  maps: Record<string, MapEntryConfig[]>;
  /** Where errors about this object point: manifest file and JSON pointer (`/objects/0`). */
  source?: { file: string; pointer: string };
}

export interface OutputConfig {
  json: boolean;
  /** Seconds between map prints while the target runs; absent = only at the end. */
  interval?: number;
  /** Maps to draw as log2 histograms regardless of their name. */
  histograms: string[];
  /** Ring buffer / perf map name → BTF struct name of its records. */
  records: Record<string, string>;
  /** Maps whose integer keys are syscall numbers, printed by name. */
  syscalls: string[];
  /** Only these maps and globals in map prints. */
  maps?: string[];
  /** A time column on records. */
  timestamps: boolean;
  /** Prometheus metrics (shape checked by the schema; names against the objects in host/metrics/planMetrics.ts). */
  metrics?: MetricsManifest;
}

/** `output.metrics` as the schema guarantees it. */
export interface MetricsManifest {
  listen?: string;
  cacheSeconds?: number;
  maxSeries?: number;
  prefix?: string;
  maps?: Record<
    string,
    {
      metric?: string;
      type?: 'counter' | 'gauge' | 'histogram';
      help?: string;
      labels?: Record<string, string>;
      decoders?: Record<string, 'syscall' | 'symbol' | 'hex'>;
      scale?: number;
      maxSeries?: number;
      disabled?: boolean;
    }
  >;
}

export interface Manifest {
  /** The manifest file as given (error messages start with it). */
  file: string;
  /** Absolute folder relative paths were resolved against. */
  dir: string;
  target?: Target;
  objects: ObjectConfig[];
  output: OutputConfig;
  /** How syscall tracepoints are reached (`--syscalls`, which wins when given). */
  syscalls?: 'rewrite' | 'stalker';
  /** How uprobes hook functions (`--hooks`, which wins when given). */
  hooks?: 'interceptor' | 'inline';
}
