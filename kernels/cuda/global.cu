// Global queries (hf-semantics A6b; kernels.h global_attn): each global token attends to every
// non-padding token of its sequence through qg and the global keys and values kg = wkg·x + bkg,
// vg = wvg·x + bvg, and overwrites its output row. kg and vg are made per sequence (a linear
// over its rows, as if alone) in scratch, float32.
//
// Plain: one thread per (global token, head), three passes in key order, the output row
// accumulated in place. Fast: one block per (global token, head), eight warps taking every
// eighth key; a warp's lanes hold d/32 dimensions each (d <= 128), the dot product reduced by
// shuffles, an online softmax per warp, the warps' (max, sum, values) merged at the end.
#include <cstdio>

#include "cu.cuh"

namespace
{

constexpr int GW = 8; // warps of the fast kernel

__global__ void k_global_plain(kn_attn_args a, const int32_t *offsets, const int32_t *glob_off,
                               const float *kg, const float *vg, const int32_t *kv_row)
{
    const int gi = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (gi >= glob_off[a.nseq]) return;
    const int s = kn_ix_tile_seq(glob_off, a.nseq, gi); // a global token per "tile"
    const int b = offsets[s], e = offsets[s + 1], d = a.d, H = a.nh * d;
    const float *q = a.qg + (size_t)gi * a.ldqg + h * d;
    const float *kb = kg + (size_t)kv_row[s] * H + h * d, *vb = vg + (size_t)kv_row[s] * H + h * d;
    float *o = a.out + (size_t)a.glob[gi] * a.ldo + h * d;
    float mx = -INFINITY, sum = 0.0f;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2)
            for (int c = 0; c < d; c++)
                o[c] = 0.0f;
        for (int j = b; j < e; j++) {
            if (a.kind[j] == KN_TOK_PAD) continue;
            const float *k = kb + (size_t)(j - b) * H;
            float z = 0.0f;
            for (int c = 0; c < d; c++)
                z = fmaf(q[c] * a.scale, k[c], z);
            kn_plain_softmax_pass(pass, z, &mx, &sum, vb + (size_t)(j - b) * H, o, d);
        }
    }
}

__global__ void __launch_bounds__(GW * 32)
    k_global_fast(kn_attn_args a, const int32_t *offsets, const int32_t *glob_off, const float *kg,
                  const float *vg, const int32_t *kv_row)
{
    __shared__ float wm[GW], wl[GW], wacc[GW][128];
    const int gi = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int s = kn_ix_tile_seq(glob_off, a.nseq, gi);
    const int b = offsets[s], e = offsets[s + 1], d = a.d, H = a.nh * d;
    const float *q = a.qg + (size_t)gi * a.ldqg + h * d;
    const float *kb = kg + (size_t)kv_row[s] * H + h * d, *vb = vg + (size_t)kv_row[s] * H + h * d;
    float qr[4], acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int u = 0; u < 4; u++) {
        const int c = lane + 32 * u;
        qr[u] = c < d ? q[c] * a.scale : 0.0f;
    }
    for (int j = b + warp; j < e; j += GW) {
        if (a.kind[j] == KN_TOK_PAD) continue; // the same verdict for the whole warp
        const float *k = kb + (size_t)(j - b) * H, *v = vb + (size_t)(j - b) * H;
        float z = 0.0f;
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int c = lane + 32 * u;
            if (c < d) z = fmaf(qr[u], k[c], z);
        }
        for (int o = 16; o > 0; o >>= 1)
            z += __shfl_xor_sync(0xffffffffu, z, o);
        const float mnew = fmaxf(m, z), alpha = expf(m - mnew), p = expf(z - mnew);
        l = l * alpha + p;
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int c = lane + 32 * u;
            acc[u] = acc[u] * alpha + (c < d ? p * v[c] : 0.0f);
        }
        m = mnew;
    }
    if (lane == 0) wm[warp] = m, wl[warp] = l;
#pragma unroll
    for (int u = 0; u < 4; u++) {
        const int c = lane + 32 * u;
        if (c < d) wacc[warp][c] = acc[u];
    }
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY, L = 0.0f;
    for (int w = 0; w < GW; w++)
        M = fmaxf(M, wm[w]);
    for (int w = 0; w < GW; w++)
        L += wm[w] == -INFINITY ? 0.0f : wl[w] * expf(wm[w] - M);
    float *o = a.out + (size_t)a.glob[gi] * a.ldo + h * d;
#pragma unroll
    for (int u = 0; u < 4; u++) {
        const int c = lane + 32 * u;
        if (c >= d) continue;
        float x = 0.0f;
        for (int w = 0; w < GW; w++)
            x += wm[w] == -INFINITY ? 0.0f : wacc[w][c] * expf(wm[w] - M);
        o[c] = L > 0.0f ? x / L : 0.0f;
    }
}

} // namespace

static int cu_global_attn(const kn_attn_args *a)
{
    const char *op = "global_attn";
    const int G = a->glob_off[a->nseq];
    if (G <= 0 || a->nh <= 0) return 0;
    const int H = a->nh * a->d;
    // rows of kg/vg: only the sequences with global tokens, each at kv_row[s]
    int32_t kv_row[1025];
    if (a->nseq > 1024) return kn__cu_fail(op, "batch", "more than 1024 sequences");
    int rows = 0;
    for (int s = 0; s < a->nseq; s++) {
        kv_row[s] = rows;
        if (a->glob_off[s + 1] > a->glob_off[s]) rows += a->offsets[s + 1] - a->offsets[s];
    }
    const size_t idx = sizeof(int32_t) * (size_t)(a->nseq + 1);
    const size_t kvb = kn__cu_align(sizeof(float) * (size_t)rows * H);
    char *base = (char *)kn__cu_scratch(op, 3 * kn__cu_align(idx) + 2 * kvb);
    if (!base) return -1;
    float *kg = (float *)base, *vg = (float *)(base + kvb);
    size_t off = 2 * kvb;
    for (int s = 0; s < a->nseq; s++) {
        if (a->glob_off[s + 1] == a->glob_off[s]) continue;
        const int b = a->offsets[s], n = a->offsets[s + 1] - b;
        const float *x = a->x + (size_t)b * a->hidden;
        if (kn__cu_linear_f32(op, x, a->wkg, a->bkg, kg + (size_t)kv_row[s] * H, n, H, a->hidden) ||
            kn__cu_linear_f32(op, x, a->wvg, a->bvg, vg + (size_t)kv_row[s] * H, n, H, a->hidden))
            return -1;
    }
    int32_t *d_off = (int32_t *)kn__cu_stage(op, base, &off, a->offsets, idx);
    int32_t *d_goff = d_off ? (int32_t *)kn__cu_stage(op, base, &off, a->glob_off, idx) : nullptr;
    int32_t *d_row = d_goff ? (int32_t *)kn__cu_stage(op, base, &off, kv_row, idx) : nullptr;
    if (!d_row) return -1;
    if (kn__cu.variant == KN_CUDA_PLAIN || a->d > 128) {
        k_global_plain<<<dim3((G + 63) / 64, a->nh), 64, 0, kn__cu.stream>>>(*a, d_off, d_goff, kg,
                                                                             vg, d_row);
        return KN_CU_LAUNCHED(op, "k_global_plain");
    }
    k_global_fast<<<dim3(G, a->nh), GW * 32, 0, kn__cu.stream>>>(*a, d_off, d_goff, kg, vg, d_row);
    return KN_CU_LAUNCHED(op, "k_global_fast");
}

void kn__cu_global_init(kn_ops *ops)
{
    ops->global_attn = cu_global_attn;
}
