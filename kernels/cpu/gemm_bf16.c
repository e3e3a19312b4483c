/* The reduced-precision GEMM of `--dtype bf16`: weights rounded to bfloat16 and packed once,
 * x rounded to bfloat16 per call, products summed in float32. Kernels: AMX tiles
 * (TDPBF16PS), AVX512_BF16 (VDPBF16PS), and a plain C emulation of VDPBF16PS's sums for
 * tests on CPUs without either; cpuid picks, LONGSERVE_BF16 forces. Internal to kernels/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <pthread.h>

#include "gemm_bf16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define KN__X86 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Packed weight: Kp = K rounded up to 32, Np = N rounded up to 32. Column block j (16
 * columns) is Kp/2 rows of 16 pairs, row r holding (w[n][2r], w[n][2r+1]) for its 16 n:
 * the VNNI layout a B tile reads (16 rows of 64 bytes per 32 k), and the pairs VDPBF16PS
 * multiplies. Zero past N and K. */
struct kn_gemm_bf16 {
    kn_bf16_path path;
    int N, K, Np, Kp;
    uint16_t *b; /* [Np/16][Kp/2][16][2] */
};

/* float32 -> bfloat16, rounded to nearest even (NaN stays a quiet NaN). */
static inline uint16_t kn__bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float kn__f32(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- which path --------------------------------------------------------------------------- */

#ifdef KN__X86
#define KN__ARCH_REQ_XCOMP_PERM 0x1023
#define KN__XFEATURE_XTILEDATA 18
static int kn__amx_ok;
static void kn__amx_probe(void)
{
    /* Linux hands out the AMX tile state only to processes that ask (5.16+) */
    kn__amx_ok = __builtin_cpu_supports("avx512f") &&
                 syscall(SYS_arch_prctl, KN__ARCH_REQ_XCOMP_PERM, KN__XFEATURE_XTILEDATA) == 0;
}
/* cpuid leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE; leaf 7 sub-leaf 1 EAX bit 5
 * AVX512_BF16 (gcc 12's __builtin_cpu_supports knows neither AMX name) */
static void kn__cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}
#endif

int kn_bf16_supported(kn_bf16_path p)
{
    switch (p) {
    case KN_BF16_EMU:
        return 1;
#ifdef KN__X86
    case KN_BF16_AVX512: {
        unsigned r[4];
        kn__cpuid(7, 1, r);
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               (r[0] >> 5 & 1);
    }
    case KN_BF16_AMX: {
        unsigned r[4];
        kn__cpuid(7, 0, r);
        if (!(r[3] >> 22 & 1) || !(r[3] >> 24 & 1) || !kn_bf16_supported(KN_BF16_AVX512)) return 0;
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, kn__amx_probe);
        return kn__amx_ok;
    }
#endif
    default:
        return 0;
    }
}

static const char *const kn__bf16_names[KN_BF16_COUNT] = {[KN_BF16_NONE] = "none",
                                                          [KN_BF16_AMX] = "amx-bf16",
                                                          [KN_BF16_AVX512] = "avx512-bf16",
                                                          [KN_BF16_EMU] = "bf16-emu"};

const char *kn_bf16_name(kn_bf16_path p)
{
    return (unsigned)p < KN_BF16_COUNT ? kn__bf16_names[p] : "?";
}

kn_bf16_path kn_bf16_best(void)
{
    if (kn_bf16_supported(KN_BF16_AMX)) return KN_BF16_AMX;
    if (kn_bf16_supported(KN_BF16_AVX512)) return KN_BF16_AVX512;
    return KN_BF16_NONE;
}

kn_bf16_path kn_bf16_active(char *why, size_t whylen)
{
    const kn_bf16_path best = kn_bf16_best();
    const char *force = getenv("LONGSERVE_BF16");
    if (force && *force) {
        for (int p = 0; p < KN_BF16_COUNT; p++) {
            if (strcmp(force, kn__bf16_names[p]) != 0) continue;
            if (p != KN_BF16_NONE && !kn_bf16_supported((kn_bf16_path)p)) break;
            if (p == KN_BF16_NONE) {
                snprintf(why, whylen,
                         "LONGSERVE_BF16=none stands for a CPU without them (cpuid: %s)",
                         kn_bf16_name(best));
                return KN_BF16_NONE;
            }
            snprintf(why, whylen, "%s (forced by LONGSERVE_BF16; cpuid: %s)", force,
                     kn_bf16_name(best));
            return (kn_bf16_path)p;
        }
        snprintf(why, whylen,
                 "LONGSERVE_BF16=%.32s is not one of amx-bf16, avx512-bf16, bf16-emu, none that "
                 "this CPU runs",
                 force);
        return KN_BF16_NONE;
    }
    if (best == KN_BF16_NONE)
        snprintf(why, whylen,
                 "this CPU has neither AMX-BF16 (amx_tile, amx_bf16) nor AVX512_BF16 "
                 "(avx512_bf16), or the kernel refused AMX");
    else
        snprintf(why, whylen, "%s (cpuid features)", kn_bf16_name(best));
    return best;
}

/* ---- packing ------------------------------------------------------------------------------ */

kn_gemm_bf16 *kn_gemm_bf16_pack(kn_bf16_path path, const float *w, int N, int K)
{
    if (path <= KN_BF16_NONE || path >= KN_BF16_COUNT || !kn_bf16_supported(path) || N <= 0 ||
        K <= 0)
        return NULL;
    const int Np = (N + 31) / 32 * 32, Kp = (K + 31) / 32 * 32;
    kn_gemm_bf16 *pw = calloc(1, sizeof *pw);
    const size_t bytes = (size_t)Np * Kp * sizeof(uint16_t);
    uint16_t *b = pw ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
    if (!b) {
        free(pw);
        return NULL;
    }
    *pw = (kn_gemm_bf16){.path = path, .N = N, .K = K, .Np = Np, .Kp = Kp, .b = b};
#pragma omp parallel for schedule(static) if ((size_t)N * K > (1u << 18))
    for (int jb = 0; jb < Np / 16; jb++) {
        uint16_t *blk = b + (size_t)jb * Kp * 16;
        for (int r = 0; r < Kp / 2; r++)
            for (int j = 0; j < 16; j++) {
                const int n = jb * 16 + j;
                for (int e = 0; e < 2; e++) {
                    const int k = 2 * r + e;
                    blk[(size_t)r * 32 + 2 * j + e] =
                        n < N && k < K ? kn__bf16(w[(size_t)n * K + k]) : 0;
                }
            }
    }
    return pw;
}

void kn_gemm_bf16_free(kn_gemm_bf16 *pw)
{
    if (!pw) return;
    free(pw->b);
    free(pw);
}

/* ---- the tile products ----------------------------------------------------------------------
 * One 32 x 32 block of c (row stride 32): c = Σ over Kp of a (32 rows of Kp bf16, row stride
 * lda elements) times the packed column blocks b0, b1 (16 columns each), in k order, 32 k
 * at a time as one TDPBF16PS takes them. */
typedef void (*kn__block_fn)(const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1,
                             int Kp, float *c);

/* The C emulation: per element, each pair's odd product then its even one added to the
 * float32 sum (a bfloat16 product is exact in float32), pairs in k order: VDPBF16PS's sums
 * bit for bit. AMX's TDPBF16PS sums a tile row's 32 products in its own way (no simple
 * order reproduces it), so against AMX the emulation agrees to rounding only. kn_bf16_tile's
 * emulation (m rows, any m), and the GEMM block's (32 rows). */
static void kn__tile_emu(int m, int np, const uint16_t *a, int lda, const uint16_t *b0,
                         const uint16_t *b1, float *c, int ldc, int n, int acc)
{
    for (int i = 0; i < m; i++) {
        const uint16_t *ai = a + (size_t)i * lda;
        float s[32] = {0};
        for (int r = 0; r < np; r++) {
            const float odd = kn__f32(ai[2 * r + 1]), even = kn__f32(ai[2 * r]);
            const uint16_t *p0 = b0 + (size_t)r * 32, *p1 = b1 + (size_t)r * 32;
            for (int j = 0; j < 16; j++) {
                s[j] += odd * kn__f32(p0[2 * j + 1]);
                s[j] += even * kn__f32(p0[2 * j]);
                s[16 + j] += odd * kn__f32(p1[2 * j + 1]);
                s[16 + j] += even * kn__f32(p1[2 * j]);
            }
        }
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = acc ? ci[j] + s[j] : s[j];
    }
}

static void kn__block_emu(const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1,
                          int Kp, float *c)
{
    kn__tile_emu(32, Kp / 2, a, lda, b0, b1, c, 32, 32, 0);
}

#ifdef KN__X86
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} kn__tilecfg;

/* tiles 0..3: c (2 x 2 blocks of 16 x 16 floats); 4, 5: a (16 rows x 32 bf16); 6, 7: b.
 * Static: gcc 12 drops a memset of a local config as dead (it does not see LDTILECFG read
 * all 64 bytes), and garbage in the unused tiles' fields faults. */
static const kn__tilecfg kn__cfg_2x2 = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

__attribute__((target("amx-tile"))) static void kn__amx_config(void)
{
    _tile_loadconfig(&kn__cfg_2x2);
}

__attribute__((target("amx-tile"))) static void kn__amx_release(void)
{
    _tile_release();
}

__attribute__((target("amx-tile,amx-bf16"))) static void
kn__block_amx(const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1, int Kp, float *c)
{
    const size_t sa = (size_t)lda * sizeof(uint16_t);
    const uint16_t *a1 = a + (size_t)16 * lda;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int k = 0; k < Kp; k += 32) {
        _tile_loadd(4, a + k, sa);
        _tile_loadd(6, b0 + (size_t)k * 16, 64);
        _tile_loadd(7, b1 + (size_t)k * 16, 64);
        _tile_loadd(5, a1 + k, sa);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 128);
    _tile_stored(1, c + 16, 128);
    _tile_stored(2, c + 16 * 32, 128);
    _tile_stored(3, c + 16 * 32 + 16, 128);
}

/* VDPBF16PS register tile: c (m <= 8 rows, n <= 32 columns, row stride ldc) = or += the
 * sums over np pairs of a (m rows, row stride lda) times b0, b1 (16 columns each, [np][16][2]),
 * pair after pair, plus bias[j] when bias is not NULL. Rows past m repeat row m - 1
 * (computed, not stored), so the loop has no branches. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static inline
    __attribute__((always_inline)) void
    kn__tile8_avx512(int m, int np, const uint16_t *a, int lda, const uint16_t *b0,
                     const uint16_t *b1, float *c, int ldc, int n, int acc, const float *bias)
{
    __m512 acc0[8], acc1[8];
    const uint16_t *ar[8];
    for (int i = 0; i < 8; i++) {
        acc0[i] = acc1[i] = _mm512_setzero_ps();
        ar[i] = a + (size_t)(i < m ? i : m - 1) * lda;
    }
    for (int r = 0; r < np; r++) {
        const __m512bh v0 = (__m512bh)_mm512_loadu_si512(b0 + (size_t)r * 32);
        const __m512bh v1 = (__m512bh)_mm512_loadu_si512(b1 + (size_t)r * 32);
        for (int i = 0; i < 8; i++) {
            uint32_t pair;
            memcpy(&pair, ar[i] + 2 * r, sizeof pair);
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)pair);
            acc0[i] = _mm512_dpbf16_ps(acc0[i], x, v0);
            acc1[i] = _mm512_dpbf16_ps(acc1[i], x, v1);
        }
    }
    const __mmask16 k0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    const __mmask16 k1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    const __m512 bs0 = bias ? _mm512_maskz_loadu_ps(k0, bias) : _mm512_setzero_ps();
    const __m512 bs1 = bias ? _mm512_maskz_loadu_ps(k1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
        if (i >= m) break;
        float *ci = c + (size_t)i * ldc;
        if (acc) {
            acc0[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, ci), acc0[i]);
            acc1[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, ci + 16), acc1[i]);
        }
        if (bias) {
            acc0[i] = _mm512_add_ps(acc0[i], bs0);
            acc1[i] = _mm512_add_ps(acc1[i], bs1);
        }
        _mm512_mask_storeu_ps(ci, k0, acc0[i]);
        _mm512_mask_storeu_ps(ci + 16, k1, acc1[i]);
    }
}

/* 32 rows x 32 columns as four 8-row strips */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
kn__block_avx512(const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1, int Kp,
                 float *c)
{
    for (int i0 = 0; i0 < 32; i0 += 8)
        kn__tile8_avx512(8, Kp / 2, a + (size_t)i0 * lda, lda, b0, b1, c + i0 * 32, 32, 32, 0,
                         NULL);
}

/* The GEMM's column panel straight into y: rows [0, m) of a (row stride lda = Kp), columns
 * [0, n) of y (row stride ldy), plus bias; the same sums, then the same one addition of the
 * bias, as the block and the driver's copy make. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
kn__panel_avx512(int m, const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1, int Kp,
                 float *y, int ldy, int n, const float *bias)
{
    for (int i0 = 0; i0 < m; i0 += 8)
        kn__tile8_avx512(m - i0 < 8 ? m - i0 : 8, Kp / 2, a + (size_t)i0 * lda, lda, b0, b1,
                         y + (size_t)i0 * ldy, ldy, n, 0, bias);
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
kn__tile_avx512(int m, int np, const uint16_t *a, int lda, const uint16_t *b0, const uint16_t *b1,
                float *c, int ldc, int n, int acc)
{
    kn__tile8_avx512(m, np, a, lda, b0, b1, c, ldc, n, acc, NULL);
}

/* rows of x (f32) -> bf16, 32 at a time */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
kn__cvt_row_avx512(const float *x, int K, uint16_t *dst)
{
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512(dst + k, (__m512i)h);
    }
    for (; k < K; k++)
        dst[k] = kn__bf16(x[k]);
}
#endif

#ifdef KN__X86
/* dst[2j] = bf16(r0[j]), dst[2j+1] = bf16(r1[j]) (0 when r1 is NULL), j < n <= 16; zeros
 * up to 16 pairs */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
kn__pair_rows_avx512(const float *r0, const float *r1, int n, uint16_t *dst)
{
    const __mmask16 k = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    const __m512 lo = _mm512_maskz_loadu_ps(k, r0);
    const __m512 hi = r1 ? _mm512_maskz_loadu_ps(k, r1) : _mm512_setzero_ps();
    /* [bf16(lo) 0..15 | bf16(hi) 0..15] -> lo0 hi0 lo1 hi1 ... */
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    _mm512_storeu_si512(dst, _mm512_permutexvar_epi16(idx, both));
}
#endif

kn_bf16_path kn_bf16_vector_path(kn_bf16_path p)
{
    return p == KN_BF16_AMX ? KN_BF16_AVX512 : p;
}

void kn_bf16_round(kn_bf16_path p, const float *x, int n, uint16_t *dst)
{
#ifdef KN__X86
    if (p == KN_BF16_AVX512 || p == KN_BF16_AMX) {
        kn__cvt_row_avx512(x, n, dst);
        return;
    }
#else
    (void)p;
#endif
    for (int k = 0; k < n; k++)
        dst[k] = kn__bf16(x[k]);
}

void kn_bf16_pair_rows(kn_bf16_path p, const float *r0, const float *r1, int n, uint16_t *dst)
{
#ifdef KN__X86
    if (p == KN_BF16_AVX512 || p == KN_BF16_AMX) {
        kn__pair_rows_avx512(r0, r1, n, dst);
        return;
    }
#else
    (void)p;
#endif
    for (int j = 0; j < 16; j++) {
        dst[2 * j] = j < n ? kn__bf16(r0[j]) : 0;
        dst[2 * j + 1] = j < n && r1 ? kn__bf16(r1[j]) : 0;
    }
}

void kn_bf16_tile(kn_bf16_path p, int m, int np, const uint16_t *a, int lda, const uint16_t *b0,
                  const uint16_t *b1, float *c, int ldc, int n, int acc)
{
    if (m <= 0 || n <= 0) return;
#ifdef KN__X86
    if (p == KN_BF16_AVX512 || p == KN_BF16_AMX) {
        kn__tile_avx512(m, np, a, lda, b0, b1, c, ldc, n, acc);
        return;
    }
#else
    (void)p;
#endif
    kn__tile_emu(m, np, a, lda, b0, b1, c, ldc, n, acc);
}

/* ---- the driver ------------------------------------------------------------------------------
 * Row blocks of MB rows: each thread rounds its block of x to bf16 (rows past M and columns
 * past K zero), then runs every 32 x 32 block of its column range, b's 32-column panel held
 * while the block's row strips pass. Every y element is one block call's sum in k order:
 * the numbers do not depend on M, on the row's neighbours or on the thread count. */
enum { KN__MB = 128 };

typedef struct {
    kn__block_fn block;
    int amx, vcvt;
} kn__kern;

static kn__kern kn__kern_of(kn_bf16_path path)
{
    kn__kern k = {.block = kn__block_emu};
#ifdef KN__X86
    if (path == KN_BF16_AMX) k.block = kn__block_amx, k.amx = 1;
    if (path == KN_BF16_AVX512) k.block = kn__block_avx512;
    k.vcvt = path != KN_BF16_EMU;
#else
    (void)path;
#endif
    return k;
}

/* bf16(src[0, K)) -> dst, zeros up to width */
static void kn__round_row(const kn__kern *kk, const float *src, int K, int width, uint16_t *dst)
{
#ifdef KN__X86
    if (kk->vcvt)
        kn__cvt_row_avx512(src, K, dst);
    else
#endif
        for (int k = 0; k < K; k++)
            dst[k] = kn__bf16(src[k]);
    memset(dst + K, 0, (size_t)(width - K) * sizeof *dst);
    (void)kk;
}

/* rows [0, mb) of x (row stride K) -> a (row stride Kp: zeros past K), rows [mb, mbp) zero */
static void kn__round_rows(const kn__kern *kk, const float *x, int K, int Kp, int mb, int mbp,
                           uint16_t *a)
{
    for (int i = 0; i < mbp; i++)
        if (i < mb)
            kn__round_row(kk, x + (size_t)i * K, K, Kp, a + (size_t)i * Kp);
        else
            memset(a + (size_t)i * Kp, 0, (size_t)Kp * sizeof *a);
}

/* Column panel jp (32 columns from j0 = 32 jp, n of them real) of a's mb rows (row stride
 * Kp, zero rows up to a multiple of 32) times pw: y (its column j0, row stride ldy) = the
 * sums + bias (its column j0; may be NULL). cb: a 32 x 32 float scratch block. */
static void kn__run_panel(const kn_gemm_bf16 *pw, const kn__kern *kk, int jp, const uint16_t *a,
                          int mb, const float *bias, float *y, int ldy, float *cb)
{
    const int Kp = pw->Kp;
    const uint16_t *b0 = pw->b + (size_t)(2 * jp) * Kp * 16, *b1 = b0 + (size_t)Kp * 16;
    const int n = pw->N - jp * 32 < 32 ? pw->N - jp * 32 : 32;
#ifdef KN__X86
    if (pw->path == KN_BF16_AVX512) {
        kn__panel_avx512(mb, a, Kp, b0, b1, Kp, y, ldy, n, bias);
        return;
    }
#endif
    for (int i0 = 0; i0 < mb; i0 += 32) {
        kk->block(a + (size_t)i0 * Kp, Kp, b0, b1, Kp, cb);
        const int m = mb - i0 < 32 ? mb - i0 : 32;
        for (int i = 0; i < m; i++) {
            float *yi = y + (size_t)(i0 + i) * ldy;
            const float *ci = cb + i * 32;
            if (bias)
                for (int j = 0; j < n; j++)
                    yi[j] = ci[j] + bias[j];
            else
                memcpy(yi, ci, (size_t)n * sizeof *yi);
        }
    }
}

int kn_gemm_bf16_run(const kn_gemm_bf16 *pw, const float *x, int M, const float *bias, float *y)
{
    if (M <= 0) return 0;
    const int N = pw->N, K = pw->K, Kp = pw->Kp, Np = pw->Np;
    const kn__kern kk = kn__kern_of(pw->path);
    const int nmb = (M + KN__MB - 1) / KN__MB, npanels = Np / 32;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    int nch = (4 * threads + nmb - 1) / nmb;
    if (nch > npanels) nch = npanels;
    if (nch < 1) nch = 1;
    const long items = (long)nmb * nch;
    const int par = items > 1 && (double)M * N * K >= (double)(1 << 21);
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (par)
    {
        const int mb_max = M < KN__MB ? (M + 31) / 32 * 32 : KN__MB;
        uint16_t *abuf = aligned_alloc(64, (size_t)mb_max * Kp * sizeof(uint16_t));
        float *cb = aligned_alloc(64, 32 * 32 * sizeof(float));
        if (!abuf || !cb) failed = 1;
#ifdef KN__X86
        if (kk.amx && !failed) kn__amx_config();
#endif
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            if (failed) continue;
            const int r0 = (int)(it / nch) * KN__MB, ch = (int)(it % nch);
            const int mb = M - r0 < KN__MB ? M - r0 : KN__MB, mbp = (mb + 31) / 32 * 32;
            const int jp0 = (int)((long)npanels * ch / nch),
                      jp1 = (int)((long)npanels * (ch + 1) / nch);
            kn__round_rows(&kk, x + (size_t)r0 * K, K, Kp, mb, mbp, abuf);
            for (int jp = jp0; jp < jp1; jp++)
                kn__run_panel(pw, &kk, jp, abuf, mb, bias ? bias + jp * 32 : NULL,
                              y + (size_t)r0 * N + jp * 32, N, cb);
        }
#ifdef KN__X86
        if (kk.amx && abuf && cb) kn__amx_release();
#endif
        free(abuf);
        free(cb);
    }
    return failed ? -1 : 0;
}

/* ---- the feed-forward block, fused ------------------------------------------------------------
 * Per row block of FB rows, on one thread: the block's x rounded once, w1's panels into a
 * 32-column float tile, bias and act on each tile row, the row rounded to bfloat16 into the
 * block's inner rows h (row stride w2->Kp, zeros past w1->N), then w2's panels from h into y.
 * The same sums, the same act on the same floats and the same rounding as kn_gemm_bf16_run,
 * act, kn_gemm_bf16_run (kn_bf16_round = kn__cvt_row_avx512 on vector paths): bit for bit,
 * without the (M, w1->N) float buffer's trips through memory. */
int kn_gemm_bf16_ffn(const kn_gemm_bf16 *w1, const kn_gemm_bf16 *w2, const float *x, int M,
                     const float *b1, const float *b2, void (*act)(float *, size_t), float *y)
{
    if (w1->path != w2->path || w2->K != w1->N || w2->Kp != w1->Np) return -2;
    if (M <= 0) return 0;
    const int K1 = w1->K, Kp1 = w1->Kp, I = w1->N, Ip = w2->Kp, N2 = w2->N;
    const kn__kern kk = kn__kern_of(w1->path);
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* 64-row blocks keep h (64 x 3072 bf16: 384 KiB) in L2; 32 rows when that leaves
     * threads idle */
    const int fb = M >= 128 * threads ? 64 : 32;
    const int items = (M + fb - 1) / fb;
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (items > 1 && threads > 1)
    {
        uint16_t *abuf = aligned_alloc(64, (size_t)fb * Kp1 * sizeof(uint16_t));
        uint16_t *h = aligned_alloc(64, (size_t)fb * Ip * sizeof(uint16_t));
        float *tile = aligned_alloc(64, (size_t)fb * 32 * sizeof(float));
        float *cb = aligned_alloc(64, 32 * 32 * sizeof(float));
        if (!abuf || !h || !tile || !cb) failed = 1;
#ifdef KN__X86
        if (kk.amx && !failed) kn__amx_config();
#endif
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < items; it++) {
            if (failed) continue;
            const int r0 = it * fb, mb = M - r0 < fb ? M - r0 : fb, mbp = (mb + 31) / 32 * 32;
            kn__round_rows(&kk, x + (size_t)r0 * K1, K1, Kp1, mb, mbp, abuf);
            for (int jp = 0; jp < w1->Np / 32; jp++) {
                const int j0 = jp * 32, n = I - j0 < 32 ? I - j0 : 32;
                kn__run_panel(w1, &kk, jp, abuf, mb, b1 ? b1 + j0 : NULL, tile, 32, cb);
                if (n == 32) /* the tile's rows are contiguous: one call */
                    act(tile, (size_t)mb * 32);
                for (int i = 0; i < mbp; i++) {
                    uint16_t *hi = h + (size_t)i * Ip + j0;
                    if (i >= mb) {
                        memset(hi, 0, 32 * sizeof *hi);
                        continue;
                    }
                    float *ti = tile + (size_t)i * 32;
                    if (n < 32) act(ti, (size_t)n);
                    kn__round_row(&kk, ti, n, 32, hi);
                }
            }
            for (int jp = 0; jp < w2->Np / 32; jp++)
                kn__run_panel(w2, &kk, jp, h, mb, b2 ? b2 + jp * 32 : NULL,
                              y + (size_t)r0 * N2 + jp * 32, N2, cb);
        }
#ifdef KN__X86
        if (kk.amx && abuf && h && tile && cb) kn__amx_release();
#endif
        free(abuf);
        free(h);
        free(tile);
        free(cb);
    }
    return failed ? -1 : 0;
}
