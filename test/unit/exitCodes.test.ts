// The exit status of every way a command can end comes from exitCodeFor (host/cli/exitCodes.ts);
// these pin each outcome and each error class to its documented number, and hold README.md's
// "Exit status" table and EXIT together so neither can drift alone.
import * as fs from 'fs';
import * as path from 'path';
import { CommanderError } from 'commander';
import { EXIT, exitCodeFor, type CommandOutcome } from '../../host/cli/exitCodes';
import { BackendError } from '../../host/backend/FridaBackend';
import { LoaderError } from '../../host/loader/errors';
import { ManifestError } from '../../host/manifest/errors';
import { MetricsConfigError } from '../../host/metrics/metricsConfig';
import type { RunOutcome } from '../../host/session/runOutcome';
import { SessionError } from '../../host/session/SessionError';
import { VmFault, VmLoadError } from '../../vm/ts/vm';

describe('run outcomes', () => {
  const cases: [RunOutcome, number][] = [
    [{ kind: 'ok' }, EXIT.OK],
    [{ kind: 'interrupted', signal: 'SIGINT' }, EXIT.INTERRUPTED],
    [{ kind: 'interrupted', signal: 'SIGTERM' }, EXIT.TERMINATED],
    [{ kind: 'broken-pipe' }, EXIT.BROKEN_PIPE],
    [{ kind: 'attach-failed', failed: 2 }, EXIT.ATTACH],
    [{ kind: 'lost', reason: 'pid 1 crashed: SIGSEGV' }, EXIT.LOST],
  ];
  test.each(cases)('%j → %d', (outcome, code) => {
    expect(exitCodeFor(outcome)).toBe(code);
  });

  test("a spawned target's own exit status passes through, whatever it is", () => {
    for (const status of [0, 1, 2, 3, 4, 9, 127, 130, 141, 255]) expect(exitCodeFor({ kind: 'target-exited', status })).toBe(status);
  });

  test('an error outcome is decided by its error, as the error alone would be', () => {
    const errors = [new SessionError('x', 'usage'), new SessionError('x', 'attach'), new SessionError('x', 'lost'), new MetricsConfigError('x'), new Error('x'), 'a string'];
    for (const error of errors) expect(exitCodeFor({ kind: 'error', error })).toBe(exitCodeFor(error));
    expect(exitCodeFor({ kind: 'error', error: new MetricsConfigError('port in use') })).toBe(EXIT.USAGE);
  });
});

describe('other commands', () => {
  const cases: [CommandOutcome, number][] = [
    [{ kind: 'ok' }, EXIT.OK],
    [{ kind: 'checks-failed' }, EXIT.FAILURE],
  ];
  test.each(cases)('%j → %d', (outcome, code) => {
    expect(exitCodeFor(outcome)).toBe(code);
  });
});

describe('errors, by class', () => {
  const cases: [string, unknown, number][] = [
    ['SessionError usage', new SessionError('bad engine', 'usage'), EXIT.USAGE],
    ['SessionError attach', new SessionError('no such pid', 'attach'), EXIT.ATTACH],
    ['SessionError lost', new SessionError('the agent is not loaded', 'lost'), EXIT.LOST],
    ['ManifestError', new ManifestError('m.json: /target: required'), EXIT.USAGE],
    ['MetricsConfigError', new MetricsConfigError('--metrics: must be [HOST:]PORT'), EXIT.USAGE],
    ['LoaderError', new LoaderError('x.bpf.o: not an ELF file'), EXIT.ATTACH],
    ['CommanderError (a usage error)', new CommanderError(EXIT.USAGE, 'bpftime-ts.usage', 'error: --pid must be a process id'), EXIT.USAGE],
    ["CommanderError (commander's own, status 1)", new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), EXIT.USAGE],
    ['CommanderError (--help)', new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), EXIT.OK],
    ['CommanderError (--version)', new CommanderError(0, 'commander.version', '0.1.0'), EXIT.OK],
    ['VmFault (vm run)', new VmFault('memory', 3, 'out of bounds'), EXIT.FAILURE],
    ['VmLoadError (vm run)', new VmLoadError(0, 'bad opcode'), EXIT.FAILURE],
    ['BackendError not explained by a session', new BackendError('sidecar did not start', 'unavailable'), EXIT.FAILURE],
    ['a plain Error (a bug of ours)', new Error('undefined is not a function'), EXIT.FAILURE],
    ['a thrown string', 'oops', EXIT.FAILURE],
    ['undefined', undefined, EXIT.FAILURE],
  ];
  test.each(cases)('%s', (_name, err, code) => {
    expect(exitCodeFor(err)).toBe(code);
  });

  test('an Error carrying an outcome-like kind is still judged as an error', () => {
    // SessionError's kind 'lost' and the outcome 'lost' agree; an unrelated error with kind 'ok' must not read as success.
    const e = Object.assign(new Error('x'), { kind: 'ok' });
    expect(exitCodeFor(e)).toBe(EXIT.FAILURE);
  });
});

describe("README.md's exit-status table", () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.split(/^### Exit status$/m)[1]?.split(/^#{1,3} /m)[0] ?? '';
  const rows = [...section.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map((m) => ({ code: Number(m[1]), when: m[2] }));

  test('lists exactly the statuses in EXIT, once each, in order', () => {
    expect(rows.map((r) => r.code)).toEqual(Object.values(EXIT).slice().sort((a, b) => a - b));
  });

  test('says that a spawned target passes its own status through (the target-exited outcome)', () => {
    expect(rows.find((r) => r.code === EXIT.OK)?.when).toMatch(/spawn.*own status, passed through/);
  });
});
