/* The reduced-precision GEMM (`--dtype bf16`) for linear layers, y = x · wᵀ + b, with w
 * rounded to bfloat16 and packed once at load, x rounded to bfloat16 (nearest even) per
 * call and every product summed in float32:
 *
 *     char why[160];
 *     kn_bf16_path p = kn_bf16_active(why, sizeof why);   // cpuid, or LONGSERVE_BF16
 *     if (p == KN_BF16_NONE) refuse(why);
 *     kn_gemm_bf16 *pw = kn_gemm_bf16_pack(p, w, N, K);     // w: nn.Linear (N, K)
 *     kn_gemm_bf16_run(pw, x, M, bias, y);                  // y (M, N)
 *
 * As with kn_gemm, a row's numbers depend only on the row, K and the path: never on M, on
 * the rows beside it or on the thread count. Internal to kernels/ (and benches). */
#ifndef KN_CPU_GEMM_BF16_H
#define KN_CPU_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KN_BF16_NONE,   /* no bfloat16 path on this CPU */
    KN_BF16_AMX,    /* AMX tiles, TDPBF16PS (Sapphire Rapids and later) */
    KN_BF16_AVX512, /* AVX512_BF16, VDPBF16PS (Cooper Lake, Zen 4) */
    KN_BF16_EMU,    /* plain C, VDPBF16PS's sums exactly: tests on any CPU (slow) */
    KN_BF16_COUNT
} kn_bf16_path;

const char *kn_bf16_name(kn_bf16_path p); /* "amx-bf16", "avx512-bf16", "bf16-emu", "none" */
/* 1 when this CPU (and, for AMX, the OS) runs p; KN_BF16_EMU always. */
int kn_bf16_supported(kn_bf16_path p);
/* The fastest path this CPU runs (never the emulation), or KN_BF16_NONE. */
kn_bf16_path kn_bf16_best(void);
/* The path to use: LONGSERVE_BF16 (amx-bf16, avx512-bf16, bf16-emu, none) when set and
 * supported, else kn_bf16_best(); why says which and why, or why there is none. */
kn_bf16_path kn_bf16_active(char *why, size_t whylen);

typedef struct kn_gemm_bf16 kn_gemm_bf16;
/* NULL when out of memory or p is not supported here. */
kn_gemm_bf16 *kn_gemm_bf16_pack(kn_bf16_path p, const float *w, int N, int K);
void kn_gemm_bf16_free(kn_gemm_bf16 *pw);
/* y[M, N] (row stride N) = bf16(x[M, K]) · bf16(w)ᵀ + bias (may be NULL), OpenMP threads over
 * row blocks and column chunks. 0, or -1 when scratch memory could not be had. */
int kn_gemm_bf16_run(const kn_gemm_bf16 *pw, const float *x, int M, const float *bias, float *y);
/* A feed-forward block, y[M, w2->N] = bf16(act(x · w1ᵀ + b1)) · w2ᵀ + b2 (biases may be NULL),
 * without the (M, w1->N) intermediate in memory: bit for bit kn_gemm_bf16_run(w1), act over
 * its output, kn_gemm_bf16_run(w2), when act is elementwise (an element's value depends on
 * that element only). 0; -1 when scratch memory could not be had; -2 when w1 and w2 do not
 * chain (paths differ, or w2->K != w1->N). */
int kn_gemm_bf16_ffn(const kn_gemm_bf16 *w1, const kn_gemm_bf16 *w2, const float *x, int M,
                     const float *b1, const float *b2, void (*act)(float *, size_t), float *y);

/* Building blocks for bfloat16 products outside linear layers (the band attention of
 * `--dtype bf16`), on path p's vector unit (AMX's CPUs run the AVX512_BF16 one; see
 * kn_bf16_vector_path) or its emulation, the same numbers as the GEMM's sums:
 *   kn_bf16_round:     dst[k] = bf16(x[k]), k < n (nearest even);
 *   kn_bf16_pair_rows: dst[2j] = bf16(r0[j]), dst[2j+1] = bf16(r1[j]) (0 when r1 is NULL)
 *                      for j < n <= 16, zero pairs up to 16: one row of 16 pairs of a b;
 *   kn_bf16_tile:      c[i][j] (acc 0: =, 1: +=) the sum over r < np, pair after pair, of
 *                      a[i][2r]·b[r][j][0] + a[i][2r+1]·b[r][j][1] for i < m <= 8 and
 *                      j < n <= 32, where a is m rows (row stride lda elements, even) and b
 *                      the columns 0..15 in b0 and 16..31 in b1, each [np][16][2].
 * A tile's numbers depend only on its operands, never on m, n or the rows beside it. */
kn_bf16_path kn_bf16_vector_path(kn_bf16_path p);
void kn_bf16_round(kn_bf16_path p, const float *x, int n, uint16_t *dst);
void kn_bf16_pair_rows(kn_bf16_path p, const float *r0, const float *r1, int n, uint16_t *dst);
void kn_bf16_tile(kn_bf16_path p, int m, int np, const uint16_t *a, int lda, const uint16_t *b0,
                  const uint16_t *b1, float *c, int ldc, int n, int acc);

#endif
