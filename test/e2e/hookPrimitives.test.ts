// The hook engine's shared primitives in a real victim: immortal pages, near allocation,
// and live code patching (int3 first, tail, first byte) under threads running the patched
// function back-to-back, across sessions that come and go.

import { HooksHarness } from '../support/hooksHarness';
import { victimPath } from '../support/paths';
import { fileBytes, isAlive, liveBytes, startVictim, symbolAddress } from '../support/victim';

const adder = victimPath('adder');
let harness: HooksHarness;

beforeAll(async () => {
  harness = await HooksHarness.start();
});

afterAll(async () => {
  await harness.close();
});

test('immortal pages run code; near memory is within rel32 reach; one registry and trap handler per process', async () => {
  const victim = await startVictim('adder', ['0', '1000']);
  try {
    const addr = symbolAddress(victim.pid, adder, 'target_add');
    const a = await harness.attach(victim.pid);
    expect(await a.call<number>('rawExec')).toBe(42);
    const dist = BigInt(await a.call<string>('nearDistance', '0x' + addr.toString(16)));
    expect(dist < 0 ? -dist : dist).toBeLessThan(0x7fff0000n);
    const first = await a.call<{ sync: string; registry: string; trap: string }>('info');
    expect(first.sync).toBe('membarrier');
    await a.close();
    // A second session finds the same registry page and trap handler.
    const b = await harness.attach(victim.pid);
    const second = await b.call<{ registry: string; trap: string }>('info');
    expect(second.registry).toBe(first.registry);
    expect(second.trap).toBe(first.trap);
    await b.close();
    expect(isAlive(victim.pid)).toBe(true);
  } finally {
    victim.stop();
  }
});

test('live patching under 4 threads: 20 hook/unhook cycles across sessions, counts grow, bytes restored, victim alive', async () => {
  const victim = await startVictim('adder', ['0', '0', '4']); // 4 threads, back-to-back, forever
  try {
    const addr = symbolAddress(victim.pid, adder, 'target_add');
    const hex = '0x' + addr.toString(16);
    const original = fileBytes(adder, 'target_add', 16);
    for (let session = 0; session < 4; session++) {
      const a = await harness.attach(victim.pid);
      let last = 0n; // each session's agent builds its own stub and counter
      for (let i = 0; i < 5; i++) {
        await a.call('hook', hex);
        await new Promise((r) => setTimeout(r, 20));
        const hits = BigInt(await a.call<string>('unhook', hex));
        expect(hits).toBeGreaterThan(last); // the hook ran, and its counter lives on across this session's cycles
        last = hits;
        expect(liveBytes(victim.pid, addr, 16)).toEqual(original);
        // The int3 site stays routed to the hook's stub (immortal), for a thread that trapped late.
        expect(await a.call<string>('trapDest', hex)).not.toBe('0x0');
      }
      await a.close();
      expect(isAlive(victim.pid)).toBe(true);
    }
  } finally {
    victim.stop();
  }
}, 120_000);
