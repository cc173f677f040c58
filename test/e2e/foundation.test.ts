// Foundation behaviour against real processes through the real CLI and real Frida.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import { runCli, sleep, startCli, waitForOutput } from '../support/cli';
import { cliPath, victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, sidecarPids, startVictim, symbolAddress } from '../support/victim';

const adder = victimPath('adder');

describe('spawn', () => {
  test('hooks before main: 1000 calls give exactly 1000 hits, output and exit status pass through', async () => {
    const r = await runCli(['spawn', '--count', 'target_add', adder, '1000'], { env: { ADDER_EXIT: '5' } as NodeJS.ProcessEnv });
    expect(r.stdout).toContain('done calls=1000');
    expect(r.stdout).toContain('@hits[target_add]: 1000');
    expect(r.code).toBe(5);
  });

  test('8 threads calling concurrently are counted exactly', async () => {
    const r = await runCli(['spawn', '--count', 'target_add', adder, '5000', '0', '8']);
    expect(r.stdout).toContain('done calls=40000');
    expect(r.stdout).toContain('@hits[target_add]: 40000');
    expect(r.code).toBe(0);
  });

  test('--json reports the first hit and the counts as JSON lines', async () => {
    const r = await runCli(['spawn', '--json', '--count', 'target_add', adder, '10']);
    const lines = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.type === 'first-hit')).toMatchObject({ target: 'target_add' });
    expect(lines.find((l) => l.type === 'maps')).toEqual({ type: 'maps', maps: { hits: [{ key: 'target_add', value: 10 }] } });
    expect(r.stderr).toBe(''); // status lines are quiet with --json
  });

  test('a library function is hooked by MODULE:SYMBOL', async () => {
    const r = await runCli(['spawn', '--count', 'libc.so.6:usleep', adder, '7', '10']);
    expect(r.stdout).toContain('@hits[libc.so.6:usleep]: 7');
  });
});

describe('attach --pid', () => {
  test('hooks a running victim mid-flight; after --duration the victim runs on, unhooked', async () => {
    const victim = await startVictim('adder', ['0', '1000']);
    try {
      const addr = symbolAddress(victim.pid, adder, 'target_add');
      const original = fileBytes(adder, 'target_add', 16);
      expect(liveBytes(victim.pid, addr, 16)).toEqual(original);

      const r = await runCli(['attach', '--pid', String(victim.pid), '--count', 'target_add', '--duration', '1']);
      expect(r.code).toBe(0);
      const hits = Number(/@hits\[target_add\]: (\d+)/.exec(r.stdout)?.[1]);
      expect(hits).toBeGreaterThan(100); // ~1 call per ms for 1 s
      expect(isAlive(victim.pid)).toBe(true);
      // The hook is gone: the function's first bytes are the file's again, and no agent is mapped.
      expect(liveBytes(victim.pid, addr, 16)).toEqual(original);
      await sleep(200);
      expect(fs.readFileSync(`/proc/${victim.pid}/maps`, 'utf8')).not.toMatch(/frida-agent/);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });

  test('SIGINT to the CLI detaches cleanly and the victim keeps running', async () => {
    const victim = await startVictim('adder', ['0', '1000']);
    try {
      const cli = startCli(['attach', '--pid', String(victim.pid), '--count', 'target_add']);
      await waitForOutput(cli, (t) => t.includes('hook installed'));
      cli.kill('SIGINT');
      const r = await cli.result;
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/@hits\[target_add\]: \d+/);
      const addr = symbolAddress(victim.pid, adder, 'target_add');
      expect(liveBytes(victim.pid, addr, 16)).toEqual(fileBytes(adder, 'target_add', 16));
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });

  test('SIGKILL of the CLI leaves the victim running and no sidecar behind', async () => {
    const victim = await startVictim('adder', ['0', '1000']);
    try {
      const before = new Set(sidecarPids());
      const cli = startCli(['attach', '--pid', String(victim.pid), '--count', 'target_add']);
      await waitForOutput(cli, (t) => t.includes('hook installed'));
      cli.kill('SIGKILL');
      await cli.result;
      const deadline = Date.now() + 5000;
      while (sidecarPids().some((p) => !before.has(p)) && Date.now() < deadline) await sleep(100);
      expect(sidecarPids().filter((p) => !before.has(p))).toEqual([]);
      await sleep(300);
      expect(isAlive(victim.pid)).toBe(true);
      // Frida unloads the agent when its host connection goes: the prologue is restored.
      const addr = symbolAddress(victim.pid, adder, 'target_add');
      expect(liveBytes(victim.pid, addr, 16)).toEqual(fileBytes(adder, 'target_add', 16));
    } finally {
      victim.stop();
    }
  });

  test('the sidecar dying is reported as an error, not a hang', async () => {
    const victim = await startVictim('adder', ['0', '1000']);
    try {
      const before = new Set(sidecarPids());
      const cli = startCli(['attach', '--pid', String(victim.pid), '--count', 'target_add']);
      await waitForOutput(cli, (t) => t.includes('hook installed'));
      for (const p of sidecarPids().filter((q) => !before.has(q))) process.kill(p, 'SIGKILL');
      const r = await cli.result;
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/error: .*sidecar exited unexpectedly/);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });
});

describe('bad input: one clear line, non-zero exit, no stack trace', () => {
  const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /);

  test('a pid that does not exist', async () => {
    const r = await runCli(['attach', '--pid', '999999', '--count', 'x']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: pid 999999: no such process');
    noStack(r.stderr);
  });

  test('a program that does not exist', async () => {
    const r = await runCli(['spawn', './no/such/program']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: ./no/such/program: no such program');
    noStack(r.stderr);
  });

  test('a symbol that does not exist, and the spawned target is not left behind', async () => {
    const r = await runCli(['spawn', '--count', 'no_such_function', adder, '10']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: no_such_function: symbol no_such_function not found in adder');
    noStack(r.stderr);
    expect(r.stdout).not.toContain('ready');
  });

  test('a module that is not loaded', async () => {
    const r = await runCli(['spawn', '--count', 'libnope.so:foo', adder, '10']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('module libnope.so is not loaded');
  });

  test('usage errors', async () => {
    for (const args of [['attach'], ['attach', '--pid', 'abc'], ['spawn'], ['frobnicate'], ['attach', '--pid', '1', '--duration', '-3']]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      noStack(r.stderr);
    }
  });

  const asRoot = process.getuid?.() === 0;
  // The CLI runs as nobody here, so the checkout must be reachable by nobody: a clone under
  // a 0700 directory (mktemp -d) is not, and spawning the CLI then fails with EACCES.
  const nobodyCanRunCli = (): boolean => {
    try {
      execFileSync('runuser', ['-u', 'nobody', '--', 'test', '-x', cliPath], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  (asRoot && nobodyCanRunCli() ? test : test.skip)('a target we are not allowed to ptrace', async () => {
    // An unprivileged user may not trace a root-owned process.
    const victim = await startVictim('adder', ['0', '1000']);
    try {
      const out = execFileSync('runuser', ['-u', 'nobody', '--', 'true'], { encoding: 'utf8' });
      expect(out).toBe('');
      const r = await runCli(['attach', '--pid', String(victim.pid), '--count', 'target_add'], { uid: 65534, gid: 65534 });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`error: pid ${victim.pid}: not allowed to attach`));
      noStack(r.stderr);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      victim.stop();
    }
  });
});

describe('agent runtime facts', () => {
  test('V8 provides WebAssembly and CModule works; QuickJS has no WebAssembly', async () => {
    const { SidecarBackend } = await import('../../host/backend/SidecarBackend');
    const backend = await SidecarBackend.start();
    try {
      const pid = await backend.spawn({ argv: [adder, '1'], stdio: 'pipe' });
      const session = await backend.attach(pid);
      const v8 = await session.createScript(fs.readFileSync('dist/agent.js', 'utf8'), { runtime: 'v8' });
      await v8.load();
      expect(await v8.call('ping')).toMatchObject({ runtime: 'V8', webAssembly: true, cmodule: true });
      const qjs = await session.createScript(
        "rpc.exports = { probe: () => ({ wasm: typeof WebAssembly, runtime: Script.runtime }) };",
        { runtime: 'qjs' },
      );
      await qjs.load();
      expect(await qjs.call('probe')).toEqual({ wasm: 'undefined', runtime: 'QJS' });
      await backend.kill(pid);
    } finally {
      await backend.close();
    }
  });
});

describe('an agent that fails to start', () => {
  test('the error names what threw, not a missing rpc method, and the target runs on', async () => {
    const { SidecarBackend } = await import('../../host/backend/SidecarBackend');
    const { Session, SessionError } = await import('../../host/session/Session');
    const dir = fs.mkdtempSync(`${os.tmpdir()}/bpftime-ts-agent-`);
    const broken = `${dir}/agent.js`;
    // What a CModule that fails to compile in the target looks like from the host.
    fs.writeFileSync(broken, "throw new Error('compilation failed: module.c:1: error: no such header');\n");
    const victim = await startVictim('adder', ['0', '1000']);
    const backend = await SidecarBackend.start();
    try {
      const session = new Session(backend, { kind: 'pid', pid: victim.pid }, broken);
      const err = await session.start().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(SessionError);
      expect((err as Error).message).toBe(`pid ${victim.pid}: the agent failed to start: Error: compilation failed: module.c:1: error: no such header`);
      expect(isAlive(victim.pid)).toBe(true);
    } finally {
      await backend.close();
      victim.stop();
    }
  });
});
