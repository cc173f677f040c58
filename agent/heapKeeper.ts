// Keeps the agent's V8 heap from growing with the hit rate. Programs on the JS path allocate
// on every hit (argument and result wrappers, BigInts); V8 collects them only when it decides
// the heap is big enough, which on a busy target meant the target's RSS grew about 1.1 MB/s
// at 45k JS hits/s (getpid loop, bench_sys_js) until some later collection. A full
// collection every few seconds while hits happen holds it flat; it takes well under a
// millisecond on the agent's small heap and runs on the JS thread, never on a hit.

const PERIOD_MS = 3000;

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
