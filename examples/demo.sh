#!/usr/bin/env bash
# The main job on the bundled example: real clang-built eBPF programs attached to a real
# process through Frida, with the output bpftrace users expect. `npm run demo` runs it
# after setup and build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cli=./bin/bpftime-ts

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "bpftime-ts demo: userspace eBPF on a running process, no kernel eBPF involved"
step "$cli" inspect examples/build/count.bpf.o
step "$cli" spawn -o examples/build/count.bpf.o examples/build/victim 1000
step "$cli" run examples/latency.manifest.json
step "$cli" spawn -v -o examples/build/syscount.bpf.o /usr/bin/du -s examples
