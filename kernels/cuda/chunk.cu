// Chunked attention (Reformer LSH and local attention, hf-semantics B5.5-B5.7, B6; kernels.h
// chunk_attn), float32 throughout: query chunk c of a segment sees key chunks (c + j) mod nc,
// j = -before .. after (index.h), keys times key_scale, masks by replacement in HF's order,
// lse = max + log Σ exp(z - max) in float32 and out = Σ exp(z - max)·exp(max - lse)·v, so a
// row whose keys are all masked gets p = 1 as HF gives it. The segment descriptors (device
// pointers in a host array) are copied to scratch with the rows' prefix sums.
//
// Plain: one thread per query row, three passes over its keys. Fast: one block per (segment,
// query chunk, 8 queries), a warp per query; key slots come in tiles of 32, staged with their
// values and positions in shared memory; lane j scores key j of the tile, a warp-wide online
// softmax, then the value product with each lane holding d/32 output dimensions (d <= 128).
#include <cstdio>
#include <cstdlib>

#include "cu.cuh"

namespace
{

constexpr int CW = 8, CT = 32, CDMAX = 128;

__device__ float chunk_score(const kn_chunk_args &a, const kn_chunk_seg &sg, int qi, int kr)
{
    const float *q = sg.q + (size_t)qi * sg.ld, *k = sg.k + (size_t)kr * sg.ld;
    float z = 0.0f;
    for (int e = 0; e < a.d; e++)
        z = fmaf(q[e], k[e] * a.key_scale, z);
    const int pk = sg.pos[kr];
    return kn_ix_chunk_mask(z, sg.keep ? sg.keep[pk] : 1, a.causal, a.self_mask, pk, sg.pos[qi]);
}

__global__ void k_chunk_plain(kn_chunk_args a, const kn_chunk_seg *segs, const int32_t *row_off)
{
    const int flat = blockIdx.x * blockDim.x + threadIdx.x;
    if (flat >= row_off[a.nseg]) return;
    const int si = kn_ix_tile_seq(row_off, a.nseg, flat);
    const kn_chunk_seg sg = segs[si];
    const int qi = flat - row_off[si];
    const kn_ix_chunk g = kn_ix_chunk_geom(sg.n, a.chunk, a.before, a.after);
    const int c = qi / g.C;
    float mx = -INFINITY, sum = 0.0f;
    for (int t = 0; t < g.nk; t++)
        mx = fmaxf(mx, chunk_score(a, sg, qi, kn_ix_chunk_key_row(&g, c, t)));
    for (int t = 0; t < g.nk; t++)
        sum += expf(chunk_score(a, sg, qi, kn_ix_chunk_key_row(&g, c, t)) - mx);
    const float lse = mx + logf(sum);
    if (sg.lse) sg.lse[qi] = lse;
    float *o = sg.out + (size_t)qi * sg.ldo;
    for (int e = 0; e < a.d; e++)
        o[e] = 0.0f;
    for (int t = 0; t < g.nk; t++) {
        const int kr = kn_ix_chunk_key_row(&g, c, t);
        const float p = expf(chunk_score(a, sg, qi, kr) - lse);
        const float *v = sg.v + (size_t)kr * sg.ld;
        for (int e = 0; e < a.d; e++)
            o[e] = fmaf(p, v[e], o[e]);
    }
}

// blockIdx.x: a (segment, query group of CW rows) from grp_off (CW-row tiles per segment)
__global__ void __launch_bounds__(CW * 32)
    k_chunk_fast(kn_chunk_args a, const kn_chunk_seg *segs, const int32_t *grp_off)
{
    extern __shared__ float csm[];
    const int d = a.d, kld = d + 1; // odd row stride: lane j reading row j hits its own bank
    float *ks = csm, *vs = ks + CT * kld, *qs = vs + CT * kld, *ps = qs + CW * d;
    int *kpos = (int *)(ps + CW * CT), *kkeep = kpos + CT;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int si = kn_ix_tile_seq(grp_off, a.nseg, blockIdx.x);
    const kn_chunk_seg sg = segs[si];
    const kn_ix_chunk g = kn_ix_chunk_geom(sg.n, a.chunk, a.before, a.after);
    const int q0 = (blockIdx.x - grp_off[si]) * CW; // CW divides neither C nor n: per row chunk
    const int qi = q0 + warp, live = qi < sg.n;
    const int c = live ? qi / g.C : 0, pq = live ? sg.pos[qi] : 0;
    for (int e = lane; e < d; e += 32)
        qs[warp * d + e] = live ? sg.q[(size_t)qi * sg.ld + e] : 0.0f;
    float m = -INFINITY, l = 0.0f, acc[CDMAX / 32] = {0.0f, 0.0f, 0.0f, 0.0f};
    // the block's rows may span two query chunks (CW does not divide C): each warp walks its
    // own chunk's key slots, so tiles are staged per warp-chunk; the common case (all rows of
    // the block in one chunk) stages once per tile for all warps
    const int c_first = q0 / g.C, c_last = kn_ix_min(q0 + CW, sg.n) - 1;
    for (int cc = c_first; cc <= c_last / g.C; cc++) {
        for (int t0 = 0; t0 < g.nk; t0 += CT) {
            __syncthreads(); // the previous tile is no longer read
            for (int x = threadIdx.x; x < CT * d; x += blockDim.x) {
                const int j = x / d, e = x % d, t = t0 + j;
                float kv = 0.0f, vv = 0.0f;
                if (t < g.nk) {
                    const int kr = kn_ix_chunk_key_row(&g, cc, t);
                    kv = sg.k[(size_t)kr * sg.ld + e] * a.key_scale;
                    vv = sg.v[(size_t)kr * sg.ld + e];
                }
                ks[j * kld + e] = kv;
                vs[j * kld + e] = vv;
            }
            for (int j = threadIdx.x; j < CT; j += blockDim.x) {
                const int t = t0 + j;
                const int kr = t < g.nk ? kn_ix_chunk_key_row(&g, cc, t) : 0;
                kpos[j] = t < g.nk ? sg.pos[kr] : -1;
                kkeep[j] = t < g.nk ? (sg.keep ? sg.keep[sg.pos[kr]] : 1) : -1;
            }
            __syncthreads();
            if (!live || c != cc) continue; // this warp's row is in the other chunk
            // lane j: key j of the tile
            float z = -INFINITY;
            if (kkeep[lane] >= 0) {
                float s = 0.0f;
                for (int e = 0; e < d; e++)
                    s = fmaf(qs[warp * d + e], ks[lane * kld + e], s);
                z = kn_ix_chunk_mask(s, kkeep[lane], a.causal, a.self_mask, kpos[lane], pq);
            }
            float tmax = z;
            for (int o = 16; o > 0; o >>= 1)
                tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
            const float mnew = fmaxf(m, tmax);
            const float alpha = m == -INFINITY ? 0.0f : expf(m - mnew);
            const float p = z == -INFINITY ? 0.0f : expf(z - mnew);
            float ps_ = p;
            for (int o = 16; o > 0; o >>= 1)
                ps_ += __shfl_xor_sync(0xffffffffu, ps_, o);
            l = l * alpha + ps_;
            m = mnew;
            ps[warp * CT + lane] = p;
            __syncwarp();
#pragma unroll
            for (int u = 0; u < CDMAX / 32; u++) {
                const int e = lane + 32 * u;
                float x = acc[u] * alpha;
                if (e < d)
                    for (int j = 0; j < CT; j++)
                        x = fmaf(ps[warp * CT + j], vs[j * kld + e], x);
                acc[u] = x;
            }
            __syncwarp();
        }
    }
    if (!live) return;
    const float lse = m + logf(l);
    if (sg.lse && lane == 0) sg.lse[qi] = lse;
    const float scale = expf(m - lse); // 1/l, or 1 for a row of masked keys (lse == m)
    float *o = sg.out + (size_t)qi * sg.ldo;
#pragma unroll
    for (int u = 0; u < CDMAX / 32; u++) {
        const int e = lane + 32 * u;
        if (e < d) o[e] = acc[u] * scale;
    }
}

} // namespace

static int cu_chunk_attn(const kn_chunk_args *a)
{
    const char *op = "chunk_attn";
    if (a->nseg <= 0) return 0;
    const int fast = kn__cu.variant == KN_CUDA_FAST && a->d <= CDMAX;
    int32_t *off = (int32_t *)std::malloc(sizeof(int32_t) * (size_t)(a->nseg + 1));
    if (!off) return kn__cu_fail(op, "malloc", "out of host memory");
    off[0] = 0;
    for (int s = 0; s < a->nseg; s++)
        off[s + 1] = off[s] + (fast ? kn_ix_tiles(a->seg[s].n, CW) : a->seg[s].n);
    const int items = off[a->nseg];
    const size_t segb = sizeof(kn_chunk_seg) * (size_t)a->nseg;
    const size_t idx = sizeof(int32_t) * (size_t)(a->nseg + 1);
    char *base = (char *)kn__cu_scratch(op, kn__cu_align(segb) + kn__cu_align(idx));
    size_t at = 0;
    kn_chunk_seg *d_seg =
        base ? (kn_chunk_seg *)kn__cu_stage(op, base, &at, a->seg, segb) : nullptr;
    int32_t *d_off = d_seg ? (int32_t *)kn__cu_stage(op, base, &at, off, idx) : nullptr;
    std::free(off);
    if (!d_off || items == 0) return d_off ? 0 : -1;
    if (!fast) {
        k_chunk_plain<<<(items + 127) / 128, 128, 0, kn__cu.stream>>>(*a, d_seg, d_off);
        return KN_CU_LAUNCHED(op, "k_chunk_plain");
    }
    const size_t smem =
        sizeof(float) * (2 * (size_t)CT * (a->d + 1) + (size_t)CW * a->d + CW * CT) + 2 * CT * 4;
    k_chunk_fast<<<items, CW * 32, smem, kn__cu.stream>>>(*a, d_seg, d_off);
    return KN_CU_LAUNCHED(op, "k_chunk_fast");
}

void kn__cu_chunk_init(kn_ops *ops)
{
    ops->chunk_attn = cu_chunk_attn;
}
