/* bench_full_attn — full attention over one sequence (what bert/roberta compute within
 * their trained length) three ways, side by side in one run, best of N: the cpu table's
 * window_attn with a window covering the sequence and no global token ("band"), a dense
 * prototype (per head: S = scale·Q·Kᵀ with kn_gemm_small, a softmax per row, O = S·V;
 * "dense"), and what bert/roberta ran before (window w with the first token global:
 * window_attn + global_attn, "longformer"). Decides which full-attention path the engine
 * takes; prints each one's max |x - band| too. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "../kernels/cpu/gemm.h"

#pragma GCC diagnostic ignored "-Wunused-function" /* the bench uses one of its helpers */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../kernels/cpu/vmath.h"

#include "../kernels/kernels.h"
#include "benchutil.h"

static void fill_uniform(float *a, size_t n, uint64_t seed, float amp) /* [-amp, amp) */
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = amp * (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
    }
}

/* The dense prototype: one task per head, (T, T) scores in one buffer per thread. */
static int dense_attn(const kn_attn_args *a, int T)
{
    const kn_isa isa = kn_isa_active();
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *s = malloc(sizeof(float) * (size_t)T * T);
        kn_gemm_ws ws = {0};
        failed |= !s;
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < a->nh; h++) {
            if (!s) continue;
            const float *q = a->q + h * a->d, *k = a->k + h * a->d, *v = a->v + h * a->d;
            float *o = a->out + h * a->d;
            failed |= kn_gemm_small(isa, T, T, a->d, a->scale, q, a->ld, k, a->ld, 1, 0, s, T, &ws);
            for (int i = 0; i < T; i++)
                kn__softmax_row(s + (size_t)i * T, T);
            failed |= kn_gemm_small(isa, T, a->d, T, 1.0f, s, T, v, a->ld, 0, 0, o, a->ldo, &ws);
        }
        free(s);
        kn_gemm_ws_free(&ws);
    }
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    int T = 512, nh = 12, d = 32, w = 256, reps = 20, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        int bad = 0;
        if (!strcmp(argv[i], "--tokens"))
            bad = bench_parse_int(argv[i], argv[i + 1], 2, 1 << 14, &T);
        else if (!strcmp(argv[i], "--heads"))
            bad = bench_parse_int(argv[i], argv[i + 1], 1, 64, &nh);
        else if (!strcmp(argv[i], "--head-dim"))
            bad = bench_parse_int(argv[i], argv[i + 1], 1, 256, &d);
        else if (!strcmp(argv[i], "--window"))
            bad = bench_parse_int(argv[i], argv[i + 1], 1, 1 << 14, &w);
        else if (!strcmp(argv[i], "--reps"))
            bad = bench_parse_int(argv[i], argv[i + 1], 1, 1000, &reps);
        else if (!strcmp(argv[i], "--threads"))
            bad = bench_parse_int(argv[i], argv[i + 1], 1, 1024, &threads);
        else
            bad = bench_fail("unknown option %s (--tokens --heads --head-dim --window --reps "
                             "--threads)",
                             argv[i]);
        if (bad) return 2;
    }
    kn_cpu_set_threads(threads);
    const int H = nh * d;
    const size_t t = (size_t)T;
    float *qkv = malloc(sizeof(float) * t * 3 * H), *x = malloc(sizeof(float) * t * H);
    float *wk = malloc(sizeof(float) * H * H), *wv = malloc(sizeof(float) * H * H);
    float *bk = malloc(sizeof(float) * H), *bv = malloc(sizeof(float) * H);
    float *out[3] = {malloc(sizeof(float) * t * H), malloc(sizeof(float) * t * H),
                     malloc(sizeof(float) * t * H)};
    uint8_t *kind_full = malloc(t), *kind_glob = malloc(t);
    double *secs = malloc(sizeof(double) * 3 * reps);
    if (!qkv || !x || !wk || !wv || !bk || !bv || !out[0] || !out[1] || !out[2] || !kind_full ||
        !kind_glob || !secs)
        return bench_fail("out of memory");
    fill_uniform(qkv, t * 3 * H, 1, 1.0f);
    /* x and the weights make the global rows' keys and values the local ones' (kg = wk·x),
     * as bert/roberta's are: x = identity-like rows are not needed for timing */
    fill_uniform(x, t * H, 2, 1.0f);
    fill_uniform(wk, (size_t)H * H, 3, 0.05f);
    fill_uniform(wv, (size_t)H * H, 4, 0.05f);
    fill_uniform(bk, H, 5, 0.1f);
    fill_uniform(bv, H, 6, 0.1f);
    memset(kind_full, KN_TOK_LOCAL, t);
    memset(kind_glob, KN_TOK_LOCAL, t);
    kind_glob[0] = KN_TOK_GLOBAL;
    int32_t off[2] = {0, T}, goff0[2] = {0, 0}, goff1[2] = {0, 1}, glob[1] = {0};
    kn_attn_args a = {.q = qkv,
                      .k = qkv + H,
                      .v = qkv + 2 * H,
                      .ld = 3 * H,
                      .ldo = H,
                      .nseq = 1,
                      .offsets = off,
                      .kind = kind_full,
                      .glob = glob,
                      .glob_off = goff0,
                      .nh = nh,
                      .d = d,
                      .w = T - 1,
                      .scale = 1.0f / sqrtf((float)d),
                      .qg = qkv,
                      .ldqg = 3 * H,
                      .x = x,
                      .hidden = H,
                      .wkg = wk,
                      .bkg = bk,
                      .wvg = wv,
                      .bvg = bv};
    kn_attn_args lf = a;
    lf.kind = kind_glob, lf.glob_off = goff1, lf.w = w;
    kn_ops cpu;
    kn_ops_init_cpu(&cpu);
    const char *names[3] = {"band", "dense", "longformer"};
    for (int r = -1; r < reps; r++)
        for (int k0 = 0; k0 < 3; k0++) {
            const int k = (k0 + (r > 0 ? r : 0)) % 3; /* rotate the order */
            double t0 = bench_now_s(CLOCK_MONOTONIC);
            int rc;
            if (k == 0) {
                a.out = out[0];
                rc = cpu.window_attn(&a);
            } else if (k == 1) {
                a.out = out[1];
                rc = dense_attn(&a, T);
            } else {
                lf.out = out[2];
                rc = cpu.window_attn(&lf) || cpu.global_attn(&lf);
            }
            if (rc) return bench_fail("%s: out of memory", names[k]);
            if (r >= 0) secs[k * reps + r] = bench_now_s(CLOCK_MONOTONIC) - t0;
        }
    printf("# bench_full_attn: %d threads, %d tokens, %d heads x %d, best of %d (median)\n",
           kn_cpu_threads(), T, nh, d, reps);
    double band = 0;
    for (int k = 0; k < 3; k++) {
        qsort(secs + k * reps, (size_t)reps, sizeof(double), bench_cmp_double);
        const double best = secs[k * reps], med = bench_median(secs + k * reps, reps);
        if (!k) band = best;
        double diff = 0;
        for (size_t e = 0; k == 1 && e < t * H; e++)
            diff = fmax(diff, fabs((double)out[1][e] - out[0][e]));
        printf("  %-10s best %.5f s  median %.5f s  vs band %.3f%s", names[k], best, med,
               best / band, k == 2 ? "  (window " : "");
        if (k == 2)
            printf("%d, first token global)\n", w);
        else if (k == 1)
            printf("  max|dense - band| %.3e\n", diff);
        else
            printf("\n");
    }
    for (int k = 0; k < 3; k++)
        free(out[k]);
    free(qkv), free(x), free(wk), free(wv), free(bk), free(bv), free(kind_full), free(kind_glob);
    free(secs);
    return 0;
}
