#!/usr/bin/env bash
# Engine vs Hugging Face transformers on a random longformer-base-shaped model, one
# process per (implementation, backend, length) so each peak RSS is that run's alone, and
# the machine's GEMM rates first (bench_gemm), so the forward's useful rate reads against
# the best sgemm measured in the same run. Builds nothing: run `ninja -C build` first.
# See bench/README.md.
#
# Environment: BUILD (default <repo>/build), MODEL (/tmp/ls-bench-model, written when
# absent), LENGTHS (512,1024,4096,16384), BACKENDS ("cpu blas", and "cpu:bfloat16" where
# /proc/cpuinfo has amx_bf16 or avx512_bf16: bench_engine --backend[:--dtype], the first is
# the one compared with HF and the others with it), THREADS (2), ROUNDS (2: passes over the
# backends, in turn, the best of all kept), REPS (timed forwards per pass: 2, or 3 when ROUNDS
# is 1; best of 4 by default, the issue asks best of 3), HF_REPS (3),
# GEMM_REPS (5), GLOBALS (1), HF_PYTHON (/tmp/hfvenv/bin/python), HF_TIMEOUT (900 s per
# length), QUIET_CORES / QUIET_MAX (see wait_quiet), TRIES / RETRY_CORES (see measure),
# WORK (default: a fresh directory made by mktemp -d /tmp/ls-bench.*: ids, outputs, logs).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
BENCH=$BUILD/bench/bench_engine
GEMM=$BUILD/bench/bench_gemm
MODEL=${MODEL:-/tmp/ls-bench-model}
LENGTHS=${LENGTHS:-512,1024,4096,16384}
THREADS=${THREADS:-2}
GLOBALS=${GLOBALS:-1}
if [ -z "${BACKENDS:-}" ]; then
    BACKENDS="cpu blas"
    grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo && BACKENDS+=" cpu:bfloat16"
fi
GEMM_REPS=${GEMM_REPS:-5}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-$((ROUNDS > 1 ? 2 : 3))}
HF_REPS=${HF_REPS:-3}
HF_PYTHON=${HF_PYTHON:-/tmp/hfvenv/bin/python}
HF_TIMEOUT=${HF_TIMEOUT:-900}
WORK=${WORK:-$(mktemp -d /tmp/ls-bench.XXXXXX)}
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE

die() { echo "run_longformer.sh: $*" >&2; exit 1; }
[ -x "$BENCH" ] || die "$BENCH not found: build first (ninja -C $BUILD)"
[ -x "$GEMM" ] || die "$GEMM not found: build first (ninja -C $BUILD)"
read -r -a backends <<<"$BACKENDS"
[ "${#backends[@]}" -gt 0 ] || die "BACKENDS is empty"
mkdir -p "$WORK" || die "cannot create $WORK"
# one binary each for the whole run, even if build/ is rebuilt meanwhile (the engine and
# kernels are linked statically into them)
cp "$BENCH" "$WORK/bench_engine" || die "cannot copy $BENCH"
cp "$GEMM" "$WORK/bench_gemm" || die "cannot copy $GEMM"
BENCH=$WORK/bench_engine GEMM=$WORK/bench_gemm

# value of key=... in a RESULT line, and of key="..." (values with spaces)
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1" | head -n1; }
qfield() { sed -n "s/.* $2=\"\([^\"]*\)\".*/\1/p" <<<"$1" | head -n1; }
# a / b with a format, or empty when either is empty or b is 0
ratio() { [ -n "$2" ] && [ -n "$3" ] && awk -v a="$2" -v b="$3" -v f="$1" 'BEGIN {if (b != 0) printf f, a / b}'; }

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

# ---- the machine's GEMM rates: every implementation on the layer's shapes, in turn ----------
# Its best rate on 4096 x 3072 x 768 (FFN up) is "best sgemm", what the forward's useful rate
# is compared with. Once per run, with the same threads, retried like the engine when busy.
glog=$WORK/gemm.log
echo
measure best_sgemm "$glog" "$GEMM" --threads "$THREADS" --reps "$GEMM_REPS"
g_rc=$M_RC
best_sgemm=$(field "$M_RES" gflops) best_impl=$(field "$M_RES" impl)
echo
echo "- GEMM, GFLOP/s (\`bench_gemm --threads $THREADS --reps $GEMM_REPS\`: best of $GEMM_REPS, implementations in turn, M = 4096 rows; log $glog):"
echo
echo "| impl | qkv 4096×2304×768 | attn-out 4096×768×768 | ff1 4096×3072×768 | ff2 4096×768×3072 | max rel err vs OpenBLAS | other cores |"
echo "|---|---:|---:|---:|---:|---:|---:|"
grep '^RESULT gemm ' "$glog" | awk '
    { for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      im = v["impl"]; if (!(im in seen)) { seen[im] = 1; order[++n] = im }
      if (v["core"] != "") name[im] = im " (" v["core"] ")"
      r[im, v["layer"]] = v["gflops"]
      if (!(im in err) || v["rel_err"] + 0 > err[im] + 0) err[im] = v["rel_err"]
      if (!(im in oth) || v["other_cores"] + 0 > oth[im] + 0) oth[im] = v["other_cores"]
      delete v }
    END { for (k = 1; k <= n; k++) { im = order[k]; nm = (im in name) ? name[im] : "kn_gemm " im
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", nm, r[im, "qkv"], r[im, "attn-out"],
                   r[im, "ff1"], r[im, "ff2"], err[im], oth[im] } }'
echo
if [ -n "$best_sgemm" ]; then
    echo "- best sgemm: **$best_sgemm GFLOP/s** ($best_impl, 4096×3072×768, $THREADS threads)"
else
    echo "- best sgemm: not measured (bench_gemm rc $g_rc, $glog)"
fi
b16_res=$(grep '^RESULT best_bf16 ' "$glog" | tail -n1)
best_bf16=$(field "$b16_res" gflops)
# the GEMM rate a backend's useful rate reads against: best bf16 for a bfloat16 one
ref_rate() { if [[ $1 == *bfloat16* ]] && [ -n "$best_bf16" ]; then echo "$best_bf16"; else echo "$best_sgemm"; fi; }
ref_name() { if [[ $1 == *bfloat16* ]] && [ -n "$best_bf16" ]; then echo "best bf16 GEMM"; else echo "best sgemm"; fi; }
[ -z "$b16_res" ] || echo "- best bf16 GEMM: **$(field "$b16_res" gflops) GFLOP/s** ($(field "$b16_res" impl), 4096×3072×768; $(ratio "%.2f×" "$(field "$b16_res" gflops)" "$best_sgemm") best sgemm)"
[ "$g_rc" -eq 0 ] || echo "- note: bench_gemm exited with $g_rc (a result off OpenBLAS's by > 1e-4, bf16 1e-2?): see $glog"

# ---- per length: each backend, then HF -------------------------------------------------------
declare -A ERES HRES HSTAT PRES
IFS=, read -r -a lens <<<"$LENGTHS"
for n in "${lens[@]}"; do
    reps_arg=(--reps "$REPS")
    echo
    echo "### length $n"
    first=${backends[0]}
    # ROUNDS passes over the backends, each REPS timed forwards, the best over all kept:
    # backends measured minutes apart on a VM whose speed drifts would otherwise compare one
    # minute's speed with another's
    for ((round = 1; round <= ROUNDS; round++)); do
    [ "$ROUNDS" -gt 1 ] && echo "# round $round of $ROUNDS"
    for b in "${backends[@]}"; do
        elog=$WORK/engine-$b-$n.log
        rlog=$elog
        [ "$ROUNDS" -gt 1 ] && rlog=$WORK/engine-$b-$n.round$round.log
        # the first backend writes the ids and the output HF is compared with; the others
        # are compared with its output
        if [ "$b" = "$first" ]; then
            io=(--dump-ids "$WORK/ids-$n.i32" --dump-output "$WORK/engine-$b-$n.f32")
        else
            io=(--compare "$WORK/engine-$first-$n.f32")
            [ -f "$WORK/engine-$first-$n.f32" ] || io=()
        fi
        dt=float32
        [[ $b == *:* ]] && dt=${b#*:}
        measure engine "$rlog" "$BENCH" --backend "${b%%:*}" --dtype "$dt" --model "$MODEL" --lengths "$n" \
            --threads "$THREADS" --globals "$GLOBALS" "${reps_arg[@]}" "${io[@]}"
        prev=${ERES[$n,$b]:-}
        if [ -n "$M_RES" ] && { [[ $prev != RESULT* ]] ||
            awk -v a="$(field "$M_RES" best_s)" -v b="$(field "$prev" best_s)" 'BEGIN {exit !(a < b)}'; }; then
            ERES[$n,$b]=$M_RES
            [ "$rlog" = "$elog" ] || cp "$rlog" "$elog"
        fi
        [ -n "${ERES[$n,$b]:-}" ] || ERES[$n,$b]="failed (rc $M_RC, $rlog)"
    done
    done

    HSTAT[$n]="not run"
    if [ "$have_hf" = 1 ] && [ -f "$WORK/engine-$first-$n.f32" ]; then
        hlog=$WORK/hf-$n.log
        measure hf "$hlog" timeout --signal=TERM --kill-after=30 "$HF_TIMEOUT" \
            "$HF_PYTHON" "$ROOT/bench/hf_longformer.py" --model "$MODEL" --ids "$WORK/ids-$n.i32" \
            --threads "$THREADS" --globals "$GLOBALS" --reps "$HF_REPS" \
            --compare "$WORK/engine-$first-$n.f32"
        HRES[$n]=$M_RES
        PRES[$n]=$(grep '^RESULT parity' "$hlog" | tail -n1)
        if [ -n "$M_RES" ]; then
            HSTAT[$n]=""
        elif [ "$M_RC" -eq 124 ] || [ "$M_RC" -eq 137 ]; then
            HSTAT[$n]="not measured: over ${HF_TIMEOUT} s"
        else
            HSTAT[$n]="failed (rc $M_RC, $hlog)"
        fi
    fi
done

# ---- tables ---------------------------------------------------------------------------------
ok() { [[ "$1" == RESULT* ]]; }
# Table cells from the RESULT line $1: " value |" per field named after it ("a/b": " va / vb
# |"), " n/a |" each when $1 is not a RESULT line.
cells() {
    local r=$1 f out=""
    shift
    for f in "$@"; do
        if ! ok "$r"; then
            out+=" n/a |"
        elif [[ $f == */* ]]; then
            out+=" $(field "$r" "${f%/*}") / $(field "$r" "${f#*/}") |"
        else
            out+=" $(field "$r" "$f") |"
        fi
    done
    printf '%s' "$out"
}
echo
echo "## results (best-of-N wall seconds; useful GFLOP as bench_engine.c's useful_flops; % of best sgemm = useful GFLOP/s / $best_sgemm${best_bf16:+, % of best bf16 GEMM = useful GFLOP/s / $best_bf16}; speed-up = HF s / engine s)"
echo
hdr="| length | useful GFLOP |" sep="|---:|---:|"
for b in "${backends[@]}"; do
    hdr+=" $b s | $b GFLOP/s | $b % of $(ref_name "$b") | $b speed-up vs HF |"
    sep+="---:|---:|---:|---:|"
done
echo "$hdr HF s |"
echo "$sep---:|"
for n in "${lens[@]}"; do
    row="| $n |" gf=""
    for b in "${backends[@]}"; do
        r=${ERES[$n,$b]}
        ok "$r" && [ -z "$gf" ] && gf=$(field "$r" useful_gflops)
    done
    row+=" ${gf:-n/a} |"
    h=${HRES[$n]:-} h_s=""
    ok "$h" && h_s=$(field "$h" best_s)
    for b in "${backends[@]}"; do
        r=${ERES[$n,$b]}
        if ok "$r"; then
            e_s=$(field "$r" best_s) rate=$(field "$r" gflops_rate)
            pct=$(ratio "%.1f %%" "$(awk -v a="$rate" 'BEGIN {print 100 * a}')" "$(ref_rate "$b")")
            sp=$(ratio "%.2f×" "$h_s" "$e_s")
            row+=" $e_s | $rate | ${pct:-n/a} | ${sp:-n/a} |"
        else
            row+=" $r | | | |"
        fi
    done
    echo "$row ${h_s:-${HSTAT[$n]}} |"
done

echo
echo "| length |$(for b in "${backends[@]}"; do printf ' %s ISA path (ops.isa; attention) | %s peak RSS MB |' "$b" "$b"; done) HF peak RSS MB |"
echo "|---:|$(for b in "${backends[@]}"; do printf -- '---|---:|'; done)---:|"
for n in "${lens[@]}"; do
    row="| $n |"
    for b in "${backends[@]}"; do
        r=${ERES[$n,$b]}
        if ok "$r"; then
            row+=" $(qfield "$r" isa); attention: $(field "$r" attn_isa) |"
        else
            row+=" n/a |"
        fi
        row+=$(cells "$r" peak_rss_mb)
    done
    echo "$row$(cells "${HRES[$n]:-}" peak_rss_mb)"
done

echo
hdr="| length | rel err ${backends[0]} vs HF (max abs diff / max abs) |" sep="|---:|---:|"
for b in "${backends[@]:1}"; do
    hdr+=" rel err $b vs ${backends[0]} | embedding cosine $b vs ${backends[0]} |"
    sep+="---:|---:|"
done
for b in "${backends[@]}"; do
    hdr+=" $b fwd peak MB | $b steal % / other cores |"
    sep+="---:|---:|"
done
echo "$hdr HF fwd peak MB | HF steal % / other cores |"
echo "$sep---:|---:|"
for n in "${lens[@]}"; do
    p=${PRES[$n]:-} rel=""
    [ -n "$p" ] && rel=$(field "$p" rel_err)
    row="| $n | ${rel:-n/a} |"
    for b in "${backends[@]:1}"; do
        row+=$(cells "${ERES[$n,$b]}" rel_err_vs_compare cos_vs_compare)
    done
    for b in "${backends[@]}"; do
        row+=$(cells "${ERES[$n,$b]}" fwd_peak_rss_mb steal_pct/other_cores)
    done
    echo "$row$(cells "${HRES[$n]:-}" fwd_peak_rss_mb steal_pct/other_cores)"
done

# time at 16384 over time at 4096 (linear scaling would be 4, plus the band's edges)
if [[ ",$LENGTHS," == *,4096,* && ",$LENGTHS," == *,16384,* ]]; then
    line="16384/4096 time ratio:"
    for b in "${backends[@]}"; do
        a=${ERES[16384,$b]} c=${ERES[4096,$b]}
        ok "$a" && ok "$c" && line+=" $b $(ratio "%.2f" "$(field "$a" best_s)" "$(field "$c" best_s)");"
    done
    a=${HRES[16384]:-} c=${HRES[4096]:-}
    ok "$a" && ok "$c" && line+=" HF $(ratio "%.2f" "$(field "$a" best_s)" "$(field "$c" best_s)");"
    echo
    echo "$line"
fi
# every other backend's speed against the first (bfloat16 against float32: the issue asks >= 1.8x)
if [ "${#backends[@]}" -gt 1 ]; then
    echo
    for n in "${lens[@]}"; do
        line="speed-up vs ${backends[0]} at $n:"
        c=${ERES[$n,${backends[0]}]}
        for b in "${backends[@]:1}"; do
            a=${ERES[$n,$b]}
            ok "$a" && ok "$c" && line+=" $b $(ratio "%.2f×" "$(field "$c" best_s)" "$(field "$a" best_s)");"
        done
        echo "$line"
    done
fi
echo
echo "logs, ids and outputs: $WORK"
