// bpftime-ts command line. Every command catches user mistakes and prints one line; only
// -v adds stack traces for bugs of our own.

import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_HOOK_MECHANISM, HOOK_MECHANISMS, type HookMechanism } from '../../protocol/messages';
import type { HookTarget } from '../../protocol/messages';
import { registerDisasmCommand } from './disasmCommand';
import { EXIT, exitCodeFor } from './exitCodes';
import { MAX_DURATION_S, MAX_INTERVAL_S, MIN_INTERVAL_S } from '../manifest/limits';
import { registerInspectCommand } from './inspectCommand';
import { parseHookTarget } from './parseHookTarget';
import { buildPlan } from './buildPlan';
import { runTarget } from './runTarget';
import type { TargetSpec } from '../session/Session';
import { SessionError } from '../session/SessionError';
import { registerVmCommands } from './vmCommands';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseTargets(specs: string[]): HookTarget[] {
  return specs.map((s) => {
    try {
      return parseHookTarget(s);
    } catch (e) {
      throw new CommanderError(EXIT.USAGE, 'bpftime-ts.usage', `error: ${(e as Error).message}`);
    }
  });
}

function positiveNumber(name: string, min = 0, max = MAX_DURATION_S) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new CommanderError(EXIT.USAGE, 'bpftime-ts.usage', `error: ${name} must be a positive number, got "${value}"`);
    if (n < min || n > max) throw new CommanderError(EXIT.USAGE, 'bpftime-ts.usage', `error: ${name} must be between ${min} and ${max} seconds, got "${value}"`);
    return n;
  };
}

function pidArg(value: string): number {
  if (!/^\d+$/.test(value)) throw new CommanderError(EXIT.USAGE, 'bpftime-ts.usage', `error: --pid must be a process id, got "${value}"`);
  return Number(value);
}

function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('-o, --object <file.bpf.o>', 'eBPF object to load and attach (repeatable)', collect, [])
    .option('-m, --manifest <file.json>', 'attach manifest (attach points, initial maps, .rodata constants, output)')
    .option('--count <target>', 'count calls of a function (SYMBOL, MODULE:SYMBOL, MODULE:0xOFFSET or 0xADDRESS); repeatable', collect, [])
    .option('--json', 'one JSON object per line on stdout')
    .option('--interval <seconds>', 'print maps every this many seconds, like bpftrace interval', positiveNumber('--interval', MIN_INTERVAL_S, MAX_INTERVAL_S))
    .option('--maps <names>', 'print only these maps and globals (comma-separated), at exit and with --interval', (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
    .option('-T, --timestamps', 'a time column (HH:MM:SS) on ring-buffer and perf records, like libbpf-tools -T')
    .option('--duration <seconds>', 'detach after this many seconds and let the target go on', positiveNumber('--duration'))
    .option('--metrics <[host:]port>', 'serve the maps as Prometheus metrics on http://HOST:PORT/metrics while attached (host defaults to 127.0.0.1)')
    .addOption(new Option('--syscalls <mechanism>', 'how syscall tracepoints reach syscalls: rewritten syscall sites (the default), or Stalker callouts (see README)').choices(['stalker', 'rewrite']))
    .addOption(new Option('--engine <engine>', 'eBPF engine in the target: the interpreter built natively, or to wasm').choices(['native', 'wasm']).default('native'))
    .addOption(new Option('--hooks <mechanism>', `how uprobes hook functions: bpftime-ts's own inline hooks, or Frida's Interceptor (default: ${DEFAULT_HOOK_MECHANISM}, or the manifest's "hooks")`).choices([...HOOK_MECHANISMS]).env('BPFTIME_TS_HOOKS'))
    .option('-v, --verbose', 'diagnostics on stderr');
}

async function runWith(target: TargetSpec | undefined, o: Record<string, unknown>): Promise<number> {
  let plan;
  try {
    plan = buildPlan({
      target,
      objects: o.object as string[],
      manifest: o.manifest as string | undefined,
      count: parseTargets(o.count as string[]),
      json: !!o.json,
      verbose: !!o.verbose,
      interval: o.interval as number | undefined,
      durationSec: o.duration as number | undefined,
      engine: o.engine as string,
      hooks: o.hooks as HookMechanism | undefined,
      syscalls: o.syscalls as string | undefined,
      metrics: o.metrics as string | undefined,
      maps: o.maps as string[] | undefined,
      timestamps: !!o.timestamps,
    });
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    process.stderr.write(`bpftime-ts: error: ${e.message}\n`);
    return exitCodeFor(e);
  }
  return runTarget(plan);
}

export function buildProgram(): Command {
  const program = new Command('bpftime-ts')
    .description('Userspace eBPF for any running Linux process: run clang-built eBPF programs on uprobes and syscalls, injected with Frida.')
    .version(require('../../../package.json').version as string)
    .showHelpAfterError('(add --help for usage)')
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nExamples:\n  $ bpftime-ts spawn -o examples/build/count.bpf.o examples/build/victim 1000\n  $ bpftime-ts attach --pid 1234 -o examples/build/latency.bpf.o --interval 1\n  $ bpftime-ts run examples/latency.manifest.json\n  $ bpftime-ts inspect examples/build/count.bpf.o',
    )
    .exitOverride();

  withCommonOptions(
    program
      .command('spawn')
      .description('start PROGRAM suspended, attach, then let it run; ends when it exits, with its exit status')
      .argument('<program>', 'program to run (path or name in PATH)')
      .argument('[args...]', 'its arguments (put -- before them when they look like options)'),
  )
    .addHelpText('after', '\nExamples:\n  $ bpftime-ts spawn -o count.bpf.o ./victim 1000\n  $ bpftime-ts spawn --count libc.so.6:malloc -- ls -l /')
    .passThroughOptions()
    .action(async (prog: string, args: string[], o: Record<string, unknown>) => {
      process.exitCode = await runWith({ kind: 'spawn', argv: [prog, ...args] }, o);
    });

  withCommonOptions(
    program
      .command('attach')
      .description('attach to a running process; ends on Ctrl-C/SIGTERM, --duration, or when it exits')
      .addOption(new Option('-p, --pid <pid>', 'process id').argParser(pidArg).makeOptionMandatory()),
  )
    .addHelpText('after', '\nExamples:\n  $ bpftime-ts attach --pid 1234 -o latency.bpf.o --interval 1\n  $ bpftime-ts attach --pid 1234 --count target_add --duration 5')
    .action(async (o: Record<string, unknown>) => {
      process.exitCode = await runWith({ kind: 'pid', pid: o.pid as number }, o);
    });

  withCommonOptions(
    program
      .command('run')
      .description('everything from a manifest: target, objects, attach points, initial maps, output')
      .argument('<manifest>', 'manifest file (JSON, see host/manifest/manifest.schema.json)'),
  )
    .addHelpText('after', '\nExample:\n  $ bpftime-ts run examples/latency.manifest.json')
    .action(async (file: string, o: Record<string, unknown>) => {
      process.exitCode = await runWith(undefined, { ...o, manifest: file });
    });

  registerInspectCommand(program);
  registerDisasmCommand(program);
  registerVmCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version "fail" too (exitCodeFor makes those 0); commander printed its own
      // usage errors already, ours (bpftime-ts.usage) are said here.
      if (err.code === 'bpftime-ts.usage') process.stderr.write(`bpftime-ts: ${err.message}\n`);
      process.exitCode = exitCodeFor(err);
      return;
    }
    process.stderr.write(`bpftime-ts: error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (argv.includes('-v') || argv.includes('--verbose')) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

void main(process.argv);
