/* bench_gemm — GEMM rates side by side in one run: OpenBLAS's cblas_sgemm, our packed
 * kn_gemm (kernels/cpu/gemm.h) for every ISA this CPU runs, and the bfloat16 kn_gemm_bf16
 * (kernels/cpu/gemm_bf16.h, `--dtype bf16`) for every bf16 path it runs, on the linear layers
 * of a longformer-base layer (and any --shape), best of N, round-robin over implementations. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/gemm_bf16.h"
#include "benchutil.h"

/* The largest relative error (max |y - y_openblas| / max |y_openblas|) a result may have:
 * float32, and the bfloat16 paths (inputs rounded to 8 bits of mantissa, sums in float32). */
#define BENCH_GEMM_TOL 1e-4
#define BENCH_GEMM_TOL_BF16 1e-2

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_gemm [--tokens 4096] [--shape MxNxK]... [--reps 5] [--threads 2]\n"
            "                  [--impls openblas,portable,avx2,avx512,avx512-emu,amx-bf16,\n"
            "                  avx512-bf16,bf16-emu] [--emu]\n"
            "\n"
            "y (M, N) = x (M, K) * w (N, K)^T, as nn.Linear. Shapes: the linear layers of a\n"
            "longformer-base layer at --tokens rows, T x 2304 x 768 (qkv), T x 768 x 768\n"
            "(attention output), T x 3072 x 768 (ff1), T x 768 x 3072 (ff2), then each --shape.\n"
            "Implementations: OpenBLAS cblas_sgemm, and kn_gemm for every ISA kn_isa_supported()\n"
            "says this CPU runs (avx512-emu only with --emu), and kn_gemm_bf16 for every bf16\n"
            "path kn_bf16_supported() says it runs (bf16-emu only with --emu); --impls keeps\n"
            "those named. Our weights are packed before timing (as at model load); OpenBLAS\n"
            "packs inside each call. One untimed warm-up per implementation and shape, then\n"
            "--reps timed runs, the implementations taking turns. Every result is checked\n"
            "against OpenBLAS's (max |y - y_ref| / max |y_ref| <= 1e-4, 1e-2 for bf16, else\n"
            "exit status 1). The last line, RESULT best_sgemm, is the best float32 rate over\n"
            "all implementations on T x 3072 x 768 (best_s: its seconds; steal_pct,\n"
            "other_cores: the largest over all shapes); RESULT best_bf16, when a bf16 path\n"
            "ran, the same for bf16.\n");
}

/* ---- shapes and implementations -------------------------------------------------------- */

typedef struct {
    int m, n, k;
    const char *what; /* "qkv", "attn-out", "ff1", "ff2", or "extra" (--shape) */
} gemm_shape;

enum { MAX_SHAPES = 32, MAX_IMPLS = 1 + KN_ISA_COUNT + KN_BF16_COUNT };

typedef struct {
    char name[32]; /* "openblas", the kn_isa name or the kn_bf16 name */
    int blas;      /* 1: cblas_sgemm; 0: kn_gemm with isa, or kn_gemm_bf16 with bf16 */
    kn_isa isa;
    kn_bf16_path bf16; /* KN_BF16_NONE: a float32 implementation */
    kn_gemm_w *pw;     /* this shape's packed weight (kn_gemm) */
    kn_gemm_bf16 *pb;  /* the same for kn_gemm_bf16 */
    double *t;         /* [reps] seconds */
    double cpu_best, err;
} gemm_impl;

static int parse_shape(const char *s, gemm_shape *sh)
{
    int m, n, k, used = 0;
    if (sscanf(s, "%dx%dx%d%n", &m, &n, &k, &used) != 3 || s[used] || m < 1 || n < 1 || k < 1 ||
        m > (1 << 20) || n > (1 << 20) || k > (1 << 20))
        return bench_fail("--shape: '%s' is not MxNxK (positive, at most 2^20 each)", s);
    *sh = (gemm_shape){m, n, k, "extra"};
    return 0;
}

/* 1 when name is in the comma-separated list (NULL: every name). */
static int in_list(const char *list, const char *name)
{
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0) return 1;
        p += k;
        if (*p == ',') p++;
    }
    return 0;
}

/* ---- one shape ---------------------------------------------------------------------------- */

static void fill_uniform(float *a, size_t n, uint64_t seed) /* [-1, 1) from an LCG */
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
    }
}

static void run_blas(const float *x, const float *w, float *y, const gemm_shape *sh)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, sh->m, sh->n, sh->k, 1.0f, x, sh->k, w,
                sh->k, 0.0f, y, sh->n);
}

static int run_impl(const gemm_impl *im, const float *x, const float *w, float *y,
                    const gemm_shape *sh)
{
    if (im->blas) {
        run_blas(x, w, y, sh);
        return 0;
    }
    if (im->bf16 != KN_BF16_NONE) return kn_gemm_bf16_run(im->pb, x, sh->m, NULL, y);
    return kn_gemm(im->pw, x, sh->m, NULL, y);
}

static double rel_err(const float *y, const float *ref, size_t n)
{
    double maxabs = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - (double)ref[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN sticks */
        if (fabs(ref[i]) > maxabs) maxabs = fabs(ref[i]);
    }
    return maxabs > 0 ? maxdiff / maxabs : maxdiff;
}

/* Times every implementation on one shape; fills each im->t, cpu_best and err. Returns 0,
 * or -1 when memory or packing failed. */
static int bench_shape(gemm_impl *im, int nimpl, const gemm_shape *sh, int reps, double *steal,
                       double *other)
{
    const size_t mk = (size_t)sh->m * sh->k, nk = (size_t)sh->n * sh->k, mn = (size_t)sh->m * sh->n;
    float *x = malloc(mk * sizeof *x), *w = malloc(nk * sizeof *w);
    float *ref = malloc(mn * sizeof *ref), *y = malloc(mn * sizeof *y);
    int rc = -1;
    if (!x || !w || !ref || !y) {
        bench_fail("%dx%dx%d: out of memory", sh->m, sh->n, sh->k);
        goto out;
    }
    fill_uniform(x, mk, 1 + (uint64_t)sh->m);
    fill_uniform(w, nk, 2 + (uint64_t)sh->n * 31 + (uint64_t)sh->k);
    run_blas(x, w, ref, sh);
    for (int i = 0; i < nimpl; i++) {
        im[i].err = 0;
        const int packed = im[i].blas ? 1
                           : im[i].bf16 != KN_BF16_NONE
                               ? (im[i].pb = kn_gemm_bf16_pack(im[i].bf16, w, sh->n, sh->k)) != NULL
                               : (im[i].pw = kn_gemm_pack(im[i].isa, w, sh->n, sh->k)) != NULL;
        if (!packed) {
            bench_fail("%dx%dx%d: packing for %s failed", sh->m, sh->n, sh->k, im[i].name);
            goto out;
        }
        if (run_impl(&im[i], x, w, y, sh)) { /* warm-up: page faults, scratch, caches */
            bench_fail("%s: out of scratch memory", im[i].name);
            goto out;
        }
        im[i].err = rel_err(y, ref, mn);
    }
    bench_cpu_sample c0, c1;
    int have = bench_cpu_sample_take(&c0) == 0;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < nimpl; i++) { /* round-robin: drift hits every implementation */
            double cpu0 = bench_now_s(CLOCK_PROCESS_CPUTIME_ID);
            double t0 = bench_now_s(CLOCK_MONOTONIC);
            int bad = run_impl(&im[i], x, w, y, sh);
            im[i].t[r] = bench_now_s(CLOCK_MONOTONIC) - t0;
            double cpu = bench_now_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
            if (bad) {
                bench_fail("%s: out of scratch memory", im[i].name);
                goto out;
            }
            double e = rel_err(y, ref, mn);
            if (!(e <= im[i].err)) im[i].err = e;
            int best = 1;
            for (int q = 0; q < r; q++)
                best &= im[i].t[r] < im[i].t[q];
            if (best) im[i].cpu_best = cpu / im[i].t[r];
        }
    *steal = *other = -1;
    if (have && bench_cpu_sample_take(&c1) == 0) bench_cpu_sample_diff(&c0, &c1, steal, other);
    rc = 0;
out:
    for (int i = 0; i < nimpl; i++) {
        kn_gemm_free(im[i].pw);
        kn_gemm_bf16_free(im[i].pb);
        im[i].pw = NULL;
        im[i].pb = NULL;
    }
    free(x);
    free(w);
    free(ref);
    free(y);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int tokens = 4096, reps = 5, threads = 2, emu = 0;
    const char *impls = NULL;
    gemm_shape extra[MAX_SHAPES];
    int nextra = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--emu") == 0) {
            emu = 1;
            continue;
        }
        if (i + 1 >= argc) {
            bench_fail("%s: missing value (or unknown option)", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--tokens") == 0)
            bad = bench_parse_int(a, v, 1, 1 << 20, &tokens);
        else if (strcmp(a, "--reps") == 0)
            bad = bench_parse_int(a, v, 1, 1000, &reps);
        else if (strcmp(a, "--threads") == 0)
            bad = bench_parse_int(a, v, 1, 1024, &threads);
        else if (strcmp(a, "--impls") == 0)
            impls = v;
        else if (strcmp(a, "--shape") == 0) {
            if (nextra == MAX_SHAPES - 4) bad = bench_fail("--shape: at most %d", MAX_SHAPES - 4);
            bad = bad || parse_shape(v, &extra[nextra++]);
        } else {
            bench_fail("unknown option %s", a);
            usage(stderr);
            return 2;
        }
        if (bad) return 2;
    }

    /* longformer-base: hidden 768, FFN 3072; FF1 is the shape best_sgemm is taken on */
    enum { FF1 = 2 };
    gemm_shape shapes[MAX_SHAPES] = {
        {tokens, 3 * 768, 768, "qkv"},
        {tokens, 768, 768, "attn-out"},
        {tokens, 3072, 768, "ff1"},
        {tokens, 768, 3072, "ff2"},
    };
    int nshape = 4;
    for (int i = 0; i < nextra; i++)
        shapes[nshape++] = extra[i];

    gemm_impl im[MAX_IMPLS];
    int nimpl = 0;
    if (in_list(impls, "openblas")) im[nimpl++] = (gemm_impl){.name = "openblas", .blas = 1};
    for (int i = 0; i < KN_ISA_COUNT; i++) {
        const kn_isa isa = (kn_isa)i;
        if (!kn_isa_supported(isa) || (isa == KN_ISA_AVX512_EMU && !emu) ||
            !in_list(impls, kn_isa_name(isa)))
            continue;
        im[nimpl] = (gemm_impl){.blas = 0, .isa = isa};
        snprintf(im[nimpl].name, sizeof im[nimpl].name, "%s", kn_isa_name(isa));
        nimpl++;
    }
    for (int i = KN_BF16_NONE + 1; i < KN_BF16_COUNT; i++) {
        const kn_bf16_path p = (kn_bf16_path)i;
        if (!kn_bf16_supported(p) || (p == KN_BF16_EMU && !emu) || !in_list(impls, kn_bf16_name(p)))
            continue;
        im[nimpl] = (gemm_impl){.blas = 0, .bf16 = p};
        snprintf(im[nimpl].name, sizeof im[nimpl].name, "%s", kn_bf16_name(p));
        nimpl++;
    }
    if (!nimpl) {
        bench_fail("--impls %s: none of them runs here", impls);
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < nimpl && !rc; i++)
        if (!(im[i].t = malloc(sizeof(double) * (size_t)reps))) rc = bench_fail("out of memory");
    if (rc) return 1;

    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    const char *core = openblas_get_corename();
    printf("# threads %d (OMP_WAIT_POLICY=%s); %s, core %s, %s; kn_gemm ISA by cpuid: "
           "%s\n",
           omp_get_max_threads(), getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset",
           openblas_get_config(), core ? core : "?",
           openblas_get_parallel() == 2   ? "OpenMP threading"
           : openblas_get_parallel() == 1 ? "pthreads threading"
                                          : "single-threaded",
           kn_isa_name(kn_isa_best()));
    printf("# best of %d runs after one warm-up, implementations in turn; rel_err = max |y - "
           "y_openblas| / max |y_openblas|\n",
           reps);
    printf("# %-16s %-18s %-10s %10s %10s %10s %9s %8s\n", "impl", "shape (MxNxK)", "layer",
           "best_s", "median_s", "GFLOP/s", "rel_err", "cpu/wall");

    /* [0] float32, [1] bf16 */
    double best_rate[2] = {0, 0}, best_s[2] = {0, 0}, max_steal = -1, max_other = -1;
    const char *best_impl[2] = {"none", "none"};
    int bad_err = 0;
    for (int s = 0; s < nshape && !rc; s++) {
        const gemm_shape *sh = &shapes[s];
        double steal, other;
        if (bench_shape(im, nimpl, sh, reps, &steal, &other)) {
            rc = 1;
            break;
        }
        if (steal > max_steal) max_steal = steal;
        if (other > max_other) max_other = other;
        const double gflop = 2.0 * sh->m * sh->n * sh->k * 1e-9;
        for (int i = 0; i < nimpl; i++) {
            qsort(im[i].t, (size_t)reps, sizeof(double), bench_cmp_double);
            const double best = im[i].t[0], med = bench_median(im[i].t, reps);
            const int b16 = im[i].bf16 != KN_BF16_NONE;
            const double tol = b16 ? BENCH_GEMM_TOL_BF16 : BENCH_GEMM_TOL;
            const int ok = im[i].err <= tol;
            bad_err |= !ok;
            char shape[48];
            snprintf(shape, sizeof shape, "%dx%dx%d", sh->m, sh->n, sh->k);
            printf("  %-16s %-18s %-10s %10.4f %10.4f %10.1f %9.2e %8.2f%s\n", im[i].name, shape,
                   sh->what, best, med, gflop / best, im[i].err, im[i].cpu_best,
                   ok    ? ""
                   : b16 ? "  FAIL: rel_err over 1e-2"
                         : "  FAIL: rel_err over 1e-4");
            printf("RESULT gemm impl=%s shape=%s layer=%s reps=%d best_s=%.5f median_s=%.5f "
                   "gflops=%.1f median_gflops=%.1f rel_err=%.3e cpu_util=%.2f steal_pct=%.1f "
                   "other_cores=%.2f threads=%d%s%s\n",
                   im[i].name, shape, sh->what, reps, best, med, gflop / best, gflop / med,
                   im[i].err, im[i].cpu_best, steal, other, omp_get_max_threads(),
                   im[i].blas ? " core=" : "", im[i].blas ? (core ? core : "?") : "");
            if (s == FF1 && gflop / best > best_rate[b16]) {
                best_rate[b16] = gflop / best;
                best_s[b16] = best;
                best_impl[b16] = im[i].name;
            }
        }
        fflush(stdout);
    }
    for (int b16 = 0; b16 < 2 && !rc; b16++)
        if (!b16 || best_rate[1] > 0)
            printf("RESULT best_%s gflops=%.1f impl=%s shape=%dx%dx%d best_s=%.5f threads=%d "
                   "steal_pct=%.1f other_cores=%.2f\n",
                   b16 ? "bf16" : "sgemm", best_rate[b16], best_impl[b16], shapes[FF1].m,
                   shapes[FF1].n, shapes[FF1].k, best_s[b16], omp_get_max_threads(), max_steal,
                   max_other);
    for (int i = 0; i < nimpl; i++)
        free(im[i].t);
    if (!rc && bad_err)
        bench_fail("a result differs from OpenBLAS's by more than its bound (1e-4, bf16 1e-2)");
    return rc ? rc : bad_err ? 1 : 0;
}
