// The isolation fuzz (test/unit/vmIsolationFuzz.test.ts) with many more programs and another
// seed per run unless given: VM_ISO_FUZZ_RUNS (default 20000), VM_ISO_FUZZ_SEED.
process.env.VM_ISO_FUZZ_RUNS ??= '20000';
process.env.VM_ISO_FUZZ_SEED ??= String(Date.now() % 1000000);
console.log(`isolation fuzz: ${process.env.VM_ISO_FUZZ_RUNS} programs, seed ${process.env.VM_ISO_FUZZ_SEED}`);
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('../unit/vmIsolationFuzz.test');
