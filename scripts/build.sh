#!/usr/bin/env bash
# Builds everything the CLI and the tests run: the VM (wasm + native), the host (tsc),
# the Frida agent (frida-compile) and the bundled examples. make/tsc skip work that is current.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
make -s -C vm
# The inline hook engine's native hit path: a flat blob the agent bundle embeds (agent/hooks/native).
make -s -C agent/hooks/native
# The CModule sources (TinyCC, compiled in the target) embedded as strings (agent/cmodules).
make -s -C agent/cmodules
# The syscall rewrite handlers, built by gcc into a library the agent loads as a CModule.
make -s -C agent/attach/syscall/rewrite/native
# The host's native helper that frees forked children Frida's exit hook holds (host/session/childRescue.ts).
make -s -C host/native
npx tsc -p tsconfig.host.json
# Jest transpiles tests without type-checking; this checks them, including the compile-time
# contracts (test/unit/agentClient.test.ts: calls the agent would refuse must not compile).
npx tsc -p tsconfig.test.json --incremental --tsBuildInfoFile dist/tests.tsbuildinfo
# The agent bundle embeds the wasm VM, so it is rebuilt whenever any of its inputs change.
if [ ! -f dist/agent.js ] || [ -n "$(find agent protocol vm/ts vm/build -newer dist/agent.js -type f 2>/dev/null | head -1)" ]; then
  npx frida-compile agent/index.ts -o dist/agent.js -c >/dev/null
fi
make -s -C examples
