// Sliding-window attention with global columns over packed ragged batches (hf-semantics A5,
// A6a; kernels.h window_attn): every local query attends to the local keys of its window and
// to every global token of its sequence; padding queries get zeros; global queries' rows are
// left for global_attn.
//
// Plain: one thread per (query, head), float32, three passes over the keys (max, sum,
// weighted values accumulated in the output row). Fast (bf16 or fp16 operands, d = 64): one
// block per (query tile of 64, head), four warps of 16 queries. Key tiles of 64 (the global
// columns first, then the tile's band [lo, hi)) are staged in shared memory; S = Q·Kᵀ and
// P·V run on the tensor cores (wmma 16x16x16, float32 accumulation); masks and the online
// softmax are in float32 registers, two lanes per query row, the output accumulator held
// in those lanes' registers (32 floats each). No score matrix reaches global memory.
// float32 tables and other head sizes use the plain kernel.
#include <mma.h>

#include <cstdio>
#include <cstdlib>

#include "cu.cuh"

using namespace nvcuda;

namespace
{

constexpr int WBQ = 64, WBK = 64, WD = 64, WLD = WD + 8, SLD = WBK + 4;

// ---- kernels ----------------------------------------------------------------------------------

__global__ void k_window_plain(kn_attn_args a, const int32_t *offsets, const int32_t *glob_off,
                               int T)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (i >= T) return;
    const int s = kn_ix_tile_seq(offsets, a.nseq, i); // one-row tiles: offsets are tile_off
    const int b = offsets[s], e = offsets[s + 1], d = a.d;
    float *o = a.out + (size_t)i * a.ldo + h * d;
    if (a.kind[i] != KN_TOK_LOCAL) {
        if (a.kind[i] == KN_TOK_PAD)
            for (int c = 0; c < d; c++)
                o[c] = 0.0f;
        return;
    }
    const float *q = a.q + (size_t)i * a.ld + h * d;
    int lo, hi;
    kn_ix_band(i, b, e, a.w, &lo, &hi);
    const int ng = glob_off[s + 1] - glob_off[s], nk = ng + (hi - lo);
    float mx = -INFINITY, sum = 0.0f;
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 2)
            for (int c = 0; c < d; c++)
                o[c] = 0.0f;
        for (int t = 0; t < nk; t++) {
            const int j = t < ng ? a.glob[glob_off[s] + t] : lo + t - ng;
            if (t >= ng && !kn_ix_band_key(i, j, b, e, a.w, a.kind[j])) continue;
            const float *k = a.k + (size_t)j * a.ld + h * d;
            float z = 0.0f;
            for (int c = 0; c < d; c++)
                z = fmaf(q[c] * a.scale, k[c], z);
            kn_plain_softmax_pass(pass, z, &mx, &sum, a.v + (size_t)j * a.ld + h * d, o, d);
        }
    }
}

// wmma needs 256-bit aligned tile pointers: the struct and every tile row offset used are
template <class T> struct __align__(128) window_smem
{
    T q[WBQ][WLD]; // the tile's queries (times scale); each warp's rows become its P after use
    T k[WBK][WLD];
    T v[WBK][WLD];
    float s[4][16][SLD]; // per warp: S, then the P·V tile
    int krow[WBK];       // the key tile's rows (-1: empty slot)
    int kglob[WBK];      // 1: a global column
};

template <class T>
__global__ void __launch_bounds__(128)
    k_window_fast(kn_attn_args a, const int32_t *offsets, const int32_t *glob_off,
                  const int32_t *tile_off)
{
    __shared__ window_smem<T> sm;
    const int h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int s = kn_ix_tile_seq(tile_off, a.nseq, blockIdx.x);
    int q0, q1, lo, hi;
    kn_ix_tile_rows(offsets, tile_off, s, blockIdx.x, WBQ, &q0, &q1);
    const int b = offsets[s], e = offsets[s + 1];
    kn_ix_tile_band(q0, q1, b, e, a.w, &lo, &hi);
    const int g0 = glob_off[s], ng = glob_off[s + 1] - g0;

    // queries (times scale, as the reference multiplies them) as T, rows past q1 zero
    for (int x = threadIdx.x; x < WBQ * WD; x += blockDim.x) {
        const int r = x / WD, c = x % WD, i = q0 + r;
        const float v = i < q1 ? a.q[(size_t)i * a.ld + h * WD + c] * a.scale : 0.0f;
        sm.q[r][c] = kn_cvt<T>(v);
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[WD / 16];
    for (int kk = 0; kk < WD / 16; kk++)
        wmma::load_matrix_sync(qf[kk], &sm.q[warp * 16][kk * 16], WLD);
    __syncwarp();

    // this lane's query row and half of the key columns
    const int r = lane >> 1, half = lane & 1, i = q0 + warp * 16 + r;
    const int kind_i = i < q1 ? a.kind[i] : KN_TOK_PAD;
    float m = -INFINITY, l = 0.0f, acc[32];
#pragma unroll
    for (int c = 0; c < 32; c++)
        acc[c] = 0.0f;
    T(*P)[WLD] = &sm.q[warp * 16]; // the warp's Q rows, free once qf is loaded

    const int nt = kn_ix_window_ntiles(ng, lo, hi, WBK);
    for (int tk = 0; tk < nt; tk++) {
        int start;
        const int isg = kn_ix_window_tile(tk, ng, lo, WBK, &start);
        __syncthreads(); // the previous tile's K, V and rows are no longer read
        for (int c = threadIdx.x; c < WBK; c += blockDim.x) {
            int row = -1;
            if (isg && start + c < ng) row = a.glob[g0 + start + c];
            if (!isg && start + c < hi) row = start + c;
            sm.krow[c] = row;
            sm.kglob[c] = isg;
        }
        for (int x = threadIdx.x; x < WBK * WD; x += blockDim.x) {
            const int c = x / WD, col = x % WD;
            int row = -1;
            if (isg && start + c < ng) row = a.glob[g0 + start + c];
            if (!isg && start + c < hi) row = start + c;
            const size_t at = (size_t)row * a.ld + h * WD + col;
            sm.k[c][col] = kn_cvt<T>(row >= 0 ? a.k[at] : 0.0f);
            sm.v[c][col] = kn_cvt<T>(row >= 0 ? a.v[at] : 0.0f); // zeros: 0·garbage is NaN
        }
        __syncthreads();

        // S (16 x 64) = Q (16 x 64) · Kᵀ on the tensor cores
        for (int n0 = 0; n0 < WBK; n0 += 16) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
            wmma::fill_fragment(sf, 0.0f);
            for (int kk = 0; kk < WD / 16; kk++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, &sm.k[n0][kk * 16], WLD);
                wmma::mma_sync(sf, qf[kk], kf, sf);
            }
            wmma::store_matrix_sync(&sm.s[warp][0][n0], sf, SLD, wmma::mem_row_major);
        }
        __syncwarp();

        // masks and the online softmax: this lane's 32 columns of row r
        float tmax = -INFINITY;
        for (int c = 0; c < 32; c++) {
            const int col = half * 32 + c, j = sm.krow[col];
            const int ok = kind_i == KN_TOK_LOCAL && j >= 0 &&
                           (sm.kglob[col] || kn_ix_band_key(i, j, b, e, a.w, a.kind[j]));
            const float z = ok ? sm.s[warp][r][col] : -INFINITY;
            sm.s[warp][r][col] = z;
            tmax = fmaxf(tmax, z);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float mnew = fmaxf(m, tmax);
        const float alpha = mnew == -INFINITY ? 1.0f : expf(m - mnew);
        float psum = 0.0f;
        for (int c = 0; c < 32; c++) {
            const int col = half * 32 + c;
            const float z = sm.s[warp][r][col];
            const T p = kn_cvt<T>(z == -INFINITY ? 0.0f : expf(z - mnew));
            P[r][col] = p;
            psum += kn_f32(p);
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        l = l * alpha + psum;
        m = mnew;
        __syncwarp();

        // P (16 x 64) · V (64 x 64) on the tensor cores, into the warp's S area
        for (int n0 = 0; n0 < WD; n0 += 16) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
            wmma::fill_fragment(of, 0.0f);
            for (int kk = 0; kk < WBK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                wmma::load_matrix_sync(pf, &P[0][kk * 16], WLD);
                wmma::load_matrix_sync(vf, &sm.v[kk * 16][n0], WLD);
                wmma::mma_sync(of, pf, vf, of);
            }
            __syncwarp(); // every lane has read S before it is overwritten
            wmma::store_matrix_sync(&sm.s[warp][0][n0], of, SLD, wmma::mem_row_major);
        }
        __syncwarp();
#pragma unroll
        for (int c = 0; c < 32; c++)
            acc[c] = acc[c] * alpha + sm.s[warp][r][half * 32 + c];
        __syncwarp();
    }

    if (i >= q1 || kind_i == KN_TOK_GLOBAL) return;
    float *o = a.out + (size_t)i * a.ldo + h * WD + half * 32;
    const float inv = kind_i == KN_TOK_LOCAL && l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (int c = 0; c < 32; c++)
        o[c] = acc[c] * inv;
}

} // namespace

// ---- launcher and entry -------------------------------------------------------------------------

static int cu_window_attn(const kn_attn_args *a)
{
    const char *op = "window_attn";
    const int T = a->offsets[a->nseq];
    if (T <= 0 || a->nh <= 0) return 0;
    const int fast = kn__cu.variant == KN_CUDA_FAST && kn__cu.wdtype != KN_DTYPE_F32 && a->d == WD;
    // offsets, glob_off and (fast) the tile map, staged into scratch
    int32_t *tile_off = (int32_t *)std::malloc(sizeof(int32_t) * (size_t)(a->nseq + 1));
    if (!tile_off) return kn__cu_fail(op, "malloc", "out of host memory");
    tile_off[0] = 0;
    for (int s = 0; s < a->nseq; s++)
        tile_off[s + 1] = tile_off[s] + kn_ix_tiles(a->offsets[s + 1] - a->offsets[s], WBQ);
    const size_t idx = sizeof(int32_t) * (size_t)(a->nseq + 1);
    char *base = (char *)kn__cu_scratch(op, 3 * kn__cu_align(idx));
    size_t off = 0;
    int32_t *d_off = base ? (int32_t *)kn__cu_stage(op, base, &off, a->offsets, idx) : nullptr;
    int32_t *d_goff = d_off ? (int32_t *)kn__cu_stage(op, base, &off, a->glob_off, idx) : nullptr;
    int32_t *d_toff = d_goff ? (int32_t *)kn__cu_stage(op, base, &off, tile_off, idx) : nullptr;
    const int tiles = tile_off[a->nseq];
    std::free(tile_off);
    if (!d_toff) return -1;
    if (!fast) {
        k_window_plain<<<dim3((T + 127) / 128, a->nh), 128, 0, kn__cu.stream>>>(*a, d_off, d_goff,
                                                                                T);
        return KN_CU_LAUNCHED(op, "k_window_plain");
    }
    const dim3 grid(tiles, a->nh);
    if (kn__cu.wdtype == KN_DTYPE_BF16)
        k_window_fast<__nv_bfloat16><<<grid, 128, 0, kn__cu.stream>>>(*a, d_off, d_goff, d_toff);
    else
        k_window_fast<__half><<<grid, 128, 0, kn__cu.stream>>>(*a, d_off, d_goff, d_toff);
    return KN_CU_LAUNCHED(op, "k_window_fast");
}

void kn__cu_window_init(kn_ops *ops)
{
    ops->window_attn = cu_window_attn;
}
