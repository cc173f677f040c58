import { execFileSync } from 'child_process';
import * as path from 'path';

// Victims and eBPF objects are built from source on every run (make skips current ones),
// so tests always exercise real gcc and clang output rather than checked-in binaries.
export default async function globalSetup(): Promise<void> {
  // globalTeardown runs in this process and kills only what started after this.
  process.env.BPFTIME_TS_TEST_START = String(Date.now());
  const fixtures = path.join(__dirname, '..', 'fixtures');
  execFileSync('make', ['-s', '-C', fixtures, '-j2'], { stdio: 'inherit' });
}
