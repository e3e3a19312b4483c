#!/usr/bin/env bash
# Makes the virtualenv of the real client packages (openai, tritonclient[http] + aiohttp,
# huggingface_hub, numpy, requests; versions in tools/requirements-clients.txt, no torch) that
# tests/test_clients.py runs unmodified against the server. Idempotent and fast when the
# environment already has exactly these versions (a stamp holds the requirements' sha256).
# usage: tools/client-venv.sh [DIR]   (default: $LONGSERVE_CLIENT_VENV or /tmp/longserve-clients)
# Needs python3-venv (tools/install-deps.sh) and access to a package index.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${LONGSERVE_CLIENT_VENV:-/tmp/longserve-clients}}
req=$root/tools/requirements-clients.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
stamp=$venv/.longserve-requirements.sha256

if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "client-venv: $venv already has tools/requirements-clients.txt"
  exit 0
fi
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import openai, tritonclient.http, tritonclient.http.aio, huggingface_hub, numpy, requests'
echo "$want" >"$stamp"
echo "client-venv: $venv ($(grep -cv '^#' "$req") packages from tools/requirements-clients.txt)"
