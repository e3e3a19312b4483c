// LSH hashing and the sort by (round, bucket, position) (hf-semantics B5.3, B5.4; kernels.h
// lsh_hash, lsh_sort).
//
// Hashing: one thread per (round, position); each rotated value is a float32 dot product in
// d order, the factor's argmax over concat(y, −y) tracked on the fly (the largest y and the
// largest −y, first index on ties, +y before −y). One version: its arithmetic is the plain
// one; a GEMM for the rotations is the faster form still to write (kernels/cuda/README.md).
// Sort: plain, a stable counting sort in one thread (obviously right, slow); fast, CUB's
// radix sort of (key, index) pairs, which is stable, over the key bits index.h counts.
#include <cub/device/device_radix_sort.cuh>

#include <cstdio>

#include "cu.cuh"

namespace
{

__global__ void k_lsh_hash(kn_lsh_args a, int rot2, int NB, int NBp)
{
    const int flat = blockIdx.x * blockDim.x + threadIdx.x;
    if (flat >= a.nH * a.L) return;
    const int h = flat / a.L, t = flat % a.L;
    const float *q = a.qk + (size_t)t * a.ld;
    int bucket = 0, mul = 1, col = 0;
#pragma unroll
    for (int f = 0; f < KN_LSH_MAX_FACTORS; f++) { // constant indices keep a.factors in params
        if (f >= a.nf) break;
        const int half = a.factors[f] / 2;
        float bp = -INFINITY, bn = -INFINITY; // the best +y and the best −y so far
        int ip = 0, in = 0;
        for (int c = 0; c < half; c++) {
            const float *r = a.rot + (size_t)h * rot2 + col + c;
            float y = 0.0f;
            for (int e = 0; e < a.d; e++)
                y = fmaf(q[e], r[(size_t)e * a.nH * rot2], y);
            if (y > bp) bp = y, ip = c;
            if (-y > bn) bn = -y, in = c;
        }
        bucket += mul * (bn > bp ? half + in : ip);
        mul *= a.factors[f];
        col += half;
    }
    if (a.pad && a.keep && !a.keep[t]) bucket = NB;
    a.buckets[flat] = bucket + h * NBp;
}

__global__ void k_sort_plain(const int32_t *keys, int32_t *perm, int n, int nkeys, int32_t *start)
{
    if (blockIdx.x || threadIdx.x) return;
    for (int k = 0; k <= nkeys; k++)
        start[k] = 0;
    for (int i = 0; i < n; i++)
        start[keys[i] + 1]++;
    for (int k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    for (int i = 0; i < n; i++)
        perm[start[keys[i]]++] = i;
}

__global__ void k_iota(int32_t *x, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        x[i] = i;
}

} // namespace

static int cu_lsh_sort(const int32_t *keys, int32_t *perm, int n, int nkeys)
{
    const char *op = "lsh_sort";
    if (n <= 0) return 0;
    if (kn__cu.variant == KN_CUDA_PLAIN) {
        int32_t *start = (int32_t *)kn__cu_scratch(op, sizeof(int32_t) * ((size_t)nkeys + 1));
        if (!start) return -1;
        k_sort_plain<<<1, 1, 0, kn__cu.stream>>>(keys, perm, n, nkeys, start);
        return KN_CU_LAUNCHED(op, "k_sort_plain");
    }
    const int bits = kn_ix_key_bits((uint32_t)(nkeys > 1 ? nkeys : 2));
    size_t tmp = 0;
    if (kn__cu_check(op, "cub SortPairs (size)",
                     cub::DeviceRadixSort::SortPairs(nullptr, tmp, (const uint32_t *)keys,
                                                     (uint32_t *)nullptr, (const int32_t *)nullptr,
                                                     perm, n, 0, bits, kn__cu.stream)))
        return -1;
    const size_t vb = kn__cu_align(sizeof(int32_t) * (size_t)n);
    char *base = (char *)kn__cu_scratch(op, 2 * vb + tmp);
    if (!base) return -1;
    // keys are non-negative: sorted as unsigned, so no sign-bit twiddling enters
    int32_t *iota = (int32_t *)base;
    uint32_t *kout = (uint32_t *)(base + vb);
    k_iota<<<kn_ix_blocks(n, 256, 1024), 256, 0, kn__cu.stream>>>(iota, n);
    if (KN_CU_LAUNCHED(op, "k_iota")) return -1;
    return kn__cu_check(op, "cub SortPairs",
                        cub::DeviceRadixSort::SortPairs(base + 2 * vb, tmp, (const uint32_t *)keys,
                                                        kout, iota, perm, n, 0, bits,
                                                        kn__cu.stream));
}

static int cu_lsh_hash(const kn_lsh_args *a)
{
    if (a->L <= 0 || a->nH <= 0) return 0;
    int rot2 = 0, NB = 1;
    for (int f = 0; f < a->nf; f++)
        rot2 += a->factors[f] / 2, NB *= a->factors[f];
    const int n = a->nH * a->L;
    k_lsh_hash<<<(n + 127) / 128, 128, 0, kn__cu.stream>>>(*a, rot2, NB, a->pad ? NB + 1 : NB);
    return KN_CU_LAUNCHED("lsh_hash", "k_lsh_hash");
}

void kn__cu_lsh_init(kn_ops *ops)
{
    ops->lsh_hash = cu_lsh_hash;
    ops->lsh_sort = cu_lsh_sort;
}
