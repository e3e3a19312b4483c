#!/usr/bin/env bash
# --dtype bf16 at longformer-base width (hidden 768, 12 heads, FFN 3072; 2 layers, 1024
# tokens, a random model from bench_engine --write-random): last_hidden_state within 1e-2
# relative (max |bf16 - f32| / max |f32|) of the float32 forward and the mean-pooled
# embedding at cosine >= 0.999. The CPU's bf16 path, or the emulation where it has none.
# Usage: bf16_base_size.sh BENCH_ENGINE
set -euo pipefail
bench=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo || export LONGSERVE_BF16=bf16-emu
"$bench" --write-random "$dir/m" --layers 2 --vocab 1000 --max-pos 1026 >"$dir/w.log" 2>&1 ||
    { cat "$dir/w.log"; exit 1; }
run() { "$bench" --model "$dir/m" --lengths 1024 --reps 1 --warmup 0 "$@" 2>&1 | grep '^RESULT engine'; }
run --dump-output "$dir/f32.out" >/dev/null
r=$(run --dtype bfloat16 --compare "$dir/f32.out")
err=$(sed -n 's/.* rel_err_vs_compare=\([^ ]*\).*/\1/p' <<<"$r")
cos=$(sed -n 's/.* cos_vs_compare=\([^ ]*\).*/\1/p' <<<"$r")
isa=$(sed -n 's/.* isa="\(.*\)"$/\1/p' <<<"$r")
echo "bf16 vs float32 at hidden 768, 1024 tokens: rel err $err, embedding cosine $cos ($isa)"
[[ $r == *dtype=bfloat16* ]] || { echo "not a bfloat16 run: $r"; exit 1; }
awk -v e="$err" -v c="$cos" 'BEGIN {exit !(e != "" && e + 0 > 0 && e + 0 <= 1e-2 && c + 0 >= 0.999)}' ||
    { echo "FAIL: rel err must be in (0, 1e-2], cosine >= 0.999"; exit 1; }
