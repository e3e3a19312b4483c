/* Vectorisable float math for the CPU backend: exp by range reduction and a degree-7
 * polynomial (≤2 ulp on the range used), erfc after Numerical Recipes' Chebyshev fit
 * (fractional error < 1.2e-7), and the row kernels built on them, with no libm calls;
 * target_clones builds AVX-512 and AVX2 versions chosen at load time. */
#ifndef KN_VMATH_H
#define KN_VMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* a * b + c contracted into FMAs where the target has them: GCC in ISO C mode does not by
 * itself (optimize attribute); clang contracts within an expression by default and knows no
 * optimize attribute */
#if defined(__clang__)
#define KN_FP_CONTRACT
#else
#define KN_FP_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) &&                  \
    !defined(__SANITIZE_THREAD__)
#define KN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KN_CLONES
#endif

/* exp(x) for float x; exactly 0 below -87 (so -INFINITY gives 0), clamped above 88. */
static inline float kn__expf(float x)
{
    const float hi = 88.0f, lo = -87.0f;
    float xc = x > hi ? hi : (x < lo ? lo : x);
    float t = xc * 1.44269504088896341f + 12582912.0f; /* round to nearest via 1.5*2^23 */
    float n = t - 12582912.0f;
    float r = xc - n * 0.693145751953125f; /* ln2 split in two for an exact product */
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float sc;
    memcpy(&sc, &e, sizeof sc);
    return x < lo ? 0.0f : p * sc;
}

/* ---- vector versions ---------------------------------------------------------------------
 * GCC's if-conversion gives up on the clamps above (jump threading turns them into
 * control flow), so the hot loops use vector extensions directly: the same arithmetic,
 * 8 or 16 lanes at a time, with selects instead of branches. Each target_clones version
 * lowers them to its ISA (8 lanes: one AVX register, or two SSE ones). */
/* the helpers are always_inline: at -O0 a real call from a target("avx2") function would
 * pass 32-byte vectors in another ABI than the callee expects (window attention computed
 * garbage in debug builds until they were) */
#pragma GCC diagnostic ignored "-Wpsabi"
/* The helpers for one vector width W (SUF names them: kn__vexpf for 8 lanes, kn__vexpf16
 * for 16); every lane computes the same arithmetic whatever the width, so an element's
 * value does not depend on the width that computed it. */
#define KN__VMATH_WIDTH(W, SUF)                                                                    \
    typedef float kn_v##W##f __attribute__((vector_size(4 * (W)), aligned(4)));                    \
    typedef int32_t kn_v##W##i __attribute__((vector_size(4 * (W)), aligned(4)));                  \
                                                                                                   \
    /* m ? a : b, lane-wise */                                                                     \
    static inline __attribute__((always_inline))                                                   \
    kn_v##W##f kn__vsel##SUF(kn_v##W##i m, kn_v##W##f a, kn_v##W##f b)                             \
    {                                                                                              \
        return (kn_v##W##f)(((kn_v##W##i)a & m) | ((kn_v##W##i)b & ~m));                           \
    }                                                                                              \
                                                                                                   \
    static inline __attribute__((always_inline)) kn_v##W##f kn__vsplat##SUF(float v)               \
    {                                                                                              \
        return v - (kn_v##W##f){0}; /* x - (+0) is x, -0 included */                               \
    }                                                                                              \
                                                                                                   \
    static inline __attribute__((always_inline)) kn_v##W##f kn__vexpf##SUF(kn_v##W##f x)           \
    {                                                                                              \
        const kn_v##W##f hi = kn__vsplat##SUF(88.0f), lo = kn__vsplat##SUF(-87.0f);                \
        kn_v##W##f xc = kn__vsel##SUF(x > hi, hi, x);                                              \
        xc = kn__vsel##SUF(xc < lo, lo, xc);                                                       \
        kn_v##W##f t = xc * 1.44269504088896341f + 12582912.0f;                                    \
        kn_v##W##f n = t - 12582912.0f;                                                            \
        kn_v##W##f r = xc - n * 0.693145751953125f;                                                \
        r = r - n * 1.428606765330187045e-06f;                                                     \
        kn_v##W##f p = kn__vsplat##SUF(1.0f / 5040.0f);                                            \
        p = p * r + 1.0f / 720.0f;                                                                 \
        p = p * r + 1.0f / 120.0f;                                                                 \
        p = p * r + 1.0f / 24.0f;                                                                  \
        p = p * r + 1.0f / 6.0f;                                                                   \
        p = p * r + 0.5f;                                                                          \
        p = p * r + 1.0f;                                                                          \
        p = p * r + 1.0f;                                                                          \
        kn_v##W##i e = (__builtin_convertvector(n, kn_v##W##i) + 127) << 23;                       \
        return kn__vsel##SUF(x < lo, kn__vsplat##SUF(0.0f), p * (kn_v##W##f)e);                    \
    }                                                                                              \
                                                                                                   \
    static inline __attribute__((always_inline)) kn_v##W##f kn__verfcf##SUF(kn_v##W##f x)          \
    {                                                                                              \
        kn_v##W##f z = (kn_v##W##f)((kn_v##W##i)x & 0x7fffffff);                                   \
        kn_v##W##f t = 1.0f / (1.0f + 0.5f * z);                                                   \
        kn_v##W##f p = kn__vsplat##SUF(0.17087277f);                                               \
        p = p * t - 0.82215223f;                                                                   \
        p = p * t + 1.48851587f;                                                                   \
        p = p * t - 1.13520398f;                                                                   \
        p = p * t + 0.27886807f;                                                                   \
        p = p * t - 0.18628806f;                                                                   \
        p = p * t + 0.09678418f;                                                                   \
        p = p * t + 0.37409196f;                                                                   \
        p = p * t + 1.00002368f;                                                                   \
        p = p * t - 1.26551223f;                                                                   \
        kn_v##W##f ans = t * kn__vexpf##SUF(-z * z + p);                                           \
        return kn__vsel##SUF(x >= 0.0f, ans, 2.0f - ans);                                          \
    }                                                                                              \
                                                                                                   \
    /* 0.5·x·erfc(−x/√2) */                                                                  \
    static inline __attribute__((always_inline)) kn_v##W##f kn__vgelu##SUF(kn_v##W##f v)           \
    {                                                                                              \
        return 0.5f * v * kn__verfcf##SUF(-v * 0.70710678118654752f);                              \
    }

KN__VMATH_WIDTH(8, )
KN__VMATH_WIDTH(16, 16)

/* Exact-erf GELU, 0.5·x·(1+erf(x/√2)) = 0.5·x·erfc(−x/√2), over n floats in place, 16
 * lanes at a time (one AVX-512 register, two AVX2 ones); the last 1..15 go through the
 * same vector code, so an element's value does not depend on where in the buffer it sits
 * (a row's GELU is the same alone or in a batch). The polynomials' a·b + c contract into
 * FMAs where the clone has them (ISO C mode does not contract by itself): the AVX-512 clone
 * 1.25 -> 0.80 ns per element on a Zen 4 core. */
KN_CLONES KN_FP_CONTRACT static void kn__gelu_block(float *x, size_t n)
{
    size_t i = 0;
    kn_v16f v;
    for (; i + 16 <= n; i += 16) {
        memcpy(&v, x + i, sizeof v);
        v = kn__vgelu16(v);
        memcpy(x + i, &v, sizeof v);
    }
    if (i < n) {
        v = kn__vsplat16(0.0f);
        memcpy(&v, x + i, (n - i) * sizeof(float));
        v = kn__vgelu16(v);
        memcpy(x + i, &v, (n - i) * sizeof(float));
    }
}

/* exp(x) for x <= 0 (attention scores less their row's maximum): the range reduction
 * and a degree-6 Taylor polynomial on |r| <= ln2/2 (truncation below 9e-8 relative), no
 * upper clamp; exactly 0 below -87 and for -INFINITY. */
static inline __attribute__((always_inline)) kn_v8f kn__vexpf_neg(kn_v8f x)
{
    const kn_v8f lo = kn__vsplat(-87.0f);
    const kn_v8i small = x < lo;
    const kn_v8f xc = kn__vsel(small, lo, x);
    kn_v8f n = xc * 1.44269504088896341f + 12582912.0f;
    n = n - 12582912.0f;
    kn_v8f r = xc - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    kn_v8f p = kn__vsplat(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    kn_v8i e = (__builtin_convertvector(n, kn_v8i) + 127) << 23;
    return (kn_v8f)((kn_v8i)(p * (kn_v8f)e) & ~small);
}

/* One attention row, in place: the kept window scores x[c] + bias[c], c in [lo, hi) (bias
 * 0, or -INFINITY for padding and global keys; bias NULL: all 0), and the nh global-key
 * scores head[] become exp(score - max); x outside [lo, hi) becomes 0; returns the sum of
 * the exps (the caller divides the output row by it). At least one kept score must be
 * finite. Defined once, instantiated per ISA by the caller with its target attributes
 * (the same source and 8-wide arithmetic on every x86 path, so AVX-512 and AVX2 rows agree
 * bit for bit where both contract a * b + c into an FMA). */
#define KN__ATTN_ROW(NAME, ATTR)                                                                   \
    ATTR static float NAME(float *head, int nh, float *x, const float *bias, int lo, int hi,       \
                           int n)                                                                  \
    {                                                                                              \
        float mx = -INFINITY, sum = 0.0f;                                                          \
        for (int k = 0; k < nh; k++)                                                               \
            mx = head[k] > mx ? head[k] : mx;                                                      \
        kn_v8f vmx = kn__vsplat(mx), vsum = kn__vsplat(0.0f);                                      \
        int i = lo;                                                                                \
        if (bias) {                                                                                \
            for (; i + 8 <= hi; i += 8) {                                                          \
                kn_v8f v = *(const kn_v8f *)(x + i) + *(const kn_v8f *)(bias + i);                 \
                *(kn_v8f *)(x + i) = v;                                                            \
                vmx = kn__vsel(v > vmx, v, vmx);                                                   \
            }                                                                                      \
            for (int k = i; k < hi; k++)                                                           \
                x[k] += bias[k];                                                                   \
        } else {                                                                                   \
            for (; i + 8 <= hi; i += 8) {                                                          \
                kn_v8f v = *(const kn_v8f *)(x + i);                                               \
                vmx = kn__vsel(v > vmx, v, vmx);                                                   \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < 8; k++)                                                                \
            mx = vmx[k] > mx ? vmx[k] : mx;                                                        \
        for (int k = i; k < hi; k++)                                                               \
            mx = x[k] > mx ? x[k] : mx;                                                            \
        const kn_v8f vm = kn__vsplat(mx);                                                          \
        for (int k0 = 0; k0 < nh; k0 += 8) { /* lanes past nh count zero */                        \
            kn_v8f v = kn__vsplat(-INFINITY);                                                      \
            for (int k = k0; k < nh && k < k0 + 8; k++)                                            \
                v[k - k0] = head[k];                                                               \
            v = kn__vexpf_neg(v - vm);                                                             \
            for (int k = k0; k < nh && k < k0 + 8; k++)                                            \
                head[k] = v[k - k0];                                                               \
            vsum += v;                                                                             \
        }                                                                                          \
        for (int c = 0; c < lo; c++)                                                               \
            x[c] = 0.0f;                                                                           \
        for (i = lo; i + 8 <= hi; i += 8) {                                                        \
            kn_v8f v = kn__vexpf_neg(*(const kn_v8f *)(x + i) - vm);                               \
            vsum += v;                                                                             \
            *(kn_v8f *)(x + i) = v;                                                                \
        }                                                                                          \
        if (i < hi) { /* the last 1..7: the same exps, lanes past hi count zero */                 \
            kn_v8f v = kn__vsplat(-INFINITY);                                                      \
            for (int k = i; k < hi; k++)                                                           \
                v[k - i] = x[k];                                                                   \
            v = kn__vexpf_neg(v - vm);                                                             \
            for (int k = i; k < hi; k++)                                                           \
                x[k] = v[k - i];                                                                   \
            vsum += v;                                                                             \
        }                                                                                          \
        for (int k = 0; k < 8; k++)                                                                \
            sum += vsum[k];                                                                        \
        for (int c = hi; c < n; c++)                                                               \
            x[c] = 0.0f;                                                                           \
        return sum;                                                                                \
    }

/* In-place softmax over n scores; -INFINITY entries become exactly 0. At least one
 * entry must be finite. */
KN_CLONES static void kn__softmax_row(float *x, int n)
{
    kn_v8f vmx = kn__vsplat(-INFINITY), vsum = kn__vsplat(0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        kn_v8f v;
        memcpy(&v, x + i, sizeof v);
        vmx = kn__vsel(v > vmx, v, vmx);
    }
    float mx = -INFINITY, sum = 0.0f;
    for (int k = 0; k < 8; k++)
        mx = vmx[k] > mx ? vmx[k] : mx;
    for (int k = i; k < n; k++)
        mx = x[k] > mx ? x[k] : mx;
    for (i = 0; i + 8 <= n; i += 8) {
        kn_v8f v;
        memcpy(&v, x + i, sizeof v);
        v = kn__vexpf(v - mx);
        vsum += v;
        memcpy(x + i, &v, sizeof v);
    }
    for (int k = 0; k < 8; k++)
        sum += vsum[k];
    for (int k = i; k < n; k++) {
        x[k] = kn__expf(x[k] - mx);
        sum += x[k];
    }
    float inv = 1.0f / sum;
    for (i = 0; i + 8 <= n; i += 8) {
        kn_v8f v;
        memcpy(&v, x + i, sizeof v);
        v *= inv;
        memcpy(x + i, &v, sizeof v);
    }
    for (int k = i; k < n; k++)
        x[k] *= inv;
}

#endif
