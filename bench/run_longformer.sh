#!/usr/bin/env bash
# Engine vs Hugging Face transformers on a random longformer-base-shaped model, one
# process per (implementation, length) so each peak RSS is that length's alone.
# Builds nothing: run `ninja -C build` first. See bench/README.md.
#
# Environment: BUILD (default <repo>/build), MODEL (/tmp/ls-bench-model, written when
# absent), LENGTHS (512,1024,4096,16384), THREADS (2), REPS (default: 3, 1 from 16384),
# GLOBALS (1), HF_PYTHON (/tmp/hfvenv/bin/python), HF_TIMEOUT (900 s per length),
# QUIET_CORES / QUIET_MAX (see wait_quiet), TRIES / RETRY_CORES (see measure), WORK (a new /tmp/ls-bench.XXXXXX: ids,
# outputs, logs).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
BENCH=$BUILD/bench/bench_engine
MODEL=${MODEL:-/tmp/ls-bench-model}
LENGTHS=${LENGTHS:-512,1024,4096,16384}
THREADS=${THREADS:-2}
GLOBALS=${GLOBALS:-1}
HF_PYTHON=${HF_PYTHON:-/tmp/hfvenv/bin/python}
HF_TIMEOUT=${HF_TIMEOUT:-900}
WORK=${WORK:-$(mktemp -d /tmp/ls-bench.XXXXXX)}
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE

die() { echo "run_longformer.sh: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not found: build first (ninja -C $BUILD)"
mkdir -p "$WORK" || die "cannot create $WORK"
# one binary for the whole run, even if build/ is rebuilt meanwhile (the engine is linked
# statically into it)
cp "$BENCH" "$WORK/bench_engine" || die "cannot copy $BENCH"
BENCH=$WORK/bench_engine

# value of key=... in a RESULT line
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1" | head -n1; }

# busy jiffies (user nice system irq softirq) of all CPUs
busy_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

# Waits (at most QUIET_MAX seconds, default 300) until other processes keep less than
# QUIET_CORES cores (default 0.2) busy over 3 s, so that a compile or a test run next door
# does not land in a timing; the RESULT lines' other_cores say what happened during it.
wait_quiet() {
    local waited=0 hz b0 b1 cores
    hz=$(getconf CLK_TCK)
    while :; do
        b0=$(busy_jiffies); sleep 3; b1=$(busy_jiffies)
        cores=$(awk -v a="$b0" -v b="$b1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz / 3}')
        awk -v c="$cores" -v q="${QUIET_CORES:-0.2}" 'BEGIN {exit !(c < q)}' && return 0
        if [ "$waited" -ge "${QUIET_MAX:-300}" ]; then
            echo "# note: machine still busy ($cores cores in use by others), measuring anyway"
            return 0
        fi
        [ "$waited" -eq 0 ] && echo "# waiting for the machine to go quiet ($cores cores busy)"
        sleep 7
        waited=$((waited + 10))
    done
}

echo "## machine"
echo "- nproc: $(nproc); cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1);" \
     "kernel $(uname -r); memory $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- repo: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
     "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo '(working tree modified)')"
echo "- OMP_NUM_THREADS=$OMP_NUM_THREADS OMP_WAIT_POLICY=$OMP_WAIT_POLICY, globals $GLOBALS, work dir $WORK"
have_hf=0
if [ -x "$HF_PYTHON" ]; then
    if versions=$("$HF_PYTHON" -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")' 2>&1); then
        echo "- HF: $versions ($HF_PYTHON)"
        have_hf=1
    else
        echo "- HF: skipped, $HF_PYTHON cannot import torch/transformers: $versions"
    fi
else
    echo "- HF: skipped, $HF_PYTHON not found (set HF_PYTHON)"
fi

if [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/model.safetensors" ]; then
    echo "- writing the random model to $MODEL"
    "$BENCH" --write-random "$MODEL" >"$WORK/write-model.log" 2>&1 ||
        { cat "$WORK/write-model.log" >&2; die "writing the model failed"; }
fi

# Runs a measurement (the command after KIND and LOG) up to TRIES times (default 3): again
# while other processes kept more than RETRY_CORES cores (default 0.3) busy during its timed
# runs. Keeps the try with the lowest best_s (best-of-N over tries, too) in LOG.
# Sets M_RES (its "RESULT KIND" line, empty if none) and M_RC (exit status of the last try).
measure() {
    local kind=$1 log=$2 try res best="" other
    shift 2
    M_RES="" M_RC=0
    for ((try = 1; try <= ${TRIES:-3}; try++)); do
        wait_quiet
        "$@" 2>&1 | tee "$log.try$try"
        M_RC=${PIPESTATUS[0]}
        res=$(grep "^RESULT $kind " "$log.try$try" | tail -n1)
        [ -n "$res" ] || break
        if [ -z "$best" ] || awk -v a="$(field "$res" best_s)" -v b="$(field "$M_RES" best_s)"             'BEGIN {exit !(a < b)}'; then
            best=$try M_RES=$res
            cp "$log.try$try" "$log"
        fi
        other=$(field "$res" other_cores)
        awk -v c="$other" -v q="${RETRY_CORES:-0.3}" 'BEGIN {exit !(c <= q)}' && break
        [ "$try" -lt "${TRIES:-3}" ] &&
            echo "# others kept $other cores busy during that run: measuring again"
    done
    [ -n "$best" ] || cp "$log.try$try" "$log"
}

rows=()
parity=()
IFS=, read -r -a lens <<<"$LENGTHS"
for n in "${lens[@]}"; do
    reps_arg=()
    [ -n "${REPS:-}" ] && reps_arg=(--reps "$REPS")
    echo
    echo "### length $n"
    elog=$WORK/engine-$n.log
    measure engine "$elog" "$BENCH" --model "$MODEL" --lengths "$n" --threads "$THREADS" \
        --globals "$GLOBALS" "${reps_arg[@]}" --dump-ids "$WORK/ids-$n.i32" \
        --dump-output "$WORK/engine-$n.f32"
    eres=$M_RES
    if [ -z "$eres" ]; then
        rows+=("| $n | failed (rc $M_RC, $elog) | | | | | | | |")
        continue
    fi
    e_s=$(field "$eres" best_s) e_tps=$(field "$eres" tokens_per_s) e_mb=$(field "$eres" peak_rss_mb)
    e_fwd=$(field "$eres" fwd_peak_rss_mb) e_steal=$(field "$eres" steal_pct)
    e_other=$(field "$eres" other_cores)

    h_cols="not run | | "
    ratio_cols=" | "
    h_fwd="" h_steal="" h_other="" rel=""
    if [ "$have_hf" = 1 ]; then
        hlog=$WORK/hf-$n.log
        measure hf "$hlog" timeout --signal=TERM --kill-after=30 "$HF_TIMEOUT" \
            "$HF_PYTHON" "$ROOT/bench/hf_longformer.py" --model "$MODEL" --ids "$WORK/ids-$n.i32" \
            --threads "$THREADS" --globals "$GLOBALS" "${reps_arg[@]}" \
            --compare "$WORK/engine-$n.f32"
        hres=$M_RES
        pres=$(grep '^RESULT parity' "$hlog" | tail -n1)
        if [ -n "$hres" ]; then
            h_s=$(field "$hres" best_s) h_mb=$(field "$hres" peak_rss_mb)
            h_cols="$h_s | $(field "$hres" tokens_per_s) | $h_mb"
            ratio_cols="$(awk -v a="$h_s" -v b="$e_s" 'BEGIN {printf "%.2f×", a / b}') |"
            ratio_cols+=" $(awk -v a="$h_mb" -v b="$e_mb" 'BEGIN {printf "%.2f×", a / b}')"
            h_fwd=$(field "$hres" fwd_peak_rss_mb) h_steal=$(field "$hres" steal_pct)
            h_other=$(field "$hres" other_cores)
        elif [ "$M_RC" -eq 124 ] || [ "$M_RC" -eq 137 ]; then
            h_cols="not measured: over ${HF_TIMEOUT} s | | "
        else
            h_cols="failed (rc $M_RC, $hlog) | | "
        fi
        [ -n "$pres" ] && rel=$(field "$pres" rel_err)
    fi
    rows+=("| $n | $e_s | $e_tps | $e_mb | $h_cols | $ratio_cols |")
    parity+=("| $n | ${rel:-n/a} | $e_fwd | ${h_fwd:-n/a} | $e_steal / $e_other | ${h_steal:-n/a} / ${h_other:-n/a} |")
done

echo
echo "## results (best-of-N wall seconds; peak RSS = whole-process VmHWM incl. model load, one process per length)"
echo
echo "| length | engine s | engine tok/s | engine peak RSS MB | HF s | HF tok/s | HF peak RSS MB | speed-up (HF s / engine s) | memory ratio (HF / engine) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "| length | rel err (max abs diff / max abs) | engine fwd peak MB | HF fwd peak MB | engine steal % / other cores | HF steal % / other cores |"
echo "|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${parity[@]}"
echo
echo "logs, ids and outputs: $WORK"
