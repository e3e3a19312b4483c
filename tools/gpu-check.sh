#!/usr/bin/env bash
# gpu-check.sh — the CUDA backend's whole check on a GPU machine, in one go, in under 5 minutes:
# build with CUDA, run the CUDA tests (index arithmetic, every op against the CPU reference,
# plain and fast, each precision) and the GPU benchmark, then print one short table.
#
#   tools/gpu-check.sh --prepare   here (the development machine): build build-gpu/, the CUDA
#                                  tests and bench as self-contained programs (Check and
#                                  subunit linked statically, cudart static), for machines
#                                  that lack the project's C libraries
#   tools/gpu-check.sh             there (the GPU machine, a copy of the tree, nothing to
#                                  download): 1. the full meson build with -Dcuda=enabled when
#                                  its dependencies exist; 2. else a standalone nvcc/cc build
#                                  of the CUDA pieces; 3. else the carried build-gpu/ programs.
#                                  Each step that fails is reported and the next one runs.
#
# Environment: OUT (a folder for the logs, default /tmp/gpu-check), BUILD (the build trees,
# default /tmp/gpu-check-build), BENCH_ARGS (extra flags
# for bench_cuda, e.g. --quick), JOBS (parallel compiles, default nproc). Exit status 0 when
# every check that ran passed; the table says which were skipped and why.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export PATH=$PATH:/usr/local/cuda/bin
# cuBLASLt is linked dynamically: the toolkit's folders, and the pip wheel PyTorch brings
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c 'import nvidia.cublas as m; print(list(m.__path__)[0] + "/lib")' 2>/dev/null); do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
OUT=${OUT:-/tmp/gpu-check}
BUILD=${BUILD:-/tmp/gpu-check-build} # build trees stay out of $OUT, which holds logs only
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
declare -a TABLE=()
FAILED=0

note() { printf 'gpu-check: %s\n' "$*"; }
row() { TABLE+=("$(printf '%-26s %-8s %s' "$1" "$2" "$3")"); }

CUDA_SRCS="kernels/cuda/backend.cu kernels/cuda/gemm.cu kernels/cuda/norm.cu kernels/cuda/act.cu
  kernels/cuda/embed.cu kernels/cuda/window.cu kernels/cuda/global.cu kernels/cuda/chunk.cu
  kernels/cuda/lsh.cu"
NVFLAGS="-O3 -std=c++17 --expt-relaxed-constexpr -gencode arch=compute_90,code=sm_90
  -gencode arch=compute_90,code=compute_90 -Xcompiler=-Wall,-Wextra -Werror=all-warnings"
CFLAGS="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror"

# standalone DIR CHECKLIBS: the CUDA library, the index and parity tests (when CHECKLIBS is
# not "none") and bench_cuda, into DIR. 0 when everything asked for was built.
standalone() {
    local dir=$1 checklibs=$2 rc=0 objs=()
    mkdir -p "$dir/obj"
    for f in $CUDA_SRCS; do
        local o
        o="$dir/obj/$(basename "$f" .cu).o"
        objs+=("$o")
        nvcc $NVFLAGS -c "$f" -o "$o" >"$dir/obj/$(basename "$f").log" 2>&1 &
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
    done
    cc $CFLAGS -c kernels/ops.c -o "$dir/obj/ops.o" && cc $CFLAGS -c kernels/cpu/ref.c -o "$dir/obj/ref.o" ||
        rc=1
    wait
    for f in $CUDA_SRCS; do
        [ -s "$dir/obj/$(basename "$f" .cu).o" ] || {
            note "nvcc failed on $f:"
            tail -5 "$dir/obj/$(basename "$f").log"
            rc=1
        }
    done
    [ $rc = 0 ] || return 1
    local libs=("${objs[@]}" "$dir/obj/ops.o" "$dir/obj/ref.o" -lcublasLt -lm)
    cc $CFLAGS -c bench/bench_cuda.c -o "$dir/obj/bench_cuda.o" &&
        cc $CFLAGS -c bench/benchutil.c -o "$dir/obj/benchutil.o" &&
        nvcc -o "$dir/bench_cuda" "$dir/obj/bench_cuda.o" "$dir/obj/benchutil.o" "${libs[@]}" || rc=1
    if [ "$checklibs" != none ]; then
        for t in test_cuda_index test_cuda_parity; do
            cc $CFLAGS -c "tests/$t.c" -o "$dir/obj/$t.o" &&
                nvcc -o "$dir/$t" "$dir/obj/$t.o" "${libs[@]}" $checklibs || rc=1
        done
    fi
    return $rc
}

if [ "${1:-}" = --prepare ]; then
    note "preparing build-gpu/ (self-contained CUDA tests and bench)"
    # Check and subunit exist here only as static archives or get linked statically
    standalone build-gpu "$(cc -print-file-name=libcheck.a) $(cc -print-file-name=libsubunit.a) -lrt -lpthread" ||
        exit 1
    ls -l build-gpu/test_cuda_index build-gpu/test_cuda_parity build-gpu/bench_cuda
    note "dry run of the carried programs here:"
    for t in test_cuda_index test_cuda_parity; do
        CK_FORK=no "build-gpu/$t" >/dev/null 2>&1
        note "$t: exit $? (77 = skipped: no device)"
    done
    exit 0
fi

# ---- 0. the machine -----------------------------------------------------------------------------
note "$(date -u +%FT%TZ) in $ROOT, $JOBS jobs"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
        --format=csv,noheader 2>&1 | sed 's/^/gpu-check: gpu: /'
else
    note "no nvidia-smi"
fi
command -v nvcc >/dev/null && note "$(nvcc --version | tail -1)" || note "no nvcc on PATH"

# ---- 1..3. a build ------------------------------------------------------------------------------
BIN=""
T0=$(date +%s)
# GPU_CHECK_NO_MESON=1 skips step 1 (to try the fallbacks); a rerun reuses a configured tree
if [ -z "${GPU_CHECK_NO_MESON:-}" ] && command -v meson >/dev/null && command -v ninja >/dev/null &&
    { [ -f "$BUILD/meson/build.ninja" ] ||
        meson setup "$BUILD/meson" -Dcuda=enabled --buildtype=release >"$OUT/meson-setup.log" 2>&1; } &&
    ninja -C "$BUILD/meson" tests/test_cuda_index tests/test_cuda_parity bench/bench_cuda \
        >"$OUT/meson-build.log" 2>&1; then
    BIN="$BUILD/meson/tests"
    BENCH="$BUILD/meson/bench/bench_cuda"
    row "build" "ok" "meson -Dcuda=enabled, $(($(date +%s) - T0)) s"
else
    if [ -n "${GPU_CHECK_NO_MESON:-}" ]; then
        note "meson step skipped (GPU_CHECK_NO_MESON)"
    else
        note "meson build not possible here: $(tail -2 "$OUT/meson-setup.log" "$OUT/meson-build.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
    fi
    CHECKLIBS=none # GPU_CHECK_NO_CHECK=1 acts as if Check were absent (the carried programs)
    if [ -z "${GPU_CHECK_NO_CHECK:-}" ] && pkg-config --exists check 2>/dev/null; then
        CHECKLIBS=$(pkg-config --libs check)
    fi
    if standalone "$BUILD/sa" "$CHECKLIBS"; then
        row "build" "ok" "standalone nvcc (check: $([ "$CHECKLIBS" = none ] && echo absent || echo found)), $(($(date +%s) - T0)) s"
        BENCH="$BUILD/sa/bench_cuda"
        [ "$CHECKLIBS" != none ] && BIN="$BUILD/sa"
    else
        row "build" "FAIL" "standalone nvcc build failed (see above)"
        FAILED=1
        BENCH=""
    fi
    if [ -z "$BIN" ] && [ -x build-gpu/test_cuda_parity ]; then
        BIN="$ROOT/build-gpu"
        note "tests: the carried build-gpu/ programs (built with tools/gpu-check.sh --prepare)"
    fi
    if [ -z "$BENCH" ] && [ -x build-gpu/bench_cuda ]; then BENCH="$ROOT/build-gpu/bench_cuda"; fi
fi

# ---- 4. tests -------------------------------------------------------------------------------------
run_test() { # name program timeout
    if [ -z "$2" ] || [ ! -x "$2" ]; then
        row "$1" "MISSING" "not built"
        FAILED=1
        return
    fi
    local t0 rc took summary
    t0=$(date +%s)
    CK_FORK=no timeout "$3" "$2" >"$OUT/$1.log" 2>&1
    rc=$?
    took=$(($(date +%s) - t0))
    summary=$(grep -E '^[0-9]+%: Checks' "$OUT/$1.log" | tail -1)
    case $rc in
    0) row "$1" "ok" "$summary ($took s)" ;;
    77) row "$1" "SKIP" "$(grep -m1 skipped "$OUT/$1.log")" ;;
    124) row "$1" "TIMEOUT" "after $3 s" && FAILED=1 ;;
    *)
        row "$1" "FAIL" "exit $rc: $summary ($took s)"
        FAILED=1
        grep -E ':[FE]:' "$OUT/$1.log" | head -8 | sed 's/^/gpu-check:   /'
        ;;
    esac
}
run_test test_cuda_index "${BIN:+$BIN/test_cuda_index}" 60
run_test test_cuda_parity "${BIN:+$BIN/test_cuda_parity}" 100

# ---- 5. the benchmark -------------------------------------------------------------------------------
if [ -n "${BENCH:-}" ] && [ -x "$BENCH" ]; then
    t0=$(date +%s)
    timeout 90 "$BENCH" ${BENCH_ARGS:-} >"$OUT/bench_cuda.log" 2>&1
    rc=$?
    case $rc in
    0) row "bench_cuda" "ok" "$(($(date +%s) - t0)) s" ;;
    77) row "bench_cuda" "SKIP" "$(head -1 "$OUT/bench_cuda.log")" ;;
    *) row "bench_cuda" "FAIL" "exit $rc after $(($(date +%s) - t0)) s" && FAILED=1 ;;
    esac
else
    row "bench_cuda" "MISSING" "not built"
    FAILED=1
fi

# ---- the table ------------------------------------------------------------------------------------
echo
[ -s "$OUT/bench_cuda.log" ] && sed -n '/^op /,$p' "$OUT/bench_cuda.log" && grep -m1 '^bench_cuda:' "$OUT/bench_cuda.log"
echo
printf '%-26s %-8s %s\n' "check" "result" "detail"
for r in "${TABLE[@]}"; do echo "$r"; done
note "logs in $OUT; total $(($(date +%s) - T0)) s"
exit $FAILED
