/* bench_peak — the machine's arithmetic peak, the ceiling the GEMM rates read against:
 * per thread, independent accumulator chains of one multiply-add instruction in registers
 * (16 zmm, 12 ymm: AVX2 has 16 registers and x takes one)
 * (no loads), on every thread at once; GFLOP/s for ymm FMA (AVX2), zmm FMA (AVX-512) and zmm
 * VDPBF16PS (AVX512_BF16), each where cpuid has it. x86 only (elsewhere it says so). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "../kernels/cpu/gemm.h"
#include "../kernels/cpu/gemm_bf16.h"
#include "benchutil.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Each returns a sum of its accumulators, so the loop is not dead code; the empty asm on x
 * each turn keeps the compiler from hoisting the products out of the loop. */
#define PEAK_LOOP(NAME, ATTR, VT, ZERO, STEP, CH)                                                  \
    ATTR static double NAME(long n)                                                                \
    {                                                                                              \
        VT a[CH];                                                                                  \
        for (int i = 0; i < CH; i++)                                                               \
            a[i] = ZERO;                                                                           \
        VT x = ZERO;                                                                               \
        for (long k = 0; k < n; k++) {                                                             \
            for (int i = 0; i < CH; i++)                                                           \
                a[i] = STEP;                                                                       \
            __asm__ volatile("" : "+v"(x));                                                        \
        }                                                                                          \
        float s[sizeof(VT) / 4], t = 0;                                                            \
        for (int i = 0; i < CH; i++) {                                                             \
            memcpy(s, &a[i], sizeof s);                                                            \
            for (size_t j = 0; j < sizeof s / sizeof *s; j++)                                      \
                t += s[j];                                                                         \
        }                                                                                          \
        return t;                                                                                  \
    }

PEAK_LOOP(peak_fma256, __attribute__((target("avx2,fma"))), __m256, _mm256_setzero_ps(),
          _mm256_fmadd_ps(x, x, a[i]), 12)
PEAK_LOOP(peak_fma512, __attribute__((target("avx512f"))), __m512, _mm512_setzero_ps(),
          _mm512_fmadd_ps(x, x, a[i]), 16)
PEAK_LOOP(peak_dpbf16, __attribute__((target("avx512f,avx512bf16"))), __m512, _mm512_setzero_ps(),
          _mm512_dpbf16_ps(a[i], (__m512bh)x, (__m512bh)x), 16)

typedef struct {
    const char *name;
    double (*fn)(long);
    double flops_per_insn; /* per instruction: lanes x 2, VDPBF16PS two products per lane */
    int chains;
    int ok;
} peak_kind;

int main(int argc, char **argv)
{
    int threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (bench_parse_int("--threads", argv[++i], 1, 1024, &threads)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) {
            if (bench_parse_int("--reps", argv[++i], 1, 100, &reps)) return 2;
        } else {
            fprintf(stderr, "usage: bench_peak [--threads 2] [--reps 3]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    peak_kind k[] = {
        {"fma-ymm", peak_fma256, 16, 12, kn_isa_supported(KN_ISA_AVX2)},
        {"fma-zmm", peak_fma512, 32, 16, kn_isa_supported(KN_ISA_AVX512)},
        {"dpbf16-zmm", peak_dpbf16, 64, 16, kn_bf16_supported(KN_BF16_AVX512)},
    };
    const long n = 25000000; /* 12-16 instructions each: ~0.1-0.4 s per run */
    printf("# %d threads, 12 (ymm) or 16 (zmm) register chains each, best of %d\n", threads, reps);
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        if (!k[i].ok) {
            printf("RESULT peak kind=%s gflops=n/a (not on this CPU)\n", k[i].name);
            continue;
        }
        double best = 0, sink = 0;
        for (int r = 0; r < reps; r++) {
            const double t0 = bench_now_s(CLOCK_MONOTONIC);
#pragma omp parallel reduction(+ : sink)
            sink += k[i].fn(n);
            const double t = bench_now_s(CLOCK_MONOTONIC) - t0;
            const double rate = threads * (double)n * k[i].chains * k[i].flops_per_insn / t * 1e-9;
            if (rate > best) best = rate;
        }
        printf("RESULT peak kind=%s gflops=%.1f threads=%d%s\n", k[i].name, best, threads,
               sink == 12345.0 ? " " : "");
    }
    return 0;
}
#else
int main(void)
{
    printf("bench_peak: x86-64 only\n");
    return 0;
}
#endif
