/* Random data and the relative error the kernel parity tests share (test_kernels.c for the CPU
 * tables, test_cuda_parity.c for the CUDA table): one xorshift stream per test program, and
 * (after kernels.h) a linear call the way the engine makes it. */
#ifndef LS_KNTEST_H
#define LS_KNTEST_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 88172645463325252ull;

/* uniform in [0, 1) */
static inline double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* n floats uniform in [-scale, scale) (malloc'd; at least one element) */
static inline float *randv(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((urand() * 2 - 1) * scale);
    return v;
}

/* max |a-b| / max |b| over n values; a NaN anywhere is infinite */
static inline double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

#ifdef KN_KERNELS_H
/* One linear call through table o, with w prepared and released as the engine does. */
static inline void lin(const kn_ops *o, const float *x, const float *w, const float *b, float *y,
                       int M, int N, int K, const int32_t *groups, int ng)
{
    kn_weight wt = {w, N, K, NULL};
    if (o->weight_prepare) ck_assert_int_eq(o->weight_prepare(&wt), 0);
    o->linear(x, &wt, b, y, M, N, K, groups, ng);
    if (o->weight_release) o->weight_release(&wt);
}
#endif

#endif
