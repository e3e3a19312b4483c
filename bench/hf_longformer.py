#!/usr/bin/env python3
"""Hugging Face side of the engine benchmark: one forward of transformers'
LongformerModel on the ids bench_engine wrote (--dump-ids), timed the way bench_engine
times it (one warm-up, best-of-N wall time), plus peak RSS, and optionally the
last_hidden_state compared with the engine's (--dump-output).

Run one length per process (bench/run_longformer.sh does), so peak RSS is per length.
"""
import argparse
import array
import os
import resource
import statistics
import sys
import time


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def reset_peak_rss():
    """Resets VmHWM (and with it ru_maxrss) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_sample():
    """(busy, steal, total) jiffies of all CPUs, own CPU seconds, wall seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    return busy, v[7], sum(v), time.process_time(), time.perf_counter()


def cpu_sample_diff(a, b):
    """Steal % of all CPU time, and cores other processes kept busy on average."""
    hz = os.sysconf("SC_CLK_TCK")
    wall = b[4] - a[4]
    if b[2] <= a[2] or wall <= 0:
        return -1.0, -1.0
    steal = 100.0 * (b[1] - a[1]) / (b[2] - a[2])
    other = ((b[0] - a[0]) / hz - (b[3] - a[3])) / wall
    return steal, max(other, 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="model directory (config.json, model.safetensors)")
    ap.add_argument("--ids", required=True, help="little-endian int32 ids from bench_engine --dump-ids")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="timed forwards (default 3, 1 from 16384 tokens)")
    ap.add_argument("--warmup", type=int, default=1, choices=[0, 1])
    ap.add_argument("--globals", type=int, default=1, help="global attention on the first G tokens")
    ap.add_argument("--compare", help="engine last_hidden_state, little-endian float32 [n, hidden]")
    args = ap.parse_args()

    ids = array.array("i")
    with open(args.ids, "rb") as f:
        ids.frombytes(f.read())
    if sys.byteorder != "little":
        ids.byteswap()
    n = len(ids)
    if n < 2:
        sys.exit(f"hf_longformer: {args.ids}: no ids")
    reps = args.reps or (1 if n >= 16384 else 3)

    import torch
    import transformers
    from transformers import LongformerModel

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, info = LongformerModel.from_pretrained(
        args.model, dtype=torch.float32, output_loading_info=True
    )
    load_s = time.perf_counter() - t0
    bad = {k: v for k, v in info.items() if v}
    if bad:  # a weight HF did not find would be random here and the comparison meaningless
        sys.exit(f"hf_longformer: {args.model}: loading problems: {bad}")
    model.eval()
    load_hwm_kb = status_kb("VmHWM")
    backend = [l.strip() for l in torch.__config__.parallel_info().splitlines() if "backend" in l]
    print(
        f"# torch {torch.__version__} (threads {torch.get_num_threads()}; "
        f"{'; '.join(backend)}), transformers {transformers.__version__}; loaded in {load_s:.2f} s, "
        f"RSS {status_kb('VmRSS') / 1024:.0f} MB (peak {load_hwm_kb / 1024:.0f} MB)"
    )

    input_ids = torch.tensor(ids, dtype=torch.long).unsqueeze(0)
    attention_mask = torch.ones_like(input_ids)
    global_attention_mask = torch.zeros_like(input_ids)
    global_attention_mask[0, : args.globals] = 1

    def forward():
        return model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            global_attention_mask=global_attention_mask,
        )

    hwm_reset = reset_peak_rss()
    with torch.inference_mode():
        for _ in range(args.warmup):
            forward()
        cs0 = cpu_sample()
        times, cpus = [], []
        for _ in range(reps):
            c0, w0 = time.process_time(), time.perf_counter()
            out = forward()
            times.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        cs1 = cpu_sample()
    hidden = out.last_hidden_state[0]

    fwd_hwm_kb = status_kb("VmHWM")
    # ru_maxrss is the same high-water mark as VmHWM; after the reset it covers the
    # forwards only, so the process peak is the larger of it and the load peak
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_kb = max(load_hwm_kb, maxrss_kb, fwd_hwm_kb)
    best = min(times)
    med = statistics.median(times)
    cpu_util = cpus[times.index(best)] / best
    steal, other = cpu_sample_diff(cs0, cs1)
    if not torch.isfinite(hidden).all():
        sys.exit(f"hf_longformer: non-finite last_hidden_state at length {n}")
    print(
        f"RESULT hf len={n} reps={reps} best_s={best:.4f} median_s={med:.4f} "
        f"tokens_per_s={n / best:.1f} peak_rss_mb={peak_kb / 1024:.0f} "
        f"fwd_peak_rss_mb={fwd_hwm_kb / 1024 if hwm_reset else -1:.0f} "
        f"load_peak_rss_mb={load_hwm_kb / 1024:.0f} load_s={load_s:.2f} "
        f"cpu_util={cpu_util:.2f} steal_pct={steal:.1f} other_cores={other:.2f} threads={torch.get_num_threads()} "
        f"globals={args.globals}",
        flush=True,
    )

    if args.compare:
        eng = array.array("f")
        with open(args.compare, "rb") as f:
            eng.frombytes(f.read())
        if sys.byteorder != "little":
            eng.byteswap()
        h = hidden.shape[1]
        if len(eng) != n * h:
            sys.exit(f"hf_longformer: {args.compare}: {len(eng)} floats, expected {n}x{h}")
        e = torch.tensor(eng, dtype=torch.float32).view(n, h)
        diff = (e - hidden).abs()
        max_abs = hidden.abs().max().item()
        max_diff = diff.max().item()
        worst = divmod(int(diff.argmax().item()), h)
        print(
            f"RESULT parity len={n} max_abs_diff={max_diff:.3e} max_abs={max_abs:.4f} "
            f"rel_err={max_diff / max_abs:.3e} worst_token={worst[0]} "
            f"global_row_diff={diff[: max(args.globals, 1)].max().item():.3e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
