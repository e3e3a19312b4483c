/* torch's CPU random stream in C: MT19937 and torch.randn's float32 Box-Muller, so the
 * engine can draw the LSH rotations Hugging Face draws after torch.manual_seed(seed)
 * (shared/reference/hf-semantics.md §B12, §B5.10).
 *
 *     float rot[12288];
 *     eng_torch_randn(5, rot, 12288);        // == torch.manual_seed(5); torch.randn(12288)
 *
 *     eng_mt19937 st;                         // hash_seed None: one stream, consecutive draws
 *     eng_mt_seed(&st, 5);                    // torch.manual_seed(5)
 *     eng_torch_randn_next(&st, a, 12288, ENG_RANDN_PATH_AVX2);   // a = torch.randn(12288)
 *     eng_torch_randn_next(&st, b, 12288, ENG_RANDN_PATH_AVX2);   // b = torch.randn(12288)
 */
#ifndef LS_ENGINE_TORCH_RNG_H
#define LS_ENGINE_TORCH_RNG_H

#include <stddef.h>
#include <stdint.h>

#define ENG_MT_N 624

/* The CPU generator's whole state: MT19937 plus the cached second Box-Muller sample of
 * torch's n < 16 path (torch.manual_seed clears it; n >= 16 draws neither read nor clear
 * it). */
typedef struct eng_mt19937 {
    uint32_t s[ENG_MT_N];
    int i;          /* next word of s to temper; ENG_MT_N: twist first */
    int has_normal; /* a cached double normal sample is pending */
    double normal;
} eng_mt19937;

/* Which of torch's float32 Box-Muller kernels to reproduce for n >= 16. torch picks one by
 * the CPU capability it runs with (torch.backends.cpu.get_cpu_capability()):
 * ENG_RANDN_PATH_AVX2 is "AVX2" (Cephes log/sincos from avx_mathfun.h, float 2*pi);
 * ENG_RANDN_PATH_SCALAR is "DEFAULT" and "AVX512" (libm logf/cosf/sinf, theta rounded from
 * double). The two disagree on about 40 % of the values by more than 2 ulp. */
typedef enum eng_randn_path {
    ENG_RANDN_PATH_AVX2,
    ENG_RANDN_PATH_SCALAR,
} eng_randn_path;

/* torch.manual_seed(seed): MT19937 seeded with the low 32 bits, no cached sample. */
void eng_mt_seed(eng_mt19937 *st, uint64_t seed);
/* One raw 32-bit MT19937 output (std::mt19937). */
uint32_t eng_mt_next(eng_mt19937 *st);

/* torch.randn(n) (float32, CPU, contiguous) from the generator's current state. n >= 16:
 * torch's vectorised fill, by `path`; n < 16: torch's double-precision per-element path
 * (same for every path), which consumes and leaves the cached sample like torch. */
void eng_torch_randn_next(eng_mt19937 *st, float *out, size_t n, eng_randn_path path);

/* torch.manual_seed(seed); torch.randn(n) on a CPU whose torch capability is AVX2 (the
 * machine that wrote tests/fixtures/reformer). */
void eng_torch_randn(uint64_t seed, float *out, size_t n);

#endif
