#!/usr/bin/env bash
# First command of the README: dependencies, build, the default model (all-MiniLM-L6-v2,
# sha256-checked), then serve it.
#
# The HTTP server (`longserve`, issue "The HTTP server") has not landed yet; until it does,
# this serves through longserve-run, the KServe v2 infer path the server will reuse:
# it answers one example request and prints how to send your own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/build.sh
if ! python3 -m pip --version >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
tools/fetch-default-model.sh
model=models/all-MiniLM-L6-v2
echo '{"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,6],"data":[101,7592,1010,2088,999,102]}],"outputs":[{"name":"pooler_output"}]}' |
  build/longserve-run --model "$model" --window 512 | cut -c1-300
echo
echo "longserve-run ready: build/longserve-run --model $model --window 512 < request.json"
