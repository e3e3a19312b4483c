#!/usr/bin/env bash
# The test command: dependencies, build, then every suite (unit, integration, fuzz
# drivers). Used by the README and by .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/build.sh
# The default model (sha256-checked) lets the server suite compare /embed with
# sentence-transformers; without network the suite skips that one check and says so.
tools/fetch-default-model.sh || echo "test.sh: default model not fetched; its exactness test will be skipped" >&2
export OMP_WAIT_POLICY=PASSIVE
meson test -C build --print-errorlogs "$@"
