/* Fast CPU kernels: our packed GEMM (gemm.c) for linear layers, with the ISA cpuid finds,
 * or OpenBLAS's (the "blas" table); OpenBLAS (OpenMP build) for the attention's matrix
 * products; OpenMP over rows, heads and query blocks elsewhere, and vectorisable exp/erfc
 * so the element-wise ops do not fall back to scalar libm calls. Checked against ref.c by
 * tests/test_kernels.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "../kernels.h"
#include "chunk.h"
#include "gemm.h"
#include "gemm_bf16.h"
#include "vmath.h"

void kn_cpu_set_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

int kn_cpu_threads(void)
{
    return omp_get_max_threads();
}

/* ---- linear layers: the packed GEMM ------------------------------------------------------
 * Weights are packed once at load for the active ISA; every output element is summed in an
 * order fixed by K and the ISA alone (gemm.h), so one GEMM over the whole packed batch is
 * batch and thread-count invariant and needs no tiling per sequence. */

static int cpu_weight_prepare(kn_weight *wt)
{
    wt->prep = kn_gemm_pack(kn_isa_active(), wt->w, wt->N, wt->K);
    return wt->prep ? 0 : -1;
}

static void cpu_weight_release(kn_weight *wt)
{
    kn_gemm_free(wt->prep);
    wt->prep = NULL;
}

static void blas_linear(const float *x, const kn_weight *wt, const float *b, float *y, int M, int N,
                        int K, const int32_t *groups, int ngroups);

static void cpu_linear(const float *x, const kn_weight *wt, const float *b, float *y, int M, int N,
                       int K, const int32_t *groups, int ngroups)
{
    /* an unprepared weight (or scratch memory refused) takes OpenBLAS's tiles */
    if (!wt->prep || kn_gemm(wt->prep, x, M, b, y) != 0)
        blas_linear(x, wt, b, y, M, N, K, groups, ngroups);
}

static int cpu_ffn(const float *x, const kn_weight *w1, const float *b1, const kn_weight *w2,
                   const float *b2, float *y, int M, int hid, int inter)
{
    (void)hid, (void)inter;
    if (!w1->prep || !w2->prep) return -1;
    /* the gelu op's vector code: the inner values are the unfused ones bit for bit */
    return kn_gemm_ffn(w1->prep, w2->prep, x, M, b1, b2, kn__gelu_block, y);
}

/* ---- linear layers in bfloat16 (--dtype bf16) ------------------------------------------------
 * The same calls with the weights rounded to bfloat16 and packed for AMX or AVX512_BF16
 * (gemm_bf16.h); x is rounded per call, sums are float32. Row-independent like kn_gemm, so
 * batch invariance holds bit for bit on this path too. */

static kn_bf16_path kn__bf16_path = KN_BF16_NONE;

static int cpu_weight_prepare_bf16(kn_weight *wt)
{
    wt->prep = kn_gemm_bf16_pack(kn__bf16_path, wt->w, wt->N, wt->K);
    return wt->prep ? 0 : -1;
}

static void cpu_weight_release_bf16(kn_weight *wt)
{
    kn_gemm_bf16_free(wt->prep);
    wt->prep = NULL;
}

static void cpu_linear_bf16(const float *x, const kn_weight *wt, const float *b, float *y, int M,
                            int N, int K, const int32_t *groups, int ngroups)
{
    /* scratch memory refused: OpenBLAS in float32 rather than no answer */
    if (!wt->prep || kn_gemm_bf16_run(wt->prep, x, M, b, y) != 0)
        blas_linear(x, wt, b, y, M, N, K, groups, ngroups);
}

static int cpu_ffn_bf16(const float *x, const kn_weight *w1, const float *b1, const kn_weight *w2,
                        const float *b2, float *y, int M, int hid, int inter)
{
    (void)hid, (void)inter;
    if (!w1->prep || !w2->prep) return -1;
    return kn_gemm_bf16_ffn(w1->prep, w2->prep, x, M, b1, b2, kn__gelu_block, y);
}

/* ---- linear layers: OpenBLAS ----------------------------------------------------------------
 * OpenBLAS's result for a row depends on where the row falls in its partition of M (edge
 * kernels, thread split), so one sgemm over a packed batch would give a sequence other
 * numbers than it gets alone. Instead every group (sequence) is cut into tiles starting
 * at its own first row, each tile one single-threaded sgemm (OpenBLAS stays on one thread
 * inside an OpenMP region), tiles spread over the threads. Tile shapes depend only on
 * the group's own length, so a row's numbers depend only on its sequence: batch and
 * thread-count invariant, bit for bit. Long groups get 512×768 tiles (97% of one
 * threaded sgemm on 2 cores: 4096×3072×768 at 180 vs 186 GFLOP/s); shorter ones smaller
 * tiles so that even one short sequence keeps both cores busy. */
typedef struct {
    int r0, c0, m, n;
} kn__tile;

static void kn__tile_shape(int rows, int *bm, int *bn)
{
    if (rows <= 256) {
        *bm = 256;
        *bn = 256;
    } else if (rows <= 1024) {
        *bm = 256;
        *bn = 384;
    } else {
        *bm = 512;
        *bn = 768;
    }
}

static void kn__linear_tile(const float *x, const float *w, const float *b, float *y,
                            const kn__tile *t, int N, int K)
{
    float *yt = y + (size_t)t->r0 * N + t->c0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->m, t->n, K, 1.0f, x + (size_t)t->r0 * K,
                K, w + (size_t)t->c0 * K, K, 0.0f, yt, N);
    if (b)
        for (int r = 0; r < t->m; r++)
            for (int c = 0; c < t->n; c++)
                yt[(size_t)r * N + c] += b[t->c0 + c];
}

static long kn__group_tiles(int rows, int N)
{
    int bm, bn;
    kn__tile_shape(rows, &bm, &bn);
    return (long)((rows + bm - 1) / bm) * ((N + bn - 1) / bn);
}

static void blas_linear(const float *x, const kn_weight *wt, const float *b, float *y, int M, int N,
                        int K, const int32_t *groups, int ngroups)
{
    const float *w = wt->w;
    if (M <= 0 || N <= 0) return;
    int32_t whole[2] = {0, M};
    if (!groups || ngroups <= 0) groups = whole, ngroups = 1;
    long ntile = 0;
    for (int g = 0; g < ngroups; g++)
        ntile += kn__group_tiles(groups[g + 1] - groups[g], N);
        /* Always inside a parallel region, even for one tile: OpenBLAS then runs each tile on
         * one thread, whatever the thread count (a tile run outside would be split across
         * threads and round differently). */
#pragma omp parallel
    {
        int g = 0;
        long base = 0; /* first tile of group g; each thread's tiles come in rising order */
#pragma omp for schedule(dynamic, 1)
        for (long t = 0; t < ntile; t++) {
            while (t >= base + kn__group_tiles(groups[g + 1] - groups[g], N)) {
                base += kn__group_tiles(groups[g + 1] - groups[g], N);
                g++;
            }
            int rows = groups[g + 1] - groups[g], bm, bn;
            kn__tile_shape(rows, &bm, &bn);
            const int tn = (N + bn - 1) / bn;
            const long local = t - base;
            kn__tile tile;
            tile.r0 = groups[g] + (int)(local / tn) * bm;
            tile.c0 = (int)(local % tn) * bn;
            tile.m = groups[g + 1] - tile.r0 < bm ? groups[g + 1] - tile.r0 : bm;
            tile.n = N - tile.c0 < bn ? N - tile.c0 : bn;
            kn__linear_tile(x, w, b, y, &tile, N, K);
        }
    }
}

static void cpu_embed(const int32_t *ids, const int32_t *pos_ids, const int32_t *tt,
                      const float *word, const float *pos, const float *type, float *out, int T,
                      int H)
{
#pragma omp parallel for schedule(static) if ((size_t)T * H > 65536)
    for (int t = 0; t < T; t++) {
        const float *a = word + (size_t)ids[t] * H, *p = pos + (size_t)pos_ids[t] * H;
        const float *c = type + (size_t)(tt ? tt[t] : 0) * H;
        float *o = out + (size_t)t * H;
        for (int h = 0; h < H; h++)
            o[h] = (a[h] + p[h]) + c[h];
    }
}

/* Sum of n floats: 16-lane partial sums, their total in lane order, then the tail; (x -
 * sub)² summed the same way when sq. Row-local and fixed in order. */
static inline __attribute__((always_inline)) float kn__vsum(const float *x, int n, int sq,
                                                            float sub)
{
    kn_v16f acc = kn__vsplat16(0.0f), v;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&v, x + i, sizeof v);
        if (sq) {
            v -= sub;
            v *= v;
        }
        acc += v;
    }
    float t = 0.0f;
    for (int k = 0; k < 16; k++)
        t += acc[k];
    for (; i < n; i++)
        t += sq ? (x[i] - sub) * (x[i] - sub) : x[i];
    return t;
}

/* One row: r = LN(r + s) * g + b (s may be NULL), two-pass biased variance, vector sums (a
 * serial float sum over 768 columns was 3.4 % of a bf16 forward, latency-bound). */
KN_CLONES static void kn__add_ln_row(float *r, const float *s, const float *g, const float *b,
                                     float eps, int H)
{
    if (s)
        for (int h = 0; h < H; h++)
            r[h] += s[h];
    const float mean = kn__vsum(r, H, 0, 0.0f) / H;
    const float var = kn__vsum(r, H, 1, mean);
    const float inv = 1.0f / sqrtf(var / H + eps);
    for (int h = 0; h < H; h++)
        r[h] = (r[h] - mean) * inv * g[h] + b[h];
}

static void cpu_add_layernorm(float *x, const float *res, const float *g, const float *b, float eps,
                              int T, int H)
{
#pragma omp parallel for schedule(static) if ((size_t)T * H > 65536)
    for (int t = 0; t < T; t++)
        kn__add_ln_row(x + (size_t)t * H, res ? res + (size_t)t * H : NULL, g, b, eps, H);
}

static void cpu_gelu(float *x, size_t n)
{
    const size_t blk = 1 << 14;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i += blk)
        kn__gelu_block(x + i, n - i < blk ? n - i : blk);
}

static void cpu_tanh(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tanhf(x[i]);
}

/* ---- sliding-window attention ------------------------------------------------------
 * Keys and values are first packed per head for the GEMM's register tiles, once per call
 * (two buffers of T x hidden floats, kept per calling thread: nothing grows with tokens x
 * window):
 *     kp[h]: NR-key panels (d x NR), keys scaled by 1/sqrt(d)     (B of S = Q·Kᵀ)
 *     vp[h]: NR-column chunks of d, every token's row (T x NR)    (B of O = P·V)
 * One task = (sequence, head, block of KN_BQ queries); its keys are the union of the
 * block's windows, [j0, j1) clipped to the sequence, plus the sequence's global tokens.
 * A score row is laid out
 *     [margin NR | global keys ng | window keys j0 .. j1-1 ]
 * Each register tile of MR queries works only on the union of its rows' bands (513 + MR - 1
 * keys for w = 256, against the block's KN_BQ + 2w): its window scores whole key panels at
 * a time (a first panel's keys before j0 land in the margin and global columns and are
 * overwritten by the global scores), band, padding and global keys are dropped in the
 * softmax (other rows' keys become zeros), and the output is P_g·V_g + P_w·V_w, the window
 * product over the tile's band. Sums run over keys in order with no blocking, so the zero
 * terms at a tile band's ends change nothing, and a query's numbers do not depend on where
 * its sequence sits in the batch. */
enum { KN_BQ = 48 }; /* a multiple of every ISA's MR (6, 12) */

typedef struct {
    float *s;         /* (KN_BQ, NR + ng + nk_max + NR) */
    float *kg, *vg;   /* (ng_max, d): local k/v rows of the global tokens */
    float *kb;        /* (nk_max): 0 for a window key, -inf for padding and global keys */
    float inv[KN_BQ]; /* 1 / each row's sum of exps */
    kn_gemm_ws ws;    /* the global products' packed panels */
} kn__tiles;

typedef struct {
    kn_isa isa;
    int mr, nr, tpad; /* register tile; tokens rounded up to nr */
    float *kp, *vp;   /* [nh][tpad/nr][d][nr], [nh][ceil(d/nr)][tpad][nr] */
} kn__kv;

/* The packed keys and values of the calling thread (an engine worker), kept from call
 * to call so that a forward does not fault fresh pages in every layer; freed when the
 * thread exits. */
typedef struct {
    float *kp, *vp;
    size_t cap; /* floats, each */
} kn__kv_cache;

static pthread_key_t kn__kv_key;
static pthread_once_t kn__kv_once = PTHREAD_ONCE_INIT;

static void kn__kv_cache_free(void *arg)
{
    kn__kv_cache *c = arg;
    free(c->kp);
    free(c->vp);
    free(c);
}

static void kn__kv_key_init(void)
{
    if (pthread_key_create(&kn__kv_key, kn__kv_cache_free)) kn__kv_key = 0;
}

/* Buffers of at least n floats each, 64-byte aligned; NULL when out of memory. */
static kn__kv_cache *kn__kv_buffers(size_t n)
{
    pthread_once(&kn__kv_once, kn__kv_key_init);
    kn__kv_cache *c = pthread_getspecific(kn__kv_key);
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return NULL;
        if (pthread_setspecific(kn__kv_key, c)) {
            free(c);
            return NULL;
        }
    }
    if (c->cap < n) {
        free(c->kp);
        free(c->vp);
        const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
        c->kp = aligned_alloc(64, bytes);
        c->vp = aligned_alloc(64, bytes);
        c->cap = c->kp && c->vp ? n : 0;
        if (!c->cap) {
            free(c->kp), free(c->vp);
            c->kp = c->vp = NULL;
            return NULL;
        }
    }
    return c;
}

static int kn__kv_pack(const kn_attn_args *a, kn__kv *p)
{
    const int T = a->offsets[a->nseq], d = a->d, nr = p->nr, tpad = (T + nr - 1) / nr * nr;
    const int nchunk = (d + nr - 1) / nr;
    const size_t per_head = (size_t)tpad * (size_t)nchunk * nr; /* >= tpad * d */
    p->tpad = tpad;
    kn__kv_cache *c = kn__kv_buffers((size_t)a->nh * per_head);
    if (!c) return -1;
    p->kp = c->kp;
    p->vp = c->vp;
    /* panel-major, all heads of a panel at once: each token's k and v rows are read in one
     * sweep (head-major passes over a (T, 3H) buffer missed the cache on every row) */
#pragma omp parallel for schedule(static)
    for (int jp = 0; jp < tpad / nr; jp++)
        for (int h = 0; h < a->nh; h++) {
            float *kpan = p->kp + (size_t)h * per_head + (size_t)jp * d * nr;
            for (int j = 0; j < nr; j++) {
                const int t = jp * nr + j;
                if (t >= T) {
                    for (int e = 0; e < d; e++)
                        kpan[(size_t)e * nr + j] = 0.0f;
                    continue;
                }
                const float *k = a->k + (size_t)t * a->ld + h * d;
                for (int e = 0; e < d; e++)
                    kpan[(size_t)e * nr + j] = k[e] * a->scale;
            }
            for (int c = 0; c < nchunk; c++) {
                float *vrow =
                    p->vp + (size_t)h * per_head + ((size_t)c * tpad + (size_t)jp * nr) * nr;
                const int w = d - c * nr < nr ? d - c * nr : nr; /* columns of d in this chunk */
                for (int j = 0; j < nr; j++) {
                    const int t = jp * nr + j;
                    float *dst = vrow + (size_t)j * nr;
                    if (t < T)
                        memcpy(dst, a->v + (size_t)t * a->ld + h * d + c * nr,
                               sizeof(float) * (size_t)w);
                    for (int e = t < T ? w : 0; e < nr; e++)
                        dst[e] = 0.0f;
                }
            }
        }
    return 0;
}

/* The keys row tile [r0, r0+m) of a block at i0 needs, in window columns (key - j0): the
 * union of its rows' bands, clipped to [0, nk). */
static void kn__tile_band(int w, int i0, int r0, int m, int j0, int nk, int *lo, int *hi)
{
    *lo = i0 + r0 - w - j0;
    *hi = i0 + r0 + m - 1 + w + 1 - j0;
    if (*lo < 0) *lo = 0;
    if (*hi > nk) *hi = nk;
}

/* The softmax row for each ISA: a * b + c contracted into FMAs (ISO C mode does not
 * contract by itself), the AVX-512 and its emulation with the AVX2 path's 8-wide source. */
#if defined(__x86_64__) && defined(__GNUC__)
KN__ATTN_ROW(kn__attn_row_avx512, __attribute__((target("avx512f,fma"))) KN_FP_CONTRACT)
KN__ATTN_ROW(kn__attn_row_avx2, __attribute__((target("avx2,fma"))) KN_FP_CONTRACT)
#define KN__ROW_X86(f) f
#else
#define KN__ROW_X86(f) kn__attn_row_portable
#endif
KN__ATTN_ROW(kn__attn_row_portable, KN_FP_CONTRACT)

typedef float (*kn__attn_row_fn)(float *, int, float *, const float *, int, int, int);
static const kn__attn_row_fn kn__attn_row[KN_ISA_COUNT] = {
    [KN_ISA_PORTABLE] = kn__attn_row_portable,
    [KN_ISA_AVX2] = KN__ROW_X86(kn__attn_row_avx2),
    [KN_ISA_AVX512] = KN__ROW_X86(kn__attn_row_avx512),
    [KN_ISA_AVX512_EMU] = KN__ROW_X86(kn__attn_row_avx2),
};

/* Sequence seq's one-sided window, clipped to the sequence (a longer one sees no more). */
static int kn__seq_w(const kn_attn_args *a, int seq)
{
    const int w = a->seq_w ? a->seq_w[seq] : a->w, n = a->offsets[seq + 1] - a->offsets[seq];
    return w < n ? w : n;
}

/* The global tokens' local keys and values of head h, gathered for the products. */
static void kn__gather_globals(const kn_attn_args *a, int h, int g0, int ng, float *kg, float *vg)
{
    const int d = a->d, ld = a->ld;
    for (int gi = 0; gi < ng; gi++) {
        int g = a->glob[g0 + gi];
        memcpy(kg + (size_t)gi * d, a->k + (size_t)g * ld + h * d, sizeof(float) * d);
        memcpy(vg + (size_t)gi * d, a->v + (size_t)g * ld + h * d, sizeof(float) * d);
    }
}

/* With few global tokens (ng <= KN__FEW_G, Longformer's usual 1..8) the window rows' global
 * scores and products run as plain vector loops, row by row, where kn_gemm_small would pack
 * an NR-column panel for one or two columns: s[r][g] = scale·(q_r·kg_g), 16-lane partial
 * sums then their total; o[r] = Σ_g p[r][g]·vg_g in g order. Row-local, as the products
 * they replace. Both return 0 (kn_gemm_small's signature: the caller ORs the codes). */
enum { KN__FEW_G = 8 };

KN_CLONES static int kn__gscores(int bq, int ng, int d, float scale, const float *q, int ldq,
                                 const float *kg, float *s, int lds)
{
    for (int r = 0; r < bq; r++)
        for (int g = 0; g < ng; g++) {
            const float *x = q + (size_t)r * ldq, *y = kg + (size_t)g * d;
            kn_v16f acc = kn__vsplat16(0.0f), vx, vy;
            int e = 0;
            for (; e + 16 <= d; e += 16) {
                memcpy(&vx, x + e, sizeof vx);
                memcpy(&vy, y + e, sizeof vy);
                acc += vx * vy;
            }
            float t = 0.0f;
            for (int k = 0; k < 16; k++)
                t += acc[k];
            for (; e < d; e++)
                t += x[e] * y[e];
            s[(size_t)r * lds + g] = scale * t;
        }
    return 0;
}

KN_CLONES static int kn__gvalues(int bq, int ng, int d, const float *p, int ldp, const float *vg,
                                 float *o, int ldo)
{
    for (int r = 0; r < bq; r++) {
        float *orow = o + (size_t)r * ldo;
        const float *pr = p + (size_t)r * ldp;
        for (int e = 0; e < d; e++)
            orow[e] = pr[0] * vg[e];
        for (int g = 1; g < ng; g++)
            for (int e = 0; e < d; e++)
                orow[e] += pr[g] * vg[(size_t)g * d + e];
    }
    return 0;
}

/* The keys' own verdict over window keys j0 .. j0+nk-1: kb[c] = 0 for a window key, -inf
 * for padding and global keys; returns 1 (kb not written) when every key is a window key. */
static int kn__key_bias(const uint8_t *kind, int j0, int nk, float *kb)
{
    int all_local = 1;
    for (int c = 0; c < nk; c++)
        all_local &= kind[j0 + c] == KN_TOK_LOCAL;
    for (int c = 0; c < nk && !all_local; c++)
        kb[c] = kind[j0 + c] == KN_TOK_LOCAL ? 0.0f : -INFINITY;
    return all_local;
}

/* Rows i0 .. i0+bq-1 of a block in strips of mr: row r's scores at s + r·ncol (ng global
 * columns, then window columns from key j0) become its exps (zeros over the rest of its
 * strip's band), inv[r] = 1 / their sum; rows of global and padding queries become zeros
 * (inv 0). kb: kn__key_bias's, or NULL when every key is a window key. */
static void kn__band_softmax(const kn_attn_args *a, kn_isa isa, int w, int i0, int bq, int mr,
                             int j0, int nk, int ng, float *s, int ncol, const float *kb,
                             float *inv)
{
    const kn__attn_row_fn attn_row = kn__attn_row[isa];
    for (int r0 = 0; r0 < bq; r0 += mr) {
        const int m = bq - r0 < mr ? bq - r0 : mr;
        int tlo, thi;
        kn__tile_band(w, i0, r0, m, j0, nk, &tlo, &thi);
        for (int r = r0; r < r0 + m; r++) {
            const int i = i0 + r;
            float *row = s + (size_t)r * ncol;
            if (a->kind[i] != KN_TOK_LOCAL && a->kind[i] != KN_TOK_PAD_QUERY) {
                /* padding: zero output; global: overwritten later */
                memset(row, 0, sizeof(float) * (size_t)(ng + nk));
                inv[r] = 0.0f;
                continue;
            }
            int lo = i - w - j0, hi = i + w + 1 - j0; /* the band inside [j0, j1) */
            if (lo < 0) lo = 0;
            if (hi > nk) hi = nk;
            inv[r] = 1.0f / attn_row(row, ng, row + ng + tlo, kb ? kb + tlo : NULL, lo - tlo,
                                     hi - tlo, thi - tlo);
        }
    }
}

/* o's bq rows (row stride ldo, d columns) times inv[r]. */
static void kn__rows_scale(float *o, int ldo, int bq, int d, const float *inv)
{
    for (int r = 0; r < bq; r++) {
        float *orow = o + (size_t)r * ldo;
        for (int e = 0; e < d; e++)
            orow[e] *= inv[r];
    }
}

static int kn__window_task(const kn_attn_args *a, const kn__kv *p, int seq, int h, int i0,
                           kn__tiles *t)
{
    const int d = a->d, ld = a->ld, b = a->offsets[seq], e = a->offsets[seq + 1];
    const int w = kn__seq_w(a, seq);
    const int i1 = i0 + KN_BQ < e ? i0 + KN_BQ : e, bq = i1 - i0;
    const int j0 = i0 - w > b ? i0 - w : b;
    const int j1 = i1 - 1 + w + 1 < e ? i1 + w : e;
    const int nk = j1 - j0, g0 = a->glob_off[seq], ng = a->glob_off[seq + 1] - g0;
    const int nr = p->nr, mr = p->mr;
    const int ncol = nr + ng + nk + nr; /* a row: margin, globals, window, tail room */
    const size_t per_head = (size_t)p->tpad * (size_t)((d + nr - 1) / nr) * nr;
    const float *kp = p->kp + (size_t)h * per_head, *vp = p->vp + (size_t)h * per_head;
    const uint8_t *kind = a->kind;
    float *s = t->s;
    const float *qb = a->q + (size_t)i0 * ld + h * d;
    int rc = 0;

    /* window scores: each row tile over the whole key panels that hold its band (a first
     * panel's keys before j0 land in the margin and global columns, overwritten below) */
    for (int r0 = 0; r0 < bq; r0 += mr) {
        const int m = bq - r0 < mr ? bq - r0 : mr;
        int lo, hi;
        kn__tile_band(w, i0, r0, m, j0, nk, &lo, &hi);
        for (int q = (j0 + lo) / nr; q * nr < j0 + hi; q++)
            kn_gemm_tile(p->isa, m, nr, d, qb + (size_t)r0 * ld, ld, kp + (size_t)q * d * nr,
                         s + (size_t)r0 * ncol + nr + ng + (q * nr - j0), ncol, 0);
    }
    /* global scores over the window panel's first columns */
    kn__gather_globals(a, h, g0, ng, t->kg, t->vg);
    if (ng)
        rc |= ng <= KN__FEW_G ? kn__gscores(bq, ng, d, a->scale, qb, ld, t->kg, s + nr, ncol)
                              : kn_gemm_small(p->isa, bq, ng, d, a->scale, qb, ld, t->kg, d, 1, 0,
                                              s + nr, ncol, &t->ws);

    /* the keys' own verdict (padding and global keys are not window keys), then each row:
     * its band, exps and their sum, zeros over the rest of its row tile's band; the
     * division comes after the products */
    const int all_local = kn__key_bias(kind, j0, nk, t->kb);
    kn__band_softmax(a, p->isa, w, i0, bq, mr, j0, nk, ng, s + nr, ncol, all_local ? NULL : t->kb,
                     t->inv);
    float *o = a->out + (size_t)i0 * a->ldo + h * d;
    if (ng)
        rc |= ng <= KN__FEW_G ? kn__gvalues(bq, ng, d, s + nr, ncol, t->vg, o, a->ldo)
                              : kn_gemm_small(p->isa, bq, d, ng, 1.0f, s + nr, ncol, t->vg, d, 0, 0,
                                              o, a->ldo, &t->ws);
    /* the window product, each row tile over its band only: the sums start and end on
     * other rows' zeros at most, which change nothing */
    const int nchunk = (d + nr - 1) / nr;
    for (int r0 = 0; r0 < bq; r0 += mr) {
        const int m = bq - r0 < mr ? bq - r0 : mr;
        int lo, hi;
        kn__tile_band(w, i0, r0, m, j0, nk, &lo, &hi);
        for (int c = 0; c < nchunk; c++)
            kn_gemm_tile(p->isa, m, d - c * nr < nr ? d - c * nr : nr, hi - lo,
                         s + (size_t)r0 * ncol + nr + ng + lo, ncol,
                         vp + ((size_t)c * p->tpad + (size_t)(j0 + lo)) * nr,
                         o + (size_t)r0 * a->ldo + c * nr, a->ldo, ng > 0);
    }
    kn__rows_scale(o, a->ldo, bq, d, t->inv); /* the softmax's division, once per output */
    return rc;
}

/* The window attention's tasks: for each sequence, head-major blocks of KN_BQ queries; and
 * the largest global count and window over the sequences (scratch sizes). */
typedef struct {
    int n, maxng, maxw;
    int *seq, *blk;
} kn__wtasks;

static int kn__wtasks_make(const kn_attn_args *a, kn__wtasks *t)
{
    *t = (kn__wtasks){0};
    for (int s = 0; s < a->nseq; s++) {
        int n = a->offsets[s + 1] - a->offsets[s];
        t->n += a->nh * ((n + KN_BQ - 1) / KN_BQ);
        int ng = a->glob_off[s + 1] - a->glob_off[s];
        if (ng > t->maxng) t->maxng = ng;
        if (kn__seq_w(a, s) > t->maxw) t->maxw = kn__seq_w(a, s);
    }
    t->seq = malloc(sizeof(int) * (size_t)(t->n ? t->n : 1));
    t->blk = malloc(sizeof(int) * (size_t)(t->n ? t->n : 1));
    if (!t->seq || !t->blk) {
        free(t->seq), free(t->blk);
        return -1;
    }
    int n = 0;
    for (int s = 0; s < a->nseq; s++) {
        int len = a->offsets[s + 1] - a->offsets[s], nb = (len + KN_BQ - 1) / KN_BQ;
        for (int x = 0; x < a->nh * nb; x++) {
            t->seq[n] = s;
            t->blk[n++] = x;
        }
    }
    return 0;
}

/* Task x: its sequence, head and first query row. */
static void kn__wtask_at(const kn_attn_args *a, const kn__wtasks *t, int x, int *s, int *h, int *i0)
{
    const int len = a->offsets[t->seq[x] + 1] - a->offsets[t->seq[x]];
    const int nb = (len + KN_BQ - 1) / KN_BQ;
    *s = t->seq[x];
    *h = t->blk[x] / nb;
    *i0 = a->offsets[*s] + t->blk[x] % nb * KN_BQ;
}

static void kn__wtasks_free(kn__wtasks *t)
{
    free(t->seq), free(t->blk);
}

static int cpu_window_attn(const kn_attn_args *a)
{
    kn__wtasks tl;
    kn__kv p = {.isa = kn_isa_active()};
    p.mr = kn_isa_mr(p.isa);
    p.nr = kn_isa_nr(p.isa);
    if (kn__wtasks_make(a, &tl)) return -1;
    if (kn__kv_pack(a, &p)) {
        kn__wtasks_free(&tl);
        return -1;
    }
    const int maxng = tl.maxng, maxw = tl.maxw;
    const size_t cap_s = (size_t)KN_BQ * (size_t)(maxng + KN_BQ + 2 * maxw + 3 * p.nr);
    const size_t cap_g = (size_t)(maxng ? maxng : 1) * a->d;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        kn__tiles t = {.s = malloc(cap_s * sizeof(float)),
                       .kg = malloc(cap_g * sizeof(float)),
                       .vg = malloc(cap_g * sizeof(float)),
                       .kb = malloc(((size_t)KN_BQ + 2 * (size_t)maxw + 8) * sizeof(float))};
        const int ok = t.s && t.kg && t.vg && t.kb;
        failed |= !ok;
#pragma omp for schedule(dynamic, 1)
        for (int x = 0; x < tl.n; x++) {
            int s, h, i0;
            kn__wtask_at(a, &tl, x, &s, &h, &i0);
            if (ok && kn__window_task(a, &p, s, h, i0, &t)) failed = 1;
        }
        free(t.s);
        free(t.kg);
        free(t.vg);
        free(t.kb);
        kn_gemm_ws_free(&t.ws);
    }
    kn__wtasks_free(&tl);
    return failed ? -1 : 0;
}

/* ---- window attention in bfloat16 (--dtype bf16) ---------------------------------------------
 * The same tasks, rows and softmax as cpu_window_attn, with the two band products on
 * bfloat16 operands summed in float32 (kn_bf16_tile): scores from bf16(q) and bf16(scale·k),
 * outputs from bf16(exp) and bf16(v); global keys, the softmax and the division stay float32.
 * Keys and values are packed once per call, per head:
 *     kh: 16-token blocks of every token's d as pairs, [T16/16][dp/2][16][2]  (T16 = T rounded
 *         up to 16, plus a block of zeros; dp = d rounded up to 2), the B of S = Q·Kᵀ;
 *     vh: 16-column blocks of d over each sequence's token pairs (its first token and the
 *         next, ...; a lone last token pairs with zero), [ceil(d/16)][Σ ceil(n_s/2)][16][2],
 *         the B of O = P·V.
 * A value pair starts on an even token of its own sequence, so a query's numbers do not
 * depend on where its sequence sits in the batch. Score tiles cover whole 32-key (two-block)
 * panels around a strip's band, like the float32 path's panels; value tiles the band's pairs,
 * with P's entries past the band zero. */
enum { KN__BF_MR = 8 };

typedef struct {
    kn_bf16_path path;
    int dp, ncb;       /* d rounded up to 2; 16-column blocks of d */
    size_t kstride;    /* uint16 per head in kh */
    size_t vstride;    /* uint16 per column block in vh: pairs_total·32 */
    uint16_t *kh, *vh; /* [nh][...], [nh][ncb][...] */
    int32_t *pair_off; /* [nseq]: a sequence's first pair */
} kn__kvbf;

static int kn__kvbf_pack(const kn_attn_args *a, kn__kvbf *p, int32_t *pair_off)
{
    const int T = a->offsets[a->nseq], d = a->d, dp = (d + 1) / 2 * 2, ncb = (d + 15) / 16;
    /* a panel may start on the last block: one block of zeros past it */
    const int t32 = (T + 15) / 16 * 16 + 16;
    int pairs = 0;
    for (int s = 0; s < a->nseq; s++) {
        pair_off[s] = pairs;
        pairs += (a->offsets[s + 1] - a->offsets[s] + 1) / 2;
    }
    p->dp = dp;
    p->ncb = ncb;
    p->kstride = (size_t)t32 * dp;
    p->vstride = (size_t)(pairs ? pairs : 1) * 32;
    p->pair_off = pair_off;
    const size_t kn = (size_t)a->nh * p->kstride, vn = (size_t)a->nh * ncb * p->vstride;
    kn__kv_cache *c = kn__kv_buffers(((kn > vn ? kn : vn) + 1) / 2 + 16);
    if (!c) return -1;
    p->kh = (uint16_t *)c->kp;
    p->vh = (uint16_t *)c->vp;
    const kn_bf16_path path = p->path;
    /* keys: every 16-token block, all heads of a token at once (its k row is read in one
     * sweep: head-major passes over a (T, 3H) buffer missed the cache on every row), the
     * pairs of each token scattered to their rows; tokens past T zero */
#pragma omp parallel for schedule(static)
    for (int jb = 0; jb < t32 / 16; jb++) {
        float row[dp];
        uint16_t r16[dp];
        for (int j = 0; j < 16; j++) {
            const int t = jb * 16 + j;
            for (int h = 0; h < a->nh; h++) {
                uint32_t *blk = (uint32_t *)(p->kh + (size_t)h * p->kstride + (size_t)jb * 16 * dp);
                if (t < T) {
                    const float *k = a->k + (size_t)t * a->ld + h * d;
                    for (int e = 0; e < d; e++)
                        row[e] = k[e] * a->scale;
                    if (dp > d) row[d] = 0.0f;
                    kn_bf16_round(path, row, dp, r16);
                } else
                    memset(r16, 0, sizeof r16);
                for (int r = 0; r < dp / 2; r++) {
                    uint32_t pr;
                    memcpy(&pr, r16 + 2 * r, sizeof pr);
                    blk[(size_t)r * 16 + j] = pr;
                }
            }
        }
    }
    /* values: each sequence's pairs, all heads and column blocks of a pair at once */
    for (int s = 0; s < a->nseq; s++) {
        const int b = a->offsets[s], n = a->offsets[s + 1] - b;
#pragma omp parallel for schedule(static) if (n > 256)
        for (int c = 0; c < (n + 1) / 2; c++) {
            const float *r0 = a->v + (size_t)(b + 2 * c) * a->ld;
            const float *r1 = 2 * c + 1 < n ? r0 + a->ld : NULL;
            for (int h = 0; h < a->nh; h++)
                for (int cb = 0; cb < ncb; cb++) {
                    uint16_t *dst = p->vh + ((size_t)h * ncb + cb) * p->vstride +
                                    ((size_t)pair_off[s] + c) * 32;
                    const int cols = d - cb * 16 < 16 ? d - cb * 16 : 16, o = h * d + cb * 16;
                    kn_bf16_pair_rows(path, r0 + o, r1 ? r1 + o : NULL, cols, dst);
                }
        }
    }
    return 0;
}

typedef struct {
    float *s;          /* (KN_BQ, ncol) float32 scores and exps, as kn__tiles' */
    uint16_t *qh, *ph; /* (KN_BQ, dp) bf16(q); (KN__BF_MR, pcol) a strip's bf16 exps */
    float *kg, *vg, *kb;
    float inv[KN_BQ];
    kn_gemm_ws ws;
} kn__tilesbf;

static int kn__window_task_bf16(const kn_attn_args *a, const kn__kvbf *p, kn_isa isa, int seq,
                                int h, int i0, kn__tilesbf *t)
{
    const int d = a->d, ld = a->ld, b = a->offsets[seq], e = a->offsets[seq + 1];
    const int w = kn__seq_w(a, seq), dp = p->dp;
    const int i1 = i0 + KN_BQ < e ? i0 + KN_BQ : e, bq = i1 - i0;
    const int j0 = i0 - w > b ? i0 - w : b;
    const int j1 = i1 - 1 + w + 1 < e ? i1 + w : e;
    const int nk = j1 - j0, g0 = a->glob_off[seq], ng = a->glob_off[seq + 1] - g0;
    const int ncol = 16 + ng + nk + 48; /* margin, globals, window, a last panel's overhang */
    const uint16_t *kh = p->kh + (size_t)h * p->kstride;
    const uint8_t *kind = a->kind;
    const kn_bf16_path path = p->path;
    float *s = t->s;
    int rc = 0;

    for (int r = 0; r < bq; r++) {
        const float *q = a->q + (size_t)(i0 + r) * ld + h * d;
        uint16_t *qr = t->qh + (size_t)r * dp;
        kn_bf16_round(path, q, d, qr);
        if (dp > d) qr[d] = 0;
    }
    /* window scores: each strip over the 32-key panels (16-token blocks q, q+1) holding its
     * band; keys before j0 land in the margin and global columns, overwritten below */
    for (int r0 = 0; r0 < bq; r0 += KN__BF_MR) {
        const int m = bq - r0 < KN__BF_MR ? bq - r0 : KN__BF_MR;
        int lo, hi;
        kn__tile_band(w, i0, r0, m, j0, nk, &lo, &hi);
        for (int q = (j0 + lo) / 16; q * 16 < j0 + hi; q += 2) {
            const uint16_t *b0 = kh + (size_t)q * 16 * dp;
            kn_bf16_tile(path, m, dp / 2, t->qh + (size_t)r0 * dp, dp, b0, b0 + (size_t)16 * dp,
                         s + (size_t)r0 * ncol + 16 + ng + (q * 16 - j0), ncol, 32, 0);
        }
    }
    const float *qb = a->q + (size_t)i0 * ld + h * d;
    kn__gather_globals(a, h, g0, ng, t->kg, t->vg);
    if (ng)
        rc |= ng <= KN__FEW_G ? kn__gscores(bq, ng, d, a->scale, qb, ld, t->kg, s + 16, ncol)
                              : kn_gemm_small(isa, bq, ng, d, a->scale, qb, ld, t->kg, d, 1, 0,
                                              s + 16, ncol, &t->ws);
    const int all_local = kn__key_bias(kind, j0, nk, t->kb);
    kn__band_softmax(a, isa, w, i0, bq, KN__BF_MR, j0, nk, ng, s + 16, ncol,
                     all_local ? NULL : t->kb, t->inv);
    float *o = a->out + (size_t)i0 * a->ldo + h * d;
    const int o_seq = j0 - b; /* window column c is the sequence's token o_seq + c */
    if (ng)
        rc |= ng <= KN__FEW_G ? kn__gvalues(bq, ng, d, s + 16, ncol, t->vg, o, a->ldo)
                              : kn_gemm_small(isa, bq, d, ng, 1.0f, s + 16, ncol, t->vg, d, 0, 0, o,
                                              a->ldo, &t->ws);
    for (int r0 = 0; r0 < bq; r0 += KN__BF_MR) {
        const int m = bq - r0 < KN__BF_MR ? bq - r0 : KN__BF_MR;
        int tlo, thi;
        kn__tile_band(w, i0, r0, m, j0, nk, &tlo, &thi);
        /* the band's pairs: from the even sequence token at or before tlo to the pair
         * holding thi - 1; entries outside [tlo, thi) are zero */
        const int c0 = ((o_seq + tlo) & ~1) - o_seq, c1 = ((o_seq + thi + 1) & ~1) - o_seq;
        const int np = (c1 - c0) / 2, pcol = c1 - c0;
        for (int r = 0; r < m; r++) {
            const float *x = s + (size_t)(r0 + r) * ncol + 16 + ng;
            uint16_t *pr = t->ph + (size_t)r * pcol;
            kn_bf16_round(path, x + c0, pcol, pr);
            if (c0 < tlo) pr[0] = 0;
            if (c1 > thi) pr[pcol - 1] = 0;
        }
        const int pair0 = p->pair_off[seq] + (o_seq + c0) / 2;
        for (int cb = 0; cb < p->ncb; cb += 2) {
            const uint16_t *b0 =
                p->vh + ((size_t)h * p->ncb + cb) * p->vstride + (size_t)pair0 * 32;
            const uint16_t *b1 = cb + 1 < p->ncb ? b0 + p->vstride : b0;
            const int n = d - cb * 16 < 32 ? d - cb * 16 : 32;
            kn_bf16_tile(path, m, np, t->ph, pcol, b0, b1, o + (size_t)r0 * a->ldo + cb * 16,
                         a->ldo, n, ng > 0);
        }
    }
    kn__rows_scale(o, a->ldo, bq, d, t->inv);
    return rc;
}

static int cpu_window_attn_bf16(const kn_attn_args *a)
{
    kn__wtasks tl;
    kn__kvbf p = {.path = kn_bf16_vector_path(kn__bf16_path)};
    const kn_isa isa = kn_isa_active();
    if (kn__wtasks_make(a, &tl)) return -1;
    int32_t *pair_off = malloc(sizeof(int32_t) * (size_t)(a->nseq ? a->nseq : 1));
    if (!pair_off || kn__kvbf_pack(a, &p, pair_off)) {
        free(pair_off);
        kn__wtasks_free(&tl);
        return -1;
    }
    const size_t ncol_max = (size_t)16 + tl.maxng + KN_BQ + 2 * (size_t)tl.maxw + 48;
    const size_t cap_g = (size_t)(tl.maxng ? tl.maxng : 1) * a->d;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        kn__tilesbf t = {.s = malloc((size_t)KN_BQ * ncol_max * sizeof(float)),
                         .qh = malloc((size_t)KN_BQ * p.dp * sizeof(uint16_t)),
                         .ph = malloc((size_t)KN__BF_MR * ncol_max * sizeof(uint16_t)),
                         .kg = malloc(cap_g * sizeof(float)),
                         .vg = malloc(cap_g * sizeof(float)),
                         .kb = malloc(((size_t)KN_BQ + 2 * (size_t)tl.maxw + 8) * sizeof(float))};
        const int ok = t.s && t.qh && t.ph && t.kg && t.vg && t.kb;
        failed |= !ok;
#pragma omp for schedule(dynamic, 1)
        for (int x = 0; x < tl.n; x++) {
            int s, h, i0;
            kn__wtask_at(a, &tl, x, &s, &h, &i0);
            if (ok && kn__window_task_bf16(a, &p, isa, s, h, i0, &t)) failed = 1;
        }
        free(t.s);
        free(t.qh);
        free(t.ph);
        free(t.kg);
        free(t.vg);
        free(t.kb);
        kn_gemm_ws_free(&t.ws);
    }
    free(pair_off);
    kn__wtasks_free(&tl);
    return failed ? -1 : 0;
}

/* ---- global queries ------------------------------------------------------------------
 * With ng global tokens and n tokens, projecting key_global and value_global for every
 * token costs 2·n·d·hidden per head; with few global tokens it is far cheaper to
 * reassociate (Longformer's global rows are usually 1–20):
 *     score_gj = scale·(qg_g·(Wk x_j + bk)) = (scale·Wkᵀ qg_g)·x_j + scale·qg_g·bk
 *     out_g    = Wv·(Σ_j p_gj x_j) + bv          (Σ_j p_gj = 1)
 * costing 2·ng·n·hidden. Sequences with ng < d take that way (kn__global_few, all heads
 * at once); the others project (kn__global_task: one task per sequence and head). */
typedef struct {
    float *s;     /* (ng, n) scores */
    float *k, *v; /* (n, d) */
    float *o;     /* (ng, d) */
} kn__gtiles;

static void kn__global_task(const kn_attn_args *a, int seq, int h, const kn__gtiles *t)
{
    const int d = a->d, Hx = a->hidden, b = a->offsets[seq], n = a->offsets[seq + 1] - b;
    const int g0 = a->glob_off[seq], ng = a->glob_off[seq + 1] - g0;
    const float *X = a->x + (size_t)b * Hx, *qg = a->qg + (size_t)g0 * a->ldqg + h * d;
    const float *wk = a->wkg + (size_t)h * d * Hx, *wv = a->wvg + (size_t)h * d * Hx;
    const float *bk = a->bkg + h * d, *bv = a->bvg + h * d;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, Hx, 1.0f, X, Hx, wk, Hx, 0.0f, t->k,
                d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, Hx, 1.0f, X, Hx, wv, Hx, 0.0f, t->v,
                d);
    for (int j = 0; j < n; j++)
        for (int e = 0; e < d; e++) {
            t->k[(size_t)j * d + e] += bk[e];
            t->v[(size_t)j * d + e] += bv[e];
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ng, n, d, a->scale, qg, a->ldqg, t->k, d,
                0.0f, t->s, n);
    for (int r = 0; r < ng; r++) {
        float *row = t->s + (size_t)r * n;
        for (int j = 0; j < n; j++)
            if (a->kind[b + j] == KN_TOK_PAD || a->kind[b + j] == KN_TOK_PAD_QUERY)
                row[j] = -INFINITY;
        kn__softmax_row(row, n);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ng, d, n, 1.0f, t->s, n, t->v, d, 0.0f,
                t->o, d);
    for (int r = 0; r < ng; r++)
        memcpy(a->out + (size_t)a->glob[g0 + r] * a->ldo + h * d, t->o + (size_t)r * d,
               sizeof(float) * d);
}

/* A sequence with few global tokens (ng < d), all heads at once, reassociated:
 * the heads' ng·nh query rows share each pass over the sequence's x (one read of x per
 * product instead of one per head). The products are the packed GEMM's, split over
 * columns across the threads; every element's sum has a fixed order (keys from the
 * sequence's start), so the numbers do not depend on the split or the batch. */
enum { KN__GCOLS = 256 }; /* columns of a product per thread task */

static int kn__global_few(const kn_attn_args *a, int seq, kn_isa isa)
{
    const int d = a->d, Hx = a->hidden, nh = a->nh, b = a->offsets[seq];
    const int n = a->offsets[seq + 1] - b, g0 = a->glob_off[seq], ng = a->glob_off[seq + 1] - g0;
    const int M = nh * ng; /* rows h·ng + r: head h, global token r */
    const float *X = a->x + (size_t)b * Hx;
    float *U = malloc(sizeof(float) * (size_t)M * Hx); /* scale·Wkᵀ qg, then Σ p x */
    float *S = malloc(sizeof(float) * (size_t)M * n);  /* scores, then probabilities */
    float *O = malloc(sizeof(float) * (size_t)M * d);  /* outputs before the scatter */
    int failed = !U || !S || !O;
    const int ncols = (n + KN__GCOLS - 1) / KN__GCOLS, hcols = (Hx + 127) / 128;
#pragma omp parallel reduction(| : failed) if (!failed)
    {
        kn_gemm_ws ws = {0};
#pragma omp for schedule(static)
        for (int h = 0; h < nh; h++)
            failed |= kn_gemm_small(isa, ng, Hx, d, a->scale, a->qg + (size_t)g0 * a->ldqg + h * d,
                                    a->ldqg, a->wkg + (size_t)h * d * Hx, Hx, 0, 0,
                                    U + (size_t)h * ng * Hx, Hx, &ws) != 0;
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < ncols; c++) {
            const int c0 = c * KN__GCOLS, cn = n - c0 < KN__GCOLS ? n - c0 : KN__GCOLS;
            failed |= kn_gemm_small(isa, M, cn, Hx, 1.0f, U, Hx, X + (size_t)c0 * Hx, Hx, 1, 0,
                                    S + c0, n, &ws) != 0;
        }
#pragma omp for schedule(static)
        for (int row = 0; row < M; row++) {
            const int h = row / ng, r = row % ng;
            const float *qg = a->qg + (size_t)(g0 + r) * a->ldqg + h * d, *bk = a->bkg + h * d;
            float c = 0, *sr = S + (size_t)row * n;
            for (int e = 0; e < d; e++)
                c += qg[e] * bk[e];
            c *= a->scale;
            for (int j = 0; j < n; j++)
                sr[j] = a->kind[b + j] == KN_TOK_PAD || a->kind[b + j] == KN_TOK_PAD_QUERY
                            ? -INFINITY
                            : sr[j] + c;
            kn__softmax_row(sr, n); /* the global token itself is never padding */
        }
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < hcols; c++) {
            const int c0 = c * 128, cn = Hx - c0 < 128 ? Hx - c0 : 128;
            failed |=
                kn_gemm_small(isa, M, cn, n, 1.0f, S, n, X + c0, Hx, 0, 0, U + c0, Hx, &ws) != 0;
        }
#pragma omp for schedule(static)
        for (int h = 0; h < nh; h++) {
            float *oh = O + (size_t)h * ng * d;
            failed |= kn_gemm_small(isa, ng, d, Hx, 1.0f, U + (size_t)h * ng * Hx, Hx,
                                    a->wvg + (size_t)h * d * Hx, Hx, 1, 0, oh, d, &ws) != 0;
            for (int r = 0; r < ng; r++) {
                float *dst = a->out + (size_t)a->glob[g0 + r] * a->ldo + h * d;
                for (int e = 0; e < d; e++)
                    dst[e] = oh[(size_t)r * d + e] + a->bvg[h * d + e];
            }
        }
        kn_gemm_ws_free(&ws);
    }
    free(U);
    free(S);
    free(O);
    return failed ? -1 : 0;
}

static int cpu_global_attn(const kn_attn_args *a)
{
    size_t maxn = 0, maxng = 0;
    for (int s = 0; s < a->nseq; s++) {
        size_t n = (size_t)(a->offsets[s + 1] - a->offsets[s]);
        size_t ng = (size_t)(a->glob_off[s + 1] - a->glob_off[s]);
        if (ng && n > maxn) maxn = n;
        if (ng > maxng) maxng = ng;
    }
    if (!maxng) return 0;
    const size_t d = (size_t)a->d;
    const int ntask = a->nseq * a->nh;
    int failed = 0;
    const kn_isa isa = kn_isa_active();
    for (int s = 0; s < a->nseq; s++) { /* few global tokens: all heads at once */
        const int ng = a->glob_off[s + 1] - a->glob_off[s];
        if (ng > 0 && ng < a->d && kn__global_few(a, s, isa)) failed = 1;
    }
#pragma omp parallel reduction(| : failed)
    {
        kn__gtiles t = {0};
        int ok = 1;
        if (maxng >= d) { /* some sequence takes the per-head way */
            t.s = malloc(sizeof(float) * maxng * maxn);
            t.k = malloc(sizeof(float) * maxn * d);
            t.v = malloc(sizeof(float) * maxn * d);
            t.o = malloc(sizeof(float) * maxng * d);
            ok = t.s && t.k && t.v && t.o;
        }
        failed |= !ok;
#pragma omp for schedule(dynamic, 1)
        for (int x = 0; x < ntask; x++) {
            int s = x / a->nh, ng = a->glob_off[s + 1] - a->glob_off[s];
            if (ok && ng >= a->d) kn__global_task(a, s, x % a->nh, &t); /* many: per head */
        }
        free(t.s);
        free(t.k);
        free(t.v);
        free(t.o);
    }
    return failed ? -1 : 0;
}

/* Chunked attention: tiled per (segment, query chunk) in chunk.c; each segment is computed
 * alone, so a row's numbers never depend on its batch-mates. */
static int cpu_chunk_attn(const kn_chunk_args *a)
{
    return kn__chunk_attn_cpu(a);
}

static void cpu_relu(float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : 0.0f;
}

void kn_ops_init_cpu(kn_ops *ops)
{
    ops->backend = "cpu";
    ops->isa = kn_isa_reason();
    kn_ops_set_host_buffers(ops);
    ops->weight_prepare = cpu_weight_prepare;
    ops->weight_release = cpu_weight_release;
#define cpu_lsh_hash kn__ref_lsh_hash
#define cpu_lsh_sort kn__ref_lsh_sort
#define KN__CPU(name) ops->name = cpu_##name;
    KN_OP_LIST(KN__CPU)
#undef KN__CPU
}

/* "openblas <core>", and a warning when OpenBLAS fell back on an old core for a CPU it
 * does not know although cpuid says the CPU has AVX2. */
static const char *kn__blas_isa(void)
{
    static char buf[160];
    const char *core = openblas_get_corename();
    const int old = core && (strcmp(core, "Prescott") == 0 || strcmp(core, "Core2") == 0 ||
                             strcmp(core, "Nehalem") == 0 || strcmp(core, "Sandybridge") == 0);
    snprintf(buf, sizeof buf, "openblas %s%s", core ? core : "?",
             old && kn_isa_supported(KN_ISA_AVX2)
                 ? " (a CPU-model fallback: this CPU has AVX2; OPENBLAS_CORETYPE overrides it)"
                 : "");
    return buf;
}

void kn_ops_init_cpu_blas(kn_ops *ops)
{
    kn_ops_init_cpu(ops);
    ops->backend = "blas";
    ops->isa = kn__blas_isa();
    ops->weight_prepare = NULL;
    ops->weight_release = NULL;
    ops->linear = blas_linear;
    ops->ffn = NULL; /* OpenBLAS linear layers: the engine composes the block */
}

int kn_ops_init_cpu_bf16(kn_ops *ops, char *err, size_t errlen)
{
    char why[200];
    const kn_bf16_path p = kn_bf16_active(why, sizeof why);
    if (p == KN_BF16_NONE) {
        snprintf(err, errlen, "bf16 needs AMX-BF16 or AVX512_BF16: %s", why);
        return -1;
    }
    static char isa[320];
    kn_ops_init_cpu(ops);
    kn__bf16_path = p;
    snprintf(isa, sizeof isa,
             "linear layers bf16 on %s; attention band products bf16 on %s, softmax float32 "
             "on %s",
             why, kn_bf16_name(kn_bf16_vector_path(p)), kn_isa_reason());
    ops->isa = isa;
    ops->weight_prepare = cpu_weight_prepare_bf16;
    ops->weight_release = cpu_weight_release_bf16;
    ops->linear = cpu_linear_bf16;
    ops->ffn = cpu_ffn_bf16;
    ops->window_attn = cpu_window_attn_bf16;
    return 0;
}
