#!/usr/bin/env bash
# Installs what bpftime-ts needs on a fresh Debian machine, and nothing when it is all there.
# Idempotent and quiet when already set up: both README commands call it first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

FRIDA_VERSION="17.25.2"   # pinned: the Python bindings changed shape in 17.16/17.17
# prometheus: the metrics e2e test scrapes bpftime-ts with a real server (test/e2e/metrics.test.ts).
# systemtap-sdt-dev: sys/sdt.h for the USDT victims.
APT_PACKAGES=(clang lld llvm libbpf-dev bpftool gcc make strace python3-venv systemtap-sdt-dev prometheus)

say() { echo "[setup] $*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
# Debian's own Python when present: a pyenv interpreter under /root would make the venv
# unusable for other users (and the CLI must work for them too).
base_python=/usr/bin/python3
[ -x "$base_python" ] || base_python=python3
if ! "$venv/bin/python" -c "import frida,sys; sys.exit(frida.__version__ != '$FRIDA_VERSION')" 2>/dev/null; then
  say "creating Python venv with frida==$FRIDA_VERSION (binary wheel only)"
  rm -rf "$venv"
  "$base_python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: "frida==$FRIDA_VERSION"
fi

# npm ci only when the lock file changed since the last install.
stamp="node_modules/.bpftime-ts-lock"
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages (npm ci)"
  npm ci --silent --no-audit --no-fund >/dev/null 2>&1 || npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
