#!/usr/bin/env bash
# Installs the Debian dependencies (as root) and builds into build/.
# CUDA sources are compiled when nvcc is found (meson -Dcuda=auto).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ $(id -u) -eq 0 ]]; then
  tools/install-deps.sh
elif command -v sudo >/dev/null; then
  sudo tools/install-deps.sh
else
  tools/install-deps.sh # reports what is missing when not root
fi
[[ -d /usr/local/cuda/bin ]] && export PATH=$PATH:/usr/local/cuda/bin
if [[ ! -f build/build.ninja ]]; then
  meson setup build --buildtype=release
fi
ninja -C build
