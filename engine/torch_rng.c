/* torch's CPU generator (MT19937, torch/csrc and ATen CPUGeneratorImpl) and the float32
 * torch.randn kernels of ATen/native/cpu/DistributionTemplates.h, reproduced to the bit
 * so the engine can draw the LSH rotations of hf-semantics §B12. */
#include "torch_rng.h"

#include <math.h>
#include <string.h>

/* ---- MT19937 (std::mt19937) ------------------------------------------------------------ */

#define MT_M 397
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu
#define MT_MATRIX 0x9908b0dfu

void eng_mt_seed(eng_mt19937 *st, uint64_t seed)
{
    st->s[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < ENG_MT_N; j++)
        st->s[j] = 1812433253u * (st->s[j - 1] ^ (st->s[j - 1] >> 30)) + j;
    st->i = ENG_MT_N;
    st->has_normal = 0;
    st->normal = 0;
}

static void mt_twist(eng_mt19937 *st)
{
    uint32_t *s = st->s;
    for (int k = 0; k < ENG_MT_N; k++) {
        uint32_t y = (s[k] & MT_UPPER) | (s[(k + 1) % ENG_MT_N] & MT_LOWER);
        s[k] = s[(k + MT_M) % ENG_MT_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX : 0u);
    }
    st->i = 0;
}

uint32_t eng_mt_next(eng_mt19937 *st)
{
    if (st->i >= ENG_MT_N) mt_twist(st);
    uint32_t y = st->s[st->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* at::uniform_real_distribution<float>(0, 1): the low 24 bits of one draw. */
static float uniform_f32(eng_mt19937 *st)
{
    return (float)(eng_mt_next(st) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* at::uniform_real_distribution<double>(0, 1): random64() = (first << 32) | second, low
 * 53 bits. */
static double uniform_f64(eng_mt19937 *st)
{
    uint64_t hi = eng_mt_next(st), lo = eng_mt_next(st);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* ---- the AVX2 kernel: avx_mathfun.h's log256_ps and sincos256_ps, one lane --------------- */

/* torch's wheel is built by GCC with -mfma and contraction on, so every multiply whose only
 * use is an add became one fused multiply-add: the first such multiply in source order wins
 * (in `y*z + e*q1` it is y*z). Each fmaf below is one of those; without them 1 % of the
 * values differ by up to 3 ulp. */
#define MADD(a, b, c) fmaf((a), (b), (c))

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* log256_ps for x > 0 (u1 = 1 - u lies in (0, 1]). */
static inline __attribute__((always_inline)) float cephes_logf(float x)
{
    if (x < 1.17549435e-38f) x = 1.17549435e-38f; /* _mm256_max_ps(x, min_norm_pos) */
    int32_t ei = (int32_t)(f2u(x) >> 23) - 0x7f;
    x = u2f((f2u(x) & ~0x7f800000u) | f2u(0.5f));
    float e = (float)ei + 1.0f;
    int lt = x < 0.707106781186547524f;
    float tmp = lt ? x : 0.0f;
    x = x - 1.0f;
    e = e - (lt ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = 7.0376836292E-2f;
    y = MADD(y, x, -1.1514610310E-1f);
    y = MADD(y, x, 1.1676998740E-1f);
    y = MADD(y, x, -1.2420140846E-1f);
    y = MADD(y, x, +1.4249322787E-1f);
    y = MADD(y, x, -1.6668057665E-1f);
    y = MADD(y, x, +2.0000714765E-1f);
    y = MADD(y, x, -2.4999993993E-1f);
    y = MADD(y, x, +3.3333331174E-1f);
    y = y * x;
    y = MADD(y, z, e * -2.12194440e-4f);
    y = MADD(-z, 0.5f, y);
    x = x + y;
    x = MADD(e, 0.693359375f, x);
    return x;
}

/* sincos256_ps for x >= 0 (theta = 2*pi*u lies in [0, 2*pi)). */
static inline __attribute__((always_inline)) void cephes_sincosf(float x, float *s, float *c)
{
    float y = x * 1.27323954473516f; /* 4 / pi */
    int32_t j = (int32_t)y;          /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    int sin_neg = (j & 4) != 0;
    int cos_neg = ((~(j - 2)) & 4) != 0;
    int use_sin_poly = (j & 2) == 0; /* poly_mask: the sine polynomial gives the sine */
    x = MADD(y, -0.78515625f, x);
    x = MADD(y, -2.4187564849853515625e-4f, x);
    x = MADD(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = 2.443315711809948E-005f;
    yc = MADD(yc, z, -1.388731625493765E-003f);
    yc = MADD(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = MADD(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = -1.9515295891E-4f;
    ys = MADD(ys, z, 8.3321608736E-3f);
    ys = MADD(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = MADD(ys, x, x);
    float sv = use_sin_poly ? ys : yc;
    float cv = use_sin_poly ? yc : ys;
    *s = sin_neg ? -sv : sv;
    *c = cos_neg ? -cv : cv;
}

#define FILL16_AVX2_BODY                                                                           \
    const float two_pi = (float)(2.0f * 3.14159265358979323846);                                   \
    for (int j = 0; j < 8; j++) {                                                                  \
        float u1 = 1.0f - d[j], u2 = d[j + 8];                                                     \
        float radius = sqrtf(-2.0f * cephes_logf(u1));                                             \
        float s, c;                                                                                \
        cephes_sincosf(two_pi *u2, &s, &c);                                                        \
        d[j] = radius * c + 0.0f; /* fmadd(n, std 1, mean 0): -0 becomes +0 */                     \
        d[j + 8] = radius * s + 0.0f;                                                              \
    }

static void fill16_avx2(float *d)
{
    FILL16_AVX2_BODY
}

#if defined(__x86_64__) || defined(__i386__)
/* The same on a CPU with FMA: fmaf (correctly rounded either way) becomes the instruction
 * instead of a libm call, the same bits at twice the speed (-std=c11 keeps every other
 * multiply-add unfused: contraction is off in ISO C mode). */
__attribute__((target("fma"))) static void fill16_avx2_fma(float *d)
{
    FILL16_AVX2_BODY
}
#endif

/* ---- the scalar kernel (DEFAULT and AVX512 capabilities) -------------------------------- */

static void fill16_scalar(float *d)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0f * 3.14159265358979323846 * (double)u2);
        d[j] = radius * cosf(theta) + 0.0f;
        d[j + 8] = radius * sinf(theta) + 0.0f;
    }
}

/* ---- torch.randn ------------------------------------------------------------------------- */

/* at::normal_distribution<double>: u1 feeds the angle, u2 the radius; the sine is cached. */
static double normal_f64(eng_mt19937 *st)
{
    if (st->has_normal) {
        st->has_normal = 0;
        return st->normal;
    }
    double u1 = uniform_f64(st), u2 = uniform_f64(st);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    st->normal = r * sin(theta);
    st->has_normal = 1;
    return r * cos(theta);
}

void eng_torch_randn_next(eng_mt19937 *st, float *out, size_t n, eng_randn_path path)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)normal_f64(st);
        return;
    }
    void (*fill16)(float *) = path == ENG_RANDN_PATH_AVX2 ? fill16_avx2 : fill16_scalar;
#if defined(__x86_64__) || defined(__i386__)
    if (path == ENG_RANDN_PATH_AVX2 && __builtin_cpu_supports("fma")) fill16 = fill16_avx2_fma;
#endif
    for (size_t i = 0; i < n; i++)
        out[i] = uniform_f32(st);
    for (size_t i = 0; i + 16 <= n; i += 16)
        fill16(out + i);
    if (n % 16 != 0) {
        /* torch redraws the last 16 slots and transforms them again */
        float *tail = out + n - 16;
        for (int j = 0; j < 16; j++)
            tail[j] = uniform_f32(st);
        fill16(tail);
    }
}

void eng_torch_randn(uint64_t seed, float *out, size_t n)
{
    eng_mt19937 st;
    eng_mt_seed(&st, seed);
    eng_torch_randn_next(&st, out, n, ENG_RANDN_PATH_AVX2);
}
