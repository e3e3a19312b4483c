/* The CPU backend's own float32 GEMM for linear layers, y = x · wᵀ + b, with the weight
 * packed once (at model load) for the instruction set the CPU has: a micro-kernel per
 * ISA (AVX-512, AVX2+FMA, and a portable one), chosen by cpuid features, never by the CPU
 * model, and forced by LONGSERVE_ISA for tests and comparisons.
 *
 *     kn_isa isa = kn_isa_active();                     // cpuid, or LONGSERVE_ISA
 *     kn_gemm_w *pw = kn_gemm_pack(isa, w, N, K);       // w: nn.Linear (N, K)
 *     kn_gemm(pw, x, M, bias, y);                       // y (M, N) = x (M, K) · wᵀ + bias
 *     kn_gemm_free(pw);
 *
 * Every output element is a sum over k in one fixed order (blocks of KC, FMA within a
 * block) that depends only on K and the ISA: a row's numbers never depend on M, on which
 * rows it shares a tile with, or on the thread count. Internal to kernels/ (and benches). */
#ifndef KN_CPU_GEMM_H
#define KN_CPU_GEMM_H

#include <stddef.h>

typedef enum {
    KN_ISA_PORTABLE, /* plain C vectors: any x86-64 (SSE2) or other CPU */
    KN_ISA_AVX2,     /* AVX2 + FMA: 6x16 micro-kernel */
    KN_ISA_AVX512,   /* AVX-512F: 12x32 micro-kernel */
    /* Tests only: the AVX-512 micro-kernel source and blocking compiled for AVX2, so that a
     * machine without AVX-512 still checks that path's logic (same numbers, slower). */
    KN_ISA_AVX512_EMU,
    KN_ISA_COUNT
} kn_isa;

const char *kn_isa_name(kn_isa isa);
/* 1 when this CPU can run isa (cpuid). */
int kn_isa_supported(kn_isa isa);
/* The best ISA this CPU supports (never the emulation). */
kn_isa kn_isa_best(void);
/* The ISA the backend uses: LONGSERVE_ISA (portable, avx2, avx512, avx512-emu) when set
 * and supported, else kn_isa_best(); read at each call. kn_isa_reason says which and why
 * (cpuid or forced), for the start-up log and /info. */
kn_isa kn_isa_active(void);
const char *kn_isa_reason(void);
/* Parses an ISA name; -1 when unknown. */
int kn_isa_parse(const char *name);

typedef struct kn_gemm_w kn_gemm_w;

/* Packs w (N rows of K floats, row stride K) for isa; NULL when out of memory or the ISA
 * is not supported here. */
kn_gemm_w *kn_gemm_pack(kn_isa isa, const float *w, int N, int K);
void kn_gemm_free(kn_gemm_w *pw);

/* y[M, N] (row stride N) = x[M, K] (row stride K) · wᵀ + bias (bias may be NULL), with
 * OpenMP threads over blocks of rows and columns. Returns 0, or -1 when scratch memory
 * could not be had (y is then unspecified). */
int kn_gemm(const kn_gemm_w *pw, const float *x, int M, const float *bias, float *y);
/* A feed-forward block, y[M, w2->N] = act(x · w1ᵀ + b1) · w2ᵀ + b2 (biases may be NULL),
 * without the (M, w1->N) intermediate in memory: bit for bit kn_gemm(w1), act over its
 * output, kn_gemm(w2), when act is elementwise. 0; -1 when scratch memory could not be
 * had; -2 when w1 and w2 do not chain (ISAs differ, or w2->K != w1->N). */
int kn_gemm_ffn(const kn_gemm_w *w1, const kn_gemm_w *w2, const float *x, int M, const float *b1,
                const float *b2, void (*act)(float *, size_t), float *y);

/* Scratch of kn_gemm_small, grown as needed; one per thread. */
typedef struct {
    float *buf;
    size_t cap; /* floats */
} kn_gemm_ws;
void kn_gemm_ws_free(kn_gemm_ws *ws);

/* One thread: C[M, N] (row stride ldc) = alpha·A[M, K] (row stride lda) · B (+ C when
 * accumulate), with B given as N rows of K (b_rows_are_n: Bᵀ row-major, as keys are) or
 * K rows of N (as values are), row stride ldb; both packed on the fly (attention tiles).
 * Sums in the same order as kn_gemm. Returns 0, or -1 when scratch could not be had. */
int kn_gemm_small(kn_isa isa, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, int b_rows_are_n, int accumulate, float *C, int ldc,
                  kn_gemm_ws *ws);

/* The register tile of an ISA: MR rows by NR columns. */
int kn_isa_mr(kn_isa isa);
int kn_isa_nr(kn_isa isa);
/* One register tile, one thread: c[m, n] (row stride ldc; m <= MR, n <= NR) = (c +) Σ_k
 * a[i][k]·b[k][j] for k < kc in k order, a read in place (rows a + i·lda), b one packed
 * NR-column panel (kc x NR, 64-byte aligned). No blocking over k: the sum's order is the
 * key order whatever kc is, so zero terms added before or after leave it as it is. */
void kn_gemm_tile(kn_isa isa, int m, int n, int kc, const float *a, int lda, const float *b,
                  float *c, int ldc, int accumulate);

#endif
