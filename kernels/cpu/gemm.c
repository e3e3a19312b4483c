/* The packed GEMM: Goto's blocking (KC-deep blocks of the packed weight, MC-row blocks of
 * x packed per thread, MR x NR register tiles) with one micro-kernel source instantiated
 * per ISA through GCC vector extensions and target attributes; cpuid picks the ISA.
 * Compiled with -ffp-contract=fast so that acc += a * b is one FMA where the ISA has it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "gemm.h"

struct kn_gemm_w {
    kn_isa isa;
    int N, K, Npad; /* Npad: N rounded up to the ISA's NR */
    float *b;       /* [K/KC blocks][Npad/NR panels][kc][NR], zero-padded columns */
};

/* ---- micro-kernels ------------------------------------------------------------------
 * c[m, n] (row stride ldc) = acc + bias (first block) or c + acc (later blocks), where
 * acc[i][j] = Σ_k a[k][i] · b[k][j] in k order; a is a packed MR-row panel (kc x MR), b a
 * packed NR-column panel (kc x NR). Full tiles store vectors, edge tiles the same sums
 * one by one, so a row's numbers do not depend on the tile it falls in. */

#define KN__MICRO(NAME, ATTR, VW, MR)                                                              \
    ATTR static void NAME(int kc, const float *restrict a, const float *restrict b,                \
                          float *restrict c, int ldc, const float *restrict bias, int first,       \
                          int m, int n)                                                            \
    {                                                                                              \
        typedef float v_t __attribute__((vector_size((VW)*4)));                                    \
        typedef float vu_t __attribute__((vector_size((VW)*4), aligned(4)));                       \
        v_t acc0[MR], acc1[MR];                                                                    \
        _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++) acc0[i] = acc1[i] = (v_t){0};      \
        for (int k = 0; k < kc; k++) {                                                             \
            const v_t b0 = *(const v_t *)b, b1 = *(const v_t *)(b + (VW));                         \
            _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                \
            {                                                                                      \
                acc0[i] += a[i] * b0;                                                              \
                acc1[i] += a[i] * b1;                                                              \
            }                                                                                      \
            a += (MR);                                                                             \
            b += 2 * (VW);                                                                         \
        }                                                                                          \
        if (m == (MR) && n == 2 * (VW)) {                                                          \
            _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                \
            {                                                                                      \
                float *ci = c + (size_t)i * ldc;                                                   \
                v_t r0 = acc0[i], r1 = acc1[i];                                                    \
                if (!first) {                                                                      \
                    r0 = *(const vu_t *)ci + r0;                                                   \
                    r1 = *(const vu_t *)(ci + (VW)) + r1;                                          \
                } else if (bias) {                                                                 \
                    r0 = r0 + *(const vu_t *)bias;                                                 \
                    r1 = r1 + *(const vu_t *)(bias + (VW));                                        \
                }                                                                                  \
                *(vu_t *)ci = r0;                                                                  \
                *(vu_t *)(ci + (VW)) = r1;                                                         \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        float t[MR][2 * (VW)] __attribute__((aligned(64)));                                        \
        _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                    \
        {                                                                                          \
            *(v_t *)&t[i][0] = acc0[i];                                                            \
            *(v_t *)&t[i][VW] = acc1[i];                                                           \
        }                                                                                          \
        for (int i = 0; i < m; i++) {                                                              \
            float *ci = c + (size_t)i * ldc;                                                       \
            for (int j = 0; j < n; j++)                                                            \
                ci[j] = !first ? ci[j] + t[i][j] : bias ? t[i][j] + bias[j] : t[i][j];             \
        }                                                                                          \
    }

/* The same tile with A read in place: rows a + i·lda (i < m; rows past m repeat row m-1,
 * their sums are dropped), for attention, whose query and probability rows are already
 * in cache and would cost more to pack than to read. */
#define KN__MICRO_DA(NAME, ATTR, VW, MR)                                                           \
    ATTR static void NAME(int kc, const float *restrict a, int lda, const float *restrict b,       \
                          float *restrict c, int ldc, int first, int m, int n)                     \
    {                                                                                              \
        typedef float v_t __attribute__((vector_size((VW)*4)));                                    \
        typedef float vu_t __attribute__((vector_size((VW)*4), aligned(4)));                       \
        const float *ar[MR];                                                                       \
        for (int i = 0; i < (MR); i++)                                                             \
            ar[i] = a + (size_t)(i < m ? i : m - 1) * lda;                                         \
        v_t acc0[MR], acc1[MR];                                                                    \
        _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++) acc0[i] = acc1[i] = (v_t){0};      \
        for (int k = 0; k < kc; k++) {                                                             \
            const v_t b0 = *(const v_t *)b, b1 = *(const v_t *)(b + (VW));                         \
            _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                \
            {                                                                                      \
                acc0[i] += ar[i][k] * b0;                                                          \
                acc1[i] += ar[i][k] * b1;                                                          \
            }                                                                                      \
            b += 2 * (VW);                                                                         \
        }                                                                                          \
        if (n == 2 * (VW)) {                                                                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                \
            {                                                                                      \
                if (i >= m) break;                                                                 \
                float *ci = c + (size_t)i * ldc;                                                   \
                v_t r0 = acc0[i], r1 = acc1[i];                                                    \
                if (!first) {                                                                      \
                    r0 = *(const vu_t *)ci + r0;                                                   \
                    r1 = *(const vu_t *)(ci + (VW)) + r1;                                          \
                }                                                                                  \
                *(vu_t *)ci = r0;                                                                  \
                *(vu_t *)(ci + (VW)) = r1;                                                         \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        float t[MR][2 * (VW)] __attribute__((aligned(64)));                                        \
        _Pragma("GCC unroll 16") for (int i = 0; i < (MR); i++)                                    \
        {                                                                                          \
            *(v_t *)&t[i][0] = acc0[i];                                                            \
            *(v_t *)&t[i][VW] = acc1[i];                                                           \
        }                                                                                          \
        for (int i = 0; i < m; i++) {                                                              \
            float *ci = c + (size_t)i * ldc;                                                       \
            for (int j = 0; j < n; j++)                                                            \
                ci[j] = first ? t[i][j] : ci[j] + t[i][j];                                         \
        }                                                                                          \
    }

/* One row (a decoding step) against the packed panels, summed exactly as a micro-kernel
 * sums one row of its tile (the same ISA, so the same fused or unfused steps in k order, then
 * + bias or c + acc), so a row's numbers do not depend on how many rows the call has. */
#define KN__GEMV(NAME, ATTR)                                                                       \
    ATTR static void NAME(const float *restrict x, const float *restrict pb, int N, int K,         \
                          int Npad, int NR, int KC, const float *restrict bias, float *restrict y) \
    {                                                                                              \
        float acc[64] __attribute__((aligned(64)));                                                \
        for (int p0 = 0; p0 < K; p0 += KC) {                                                       \
            const int kc = K - p0 < KC ? K - p0 : KC;                                              \
            const float *blk = pb + (size_t)p0 * Npad, *xa = x + p0;                               \
            for (int j0 = 0; j0 < N; j0 += NR) {                                                   \
                const int n = N - j0 < NR ? N - j0 : NR;                                           \
                const float *bp = blk + (size_t)j0 * kc;                                           \
                for (int j = 0; j < NR; j++)                                                       \
                    acc[j] = 0;                                                                    \
                for (int k = 0; k < kc; k++)                                                       \
                    for (int j = 0; j < NR; j++)                                                   \
                        acc[j] += xa[k] * bp[(size_t)k * NR + j];                                  \
                for (int j = 0; j < n; j++)                                                        \
                    y[j0 + j] = p0 ? y[j0 + j] + acc[j] : bias ? acc[j] + bias[j0 + j] : acc[j];   \
            }                                                                                      \
        }                                                                                          \
    }

typedef void (*kn__gemv_fn)(const float *, const float *, int, int, int, int, int, const float *,
                            float *);

#if defined(__x86_64__) && defined(__GNUC__)
#define KN__X86 1
KN__GEMV(kn__gemv_avx512, __attribute__((target("avx512f"))))
KN__GEMV(kn__gemv_fma, __attribute__((target("avx2,fma"))))
KN__MICRO(kn__micro_avx512, __attribute__((target("avx512f"))), 16, 12)
KN__MICRO(kn__micro_avx2, __attribute__((target("avx2,fma"))), 8, 6)
KN__MICRO(kn__micro_avx512_emu, __attribute__((target("avx2,fma"))), 16, 12)
KN__MICRO_DA(kn__tile_avx512, __attribute__((target("avx512f"))), 16, 12)
KN__MICRO_DA(kn__tile_avx2, __attribute__((target("avx2,fma"))), 8, 6)
KN__MICRO_DA(kn__tile_avx512_emu, __attribute__((target("avx2,fma"))), 16, 12)
#endif
KN__GEMV(kn__gemv_portable, )
KN__MICRO(kn__micro_portable, , 4, 6)
KN__MICRO_DA(kn__tile_portable, , 4, 6)

typedef void (*kn__micro_fn)(int, const float *, const float *, float *, int, const float *, int,
                             int, int);

/* Register tile MR x NR, row block MC (an MC x KC block of x stays in L2) and depth KC.
 * A deep KC pays: the weight panel then streams from L2 instead of sitting in L1, which
 * costs nothing measurable, while every extra KC block re-reads and re-writes C. So KC
 * covers K=768 whole (longformer-base's QKV, output and FF1 products) on both ISAs.
 * Measured, 4096x3072x768, 2 threads: AVX2 on a Zen 3 115 GFLOP/s at KC 256, 145 at 512
 * (OpenBLAS 143); on a Sapphire Rapids AVX-512 184-190 at KC 256, 215-219 at 1024
 * (OpenBLAS SkylakeX 220), AVX2 101 at 512, 122 at 768 (OpenBLAS Haswell 114). */
typedef void (*kn__tile_fn)(int, const float *, int, const float *, float *, int, int, int, int);

typedef struct {
    const char *name;
    int mr, nr, mc, kc;
    kn__micro_fn micro;
    kn__tile_fn tile;
    kn__gemv_fn gemv;
} kn__isa_cfg;

#ifdef KN__X86
#define KN__FN(f) f
#else
#define KN__FN(f) NULL
#endif
static const kn__isa_cfg kn__cfg[KN_ISA_COUNT] = {
    [KN_ISA_PORTABLE] = {"portable", 6, 8, 96, 256, kn__micro_portable, kn__tile_portable,
                         kn__gemv_portable},
    [KN_ISA_AVX2] = {"avx2", 6, 16, 96, 768, KN__FN(kn__micro_avx2), KN__FN(kn__tile_avx2),
                     KN__FN(kn__gemv_fma)},
    [KN_ISA_AVX512] = {"avx512", 12, 32, 192, 1024, KN__FN(kn__micro_avx512),
                       KN__FN(kn__tile_avx512), KN__FN(kn__gemv_avx512)},
    [KN_ISA_AVX512_EMU] = {"avx512-emu", 12, 32, 192, 1024, KN__FN(kn__micro_avx512_emu),
                           KN__FN(kn__tile_avx512_emu), KN__FN(kn__gemv_fma)},
};

/* ---- which ISA --------------------------------------------------------------------------- */

const char *kn_isa_name(kn_isa isa)
{
    return (unsigned)isa < KN_ISA_COUNT ? kn__cfg[isa].name : "?";
}

int kn_isa_parse(const char *name)
{
    for (int i = 0; i < KN_ISA_COUNT; i++)
        if (name && strcmp(name, kn__cfg[i].name) == 0) return i;
    return -1;
}

int kn_isa_supported(kn_isa isa)
{
    switch (isa) {
    case KN_ISA_PORTABLE:
        return 1;
#ifdef KN__X86
    case KN_ISA_AVX2:
    case KN_ISA_AVX512_EMU:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KN_ISA_AVX512:
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return 0;
    }
}

kn_isa kn_isa_best(void)
{
    for (int i = KN_ISA_AVX512; i > 0; i--)
        if (kn_isa_supported((kn_isa)i)) return (kn_isa)i;
    return KN_ISA_PORTABLE;
}

static char kn__reason[160];

kn_isa kn_isa_active(void)
{
    const kn_isa best = kn_isa_best();
    const char *force = getenv("LONGSERVE_ISA");
    kn_isa isa = best;
    if (force && *force) {
        int f = kn_isa_parse(force);
        if (f < 0)
            snprintf(
                kn__reason, sizeof kn__reason,
                "LONGSERVE_ISA=%.32s is not portable, avx2, avx512 or avx512-emu: using %s (cpuid)",
                force, kn_isa_name(best));
        else if (!kn_isa_supported((kn_isa)f))
            snprintf(kn__reason, sizeof kn__reason,
                     "LONGSERVE_ISA=%s: this CPU lacks it, using %s (cpuid)", force,
                     kn_isa_name(best));
        else {
            isa = (kn_isa)f;
            snprintf(kn__reason, sizeof kn__reason, "%s (forced by LONGSERVE_ISA; cpuid: %s)",
                     kn_isa_name(isa), kn_isa_name(best));
        }
    } else {
        snprintf(kn__reason, sizeof kn__reason, "%s (cpuid features)", kn_isa_name(isa));
    }
    return isa;
}

const char *kn_isa_reason(void)
{
    if (!kn__reason[0]) kn_isa_active();
    return kn__reason;
}

/* ---- packing ----------------------------------------------------------------------------- */

kn_gemm_w *kn_gemm_pack(kn_isa isa, const float *w, int N, int K)
{
    if ((unsigned)isa >= KN_ISA_COUNT || !kn__cfg[isa].micro || !kn_isa_supported(isa) || N <= 0 ||
        K <= 0)
        return NULL;
    const int NR = kn__cfg[isa].nr, KC = kn__cfg[isa].kc, Npad = (N + NR - 1) / NR * NR;
    kn_gemm_w *pw = calloc(1, sizeof *pw);
    const size_t bytes = (size_t)Npad * (size_t)K * sizeof(float);
    float *b = pw ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
    if (!b) {
        free(pw);
        return NULL;
    }
    *pw = (kn_gemm_w){.isa = isa, .N = N, .K = K, .Npad = Npad, .b = b};
#pragma omp parallel for schedule(static) if ((size_t)N * K > (1u << 18))
    for (int p0 = 0; p0 < K; p0 += KC) {
        const int kc = K - p0 < KC ? K - p0 : KC;
        float *blk = b + (size_t)p0 * Npad;
        for (int j0 = 0; j0 < Npad; j0 += NR) {
            float *panel = blk + (size_t)j0 * kc;
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < NR; j++)
                    panel[(size_t)k * NR + j] =
                        j0 + j < N ? w[(size_t)(j0 + j) * K + p0 + k] : 0.0f;
        }
    }
    return pw;
}

void kn_gemm_free(kn_gemm_w *pw)
{
    if (!pw) return;
    free(pw->b);
    free(pw);
}

/* x rows r0 .. r0+mc-1, columns p0 .. p0+kc-1 into MR-row panels (kc x MR each), rows past
 * mc zero. */
static void kn__pack_a(const float *x, int K, int r0, int mc, int p0, int kc, int MR, float *dst)
{
    enum { MR_MAX = 16 };
    for (int i0 = 0; i0 < mc; i0 += MR) {
        float *panel = dst + (size_t)i0 * kc;
        const int rows = mc - i0 < MR ? mc - i0 : MR;
        const float *src[MR_MAX];
        for (int i = 0; i < rows; i++)
            src[i] = x + (size_t)(r0 + i0 + i) * K + p0;
        /* the panel written once, in order (MR passes of strided stores re-missed the cache
         * on every one); the rows read as MR sequential streams */
        for (int k = 0; k < kc; k++) {
            float *dk = panel + (size_t)k * MR;
            for (int i = 0; i < rows; i++)
                dk[i] = src[i][k];
            for (int i = rows; i < MR; i++)
                dk[i] = 0.0f;
        }
    }
}

/* ---- the driver --------------------------------------------------------------------------- */

/* Rows [0, mc) of x (row stride pw->K) times the column panels [jp0, jp1) of pw: y (row
 * stride ldy, its row 0 and column 0 those of x's row 0 and the first column) = the sums +
 * bias, KC block after KC block. abuf: MC x KC floats. */
static void kn__rows(const kn_gemm_w *pw, const float *x, int mc, int jp0, int jp1,
                     const float *bias, float *y, int ldy, float *abuf)
{
    const kn__isa_cfg *g = &kn__cfg[pw->isa];
    const int MR = g->mr, NR = g->nr, KC = g->kc, N = pw->N, K = pw->K, Npad = pw->Npad;
    for (int p0 = 0; p0 < K; p0 += KC) {
        const int kc = K - p0 < KC ? K - p0 : KC;
        kn__pack_a(x, K, 0, mc, p0, kc, MR, abuf);
        const float *blk = pw->b + (size_t)p0 * Npad;
        for (int jp = jp0; jp < jp1; jp++) {
            const int j0 = jp * NR, n = N - j0 < NR ? N - j0 : NR;
            const float *bp = blk + (size_t)j0 * kc;
            for (int i0 = 0; i0 < mc; i0 += MR) {
                const int m = mc - i0 < MR ? mc - i0 : MR;
                g->micro(kc, abuf + (size_t)i0 * kc, bp, y + (size_t)i0 * ldy + j0, ldy,
                         bias ? bias + j0 : NULL, p0 == 0, m, n);
            }
        }
    }
}

int kn_gemm(const kn_gemm_w *pw, const float *x, int M, const float *bias, float *y)
{
    if (M <= 0) return 0;
    const kn__isa_cfg *g = &kn__cfg[pw->isa];
    const int NR = g->nr, MC = g->mc, KC = g->kc, N = pw->N, K = pw->K;
    const int Npad = pw->Npad;
    const int nmc = (M + MC - 1) / MC, npanels = Npad / NR;
    /* column chunks so that a few rows still give every thread work (any split gives the
     * same numbers: each element is computed whole by one micro-kernel call sequence) */
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    int nch = (4 * threads + nmc - 1) / nmc;
    if (nch > npanels) nch = npanels;
    if (nch < 1) nch = 1;
    if (M == 1 && g->gemv) { /* one row: the panels streamed once, x not packed */
        g->gemv(x, pw->b, N, K, Npad, NR, KC, bias, y);
        return 0;
    }
    const long items = (long)nmc * nch;
    int failed = 0;
    /* a small product (one decoding step's row) runs on the calling thread: a parallel
     * region costs more than it saves there, and far more when a core is busy elsewhere */
    const int par = items > 1 && (double)M * N * K >= (double)(1 << 21);
#pragma omp parallel reduction(| : failed) if (par)
    {
        float *abuf = aligned_alloc(64, (size_t)MC * KC * sizeof(float));
        if (!abuf) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            if (!abuf) continue;
            const int ic = (int)(it / nch) * MC, ch = (int)(it % nch);
            const int mc = M - ic < MC ? M - ic : MC;
            const int jp0 = (int)((long)npanels * ch / nch),
                      jp1 = (int)((long)npanels * (ch + 1) / nch);
            kn__rows(pw, x + (size_t)ic * K, mc, jp0, jp1, bias, y + (size_t)ic * N, N, abuf);
        }
        free(abuf);
    }
    return failed ? -1 : 0;
}

/* The feed-forward block per row block on one thread: the block's x through w1 into an
 * inner block h (rows of w1->N floats, sized to stay in L2), act over h's rows, h through
 * w2 into y. Every element is the micro-kernel call sequence kn_gemm would make for it, so
 * the numbers are kn_gemm(w1), act, kn_gemm(w2)'s bit for bit (kn_gemm's one-row gemv
 * included: it sums in the same order). */
int kn_gemm_ffn(const kn_gemm_w *w1, const kn_gemm_w *w2, const float *x, int M, const float *b1,
                const float *b2, void (*act)(float *, size_t), float *y)
{
    if (w1->isa != w2->isa || w2->K != w1->N) return -2;
    if (M <= 0) return 0;
    const kn__isa_cfg *g = &kn__cfg[w1->isa];
    const int MR = g->mr, NR = g->nr, KC = g->kc, H = w1->K, I = w1->N, N2 = w2->N;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* h within ~640 KiB, and at least one block per thread */
    int fb = (int)(163840 / I) / MR * MR;
    const int share = ((M + threads - 1) / threads + MR - 1) / MR * MR;
    if (fb > share) fb = share;
    if (fb > g->mc) fb = g->mc;
    if (fb < MR) fb = MR;
    const int items = (M + fb - 1) / fb;
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (items > 1 && threads > 1)
    {
        float *abuf = aligned_alloc(64, (size_t)fb * KC * sizeof(float));
        float *h = aligned_alloc(64, ((size_t)fb * I * sizeof(float) + 63) / 64 * 64);
        if (!abuf || !h) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            if (failed) continue;
            const int r0 = it * fb, mb = M - r0 < fb ? M - r0 : fb;
            kn__rows(w1, x + (size_t)r0 * H, mb, 0, w1->Npad / NR, b1, h, I, abuf);
            act(h, (size_t)mb * I); /* h's rows are contiguous */
            kn__rows(w2, h, mb, 0, w2->Npad / NR, b2, y + (size_t)r0 * N2, N2, abuf);
        }
        free(abuf);
        free(h);
    }
    return failed ? -1 : 0;
}

/* ---- small products for attention tiles ------------------------------------------------- */

int kn_gemm_small(kn_isa isa, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, int b_rows_are_n, int accumulate, float *C, int ldc,
                  kn_gemm_ws *ws)
{
    if (M <= 0 || N <= 0) return 0;
    const kn__isa_cfg *g = &kn__cfg[isa];
    const int MR = g->mr, NR = g->nr, KC = g->kc;
    const int Mpad = (M + MR - 1) / MR * MR, Npad = (N + NR - 1) / NR * NR;
    const int kc_max = K < KC ? K : KC;
    /* the B panels start on a 64-byte boundary: the micro-kernels load them aligned */
    const size_t asz = ((size_t)Mpad * (size_t)kc_max + 15) / 16 * 16;
    const size_t need = asz + (size_t)Npad * (size_t)kc_max;
    if (need > ws->cap) {
        free(ws->buf);
        ws->buf = aligned_alloc(64, (need * sizeof(float) + 63) / 64 * 64);
        ws->cap = ws->buf ? need : 0;
        if (!ws->buf) return -1;
    }
    float *pa = ws->buf, *pb = ws->buf + asz;
    if (K <= 0) { /* an empty sum: C = 0 (or unchanged) */
        for (int i = 0; !accumulate && i < M; i++)
            memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof *C);
        return 0;
    }
    for (int p0 = 0; p0 < K; p0 += KC) {
        const int kc = K - p0 < KC ? K - p0 : KC;
        /* A: MR-row panels of kc, times alpha, zero rows past M */
        for (int i0 = 0; i0 < Mpad; i0 += MR) {
            float *panel = pa + (size_t)i0 * kc;
            for (int i = 0; i < MR; i++) {
                const int r = i0 + i;
                float *dst = panel + i;
                if (r >= M) {
                    for (int k = 0; k < kc; k++)
                        dst[(size_t)k * MR] = 0.0f;
                    continue;
                }
                const float *src = A + (size_t)r * lda + p0;
                if (alpha == 1.0f)
                    for (int k = 0; k < kc; k++)
                        dst[(size_t)k * MR] = src[k];
                else
                    for (int k = 0; k < kc; k++)
                        dst[(size_t)k * MR] = alpha * src[k];
            }
        }
        /* B: NR-column panels of kc, zero columns past N */
        for (int j0 = 0; j0 < Npad; j0 += NR) {
            float *panel = pb + (size_t)j0 * kc;
            const int nj = N - j0 < NR ? N - j0 : NR;
            if (b_rows_are_n) { /* column c of the panel is row c of B: a transpose */
                for (int j = 0; j < NR; j++) {
                    float *dst = panel + j;
                    if (j >= nj) {
                        for (int k = 0; k < kc; k++)
                            dst[(size_t)k * NR] = 0.0f;
                        continue;
                    }
                    const float *src = B + (size_t)(j0 + j) * ldb + p0;
                    for (int k = 0; k < kc; k++)
                        dst[(size_t)k * NR] = src[k];
                }
            } else { /* row k of the panel is a piece of row p0+k of B */
                for (int k = 0; k < kc; k++) {
                    float *dst = panel + (size_t)k * NR;
                    memcpy(dst, B + (size_t)(p0 + k) * ldb + j0, (size_t)nj * sizeof *dst);
                    for (int j = nj; j < NR; j++)
                        dst[j] = 0.0f;
                }
            }
        }
        const int first = p0 == 0 && !accumulate;
        for (int j0 = 0; j0 < N; j0 += NR)
            for (int i0 = 0; i0 < M; i0 += MR)
                g->micro(kc, pa + (size_t)i0 * kc, pb + (size_t)j0 * kc, C + (size_t)i0 * ldc + j0,
                         ldc, NULL, first, M - i0 < MR ? M - i0 : MR, N - j0 < NR ? N - j0 : NR);
    }
    return 0;
}

void kn_gemm_ws_free(kn_gemm_ws *ws)
{
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

int kn_isa_mr(kn_isa isa)
{
    return kn__cfg[isa].mr;
}

int kn_isa_nr(kn_isa isa)
{
    return kn__cfg[isa].nr;
}

void kn_gemm_tile(kn_isa isa, int m, int n, int kc, const float *a, int lda, const float *b,
                  float *c, int ldc, int accumulate)
{
    kn__cfg[isa].tile(kc, a, lda, b, c, ldc, !accumulate, m, n);
}
