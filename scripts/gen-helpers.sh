#!/usr/bin/env bash
# Regenerates vm/src/bpfvm_helpers.h from protocol/helperTable.ts (the one helper table).
# test/unit/helperTable.test.ts fails when the committed header is not what this writes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
npx tsc -p tsconfig.host.json
node -e "process.stdout.write(require('./dist/protocol/helperTable.js').helperHeader())" > vm/src/bpfvm_helpers.h.tmp
mv vm/src/bpfvm_helpers.h.tmp vm/src/bpfvm_helpers.h
