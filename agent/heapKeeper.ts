// Keeps the agent's V8 heap from growing with the hit rate. Programs on the JS path allocate
// on every hit (argument and result wrappers, BigInts); V8 collects them only when it decides
// the heap is big enough, which on a busy target meant the target's RSS grew about 1.1 MB/s
// at 45k JS hits/s (getpid loop, bench_sys_js) until some later collection. A full
// collection every 2 s while hits happen holds it flat (a sawtooth of about 1.5 MB). One
// takes about 4 ms here (measured on a small script under load), during which JS-path hits
// wait for the JS lock: 0.2% of their time. Native-path hits never wait.

const PERIOD_MS = 2000;

export function keepHeapSmall(hitsSoFar: () => number): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  let last = hitsSoFar();
  setInterval(() => {
    const now = hitsSoFar();
    if (now === last) return;
    last = now;
    gc();
  }, PERIOD_MS);
}
