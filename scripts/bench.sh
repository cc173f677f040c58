#!/usr/bin/env bash
# Runs every benchmark in bench/ (compiled to dist/bench by the build). Each prints a
# markdown table with ratios against an untraced baseline measured in the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
make -s -C test/fixtures
only="${1:-}"
for b in dist/bench/*.bench.js; do
  name="$(basename "$b" .bench.js)"
  [ -z "$only" ] || [ "$only" = "$name" ] || continue
  echo "## $name"
  node "$b"
  echo
done
