// LayerNorm with the residual added first: x[t] = LN(x[t] + res[t])·g + b, biased variance,
// float32. Plain: one thread per row, two passes in row order. Fast: one block per row, the
// row's sums reduced across the block (warp shuffles, then the warps' partials), the row read
// three times from L1/L2 rather than held.
#include "cu.cuh"

// ---- kernels ----------------------------------------------------------------------------------

__global__ void k_add_layernorm_plain(float *x, const float *res, const float *g, const float *b,
                                      float eps, int T, int H)
{
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    float *r = x + (size_t)t * H;
    if (res)
        for (int h = 0; h < H; h++)
            r[h] += res[(size_t)t * H + h];
    float mean = 0.0f, var = 0.0f;
    for (int h = 0; h < H; h++)
        mean += r[h];
    mean /= H;
    for (int h = 0; h < H; h++)
        var += (r[h] - mean) * (r[h] - mean);
    var /= H;
    const float inv = rsqrtf(var + eps);
    for (int h = 0; h < H; h++)
        r[h] = (r[h] - mean) * inv * g[h] + b[h];
}

// The sum of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ float block_sum(float v, float *part)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads(); // part may still be read by the previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void __launch_bounds__(256)
    k_add_layernorm_fast(float *x, const float *res, const float *g, const float *b, float eps,
                         int H)
{
    __shared__ float part[32];
    float *r = x + (size_t)blockIdx.x * H;
    const float *rr = res ? res + (size_t)blockIdx.x * H : nullptr;
    float s = 0.0f;
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        const float v = rr ? r[h] + rr[h] : r[h];
        if (rr) r[h] = v;
        s += v;
    }
    const float mean = block_sum(s, part) / H;
    float q = 0.0f;
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        const float d = r[h] - mean;
        q += d * d;
    }
    const float inv = rsqrtf(block_sum(q, part) / H + eps);
    for (int h = threadIdx.x; h < H; h += blockDim.x)
        r[h] = (r[h] - mean) * inv * g[h] + b[h];
}

// ---- entry ------------------------------------------------------------------------------------

static void cu_add_layernorm(float *x, const float *res, const float *g, const float *b, float eps,
                             int T, int H)
{
    if (T <= 0) return;
    if (kn__cu.variant == KN_CUDA_PLAIN) {
        k_add_layernorm_plain<<<(T + 127) / 128, 128, 0, kn__cu.stream>>>(x, res, g, b, eps, T, H);
        KN_CU_LAUNCHED("add_layernorm", "k_add_layernorm_plain");
        return;
    }
    k_add_layernorm_fast<<<T, 256, 0, kn__cu.stream>>>(x, res, g, b, eps, H);
    KN_CU_LAUNCHED("add_layernorm", "k_add_layernorm_fast");
}

void kn__cu_norm_init(kn_ops *ops)
{
    ops->add_layernorm = cu_add_layernorm;
}
