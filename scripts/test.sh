#!/usr/bin/env bash
# Runs the whole test suite; the last line is `N passed, N failed`; exit status non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
npx jest --runInBand --forceExit "$@"
