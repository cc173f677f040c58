#!/usr/bin/env bash
# Runs the whole test suite; the last line is `N passed, N failed[, N skipped]` (after jest's own summary
# and its force-exit notice); exit status non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
npx jest --runInBand --forceExit "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# test/support/summaryReporter.js prints the line; repeat it last.
line="$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)"
if [ -z "$line" ]; then
  line="0 passed, 1 failed"
  status=1
fi
echo
echo "$line"
case "$line" in
  *" 0 failed" | *" 0 failed, "*" skipped") ;;
  *) [ "$status" -ne 0 ] || status=1 ;;
esac
exit "$status"
