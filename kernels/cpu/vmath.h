/* Vectorisable float math for the CPU backend: exp by range reduction and a degree-7
 * polynomial (≤2 ulp on the range used), erfc after Numerical Recipes' Chebyshev fit
 * (fractional error < 1.2e-7), and the row kernels built on them. Written without
 * branches or libm calls so the compiler vectorises the loops; target_clones builds
 * AVX-512 and AVX2 versions chosen at load time. */
#ifndef KN_VMATH_H
#define KN_VMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __clang__ /* clang warns when a `omp simd` loop is not vectorised; the result is right either way */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) &&           \
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

/* erfc(x), fractional error < 1.2e-7 for all x. */
static inline float kn__erfcf(float x)
{
    float z = fabsf(x);
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float ans = t * kn__expf(-z * z + p);
    return x >= 0 ? ans : 2.0f - ans;
}

/* Exact-erf GELU, 0.5·x·(1+erf(x/√2)) = 0.5·x·erfc(−x/√2), over n floats in place. */
KN_CLONES static void kn__gelu_block(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * kn__erfcf(-x[i] * 0.70710678118654752f);
}

/* In-place softmax over n scores; -INFINITY entries become exactly 0. At least one
 * entry must be finite. */
KN_CLONES static void kn__softmax_row(float *x, int n)
{
    float mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) {
        float e = kn__expf(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= inv;
}

#endif
