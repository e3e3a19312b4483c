#!/usr/bin/env bash
# The test command: dependencies, build, then every suite (unit, integration, fuzz
# drivers). Used by the README and by .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/build.sh
export OMP_WAIT_POLICY=PASSIVE
meson test -C build --print-errorlogs "$@"
