#!/usr/bin/env bash
# Every libFuzzer target for a fixed time each, one after the other, with its seed corpus
# (fuzz/corpus/<t>, read only) and a working corpus (fuzz/corpus-out/<t>, git-ignored);
# prints executions per target and exits 1 if any crashed (the input is kept as
# <build>/crash-<t>-*; replay it with <build>/fuzz/fuzz_<t> FILE, see fuzz/README.md).
#
#     tools/fuzz-run.sh [seconds per target, 60] [build dir, build-fuzz] [targets...]
#
# Needs clang and its libFuzzer runtime (Debian 12: clang-14, libclang-rt-14-dev).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-60}
dir=${2:-build-fuzz}
shift $(($# > 2 ? 2 : $#))
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    targets=(safetensors config v2 sbert tokenizer tokenizer_json tei http)
if [ ! -d "$dir" ]; then
    # -Dwerror=false: kernels/cpu/cpu.c uses GCC's optimize attribute, which clang ignores with
    # a warning (fuzz_http links the engine behind the server)
    CC=clang nice -n 19 meson setup "$dir" -Dfuzz=true -Dcuda=disabled --buildtype=release \
        -Dwerror=false
fi
nice -n 19 ninja -C "$dir" "${targets[@]/#/fuzz/fuzz_}"
export OMP_WAIT_POLICY=PASSIVE
failed=0
printf '%-16s %12s %10s %8s  %s\n' target executions "execs/s" "cov" result
for t in "${targets[@]}"; do
    out=fuzz/corpus-out/$t
    log=$dir/fuzz-$t.log
    mkdir -p "$out"
    rc=0
    nice -n 19 "$dir/fuzz/fuzz_$t" "$out" "fuzz/corpus/$t" -max_total_time="$secs" \
        -print_final_stats=1 -artifact_prefix="$dir/crash-$t-" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="CRASH (rc $rc, $log)"
        failed=1
    fi
    printf '%-16s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
done
exit $failed
