/* index.h — the per-thread index arithmetic of the CUDA kernels, in one place.
 *
 * Band limits (sliding-window attention), tile coordinates of packed ragged batches, the
 * global-column lists, chunk neighbours with wrap-around (Reformer), the masks in Hugging
 * Face's order, the LSH argmax and sort keys. Every function is __host__ __device__ under
 * nvcc and plain static inline C otherwise, so tests/test_cuda_index.c checks each one
 * against brute force on the CPU: a wrong index is caught without a GPU.
 *
 * Conventions: half-open ranges [lo, hi); rows are absolute indices into the packed batch
 * (sequence s owns offsets[s] .. offsets[s+1]-1). Nothing here allocates or reads memory
 * other than its arguments. */
#ifndef KN_CUDA_INDEX_H
#define KN_CUDA_INDEX_H

#include <stdint.h>

#ifdef __CUDACC__
#define KN_HD static __host__ __device__ __forceinline__
#else
#define KN_HD static inline
#endif

KN_HD int kn_ix_min(int a, int b)
{
    return a < b ? a : b;
}

KN_HD int kn_ix_max(int a, int b)
{
    return a > b ? a : b;
}

/* ---- packed ragged batches: tiles of BQ query rows, never crossing a sequence ---------- */

/* Tiles of a sequence of len rows. */
KN_HD int kn_ix_tiles(int len, int BQ)
{
    return (len + BQ - 1) / BQ;
}

/* The sequence that tile t belongs to, given tile_off[s] = the first tile of sequence s
 * (tile_off[nseq] = all tiles): the s with tile_off[s] <= t < tile_off[s+1] (empty
 * sequences own no tile). Binary search: blocks call it once each. */
KN_HD int kn_ix_tile_seq(const int32_t *tile_off, int nseq, int t)
{
    int lo = 0, hi = nseq; /* invariant: tile_off[lo] <= t < tile_off[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (tile_off[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* First query row of tile t of sequence s and one past its last. */
KN_HD void kn_ix_tile_rows(const int32_t *offsets, const int32_t *tile_off, int s, int t, int BQ,
                           int *q0, int *q1)
{
    *q0 = offsets[s] + (t - tile_off[s]) * BQ;
    *q1 = kn_ix_min(*q0 + BQ, offsets[s + 1]);
}

/* ---- sliding window (Longformer, hf-semantics A5) --------------------------------------- */

/* Keys of query i's window inside its sequence [b, e): [lo, hi). */
KN_HD void kn_ix_band(int i, int b, int e, int w, int *lo, int *hi)
{
    *lo = kn_ix_max(b, i - w);
    *hi = kn_ix_min(e, i + w + 1);
}

/* The union of the windows of queries q0 .. q1-1 (q0 < q1, all in [b, e)): [lo, hi). */
KN_HD void kn_ix_tile_band(int q0, int q1, int b, int e, int w, int *lo, int *hi)
{
    *lo = kn_ix_max(b, q0 - w);
    *hi = kn_ix_min(e, q1 - 1 + w + 1);
}

/* 1 when every query of [q0, q1) sees every key of [k0, k1) by distance alone (|i-j| <= w),
 * so a tile needs no distance mask. */
KN_HD int kn_ix_tile_full(int q0, int q1, int k0, int k1, int w)
{
    return k0 >= q1 - 1 - w && k1 - 1 <= q0 + w;
}

/* 1 when local query i takes band key j (kind_j its KN_TOK_* kind): inside the sequence,
 * inside the window, and a local token (global keys come in through the global columns,
 * padding never). */
KN_HD int kn_ix_band_key(int i, int j, int b, int e, int w, int kind_j)
{
    return j >= b && j < e && j - i <= w && i - j <= w && kind_j == 1;
}

/* A query tile's key tiles in the fused kernel: first the global columns of its sequence
 * (ng of them, BK a tile), then its band [lo, hi) in tiles of BK rows. */
KN_HD int kn_ix_window_ntiles(int ng, int lo, int hi, int BK)
{
    return (ng + BK - 1) / BK + (hi > lo ? (hi - lo + BK - 1) / BK : 0);
}

/* Key tile tk: returns 1 for a global tile (*start: its first slot in the sequence's
 * global list; slots past ng are empty), 0 for a band tile (*start: its first key row;
 * rows at or past hi are empty). */
KN_HD int kn_ix_window_tile(int tk, int ng, int lo, int BK, int *start)
{
    const int gt = (ng + BK - 1) / BK;
    if (tk < gt) {
        *start = tk * BK;
        return 1;
    }
    *start = lo + (tk - gt) * BK;
    return 0;
}

/* ---- chunked attention (Reformer, hf-semantics B5.5) ------------------------------------ */

typedef struct {
    int C;      /* rows per chunk */
    int nc;     /* chunks */
    int nb, na; /* neighbour chunks before and after */
    int nk;     /* keys per query: (1 + nb + na) * C */
} kn_ix_chunk;

/* The geometry of a segment of n rows: chunked when n > chunk (n a multiple of chunk),
 * else one chunk that sees itself once. */
KN_HD kn_ix_chunk kn_ix_chunk_geom(int n, int chunk, int before, int after)
{
    kn_ix_chunk g;
    const int chunked = n > chunk;
    g.C = chunked ? chunk : n;
    g.nc = g.C > 0 ? n / g.C : 0;
    g.nb = chunked ? before : 0;
    g.na = chunked ? after : 0;
    g.nk = (1 + g.nb + g.na) * g.C;
    return g;
}

/* The row of key slot t (0 <= t < nk) of query chunk c: key chunks (c + j) mod nc for
 * j = -nb .. na in that order, C rows each. */
KN_HD int kn_ix_chunk_key_row(const kn_ix_chunk *g, int c, int t)
{
    const int j = t / g->C - g->nb;
    const int kc = ((c + j) % g->nc + g->nc) % g->nc;
    return kc * g->C + t % g->C;
}

/* A score after the masks, by replacement in Hugging Face's order (B5.6): padding key
 * (keep_key 0) -1e9, then a later key under causal -1e9, then the query's own position
 * -1e5. */
KN_HD float kn_ix_chunk_mask(float z, int keep_key, int causal, int self_mask, int pk, int pq)
{
    if (!keep_key) z = -1e9f;
    if (causal && pk > pq) z = -1e9f;
    if (self_mask && pk == pq) z = -1e5f;
    return z;
}

/* ---- LSH (hf-semantics B5.3, B5.4) ----------------------------------------------------- */

/* argmax over concat(y[0..half-1], -y[0..half-1]), the first index winning ties. */
KN_HD int kn_ix_argmax_pm(const float *y, int half)
{
    int best = 0;
    float bv = y[0];
    for (int i = 1; i < 2 * half; i++) {
        const float v = i < half ? y[i] : -y[i - half];
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

/* The bucket of one (round, position) from its rotated vector y (Σ factors/2 values):
 * bucket = b0 + f0·b1 + f0·f1·b2 + ..., b_i the argmax of factor i's slice. */
KN_HD int kn_ix_lsh_bucket(const float *y, const int32_t *factors, int nf)
{
    int bucket = 0, mul = 1, col = 0;
    for (int i = 0; i < nf; i++) {
        const int half = factors[i] / 2;
        bucket += mul * kn_ix_argmax_pm(y + col, half);
        mul *= factors[i];
        col += half;
    }
    return bucket;
}

/* The radix-sort key of flat index h·L + t: its bucket offset by round (NBp buckets a
 * round, the padding bucket included). A stable sort of flat indices by this key orders
 * them by (round, bucket, position), as HF's B[i]·(nH·L) + i does. */
KN_HD uint32_t kn_ix_lsh_key(int round, int bucket, int NBp)
{
    return (uint32_t)round * (uint32_t)NBp + (uint32_t)bucket;
}

/* Bits a radix sort needs for keys below nkeys. */
KN_HD int kn_ix_key_bits(uint32_t nkeys)
{
    int b = 1;
    while (b < 32 && (nkeys - 1) >> b)
        b++;
    return b;
}

/* ---- elementwise and row launches --------------------------------------------------------- */

/* Blocks of `threads` covering n items, capped at `most` (grid-stride loops do the rest). */
KN_HD int kn_ix_blocks(long long n, int threads, int most)
{
    const long long b = (n + threads - 1) / threads;
    return b < 1 ? 1 : (b > most ? most : (int)b);
}

#endif
