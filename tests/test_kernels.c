/* Kernel parity: every op of the fast CPU table against the reference loops, on random
 * data with ragged sequences, padding and global tokens. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/gemm_bf16.h"
#include "../kernels/kernels.h"
#include "kntest.h"

static kn_ops ref, cpu, blas;

static void setup(void)
{
    kn_ops_init_ref(&ref);
    kn_ops_init_cpu(&cpu);
    kn_ops_init_cpu_blas(&blas);
}

/* Every GEMM ISA this CPU runs (LONGSERVE_ISA forces the cpu table's choice). */
static int isa_next(int i)
{
    while (++i < KN_ISA_COUNT)
        if (kn_isa_supported((kn_isa)i)) return i;
    return -1;
}

START_TEST(table_is_full)
{
    /* every entry of both tables is filled */
    const void *const *r = (const void *const *)((const char *)&ref + offsetof(kn_ops, linear));
    const void *const *c = (const void *const *)((const char *)&cpu + offsetof(kn_ops, linear));
    ck_assert_int_eq(kn_op_count, 12);
    for (int i = 0; i < kn_op_count; i++) {
        if (i == KN_OP_ffn) { /* optional: ref and blas leave the composition to the engine */
            ck_assert(r[i] == NULL && c[i] != NULL && blas.ffn == NULL);
            continue;
        }
        ck_assert_msg(r[i] != NULL, "ref op %s missing", kn_op_names[i]);
        ck_assert_msg(c[i] != NULL, "cpu op %s missing", kn_op_names[i]);
    }
}
END_TEST

START_TEST(host_buffers)
{
    /* the CPU tables' buffer ops are host memory: aligned as cudaMalloc's, a round trip
     * gives the bytes back, sync never fails, and free(NULL) is a no-op */
    const kn_ops *tabs[] = {&ref, &cpu, &blas};
    for (size_t t = 0; t < sizeof tabs / sizeof *tabs; t++) {
        const kn_ops *o = tabs[t];
        ck_assert_int_eq(o->device, 0);
        ck_assert(o->buf_alloc && o->buf_free && o->upload && o->download && o->sync);
        float *src = randv(1000, 1), back[1000];
        float *d = o->buf_alloc(sizeof back);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq((uintptr_t)d % 256, 0);
        ck_assert_int_eq(o->upload(d, src, sizeof back), 0);
        ck_assert_int_eq(o->download(back, d, sizeof back), 0);
        ck_assert(memcmp(back, src, sizeof back) == 0);
        char err[64] = "x";
        ck_assert_int_eq(o->sync(err, sizeof err), 0);
        ck_assert_str_eq(err, "");
        o->buf_free(d);
        o->buf_free(NULL);
        free(src);
    }
}
END_TEST

START_TEST(linear)
{
    /* the cpu table at every ISA this CPU has, and the OpenBLAS table, against the
     * reference: edges of every register tile and block (M, N, K of 1, K past a block) */
    const int shapes[][3] = {{1, 1, 1},     {7, 13, 5},     {64, 96, 32}, {130, 33, 70},
                             {13, 17, 257}, {200, 31, 600}, {5, 1, 1100}, {97, 65, 513}};
    for (int isa = -1; (isa = isa_next(isa)) >= 0;) {
        setenv("LONGSERVE_ISA", kn_isa_name((kn_isa)isa), 1);
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *x = randv((size_t)M * K, 1), *w = randv((size_t)N * K, 1), *b = randv(N, 1);
            float *y1 = calloc((size_t)M * N, 4), *y2 = calloc((size_t)M * N, 4);
            float *y3 = calloc((size_t)M * N, 4);
            for (int bias = 0; bias < 2; bias++) {
                lin(&ref, x, w, bias ? b : NULL, y1, M, N, K, NULL, 0);
                lin(&cpu, x, w, bias ? b : NULL, y2, M, N, K, NULL, 0);
                lin(&blas, x, w, bias ? b : NULL, y3, M, N, K, NULL, 0);
                /* float32 sums of K products: rounding grows like sqrt(K), and the
                 * reference and a deep KC block sum in different orders */
                const double tol = 1e-6 * (K > 128 ? sqrt(K / 128.0) : 1.0);
                ck_assert_msg(rel_err(y2, y1, (size_t)M * N) < tol, "isa %s, %dx%dx%d: %g",
                              kn_isa_name((kn_isa)isa), M, N, K, rel_err(y2, y1, (size_t)M * N));
                ck_assert_double_lt(rel_err(y3, y1, (size_t)M * N), tol);
            }
            free(x), free(w), free(b), free(y1), free(y2), free(y3);
        }
    }
    unsetenv("LONGSERVE_ISA");
}
END_TEST

START_TEST(gemm_isa_and_emulation)
{
    /* the active ISA is the best cpuid finds unless forced; the AVX-512 blocking compiled
     * for AVX2 (what a machine without AVX-512 can run of that path) gives the very bits
     * the AVX-512 kernel gives where both run */
    unsetenv("LONGSERVE_ISA");
    ck_assert_int_eq(kn_isa_active(), kn_isa_best());
    ck_assert_ptr_nonnull(strstr(kn_isa_reason(), "cpuid"));
    setenv("LONGSERVE_ISA", "portable", 1);
    ck_assert_int_eq(kn_isa_active(), KN_ISA_PORTABLE);
    ck_assert_ptr_nonnull(strstr(kn_isa_reason(), "forced"));
    setenv("LONGSERVE_ISA", "sse9", 1);
    ck_assert_int_eq(kn_isa_active(), kn_isa_best());
    unsetenv("LONGSERVE_ISA");
    ck_assert_int_eq(kn_isa_parse("avx512-emu"), KN_ISA_AVX512_EMU);
    ck_assert_int_eq(kn_isa_parse("nope"), -1);
    ck_assert_ptr_null(kn_gemm_pack(KN_ISA_COUNT, NULL, 1, 1));
    if (!kn_isa_supported(KN_ISA_AVX512) || !kn_isa_supported(KN_ISA_AVX512_EMU)) {
        printf("gemm_isa_and_emulation: no AVX-512 here, the emulation was checked against the "
               "reference only (test linear)\n");
        return;
    }
    const int M = 77, N = 100, K = 300;
    float *x = randv((size_t)M * K, 1), *w = randv((size_t)N * K, 1), *b = randv(N, 1);
    float *y1 = malloc((size_t)M * N * 4), *y2 = malloc((size_t)M * N * 4);
    kn_gemm_w *p1 = kn_gemm_pack(KN_ISA_AVX512, w, N, K),
              *p2 = kn_gemm_pack(KN_ISA_AVX512_EMU, w, N, K);
    ck_assert(kn_gemm(p1, x, M, b, y1) == 0 && kn_gemm(p2, x, M, b, y2) == 0);
    ck_assert(memcmp(y1, y2, (size_t)M * N * 4) == 0);
    kn_gemm_free(p1), kn_gemm_free(p2);
    free(x), free(w), free(b), free(y1), free(y2);
}
END_TEST

/* Every bf16 path this CPU runs, the emulation always: against float64 sums of the
 * unrounded operands (the error bfloat16's 8-bit mantissas allow, nothing more), each row
 * alone equal to it in a batch and on one thread (bit for bit), the emulation equal to
 * VDPBF16PS bit for bit and AMX to within float32 rounding of the sums; a CPU without
 * either refuses the table with a message that says why. */
START_TEST(gemm_bf16_paths)
{
    const int shapes[][3] = {{77, 45, 50}, {130, 100, 300}, {1, 70, 64}, {33, 768, 96}};
    float *y[KN_BF16_COUNT] = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = randv((size_t)M * K, 11 + s), *w = randv((size_t)N * K, 12 + s),
              *b = randv(N, 13 + s), *y1 = malloc((size_t)N * 4);
        double *ref = malloc(sizeof(double) * M * N), mx = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = b[j];
                for (int k = 0; k < K; k++)
                    acc += (double)x[(size_t)i * K + k] * w[(size_t)j * K + k];
                ref[(size_t)i * N + j] = acc;
                if (fabs(acc) > mx) mx = fabs(acc);
            }
        for (int p = KN_BF16_AMX; p < KN_BF16_COUNT; p++) {
            if (!kn_bf16_supported((kn_bf16_path)p)) continue;
            kn_gemm_bf16 *pw = kn_gemm_bf16_pack((kn_bf16_path)p, w, N, K);
            ck_assert_ptr_nonnull(pw);
            y[p] = malloc((size_t)M * N * 4);
            ck_assert_int_eq(kn_gemm_bf16_run(pw, x, M, b, y[p]), 0);
            double md = 0;
            for (size_t i = 0; i < (size_t)M * N; i++)
                md = fmax(md, fabs(y[p][i] - ref[i]));
            printf("gemm_bf16 %-11s %dx%dx%d: rel err vs float64 %.2e\n",
                   kn_bf16_name((kn_bf16_path)p), M, N, K, md / mx);
            ck_assert_msg(md / mx < 1e-2, "%s: rel err %g", kn_bf16_name((kn_bf16_path)p), md / mx);
            const int rows[] = {0, M / 2, M - 1};
            for (int r = 0; r < 3; r++) { /* a row alone, on one thread */
                const int nt = omp_get_max_threads();
                omp_set_num_threads(1);
                ck_assert_int_eq(kn_gemm_bf16_run(pw, x + (size_t)rows[r] * K, 1, b, y1), 0);
                omp_set_num_threads(nt);
                ck_assert_msg(memcmp(y1, y[p] + (size_t)rows[r] * N, (size_t)N * 4) == 0,
                              "%s: row %d alone differs", kn_bf16_name((kn_bf16_path)p), rows[r]);
            }
            kn_gemm_bf16_free(pw);
        }
        if (y[KN_BF16_AVX512])
            ck_assert(memcmp(y[KN_BF16_AVX512], y[KN_BF16_EMU], (size_t)M * N * 4) == 0);
        if (y[KN_BF16_AMX]) {
            double md = 0;
            for (size_t i = 0; i < (size_t)M * N; i++)
                md = fmax(md, fabs(y[KN_BF16_AMX][i] - y[KN_BF16_EMU][i]));
            ck_assert_msg(md / mx < 1e-5, "amx vs emulation %g", md / mx);
        }
        for (int p = 0; p < KN_BF16_COUNT; p++)
            free(y[p]), y[p] = NULL;
        free(x), free(w), free(b), free(y1), free(ref);
    }
    char why[200], err[400];
    kn_ops t;
    setenv("LONGSERVE_BF16", "none", 1);
    ck_assert_int_eq(kn_bf16_active(why, sizeof why), KN_BF16_NONE);
    ck_assert_int_lt(kn_ops_init_cpu_bf16(&t, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "AMX-BF16") && strstr(err, "AVX512_BF16"), "%s", err);
    setenv("LONGSERVE_BF16", "bf16-emu", 1);
    ck_assert_int_eq(kn_ops_init_cpu_bf16(&t, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(t.isa, "bf16-emu (forced"));
    unsetenv("LONGSERVE_BF16");
    ck_assert_int_eq(kn_bf16_active(why, sizeof why), kn_bf16_best());
    printf("gemm_bf16: this CPU's path: %s\n", why);
    ck_assert_ptr_null(kn_gemm_bf16_pack(KN_BF16_NONE, NULL, 1, 1));
}
END_TEST

/* The bf16 table on path p, forced by LONGSERVE_BF16 (the caller unsets it); 0 when this
 * CPU does not run p. */
static int bf16_table(kn_bf16_path p, kn_ops *t)
{
    if (!kn_bf16_supported(p)) return 0;
    char err[400];
    setenv("LONGSERVE_BF16", kn_bf16_name(p), 1);
    ck_assert_msg(kn_ops_init_cpu_bf16(t, err, sizeof err) == 0, "%s", err);
    return 1;
}

/* A feed-forward block's operands (x: M x H, w1: I x H, w2: H x I) and the float64
 * reference's linear, gelu, linear of them. */
typedef struct {
    int M, H, I;
    float *x, *w1, *b1, *w2, *b2, *ry;
} ffn_case;

static const int ffn_shapes[][3] = {{1, 64, 96}, {77, 45, 100}, {130, 96, 256}, {300, 64, 130}};

static ffn_case ffn_case_make(int M, int H, int I)
{
    ffn_case c = {M,
                  H,
                  I,
                  randv((size_t)M * H, 1),
                  randv((size_t)I * H, 0.3f),
                  randv(I, 0.5f),
                  randv((size_t)H * I, 0.2f),
                  randv(H, 0.5f),
                  malloc(sizeof(float) * M * H)};
    float *ri = malloc(sizeof(float) * M * I);
    ref.linear(c.x, &(kn_weight){c.w1, I, H, NULL}, c.b1, ri, M, I, H, NULL, 0);
    ref.gelu(ri, (size_t)M * I);
    ref.linear(ri, &(kn_weight){c.w2, H, I, NULL}, c.b2, c.ry, M, H, I, NULL, 0);
    free(ri);
    return c;
}

static void ffn_case_free(ffn_case *c)
{
    free(c->x), free(c->w1), free(c->b1), free(c->w2), free(c->b2), free(c->ry);
}

/* Table t's fused block against its own linear, gelu, linear (bit for bit, a batch and a
 * row alone on one thread) and against the reference (relative error below tol); the
 * prepared weights go to k1, k2 (the caller releases them). */
static void ffn_check(const kn_ops *t, const ffn_case *c, const char *name, double tol,
                      kn_weight *k1, kn_weight *k2)
{
    const int M = c->M, H = c->H, I = c->I;
    *k1 = (kn_weight){c->w1, I, H, NULL};
    *k2 = (kn_weight){c->w2, H, I, NULL};
    ck_assert_ptr_nonnull(t->ffn);
    ck_assert(t->weight_prepare(k1) == 0 && t->weight_prepare(k2) == 0);
    float *inner = malloc(sizeof(float) * M * I), *y = malloc(sizeof(float) * M * H),
          *yc = malloc(sizeof(float) * M * H), *y1 = malloc(sizeof(float) * H);
    ck_assert_int_eq(t->ffn(c->x, k1, c->b1, k2, c->b2, y, M, H, I), 0);
    t->linear(c->x, k1, c->b1, inner, M, I, H, NULL, 0);
    t->gelu(inner, (size_t)M * I);
    t->linear(inner, k2, c->b2, yc, M, H, I, NULL, 0);
    ck_assert_msg(memcmp(y, yc, sizeof(float) * M * H) == 0,
                  "%s %dx%dx%d: fused differs from linear, gelu, linear", name, M, H, I);
    const int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    ck_assert_int_eq(t->ffn(c->x + (size_t)(M / 2) * H, k1, c->b1, k2, c->b2, y1, 1, H, I), 0);
    omp_set_num_threads(nt);
    ck_assert_msg(memcmp(y1, y + (size_t)(M / 2) * H, sizeof(float) * H) == 0,
                  "%s: row %d alone differs", name, M / 2);
    const double e = rel_err(y, c->ry, (size_t)M * H);
    printf("ffn %-11s %dx%dx%d: rel err vs float64 composition %.2e\n", name, M, H, I, e);
    ck_assert_msg(e < tol, "%s %dx%dx%d: rel err %g", name, M, H, I, e);
    free(inner), free(y), free(yc), free(y1);
}

/* The float32 cpu table's fused feed-forward block on every GEMM ISA this CPU runs (the
 * composition computes a lone row with the one-row gemv), and the bf16 table's on every bf16
 * path it runs, the emulation always: see ffn_check. Widths that are not multiples of a
 * panel, row counts on both sides of the row blocks; weights that do not chain are
 * refused (-2). */
START_TEST(ffn_fused)
{
    float *y = malloc(sizeof(float) * 300 * 96);
    for (size_t si = 0; si < sizeof ffn_shapes / sizeof *ffn_shapes; si++) {
        ffn_case c = ffn_case_make(ffn_shapes[si][0], ffn_shapes[si][1], ffn_shapes[si][2]);
        for (int isa = isa_next(-1); isa >= 0; isa = isa_next(isa)) {
            setenv("LONGSERVE_ISA", kn_isa_name((kn_isa)isa), 1);
            kn_ops t;
            kn_ops_init_cpu(&t);
            kn_weight k1, k2;
            ffn_check(&t, &c, kn_isa_name((kn_isa)isa), 1e-5, &k1, &k2);
            if (c.H != c.I) /* w1 twice: its K is not its N */
                ck_assert_int_eq(kn_gemm_ffn(k1.prep, k1.prep, c.x, c.M, NULL, NULL, NULL, y), -2);
            t.weight_release(&k1);
            t.weight_release(&k2);
        }
        unsetenv("LONGSERVE_ISA");
        const kn_bf16_path paths[] = {KN_BF16_EMU, KN_BF16_AVX512, KN_BF16_AMX};
        for (int pi = 0; pi < 3; pi++) {
            kn_ops t;
            if (!bf16_table(paths[pi], &t)) continue;
            kn_weight k1, k2;
            ffn_check(&t, &c, kn_bf16_name(paths[pi]), 2e-2, &k1, &k2);
            if (c.H != c.I)
                ck_assert_int_eq(kn_gemm_bf16_ffn(k1.prep, k1.prep, c.x, c.M, NULL, NULL, NULL, y),
                                 -2);
            t.weight_release(&k1);
            t.weight_release(&k2);
        }
        unsetenv("LONGSERVE_BF16");
        ffn_case_free(&c);
    }
    free(y);
}
END_TEST

START_TEST(linear_groups_are_batch_invariant)
{
    /* a group's rows come out bit-identical whether it is computed alone or with others,
     * for short (one tile) and long (several row tiles) groups, on 1 or 2 threads, for
     * every ISA and for the OpenBLAS table */
    const int N = 900, K = 96;
    const int32_t groups[] = {0, 7, 300, 301, 1400, 1450};
    const int ng = 5, M = groups[ng];
    float *x = randv((size_t)M * K, 1), *w = randv((size_t)N * K, 1), *b = randv(N, 1);
    float *all = malloc((size_t)M * N * 4), *one = malloc((size_t)M * N * 4);
    float *ref_y = malloc((size_t)M * N * 4), *one_thread = malloc((size_t)M * N * 4);
    ref.linear(x, &(kn_weight){w, N, K, NULL}, b, ref_y, M, N, K, NULL, 0);
    const int threads = omp_get_max_threads();
    for (int isa = isa_next(-1);; isa = isa_next(isa)) { /* every ISA, then OpenBLAS (-1) */
        const kn_ops *o = isa < 0 ? &blas : &cpu;
        if (isa >= 0) setenv("LONGSERVE_ISA", kn_isa_name((kn_isa)isa), 1);
        lin(o, x, w, b, all, M, N, K, groups, ng);
        for (int g = 0; g < ng; g++) {
            int rows = groups[g + 1] - groups[g];
            lin(o, x + (size_t)groups[g] * K, w, b, one, rows, N, K, NULL, 0);
            ck_assert_msg(memcmp(one, all + (size_t)groups[g] * N, (size_t)rows * N * 4) == 0,
                          "%s: group %d (%d rows) differs alone", o->isa, g, rows);
        }
        omp_set_num_threads(1);
        lin(o, x, w, b, one_thread, M, N, K, groups, ng);
        omp_set_num_threads(threads);
        ck_assert_msg(memcmp(one_thread, all, (size_t)M * N * 4) == 0, "%s: 1 thread differs",
                      o->isa);
        ck_assert_double_lt(rel_err(all, ref_y, (size_t)M * N), 1e-6);
        if (isa < 0) break;
    }
    unsetenv("LONGSERVE_ISA");
    free(x), free(w), free(b), free(all), free(one), free(ref_y), free(one_thread);
}
END_TEST

START_TEST(embed)
{
    const int T = 50, H = 24, V = 30, P = 60, Y = 2;
    float *word = randv((size_t)V * H, 1), *pos = randv((size_t)P * H, 1), *ty = randv(Y * H, 1);
    int32_t ids[50], pids[50], tt[50];
    for (int t = 0; t < T; t++)
        ids[t] = t % V, pids[t] = (t * 7) % P, tt[t] = t % Y;
    float *a = calloc((size_t)T * H, 4), *b = calloc((size_t)T * H, 4);
    ref.embed(ids, pids, tt, word, pos, ty, a, T, H);
    cpu.embed(ids, pids, tt, word, pos, ty, b, T, H);
    ck_assert_double_eq(rel_err(b, a, (size_t)T * H), 0);
    ref.embed(ids, pids, NULL, word, pos, ty, a, T, H);
    cpu.embed(ids, pids, NULL, word, pos, ty, b, T, H);
    ck_assert_double_eq(rel_err(b, a, (size_t)T * H), 0);
    free(word), free(pos), free(ty), free(a), free(b);
}
END_TEST

START_TEST(add_layernorm)
{
    const int T = 37, H = 96;
    float *x = randv((size_t)T * H, 3), *r = randv((size_t)T * H, 3);
    float *g = randv(H, 1), *bb = randv(H, 1);
    for (int i = 0; i < T * H; i++)
        x[i] += 5; /* a mean far from zero */
    float *a = malloc((size_t)T * H * 4), *b = malloc((size_t)T * H * 4);
    memcpy(a, x, (size_t)T * H * 4);
    memcpy(b, x, (size_t)T * H * 4);
    ref.add_layernorm(a, r, g, bb, 1e-5f, T, H);
    cpu.add_layernorm(b, r, g, bb, 1e-5f, T, H);
    ck_assert_double_lt(rel_err(b, a, (size_t)T * H), 2e-6);
    memcpy(a, x, (size_t)T * H * 4);
    memcpy(b, x, (size_t)T * H * 4);
    ref.add_layernorm(a, NULL, g, bb, 1e-12f, T, H);
    cpu.add_layernorm(b, NULL, g, bb, 1e-12f, T, H);
    ck_assert_double_lt(rel_err(b, a, (size_t)T * H), 2e-6);
    free(x), free(r), free(g), free(bb), free(a), free(b);
}
END_TEST

START_TEST(gelu_tanh)
{
    /* a sweep over the whole useful range, element by element */
    const size_t n = 200001;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        a[i] = -12.0f + 24.0f * (float)i / (float)(n - 1);
    memcpy(b, a, n * 4);
    ref.gelu(a, n);
    cpu.gelu(b, n);
    for (size_t i = 0; i < n; i++) {
        /* relative 4e-6 on the negative side, where gelu shrinks to 0, 1e-6 elsewhere */
        double tol = (a[i] < 0 ? 4e-6 : 1e-6) * fabs(a[i]) + 1e-12;
        ck_assert_msg(fabs((double)a[i] - b[i]) <= tol || fabs((double)a[i] - b[i]) < 1e-12,
                      "gelu at %zu: ref %.9g cpu %.9g", i, a[i], b[i]);
    }
    for (size_t i = 0; i < n; i++)
        a[i] = b[i] = -6.0f + 12.0f * (float)i / (float)(n - 1);
    ref.tanh(a, n);
    cpu.tanh(b, n);
    ck_assert_double_lt(rel_err(b, a, n), 1e-6);
    free(a), free(b);
}
END_TEST

/* A ragged batch with padding and globals for the attention ops. */
typedef struct {
    int nseq, T, nh, d, H, w;
    int32_t off[8], goff[8], glob[128];
    uint8_t kind[1024];
    float *q, *k, *v, *qg, *x, *wkg, *bkg, *wvg, *bvg;
    int hidden;
} attn_case;

static void attn_case_make_hd(attn_case *c, int w, const int *lens, int nseq, int with_glob, int nh,
                              int d)
{
    memset(c, 0, sizeof *c);
    c->nseq = nseq, c->nh = nh, c->d = d, c->H = nh * d, c->w = w;
    int t = 0, g = 0;
    for (int s = 0; s < nseq; s++) {
        c->off[s] = t;
        c->goff[s] = g;
        for (int i = 0; i < lens[s]; i++, t++) {
            uint8_t kd = KN_TOK_LOCAL;
            if (s == 1 && i >= lens[s] - 5) kd = KN_TOK_PAD; /* trailing padding */
            if (s == 2 && i == 4) kd = KN_TOK_PAD;           /* a hole */
            if (with_glob && kd &&
                (i == 0 || (s == 0 && (i == 3 || i == 4 || i == 40)) ||
                 (s == 2 && i == lens[s] - 1)))
                kd = KN_TOK_GLOBAL;
            /* many globals (more than d): the op's direct-projection path */
            if (with_glob == 2 && kd && s == 0 && i % 5 == 2) kd = KN_TOK_GLOBAL;
            c->kind[t] = kd;
            if (kd == KN_TOK_GLOBAL) c->glob[g++] = t;
        }
    }
    c->off[nseq] = t;
    c->goff[nseq] = g;
    c->T = t;
    size_t n = (size_t)t * 3 * c->H;
    c->q = randv(n, 2); /* fused (T, 3H): q | k | v, ld = 3H */
    c->k = c->q + c->H;
    c->v = c->q + 2 * c->H;
    c->qg = randv((size_t)(g ? g : 1) * c->H, 2);
    c->hidden = 40; /* need not equal nh*d */
    c->x = randv((size_t)t * c->hidden, 1);
    c->wkg = randv((size_t)c->H * c->hidden, 0.5f);
    c->wvg = randv((size_t)c->H * c->hidden, 0.5f);
    c->bkg = randv((size_t)c->H, 0.5f);
    c->bvg = randv((size_t)c->H, 0.5f);
}

static void attn_case_make(attn_case *c, int w, const int *lens, int nseq, int with_glob)
{
    attn_case_make_hd(c, w, lens, nseq, with_glob, 3, 16);
}

static void attn_case_free(attn_case *c)
{
    free(c->q), free(c->qg), free(c->x), free(c->wkg), free(c->wvg), free(c->bkg), free(c->bvg);
}

static kn_attn_args attn_args(attn_case *c, float *out)
{
    return (kn_attn_args){.q = c->q,
                          .k = c->k,
                          .v = c->v,
                          .ld = 3 * c->H,
                          .out = out,
                          .ldo = c->H,
                          .nseq = c->nseq,
                          .offsets = c->off,
                          .kind = c->kind,
                          .glob = c->glob,
                          .glob_off = c->goff,
                          .nh = c->nh,
                          .d = c->d,
                          .w = c->w,
                          .scale = 0.25f,
                          .qg = c->qg,
                          .ldqg = c->H,
                          .x = c->x,
                          .hidden = c->hidden,
                          .wkg = c->wkg,
                          .bkg = c->bkg,
                          .wvg = c->wvg,
                          .bvg = c->bvg};
}

static void attn_check(int w, int with_glob)
{
    const int lens[] = {150, 70, 9, 1};
    attn_case c;
    attn_case_make(&c, w, lens, 4, with_glob);
    size_t n = (size_t)c.T * c.H;
    float *a = calloc(n, 4), *b = calloc(n, 4);
    for (size_t i = 0; i < n; i++)
        b[i] = NAN; /* every row must be written */
    kn_attn_args ra = attn_args(&c, a), ca = attn_args(&c, b);
    ck_assert_int_eq(ref.window_attn(&ra), 0);
    ck_assert_int_eq(ref.global_attn(&ra), 0);
    ck_assert_int_eq(cpu.window_attn(&ca), 0);
    ck_assert_int_eq(cpu.global_attn(&ca), 0);
    ck_assert_double_lt(rel_err(b, a, n), 1e-5);
    for (int t = 0; t < c.T; t++) /* padding rows are exactly zero */
        if (c.kind[t] == KN_TOK_PAD)
            for (int h = 0; h < c.H; h++)
                ck_assert(b[(size_t)t * c.H + h] == 0.0f);
    free(a), free(b);
    attn_case_free(&c);
}

START_TEST(window_attn_local_only)
{
    const int ws[] = {1, 2, 4, 32, 64, 200};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
        attn_check(ws[i], 0);
}
END_TEST

START_TEST(window_and_global_attn)
{
    const int ws[] = {1, 3, 8, 64, 256};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
        attn_check(ws[i], 1); /* few globals per sequence */
        attn_check(ws[i], 2); /* more globals than the head dimension */
    }
}
END_TEST

START_TEST(window_attn_matches_dense_when_window_covers)
{
    /* with w >= n-1 and no padding, local attention is plain softmax(QKᵀ)V */
    const int n = 20, H = 48, d = 16, nh = 3;
    float *qkv = randv((size_t)n * 3 * H, 1), *o = calloc((size_t)n * H, 4);
    int32_t off[2] = {0, n}, goff[2] = {0, 0}, glob[1] = {0};
    uint8_t kind[20];
    memset(kind, KN_TOK_LOCAL, sizeof kind);
    kn_attn_args a = {.q = qkv,
                      .k = qkv + H,
                      .v = qkv + 2 * H,
                      .ld = 3 * H,
                      .out = o,
                      .ldo = H,
                      .nseq = 1,
                      .offsets = off,
                      .kind = kind,
                      .glob = glob,
                      .glob_off = goff,
                      .nh = nh,
                      .d = d,
                      .w = n,
                      .scale = 0.25f};
    ck_assert_int_eq(cpu.window_attn(&a), 0);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < n; i++) {
            double s[20], mx = -INFINITY, sum = 0;
            for (int j = 0; j < n; j++) {
                s[j] = 0;
                for (int e = 0; e < d; e++)
                    s[j] += 0.25 * qkv[i * 3 * H + h * d + e] * qkv[j * 3 * H + H + h * d + e];
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < n; j++)
                sum += exp(s[j] - mx);
            for (int e = 0; e < d; e++) {
                double acc = 0;
                for (int j = 0; j < n; j++)
                    acc += exp(s[j] - mx) / sum * qkv[j * 3 * H + 2 * H + h * d + e];
                ck_assert_double_lt(fabs(acc - o[i * H + h * d + e]), 1e-5);
            }
        }
    free(qkv), free(o);
}
END_TEST

/* Per-sequence windows (seq_w: one covering its sequence, i.e. full attention, beside
 * sliding ones) and padding queries that still attend (KN_TOK_PAD_QUERY, BERT's masked
 * rows): cpu equals ref, padding keys take no weight, and each sequence's rows are the
 * ones it gets alone (batch invariance). */
START_TEST(window_attn_seq_windows_and_pad_queries)
{
    const int lens[] = {150, 70, 9, 1};
    attn_case c;
    attn_case_make(&c, 4, lens, 4, 0);
    for (int t = c.off[1]; t < c.off[2]; t++) /* sequence 1's trailing padding queries */
        if (c.kind[t] == KN_TOK_PAD) c.kind[t] = KN_TOK_PAD_QUERY;
    const int32_t seq_w[] = {149, 69, 2, 0}; /* full, full, sliding, a lone token */
    const size_t n = (size_t)c.T * c.H;
    float *a = calloc(n, 4), *b = calloc(n, 4), *alone = calloc(n, 4);
    for (size_t i = 0; i < n; i++)
        b[i] = NAN;
    kn_attn_args ra = attn_args(&c, a), ca = attn_args(&c, b);
    ra.seq_w = ca.seq_w = seq_w;
    ck_assert_int_eq(ref.window_attn(&ra), 0);
    ck_assert_int_eq(cpu.window_attn(&ca), 0);
    ck_assert_double_lt(rel_err(b, a, n), 1e-5);
    /* sequence 1 alone: its rows bit for bit; a padding query's row is the softmax over the
     * non-padding keys, so changing a padding key's value changes nothing */
    kn_attn_args one = ca;
    one.nseq = 1;
    one.offsets = c.off + 1;
    one.glob_off = c.goff + 1;
    one.seq_w = seq_w + 1;
    one.out = alone;
    ck_assert_int_eq(cpu.window_attn(&one), 0);
    for (size_t i = (size_t)c.off[1] * c.H; i < (size_t)c.off[2] * c.H; i++)
        ck_assert(alone[i] == b[i]);
    const int last = c.off[2] - 1;
    ck_assert_int_eq(c.kind[last], KN_TOK_PAD_QUERY);
    for (int e = 0; e < c.H; e++)
        c.q[(size_t)last * 3 * c.H + c.H + e] += 3.0f; /* its key */
    ck_assert_int_eq(cpu.window_attn(&one), 0);
    for (size_t i = (size_t)c.off[1] * c.H; i < (size_t)last * c.H; i++)
        ck_assert(alone[i] == b[i]);
    int nonzero = 0;
    for (int e = 0; e < c.H; e++)
        nonzero |= b[(size_t)last * c.H + e] != 0.0f;
    ck_assert(nonzero); /* computed, not zeroed */
    free(a), free(b), free(alone);
    attn_case_free(&c);
}
END_TEST

/* The bf16 table's window attention (band products on bfloat16 operands, sums in float32)
 * on every bf16 path this CPU runs, the emulation always, with the float32 global rows:
 * against the reference to the error bfloat16's roundings of q, k, the exps and v allow (2e-2
 * of the largest output; 9.96e-3 measured on these logits of up to ~10),
 * padding rows exactly zero, each sequence alone equal to its rows in the batch bit for bit
 * (sequences starting at odd rows included), and the vector paths equal to the emulation bit
 * for bit; head sizes with a partial 16-column block and an odd one. */
START_TEST(window_attn_bf16)
{
    const int lens[] = {151, 70, 9, 1}; /* rows 0, 151, 221, 230 */
    const int dims[][2] = {{3, 16}, {2, 64}, {2, 20}, {4, 7}};
    const int ws[] = {1, 3, 8, 64, 256};
    const kn_bf16_path paths[] = {KN_BF16_EMU, KN_BF16_AVX512, KN_BF16_AMX};
    double worst = 0;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
        for (size_t wi = 0; wi < sizeof ws / sizeof *ws; wi++)
            for (int with_glob = 0; with_glob <= 2; with_glob++) {
                attn_case c;
                attn_case_make_hd(&c, ws[wi], lens, 4, with_glob, dims[di][0], dims[di][1]);
                const size_t n = (size_t)c.T * c.H;
                float *a = calloc(n, 4), *out[3] = {0}, *alone = malloc(n * 4);
                kn_attn_args ra = attn_args(&c, a);
                ck_assert_int_eq(ref.window_attn(&ra), 0);
                ck_assert_int_eq(ref.global_attn(&ra), 0);
                for (int pi = 0; pi < 3; pi++) {
                    kn_ops t;
                    if (!bf16_table(paths[pi], &t)) continue;
                    out[pi] = malloc(n * 4);
                    for (size_t i = 0; i < n; i++)
                        out[pi][i] = NAN; /* every row must be written */
                    kn_attn_args ca = attn_args(&c, out[pi]);
                    ck_assert_int_eq(t.window_attn(&ca), 0);
                    ck_assert_int_eq(t.global_attn(&ca), 0);
                    const double e = rel_err(out[pi], a, n);
                    worst = fmax(worst, e);
                    ck_assert_msg(e < 2e-2, "%s d %d w %d globals %d: rel err %g",
                                  kn_bf16_name(paths[pi]), c.d, c.w, with_glob, e);
                    for (int r = 0; r < c.T; r++)
                        if (c.kind[r] == KN_TOK_PAD)
                            for (int h = 0; h < c.H; h++)
                                ck_assert(out[pi][(size_t)r * c.H + h] == 0.0f);
                    for (int s = 1; s < c.nseq; s++) { /* each sequence alone */
                        kn_attn_args one = ca;
                        one.nseq = 1;
                        one.offsets = c.off + s;
                        one.glob_off = c.goff + s;
                        one.out = alone;
                        ck_assert_int_eq(t.window_attn(&one), 0);
                        ck_assert_int_eq(t.global_attn(&one), 0);
                        const size_t r0 = (size_t)c.off[s] * c.H, r1 = (size_t)c.off[s + 1] * c.H;
                        ck_assert_msg(memcmp(alone + r0, out[pi] + r0, (r1 - r0) * 4) == 0,
                                      "%s d %d w %d: sequence %d alone differs",
                                      kn_bf16_name(paths[pi]), c.d, c.w, s);
                    }
                    if (pi > 0)
                        ck_assert_msg(memcmp(out[pi], out[0], n * 4) == 0,
                                      "%s differs from the emulation (d %d w %d globals %d)",
                                      kn_bf16_name(paths[pi]), c.d, c.w, with_glob);
                }
                unsetenv("LONGSERVE_BF16");
                for (int pi = 0; pi < 3; pi++)
                    free(out[pi]);
                free(a), free(alone);
                attn_case_free(&c);
            }
    printf("window_attn_bf16: worst rel err vs float32 reference %.2e\n", worst);
}
END_TEST

/* Chunked attention against an independent statement of it: the keys a query sees are the
 * chunks (c + j) mod nc, j = -before .. after (wrap-around), masked keys take no weight
 * while an unmasked one exists, and softmax is taken over the rest. */
static void chunk_expected(const kn_chunk_args *a, const kn_chunk_seg *s, int i, double *o)
{
    const int n = s->n, C = n > a->chunk ? a->chunk : n, nc = n / C;
    const int nb = n > a->chunk ? a->before : 0, na = n > a->chunk ? a->after : 0;
    double w[4096], mx = -1e300;
    int rows[4096], nk = 0;
    for (int j = -nb; j <= na; j++)
        for (int r = 0; r < C; r++) {
            int key = (((i / C + j) % nc + nc) % nc) * C + r, pk = s->pos[key];
            int masked = (s->keep && !s->keep[pk]) || (a->causal && pk > s->pos[i]) ||
                         (a->self_mask && pk == s->pos[i]);
            if (masked) continue;
            double z = 0;
            for (int e = 0; e < a->d; e++)
                z += (double)s->q[(size_t)i * s->ld + e] * s->k[(size_t)key * s->ld + e] *
                     a->key_scale;
            rows[nk] = key;
            w[nk++] = z;
            if (z > mx) mx = z;
        }
    if (nk == 0) { /* nothing unmasked: the self keys (-1e5) share the weight (as float32
                    * rounds it), else every key counts 1 (lse rounds to -1e9 in float32) */
        int self = 0;
        for (int j = -nb; j <= na; j++)
            for (int r = 0; r < C; r++) {
                int key = (((i / C + j) % nc + nc) % nc) * C + r;
                if (a->self_mask && s->pos[key] == s->pos[i]) self++;
            }
        for (int e = 0; e < a->d; e++)
            o[e] = 0;
        for (int j = -nb; j <= na; j++)
            for (int r = 0; r < C; r++) {
                int key = (((i / C + j) % nc + nc) % nc) * C + r;
                /* float32 lse of `self` scores of -1e5 is -1e5 + log(self) rounded to
                 * -1e5's ulp (1/128): each self key weighs exp(-1e5 - lse), not 1/self */
                const float lse = -1e5f + (float)log((double)self);
                double wt = self ? (s->pos[key] == s->pos[i]) * exp((double)(-1e5f - lse)) : 1.0;
                for (int e = 0; e < a->d; e++)
                    o[e] += wt * s->v[(size_t)key * s->ld + e];
            }
        return;
    }
    double sum = 0;
    for (int j = 0; j < nk; j++)
        sum += w[j] = exp(w[j] - mx);
    for (int e = 0; e < a->d; e++) {
        o[e] = 0;
        for (int j = 0; j < nk; j++)
            o[e] += w[j] / sum * s->v[(size_t)rows[j] * s->ld + e];
    }
}

/* One chunk_attn case: segments of lengths ns[0 .. nseg-1] in one call (each with its own
 * random rows and a permuted position order, as LSH sorting gives), the reference and the
 * CPU table under every ISA this machine runs against each other and the independent
 * statement. with_lse 0: lse NULL. */
static void chunk_case(const int *ns, int nseg, int d, int chunk, int before, int after, int causal,
                       int self_mask, int masked, int with_lse, float key_scale)
{
    const int ld = 3 * d;
    kn_chunk_seg s1[4], s2[4];
    float *x[4], *o1[4], *o2[4], *l1[4], *l2[4];
    int32_t *pos[4];
    uint8_t *keep[4];
    for (int g = 0; g < nseg; g++) {
        const int n = ns[g];
        x[g] = randv((size_t)n * ld, 1);
        o1[g] = calloc((size_t)n * d, 4), o2[g] = calloc((size_t)n * d, 4);
        l1[g] = calloc(n, 4), l2[g] = calloc(n, 4);
        pos[g] = malloc(sizeof(int32_t) * n), keep[g] = malloc(n);
        int mul = 7;
        while (n > 1 && n % mul == 0)
            mul += 2; /* coprime with n (n is never a multiple of every odd number) */
        for (int i = 0; i < n; i++) {
            pos[g][i] = (int32_t)(((long)i * mul) % n);
            keep[g][i] = !masked || (i % 5 != 3);
        }
        s1[g] = (kn_chunk_seg){x[g],
                               x[g] + d,
                               x[g] + 2 * d,
                               ld,
                               o1[g],
                               d,
                               with_lse ? l1[g] : NULL,
                               pos[g],
                               masked ? keep[g] : NULL,
                               n};
        s2[g] = s1[g];
        s2[g].out = o2[g];
        s2[g].lse = with_lse ? l2[g] : NULL;
    }
    kn_chunk_args a = {s1, nseg, d, chunk, before, after, causal, self_mask, key_scale};
    ck_assert_int_eq(ref.chunk_attn(&a), 0);
    const char *isas[] = {"portable", "avx2", "avx512", "avx512-emu"};
    for (int v = 0; v < 4; v++) {
        if (!kn_isa_supported(kn_isa_parse(isas[v]))) continue;
        setenv("LONGSERVE_ISA", isas[v], 1);
        a.seg = s2;
        for (int g = 0; g < nseg; g++)
            memset(o2[g], 0xff, sizeof(float) * ns[g] * d); /* NaNs: every row is written */
        ck_assert_int_eq(cpu.chunk_attn(&a), 0);
        for (int g = 0; g < nseg; g++) {
            const int n = ns[g];
            for (size_t k = 0; k < (size_t)n * d; k++)
                ck_assert_msg(fabs(o1[g][k] - o2[g][k]) < 1e-5,
                              "%s n=%d d=%d chunk=%d %d/%d row %zu: ref %g cpu %g", isas[v], n, d,
                              chunk, before, after, k / d, o1[g][k], o2[g][k]);
            for (int i = 0; with_lse && i < n; i++)
                ck_assert_msg(fabs(l1[g][i] - l2[g][i]) <= 1e-5 * (1 + fabs(l1[g][i])),
                              "%s lse row %d: %g vs %g", isas[v], i, l1[g][i], l2[g][i]);
        }
    }
    unsetenv("LONGSERVE_ISA");
    for (int g = 0; g < nseg; g++) {
        double *e = malloc(sizeof(double) * d);
        for (int i = 0; i < ns[g]; i++) {
            chunk_expected(&a, &s1[g], i, e);
            for (int k = 0; k < d; k++)
                ck_assert_msg(fabs(e[k] - o1[g][(size_t)i * d + k]) < 1e-5,
                              "n=%d d=%d chunk=%d %d/%d c%d s%d m%d row %d: %g vs %g", ns[g], d,
                              chunk, before, after, causal, self_mask, masked, i, e[k],
                              o1[g][(size_t)i * d + k]);
        }
        free(e);
        free(x[g]), free(o1[g]), free(o2[g]), free(l1[g]), free(l2[g]), free(pos[g]), free(keep[g]);
    }
}

START_TEST(chunk_attn)
{
    const struct {
        int n, chunk, before, after, causal, self_mask, masked;
    } cfg[] = {
        {5, 8, 1, 0, 0, 0, 0},
        {8, 8, 1, 1, 1, 1, 0},
        {24, 8, 1, 0, 0, 0, 1},
        {24, 8, 1, 1, 0, 1, 1},
        {32, 4, 2, 0, 1, 0, 1},
        {16, 8, 0, 1, 0, 1, 0},
        {40, 8, 1, 0, 1, 1, 1},
        {32, 8, 0, 0, 1, 1, 1},
        {48, 8, 2, 2, 0, 1, 1},
        {48, 8, 0, 2, 1, 0, 0},
        /* wrap-around meets a chunk twice: nc = 2 with 1/1, nc = 2 with 2/0, nc = 3 with 2/2 */
        {16, 8, 1, 1, 0, 1, 1},
        {16, 8, 2, 0, 1, 1, 0},
        {24, 8, 2, 2, 1, 0, 1},
        /* odd chunk and n <= chunk not a multiple of the register tile */
        {21, 7, 1, 0, 1, 1, 1},
        {13, 32, 1, 0, 1, 1, 1},
    };
    const int ds[] = {8, 24, 64, 128};
    for (size_t t = 0; t < sizeof cfg / sizeof *cfg; t++)
        for (int di = 0; di < 4; di++)
            chunk_case(&cfg[t].n, 1, ds[di], cfg[t].chunk, cfg[t].before, cfg[t].after,
                       cfg[t].causal, cfg[t].self_mask, cfg[t].masked, (int)(t + di) % 2,
                       di % 2 ? 1.0f : 1.0f / sqrtf((float)ds[di]));
    /* several segments in one call, of other lengths (long, short, n <= chunk), LSH-sized */
    const int ns[3] = {1024, 512, 200};
    chunk_case(ns, 3, 128, 256, 1, 0, 1, 1, 1, 1, 1.0f);
    const int ns2[3] = {384, 100, 640};
    chunk_case(ns2, 3, 64, 128, 1, 0, 1, 0, 0, 0, 0.125f);
    const int d = 8, ld = 3 * d;
    /* every key masked: lse rounds to -1e9 in float32, so each p is 1 and the output is the
     * plain sum of the values (what Hugging Face returns for such a row) */
    float *x = randv(4 * ld, 1), o[4 * 8];
    int32_t pos[4] = {0, 1, 2, 3};
    uint8_t none[4] = {0, 0, 0, 0};
    kn_chunk_seg s = {x, x + d, x + 2 * d, ld, o, d, NULL, pos, none, 4};
    kn_chunk_args a = {&s, 1, d, 8, 1, 0, 0, 0, 1.0f};
    for (int tb = 0; tb < 2; tb++) {
        ck_assert_int_eq((tb ? cpu : ref).chunk_attn(&a), 0);
        for (int k = 0; k < d; k++) {
            double sum = 0;
            for (int r = 0; r < 4; r++)
                sum += x[(size_t)r * ld + 2 * d + k];
            ck_assert_msg(fabs(o[k] - sum) < 1e-5, "%s: %g vs %g", tb ? "cpu" : "ref", o[k], sum);
        }
    }
    free(x);
    float r[4] = {-1.5f, 0.0f, 2.0f, -0.0f};
    cpu.relu(r, 4);
    ck_assert(r[0] == 0.0f && r[1] == 0.0f && r[2] == 2.0f && r[3] == 0.0f);
}
START_TEST(lsh_hash_sort)
{
    /* identity rotations make the bucket the argmax of concat(qk, -qk): (1,0) -> 0, (0,1) ->
     * 1, (-1,0) -> 2, (0,-1) -> 3; round 1 negates (offset by NBp = 5 with the padding
     * bucket 4); the sort orders by (round, bucket, position) */
    const float qk[5][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}, {0, 1}};
    const float rot[2][2][2] = {{{1, 0}, {-1, 0}}, {{0, 1}, {0, -1}}}; /* [d][round][rot2] */
    const uint8_t keep[5] = {1, 1, 1, 1, 0};
    int32_t b[10], perm[10];
    const int32_t want[10] = {0, 1, 2, 3, 4, 5 + 2, 5 + 3, 5 + 0, 5 + 1, 5 + 4};
    const int32_t wperm[10] = {0, 1, 2, 3, 4, 7, 8, 5, 6, 9};
    kn_lsh_args a = {&qk[0][0], 2, &rot[0][0][0], 5, 2, 2, 1, {4}, keep, 1, b};
    const kn_ops *tabs[] = {&ref, &cpu};
    for (int t = 0; t < 2; t++) {
        ck_assert_int_eq(tabs[t]->lsh_hash(&a), 0);
        ck_assert(memcmp(b, want, sizeof b) == 0);
        ck_assert_int_eq(tabs[t]->lsh_sort(b, perm, 10, 10), 0);
        ck_assert(memcmp(perm, wperm, sizeof perm) == 0);
    }
    /* equal keys keep their order (stable) */
    const int32_t k2[6] = {1, 0, 1, 0, 1, 0};
    const int32_t p2[6] = {1, 3, 5, 0, 2, 4};
    ck_assert_int_eq(ref.lsh_sort(k2, perm, 6, 2), 0);
    ck_assert(memcmp(perm, p2, sizeof p2) == 0);
}
END_TEST

Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("parity");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, table_is_full);
    tcase_add_test(tc, host_buffers);
    tcase_add_test(tc, lsh_hash_sort);
    tcase_add_test(tc, chunk_attn);
    tcase_add_test(tc, linear);
    tcase_add_test(tc, gemm_isa_and_emulation);
    tcase_add_test(tc, gemm_bf16_paths);
    tcase_add_test(tc, ffn_fused);
    tcase_add_test(tc, linear_groups_are_batch_invariant);
    tcase_add_test(tc, embed);
    tcase_add_test(tc, add_layernorm);
    tcase_add_test(tc, gelu_tanh);
    tcase_add_test(tc, window_attn_local_only);
    tcase_add_test(tc, window_and_global_attn);
    tcase_add_test(tc, window_attn_matches_dense_when_window_covers);
    tcase_add_test(tc, window_attn_seq_windows_and_pad_queries);
    tcase_add_test(tc, window_attn_bf16);
    suite_add_tcase(s, tc);
    return s;
}

END_TEST
int main(void)
{
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
