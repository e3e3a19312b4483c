/* bench_cuda — each op of the CUDA table alone at longformer-base shapes (hidden 768, 12 heads
 * of 64, FFN 3072, window w = 256, one global token per sequence) for 4k and 16k tokens at
 * batch 1 and 8, and the Reformer ops at reformer-enwik8-like shapes (8 heads of 128, LSH
 * chunk 256 with one chunk before, 4 hashes, 512 buckets) at 16k and 64k: median time,
 * achieved TFLOP/s (useful FLOPs) and GB/s (the fewest bytes), window_attn's share of the
 * H200's 989 TFLOP/s dense bf16, and per Longformer shape an estimate of the 12-layer encoder
 * as the sum of its ops (time, useful TFLOP/s, tokens/s). One short table at the end; exits
 * 77 when there is no device. The Reformer heads share one sorted (qk | v) buffer of nH·L
 * rows, each writing its own output. Timing: the table's sync around each call, host clock
 * (no CUDA types outside kernels/cuda), so launch gaps are included. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "benchutil.h"

enum { NH = 12, D = 64, HID = NH * D, FFN = 3072, W = 256, MAXROWS = 64 };

static kn_ops cu;
static int reps = 20;
static double peak_bf16 = 989e12;

typedef struct {
    char op[24], shape[40];
    double ms, tflops, gbs, peak_pct, mtok_s;
} row;
static row rows[MAXROWS];
static int nrows;

static void fill(float *a, size_t n, uint64_t seed, float amp)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = amp * (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
    }
}

/* Random device floats (never zeros: they time faster than data). */
static float *dev_rand(size_t n, uint64_t seed, float amp)
{
    float *h = malloc(n * sizeof *h), *d = cu.buf_alloc(n * sizeof *d);
    if (!h || !d) {
        free(h);
        cu.buf_free(d);
        return NULL;
    }
    fill(h, n, seed, amp);
    if (cu.upload(d, h, n * sizeof *h)) d = NULL;
    free(h);
    return d;
}

static int check(const char *what)
{
    char err[512];
    if (cu.sync(err, sizeof err) == 0) return 0;
    fprintf(stderr, "bench_cuda: %s: %s\n", what, err);
    return -1;
}

typedef void (*run_fn)(void *ctx);

/* Median of reps timed batches (one call each after two warm-ups); NAN on a device error. */
static double time_op(const char *what, run_fn f, void *ctx)
{
    f(ctx), f(ctx);
    if (check(what)) return NAN;
    double t[64];
    const int n = reps < 64 ? reps : 64;
    for (int i = 0; i < n; i++) {
        const double t0 = bench_now_s(CLOCK_MONOTONIC);
        f(ctx);
        if (check(what)) return NAN;
        t[i] = bench_now_s(CLOCK_MONOTONIC) - t0;
    }
    qsort(t, n, sizeof *t, bench_cmp_double);
    return bench_median(t, n);
}

/* One table row; returns s, so callers can sum the ops of a layer. */
static double add_row(const char *op, const char *shape, double s, double flop, double bytes,
                      int vs_peak)
{
    if (nrows == MAXROWS) return s;
    row *r = &rows[nrows++];
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->ms = s * 1e3;
    r->tflops = flop / s / 1e12;
    r->gbs = bytes / s / 1e9;
    r->peak_pct = vs_peak ? 100.0 * flop / s / peak_bf16 : NAN;
    r->mtok_s = NAN;
    return s;
}

/* ---- the ops' contexts ------------------------------------------------------------------------
 */

typedef struct {
    const float *x;
    kn_weight w;
    const float *b;
    float *y;
    int M, N, K;
    int32_t groups[9];
    int ng;
} lin_ctx;

static void run_lin(void *p)
{
    lin_ctx *c = p;
    cu.linear(c->x, &c->w, c->b, c->y, c->M, c->N, c->K, c->groups, c->ng);
}

typedef struct {
    float *x;
    const float *r, *g, *b;
    int T;
} ln_ctx;

static void run_ln(void *p)
{
    ln_ctx *c = p;
    cu.add_layernorm(c->x, c->r, c->g, c->b, 1e-5f, c->T, HID);
}

typedef struct {
    float *x;
    size_t n;
} act_ctx;

static void run_gelu(void *p)
{
    act_ctx *c = p;
    cu.gelu(c->x, c->n);
}

static void run_window(void *p)
{
    cu.window_attn(p);
}

static void run_global(void *p)
{
    cu.global_attn(p);
}

static void run_chunk(void *p)
{
    cu.chunk_attn(p);
}

static void run_hash(void *p)
{
    cu.lsh_hash(p);
}

typedef struct {
    const int32_t *keys;
    int32_t *perm;
    int n, nkeys;
} sort_ctx;

static void run_sort(void *p)
{
    sort_ctx *c = p;
    cu.lsh_sort(c->keys, c->perm, c->n, c->nkeys);
}

/* ---- longformer-base ------------------------------------------------------------------------ */

static int bench_longformer(int L, int B)
{
    const int T = L * B;
    char shape[40];
    snprintf(shape, sizeof shape, "L=%d b=%d", L, B);
    int rc = -1;
    float *x = dev_rand((size_t)T * HID, 1, 1), *qkv = dev_rand((size_t)T * 3 * HID, 2, 2);
    float *h = dev_rand((size_t)T * FFN, 3, 1), *out = cu.buf_alloc((size_t)T * HID * 4);
    float *bias = dev_rand(FFN, 4, 0.1f), *g = dev_rand(HID, 5, 1);
    float *qg = dev_rand((size_t)B * HID, 6, 1);
    float *wg = dev_rand((size_t)HID * HID, 7, 0.05f);
    float *wh = malloc(sizeof(float) * FFN * HID);
    uint8_t *kind = malloc(T), *dkind = cu.buf_alloc(T);
    int32_t off[9], goff[9], glob[8], *dglob = cu.buf_alloc(sizeof glob);
    if (!x || !qkv || !h || !out || !bias || !g || !qg || !wg || !wh || !kind || !dkind || !dglob)
        goto done;
    fill(wh, (size_t)FFN * HID, 8, 0.05f);
    for (int s = 0; s <= B; s++)
        off[s] = s * L, goff[s] = s;
    for (int t = 0; t < T; t++)
        kind[t] = t % L == 0 ? KN_TOK_GLOBAL : KN_TOK_LOCAL; /* CLS global */
    for (int s = 0; s < B; s++)
        glob[s] = s * L;
    if (cu.upload(dkind, kind, T) || cu.upload(dglob, glob, sizeof(int32_t) * B)) goto done;

    /* linear layers: QKV (768 -> 2304), attention output (768 -> 768), FFN in (768 -> 3072),
     * FFN out (3072 -> 768) */
    const int shapes[4][2] = {{3 * HID, HID}, {HID, HID}, {FFN, HID}, {HID, FFN}};
    const char *names[4] = {"linear qkv", "linear out", "linear ffn1", "linear ffn2"};
    double layer_s = 0, layer_flop = 0; /* one encoder layer, op by op */
    for (int i = 0; i < 4; i++) {
        lin_ctx c = {shapes[i][1] == HID ? x : h,
                     {wh, shapes[i][0], shapes[i][1], NULL},
                     bias,
                     shapes[i][0] == HID ? out : (shapes[i][0] == FFN ? h : qkv),
                     T,
                     shapes[i][0],
                     shapes[i][1],
                     {0},
                     B};
        for (int s = 0; s <= B; s++)
            c.groups[s] = off[s];
        if (cu.weight_prepare(&c.w)) {
            check("weight_prepare");
            goto done;
        }
        const double s = time_op(names[i], run_lin, &c);
        cu.weight_release(&c.w);
        const double flop = 2.0 * T * c.N * c.K;
        const double bytes = 4.0 * T * (c.K + c.N) + 2.0 * c.N * c.K;
        layer_s += add_row(names[i], shape, s, flop, bytes, 0);
        layer_flop += flop;
    }
    ln_ctx lc = {out, x, g, bias, T};
    layer_s += 2 * add_row("add_layernorm", shape, time_op("add_layernorm", run_ln, &lc), 0,
                           12.0 * T * HID, 0);
    act_ctx ac = {h, (size_t)T * FFN};
    layer_s += add_row("gelu", shape, time_op("gelu", run_gelu, &ac), 0, 8.0 * T * FFN, 0);

    kn_attn_args a = {.q = qkv,
                      .k = qkv + HID,
                      .v = qkv + 2 * HID,
                      .ld = 3 * HID,
                      .out = out,
                      .ldo = HID,
                      .nseq = B,
                      .offsets = off,
                      .kind = dkind,
                      .glob = dglob,
                      .glob_off = goff,
                      .nh = NH,
                      .d = D,
                      .w = W,
                      .scale = 0.125f,
                      .qg = qg,
                      .ldqg = HID,
                      .x = x,
                      .hidden = HID,
                      .wkg = wg,
                      .bkg = bias,
                      .wvg = wg,
                      .bvg = bias};
    /* useful FLOPs: 4·d per (local query, head, key it attends): the clipped window's local
     * keys plus the global column */
    double keys = 0;
    for (int i = 1; i < L; i++) {
        const int lo = i - W < 1 ? 1 : i - W, hi = i + W >= L ? L - 1 : i + W;
        keys += hi - lo + 1 + 1;
    }
    const double wflop = 4.0 * D * NH * keys * B;
    const double wbytes = 4.0 * T * 4 * HID; /* q, k, v read once, out written once (f32) */
    layer_s +=
        add_row("window_attn", shape, time_op("window_attn", run_window, &a), wflop, wbytes, 1);
    const double gflop = B * (4.0 * L * HID * HID + 4.0 * D * NH * L);
    layer_s += add_row("global_attn", shape, time_op("global_attn", run_global, &a), gflop,
                       4.0 * T * HID + 8.0 * HID * HID, 0);
    layer_flop += wflop + gflop;
    /* 12 layers of the ops above, run back to back one at a time (the engine would also
     * embed, project the global queries and run the head: not counted) */
    add_row("est 12 layers", shape, 12 * layer_s, 12 * layer_flop, 0, 0);
    if (nrows > 0) rows[nrows - 1].mtok_s = T / (12 * layer_s) / 1e6;
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_cuda: longformer %s: setup or run failed\n", shape);
    cu.buf_free(x), cu.buf_free(qkv), cu.buf_free(h), cu.buf_free(out), cu.buf_free(bias);
    cu.buf_free(g), cu.buf_free(qg), cu.buf_free(wg), cu.buf_free(dkind), cu.buf_free(dglob);
    free(wh), free(kind);
    return rc;
}

/* ---- reformer-enwik8-like: LSH hashing, sort, chunked attention ------------------------------ */

static int bench_reformer(int L)
{
    const int nh = 8, d = 128, nH = 4, chunk = 256, NB = 512, n = nH * L;
    char shape[40];
    snprintf(shape, sizeof shape, "L=%d hashes=%d", L, nH);
    int rc = -1;
    float *qkv = dev_rand((size_t)n * 2 * d, 9, 1), *rot = dev_rand((size_t)d * nH * NB / 2, 10, 1);
    float *out = cu.buf_alloc((size_t)n * d * nh * 4), *lse = cu.buf_alloc((size_t)n * nh * 4);
    int32_t *buckets = cu.buf_alloc((size_t)n * 4), *perm = cu.buf_alloc((size_t)n * 4);
    int32_t *pos = malloc((size_t)n * 4), *dpos = cu.buf_alloc((size_t)n * 4);
    kn_chunk_seg seg[8];
    if (!qkv || !rot || !out || !lse || !buckets || !perm || !pos || !dpos) goto done;
    for (int i = 0; i < n; i++)
        pos[i] = (int32_t)(((uint64_t)i * 2654435761u) % (uint64_t)L); /* scattered positions */
    if (cu.upload(dpos, pos, (size_t)n * 4)) goto done;
    kn_lsh_args la = {qkv, 2 * d, rot, L, d, nH, 1, {NB}, NULL, 0, buckets};
    const double hflop = 2.0 * L * d * nH * NB / 2;
    add_row("lsh_hash", shape, time_op("lsh_hash", run_hash, &la), hflop, 4.0 * L * d + 4.0 * n, 0);
    sort_ctx sc = {buckets, perm, n, nH * NB};
    add_row("lsh_sort", shape, time_op("lsh_sort", run_sort, &sc), 0, 16.0 * n, 0);
    for (int h = 0; h < nh; h++)
        seg[h] = (kn_chunk_seg){
            qkv,  qkv,  qkv + d, 2 * d, out + (size_t)h * n * d, d, lse + (size_t)h * n,
            dpos, NULL, n};
    kn_chunk_args ca = {seg, nh, d, chunk, 1, 0, 0, 1, 1.0f};
    const double cflop = 4.0 * d * (double)n * chunk * 2 * nh;
    add_row("chunk_attn", shape, time_op("chunk_attn", run_chunk, &ca), cflop,
            4.0 * n * 2 * d + 4.0 * n * nh * (d + 1), 0);
    rc = 0;
done:
    if (rc) fprintf(stderr, "bench_cuda: reformer %s: setup or run failed\n", shape);
    cu.buf_free(qkv), cu.buf_free(rot), cu.buf_free(out), cu.buf_free(lse);
    cu.buf_free(buckets), cu.buf_free(perm), cu.buf_free(dpos);
    free(pos);
    return rc;
}

int main(int argc, char **argv)
{
    int variant = KN_CUDA_FAST, dtype = KN_DTYPE_BF16, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plain") == 0)
            variant = KN_CUDA_PLAIN;
        else if (strcmp(argv[i], "--f16") == 0)
            dtype = KN_DTYPE_F16;
        else if (strcmp(argv[i], "--f32") == 0)
            dtype = KN_DTYPE_F32;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            if (bench_parse_int("--reps", argv[++i], 1, 64, &reps)) return 2;
        } else {
            fprintf(stderr, "usage: bench_cuda [--plain] [--f16|--f32] [--reps 20] [--quick]\n"
                            "  --quick: 4k batch 1 and 16k reformer only\n");
            return 2;
        }
    }
    kn_cuda_params p = {variant, dtype, 0};
    char info[512], err[512];
    if (kn_ops_init_cuda_table(&cu, &p, info, sizeof info, err, sizeof err)) {
        printf("bench_cuda: skipped: %s\n", err);
        return 77;
    }
    printf("bench_cuda: %s; median of %d\n", info, reps);
    int failed = 0;
    const int Ls[2] = {4096, 16384}, Bs[2] = {1, 8};
    for (int li = 0; li < 2; li++)
        for (int bi = 0; bi < 2; bi++)
            if (!quick || (li == 0 && bi == 0)) failed |= bench_longformer(Ls[li], Bs[bi]) != 0;
    failed |= bench_reformer(16384) != 0;
    if (!quick) failed |= bench_reformer(65536) != 0;
    printf("\n%-14s %-18s %10s %9s %9s %8s %7s\n", "op", "shape", "ms", "TFLOP/s", "GB/s",
           "%bf16pk", "Mtok/s");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        char pk[16] = "", tk[16] = "";
        if (!isnan(r->peak_pct)) snprintf(pk, sizeof pk, "%.1f", r->peak_pct);
        if (!isnan(r->mtok_s)) snprintf(tk, sizeof tk, "%.2f", r->mtok_s);
        printf("%-14s %-18s %10.4f %9.2f %9.1f %8s %7s\n", r->op, r->shape, r->ms, r->tflops,
               r->gbs, pk, tk);
    }
    return failed ? 1 : 0;
}
