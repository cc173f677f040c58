#!/usr/bin/env bash
# Long stress runs, on demand (npm run stress): the default suite keeps a short version of
# each. Bounded by STRESS_CYCLES (default 10 per scenario). Last line: `N passed, N failed`.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
exec bash scripts/test.sh --testMatch '<rootDir>/test/stress/**/*.stress.ts' "$@"
