/* bench_attn — the CPU backend's attention alone: window_attn (the sliding-window band,
 * hf-semantics A5/A6a) and, with --globals, window_attn with global columns plus global_attn
 * (A6b), on longformer-base shapes, best of N, side by side in one run; first a max-abs check
 * against the reference table on a small size. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <omp.h>

#include "../kernels/cpu/gemm.h"
#include "../kernels/kernels.h"
#include "benchutil.h"

/* The largest |out - out_ref| the check accepts. */
#define BENCH_ATTN_TOL 1e-4

enum { NH = 12, D = 64, HID = NH * D, MAX_LIST = 16 };

static void usage(FILE *f)
{
    fprintf(
        f, "usage: bench_attn [--tokens 4096,16384] [--globals 0] [--window 256] [--reps 5]\n"
           "                  [--threads 2] [--isa avx2,avx512-emu,...] [--check-tokens 1100]\n"
           "\n"
           "One sequence of --tokens tokens (a comma list runs each), 12 heads of 64, one-sided\n"
           "window --window (2w+1 keys per query), random q, k, v in a fused (T, 3*768) buffer as\n"
           "the engine has them. Times the cpu table's window_attn with no global token ('band')\n"
           "and, with --globals G > 0, window_attn with the first G tokens global plus\n"
           "global_attn ('glob'; global_s: its global_attn part, best of N); the kinds take\n"
           "turns, one untimed warm-up each, --reps timed.\n"
           "--isa runs each ISA named (LONGSERVE_ISA), in turn; default: the active one.\n"
           "Useful GFLOP: 4*d per (query, head, key) for the keys that exist and are attended\n"
           "(band: the window clipped to the sequence; glob: also the G global columns of\n"
           "every local query and the T keys of every global query). Before timing, cpu and\n"
           "ref tables are compared at --check-tokens tokens (0: no check), with and without\n"
           "G globals: max |cpu - ref| must be <= 1e-4, else exit status 1.\n");
}

static void fill_uniform(float *a, size_t n, uint64_t seed, float amp) /* [-amp, amp) */
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = amp * (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
    }
}

static int parse_list(const char *flag, const char *s, long lo, long hi, int *out, int *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == MAX_LIST) return bench_fail("%s: at most %d values", flag, MAX_LIST);
        if (bench_parse_int(flag, tok, lo, hi, &out[(*n)++])) return -1;
    }
    return *n ? 0 : bench_fail("%s: empty list", flag);
}

/* One sequence of T tokens; the first G are global. Owns every buffer the ops read. */
typedef struct {
    int T, G, w;
    float *qkv, *out, *qg, *x, *wkg, *wvg, *bkg, *bvg;
    uint8_t *kind_band, *kind_glob;
    int32_t off[2], goff0[2], goff[2], *glob;
} attn_input;

static int input_make(attn_input *in, int T, int G, int w)
{
    memset(in, 0, sizeof *in);
    in->T = T, in->G = G, in->w = w;
    const size_t t = (size_t)T, g = (size_t)(G ? G : 1);
    in->qkv = malloc(sizeof(float) * t * 3 * HID);
    in->out = malloc(sizeof(float) * t * HID);
    in->qg = malloc(sizeof(float) * g * HID);
    in->x = malloc(sizeof(float) * t * HID);
    in->wkg = malloc(sizeof(float) * HID * HID);
    in->wvg = malloc(sizeof(float) * HID * HID);
    in->bkg = malloc(sizeof(float) * HID);
    in->bvg = malloc(sizeof(float) * HID);
    in->kind_band = malloc(t);
    in->kind_glob = malloc(t);
    in->glob = malloc(sizeof(int32_t) * g);
    if (!in->qkv || !in->out || !in->qg || !in->x || !in->wkg || !in->wvg || !in->bkg || !in->bvg ||
        !in->kind_band || !in->kind_glob || !in->glob)
        return bench_fail("%d tokens: out of memory", T);
    fill_uniform(in->qkv, t * 3 * HID, 1 + (uint64_t)T, 1.0f);
    fill_uniform(in->qg, g * HID, 2, 1.0f);
    fill_uniform(in->x, t * HID, 3, 1.0f);
    fill_uniform(in->wkg, (size_t)HID * HID, 4, 0.05f);
    fill_uniform(in->wvg, (size_t)HID * HID, 5, 0.05f);
    fill_uniform(in->bkg, HID, 6, 0.1f);
    fill_uniform(in->bvg, HID, 7, 0.1f);
    memset(in->out, 0, sizeof(float) * t * HID);
    memset(in->kind_band, KN_TOK_LOCAL, t);
    memset(in->kind_glob, KN_TOK_LOCAL, t);
    for (int i = 0; i < G; i++) {
        in->kind_glob[i] = KN_TOK_GLOBAL;
        in->glob[i] = i;
    }
    in->off[0] = 0, in->off[1] = T;
    in->goff0[0] = in->goff0[1] = 0;
    in->goff[0] = 0, in->goff[1] = G;
    return 0;
}

static void input_free(attn_input *in)
{
    free(in->qkv), free(in->out), free(in->qg), free(in->x), free(in->wkg), free(in->wvg);
    free(in->bkg), free(in->bvg), free(in->kind_band), free(in->kind_glob), free(in->glob);
}

static kn_attn_args input_args(const attn_input *in, int with_glob, float *out)
{
    return (kn_attn_args){.q = in->qkv,
                          .k = in->qkv + HID,
                          .v = in->qkv + 2 * HID,
                          .ld = 3 * HID,
                          .out = out,
                          .ldo = HID,
                          .nseq = 1,
                          .offsets = in->off,
                          .kind = with_glob ? in->kind_glob : in->kind_band,
                          .glob = in->glob,
                          .glob_off = with_glob ? in->goff : in->goff0,
                          .nh = NH,
                          .d = D,
                          .w = in->w,
                          .scale = 0.125f,
                          .qg = in->qg,
                          .ldqg = HID,
                          .x = in->x,
                          .hidden = HID,
                          .wkg = in->wkg,
                          .bkg = in->bkg,
                          .wvg = in->wvg,
                          .bvg = in->bvg};
}

/* Useful GFLOP (see usage). */
static double useful_gflop(int T, int G, int w)
{
    double keys = 0;
    for (int i = 0; i < T; i++) {
        if (i < G) { /* a global query: every token */
            keys += T;
            continue;
        }
        int lo = i - w < G ? G : i - w, hi = i + w >= T ? T - 1 : i + w; /* local keys */
        keys += (hi - lo + 1) + G;
    }
    return 4.0 * D * NH * keys * 1e-9;
}

/* window_attn, then global_attn when with_glob; *t_glob (when not NULL): global_attn's
 * seconds. */
static int run_ops(const kn_ops *ops, const kn_attn_args *a, int with_glob, double *t_glob)
{
    if (ops->window_attn(a)) return -1;
    double t0 = bench_now_s(CLOCK_MONOTONIC);
    int rc = with_glob && a->glob_off[1] > 0 ? ops->global_attn(a) : 0;
    if (t_glob) *t_glob = bench_now_s(CLOCK_MONOTONIC) - t0;
    return rc;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN sticks */
    }
    return m;
}

static void set_isa(kn_isa isa)
{
    setenv("LONGSERVE_ISA", kn_isa_name(isa), 1);
}

/* cpu against ref at T tokens, with and without G globals, for each ISA; 0 when all agree. */
static int check(const kn_isa *isas, int nisa, int T, int G, int w)
{
    kn_ops cpu, ref;
    kn_ops_init_cpu(&cpu);
    kn_ops_init_ref(&ref);
    attn_input in;
    int rc = input_make(&in, T, G, w);
    const size_t n = (size_t)T * HID;
    float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    if (!rc && (!want || !got)) rc = bench_fail("check: out of memory");
    for (int g = 0; g <= (G > 0) && !rc; g++) {
        kn_attn_args ra = input_args(&in, g, want);
        if (run_ops(&ref, &ra, g, NULL)) {
            rc = bench_fail("check: the reference failed");
            break;
        }
        for (int i = 0; i < nisa && !rc; i++) {
            set_isa(isas[i]);
            for (size_t e = 0; e < n; e++)
                got[e] = NAN; /* every row must be written */
            kn_attn_args ca = input_args(&in, g, got);
            if (run_ops(&cpu, &ca, g, NULL)) {
                rc = bench_fail("check: cpu attention out of memory");
                break;
            }
            double err = max_abs_diff(got, want, n);
            printf("# check %-10s tokens %d G %d: max |cpu - ref| = %.3e%s\n", kn_isa_name(isas[i]),
                   T, g ? G : 0, err, err <= BENCH_ATTN_TOL ? "" : "  FAIL");
            if (!(err <= BENCH_ATTN_TOL)) rc = 1;
        }
    }
    free(want), free(got);
    input_free(&in);
    return rc;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

int main(int argc, char **argv)
{
    int tokens[MAX_LIST] = {4096, 16384}, ntok = 2, nisa_arg = 0, isa_arg[MAX_LIST];
    int G = 0, w = 256, reps = 5, threads = 2, check_T = 1100;
    const char *isa_list = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            bench_fail("%s: missing value (or unknown option)", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (strcmp(a, "--tokens") == 0)
            bad = parse_list(a, v, 1, 1 << 20, tokens, &ntok);
        else if (strcmp(a, "--globals") == 0)
            bad = bench_parse_int(a, v, 0, 4096, &G);
        else if (strcmp(a, "--window") == 0)
            bad = bench_parse_int(a, v, 1, 1 << 16, &w);
        else if (strcmp(a, "--reps") == 0)
            bad = bench_parse_int(a, v, 1, 1000, &reps);
        else if (strcmp(a, "--threads") == 0)
            bad = bench_parse_int(a, v, 1, 1024, &threads);
        else if (strcmp(a, "--check-tokens") == 0)
            bad = bench_parse_int(a, v, 0, 1 << 15, &check_T);
        else if (strcmp(a, "--isa") == 0) {
            isa_list = v;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t && !bad; t = strtok(NULL, ",")) {
                int x = kn_isa_parse(t);
                if (x < 0 || !kn_isa_supported((kn_isa)x))
                    bad = bench_fail("--isa: '%s' is unknown or not supported here", t);
                else if (nisa_arg == MAX_LIST)
                    bad = bench_fail("--isa: at most %d", MAX_LIST);
                else
                    isa_arg[nisa_arg++] = x;
            }
        } else {
            bench_fail("unknown option %s", a);
            usage(stderr);
            return 2;
        }
        if (bad) return 2;
    }
    kn_isa isas[MAX_LIST];
    int nisa = 0;
    if (!isa_list)
        isas[nisa++] = kn_isa_active();
    else
        for (int i = 0; i < nisa_arg; i++)
            isas[nisa++] = (kn_isa)isa_arg[i];
    kn_cpu_set_threads(threads);
    printf("# bench_attn: %d threads (OMP_WAIT_POLICY=%s), %d heads x %d, w %d (%d keys per "
           "query), globals %d, best of %d\n",
           kn_cpu_threads(), getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset", NH, D,
           w, 2 * w + 1, G, reps);
    if (check_T > 0 && check(isas, nisa, check_T, G < check_T ? G : check_T / 2, w)) {
        bench_fail("cpu attention differs from the reference by more than %g", BENCH_ATTN_TOL);
        return 1;
    }

    kn_ops cpu;
    kn_ops_init_cpu(&cpu);
    printf("# %-10s %7s %5s %4s %5s %10s %10s %9s %9s %10s\n", "isa", "tokens", "heads", "w", "G",
           "best_s", "median_s", "GFLOP/s", "vs band", "global_s");
    int rc = 0;
    for (int ti = 0; ti < ntok && !rc; ti++) {
        const int T = tokens[ti];
        attn_input in;
        if (input_make(&in, T, G < T ? G : T, w)) {
            rc = 1;
            break;
        }
        const int kinds = G > 0 ? 2 : 1; /* 0: band, 1: band + globals */
        /* [isa][kind][rep] seconds of the whole kind, and of its global_attn */
        double *t = calloc((size_t)nisa * kinds * reps, sizeof(double));
        double *tg = calloc((size_t)nisa * kinds * reps, sizeof(double));
        if (!t || !tg) rc = bench_fail("out of memory");
        bench_cpu_sample c0, c1;
        int have = bench_cpu_sample_take(&c0) == 0;
        for (int r = -1; r < reps && !rc; r++) /* r = -1: the warm-up */
            for (int i = 0; i < nisa && !rc; i++)
                for (int k = 0; k < kinds && !rc; k++) {
                    const int kk = r & 1 ? kinds - 1 - k : k; /* alternate the order */
                    set_isa(isas[i]);
                    kn_attn_args a = input_args(&in, kk, in.out);
                    double t0 = bench_now_s(CLOCK_MONOTONIC), dg = 0;
                    if (run_ops(&cpu, &a, kk, &dg)) rc = bench_fail("attention: out of memory");
                    double dt = bench_now_s(CLOCK_MONOTONIC) - t0;
                    if (r >= 0) t[((size_t)i * kinds + kk) * reps + r] = dt;
                    if (r >= 0) tg[((size_t)i * kinds + kk) * reps + r] = dg;
                }
        double steal = -1, other = -1;
        if (have && bench_cpu_sample_take(&c1) == 0)
            bench_cpu_sample_diff(&c0, &c1, &steal, &other);
        for (int i = 0; i < nisa && !rc; i++) {
            double band_best = 0;
            for (int k = 0; k < kinds; k++) {
                double *tk = t + ((size_t)i * kinds + k) * reps;
                double *tgk = tg + ((size_t)i * kinds + k) * reps;
                qsort(tk, (size_t)reps, sizeof(double), bench_cmp_double);
                qsort(tgk, (size_t)reps, sizeof(double), bench_cmp_double);
                const double best = tk[0], med = bench_median(tk, reps);
                const int g = k ? in.G : 0;
                const double gf = useful_gflop(T, g, w);
                if (!k) band_best = best;
                printf("  %-10s %7d %5d %4d %5d %10.5f %10.5f %9.1f %9.3f %10.5f\n",
                       kn_isa_name(isas[i]), T, NH, w, g, best, med, gf / best, best / band_best,
                       tgk[0]);
                printf("RESULT attn isa=%s tokens=%d heads=%d d=%d w=%d globals=%d reps=%d "
                       "best_s=%.5f median_s=%.5f gflops=%.1f vs_band=%.3f global_best_s=%.5f "
                       "threads=%d steal_pct=%.1f other_cores=%.2f peak_rss_mb=%.1f\n",
                       kn_isa_name(isas[i]), T, NH, D, w, g, reps, best, med, gf / best,
                       best / band_best, tgk[0], kn_cpu_threads(), steal, other,
                       peak_rss_kb() / 1024.0);
            }
        }
        fflush(stdout);
        free(t);
        free(tg);
        input_free(&in);
    }
    printf("# peak RSS %.1f MB\n", peak_rss_kb() / 1024.0);
    return rc;
}
