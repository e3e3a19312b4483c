#!/usr/bin/env bash
# Prints one sha256 per golden case: longserve-run's response to the case's request, on
# each backend. Two builds that print the same digests compute the same bits, so a
# refactor can prove it changed no number:
#   tools/golden-digest.sh build/server/longserve-run > after.txt; diff before.txt after.txt
set -euo pipefail
run=${1:-build/server/longserve-run}
root=$(cd "$(dirname "$0")/.." && pwd)
fx=$root/tests/fixtures
grep -v '^#' "$fx/index.txt" | while read -r model case opts; do
  args=()
  if [[ $opts == window=* ]]; then
    w=${opts#window=}
    args=(--window "${w%%,*}")
    [[ $opts == *,full=* ]] && args+=(--full-attention "${opts##*,full=}")
  fi
  for be in cpu ref; do
    d=$(OMP_WAIT_POLICY=PASSIVE "$run" --model "$fx/$model" --backend "$be" "${args[@]}" \
        < "$fx/$model/cases/$case.request.json" | sha256sum | cut -c1-16)
    echo "$model $case $be $d"
  done
done
