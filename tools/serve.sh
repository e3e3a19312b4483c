#!/usr/bin/env bash
# First command of the README: dependencies, build, the default model (all-MiniLM-L6-v2,
# sha256-checked), then the HTTP server on it (port $LONGSERVE_PORT, default 3000).
# Extra arguments go to longserve (e.g. --port 8080 --api-key-file key.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/build.sh
if ! python3 -m pip --version >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
tools/fetch-default-model.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec build/server/longserve --model-id all-MiniLM-L6-v2=models/all-MiniLM-L6-v2 --window 512 "$@"
