// The watch after a detach (host/session/targetFate.ts) on real processes: it lasts until the
// backend is done and our agent image is gone, between WATCH_MIN_MS and WATCH_MAX_MS, and a
// target that dies meanwhile is reported with its signal at once.
import { spawn, type ChildProcess } from 'child_process';
import { watchAfterDetach, WATCH_MAX_MS, WATCH_MIN_MS } from '../../host/session/targetFate';
import { agentImages } from '../../host/session/targetLock';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live: ChildProcess[] = [];

function sleeper(): number {
  const c = spawn('sleep', ['30'], { stdio: 'ignore' });
  live.push(c);
  return c.pid!;
}

afterAll(() => live.forEach((c) => c.kill('SIGKILL')));

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = Date.now();
  const v = await p;
  return [v, Date.now() - t0];
}

test('a process without Frida has no agent image', () => {
  expect(agentImages(sleeper())).toBe(0);
  expect(agentImages(2 ** 22 + 1)).toBe(0);
});

test('nothing left to wait for: the watch lasts the minimum', async () => {
  const [fate, ms] = await timed(watchAfterDetach(sleeper(), { backendDone: Promise.resolve(), agentsBefore: 1, agentResident: false }));
  expect(fate).toEqual({ kind: 'running' });
  expect(ms).toBeGreaterThanOrEqual(WATCH_MIN_MS - 5);
  expect(ms).toBeLessThan(WATCH_MIN_MS + 400);
});

test('the watch waits for the backend to be done', async () => {
  const [fate, ms] = await timed(watchAfterDetach(sleeper(), { backendDone: sleep(800), agentsBefore: 0, agentResident: false }));
  expect(fate).toEqual({ kind: 'running' });
  expect(ms).toBeGreaterThanOrEqual(795);
  expect(ms).toBeLessThan(800 + 400);
});

test('a backend that never finishes holds the watch to its maximum, no longer', async () => {
  const never = new Promise<void>(() => undefined);
  const [fate, ms] = await timed(watchAfterDetach(sleeper(), { backendDone: never, agentsBefore: 0, agentResident: false }));
  expect(fate).toEqual({ kind: 'running' });
  expect(ms).toBeGreaterThanOrEqual(WATCH_MAX_MS - 5);
  expect(ms).toBeLessThan(WATCH_MAX_MS + 500);
}, 10_000);

test('a target killed during the watch is reported at once, with its signal', async () => {
  const c = spawn('sleep', ['30'], { stdio: 'ignore' });
  live.push(c);
  // Node reaps its child at once, so the watch may see it gone rather than a zombie.
  setTimeout(() => process.kill(c.pid!, 'SIGSEGV'), 400);
  const [fate, ms] = await timed(watchAfterDetach(c.pid!, { backendDone: new Promise<void>(() => undefined), agentsBefore: 0, agentResident: false }));
  expect(['killed', 'gone']).toContain(fate.kind);
  if (fate.kind === 'killed') expect(fate.signal).toBe(11);
  expect(ms).toBeLessThan(1500);
});
