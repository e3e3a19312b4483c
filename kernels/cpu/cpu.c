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

static void cpu_add_layernorm(float *x, const float *res, const float *g, const float *b, float eps,
                              int T, int H)
{
#pragma omp parallel for schedule(static) if ((size_t)T * H > 65536)
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * H;
        const float *s = res ? res + (size_t)t * H : NULL;
        float sum = 0;
        if (s)
            for (int h = 0; h < H; h++)
                r[h] += s[h];
        for (int h = 0; h < H; h++)
            sum += r[h];
        float mean = sum / H, var = 0;
        for (int h = 0; h < H; h++)
            var += (r[h] - mean) * (r[h] - mean);
        float inv = 1.0f / sqrtf(var / H + eps);
        for (int h = 0; h < H; h++)
            r[h] = (r[h] - mean) * inv * g[h] + b[h];
    }
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
#pragma omp parallel for schedule(static) collapse(2)
    for (int h = 0; h < a->nh; h++)
        for (int jp = 0; jp < tpad / nr; jp++) {
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
KN__ATTN_ROW(kn__attn_row_avx512,
             __attribute__((target("avx512f,fma"), optimize("fp-contract=fast"))))
KN__ATTN_ROW(kn__attn_row_avx2, __attribute__((target("avx2,fma"), optimize("fp-contract=fast"))))
#define KN__ROW_X86(f) f
#else
#define KN__ROW_X86(f) kn__attn_row_portable
#endif
KN__ATTN_ROW(kn__attn_row_portable, __attribute__((optimize("fp-contract=fast"))))

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
    for (int gi = 0; gi < ng; gi++) {
        int g = a->glob[g0 + gi];
        memcpy(t->kg + (size_t)gi * d, a->k + (size_t)g * ld + h * d, sizeof(float) * d);
        memcpy(t->vg + (size_t)gi * d, a->v + (size_t)g * ld + h * d, sizeof(float) * d);
    }
    if (ng)
        rc |= kn_gemm_small(p->isa, bq, ng, d, a->scale, qb, ld, t->kg, d, 1, 0, s + nr, ncol,
                            &t->ws);

    /* the keys' own verdict (padding and global keys are not window keys), then each row:
     * its band, exps and their sum, zeros over the rest of its row tile's band; the
     * division comes after the products */
    float *kb = t->kb;
    int all_local = 1;
    for (int c = 0; c < nk; c++)
        all_local &= kind[j0 + c] == KN_TOK_LOCAL;
    for (int c = 0; c < nk && !all_local; c++)
        kb[c] = kind[j0 + c] == KN_TOK_LOCAL ? 0.0f : -INFINITY;
    const kn__attn_row_fn attn_row = kn__attn_row[p->isa];
    for (int r0 = 0; r0 < bq; r0 += mr) {
        const int m = bq - r0 < mr ? bq - r0 : mr;
        int tlo, thi;
        kn__tile_band(w, i0, r0, m, j0, nk, &tlo, &thi);
        for (int r = r0; r < r0 + m; r++) {
            const int i = i0 + r;
            float *row = s + (size_t)r * ncol + nr;
            if (kind[i] != KN_TOK_LOCAL && kind[i] != KN_TOK_PAD_QUERY) {
                /* padding: zero output; global: overwritten later */
                memset(row, 0, sizeof(float) * (size_t)(ng + nk));
                t->inv[r] = 0.0f;
                continue;
            }
            int lo = i - w - j0, hi = i + w + 1 - j0; /* the band inside [j0, j1) */
            if (lo < 0) lo = 0;
            if (hi > nk) hi = nk;
            t->inv[r] = 1.0f / attn_row(row, ng, row + ng + tlo, all_local ? NULL : kb + tlo,
                                        lo - tlo, hi - tlo, thi - tlo);
        }
    }
    float *o = a->out + (size_t)i0 * a->ldo + h * d;
    if (ng)
        rc |=
            kn_gemm_small(p->isa, bq, d, ng, 1.0f, s + nr, ncol, t->vg, d, 0, 0, o, a->ldo, &t->ws);
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
    for (int r = 0; r < bq; r++) { /* the softmax's division, once per output */
        float *orow = o + (size_t)r * a->ldo;
        const float inv = t->inv[r];
        for (int e = 0; e < d; e++)
            orow[e] *= inv;
    }
    return rc;
}

static int cpu_window_attn(const kn_attn_args *a)
{
    /* task list: for each sequence, head-major blocks */
    int ntask = 0, maxng = 0, maxw = 0;
    for (int s = 0; s < a->nseq; s++) {
        int n = a->offsets[s + 1] - a->offsets[s];
        ntask += a->nh * ((n + KN_BQ - 1) / KN_BQ);
        int ng = a->glob_off[s + 1] - a->glob_off[s];
        if (ng > maxng) maxng = ng;
        if (kn__seq_w(a, s) > maxw) maxw = kn__seq_w(a, s);
    }
    kn__kv p = {.isa = kn_isa_active()};
    p.mr = kn_isa_mr(p.isa);
    p.nr = kn_isa_nr(p.isa);
    int *task_seq = malloc(sizeof(int) * (size_t)(ntask ? ntask : 1));
    int *task_blk = malloc(sizeof(int) * (size_t)(ntask ? ntask : 1));
    if (!task_seq || !task_blk || kn__kv_pack(a, &p)) {
        free(task_seq);
        free(task_blk);
        return -1;
    }
    int n = 0;
    for (int s = 0; s < a->nseq; s++) {
        int len = a->offsets[s + 1] - a->offsets[s], nb = (len + KN_BQ - 1) / KN_BQ;
        for (int x = 0; x < a->nh * nb; x++) {
            task_seq[n] = s;
            task_blk[n++] = x;
        }
    }
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
        for (int x = 0; x < ntask; x++) {
            int s = task_seq[x], len = a->offsets[s + 1] - a->offsets[s];
            int nb = (len + KN_BQ - 1) / KN_BQ, h = task_blk[x] / nb, blk = task_blk[x] % nb;
            if (ok && kn__window_task(a, &p, s, h, a->offsets[s] + blk * KN_BQ, &t)) failed = 1;
        }
        free(t.s);
        free(t.kg);
        free(t.vg);
        free(t.kb);
        kn_gemm_ws_free(&t.ws);
    }
    free(task_seq);
    free(task_blk);
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
    snprintf(isa, sizeof isa, "linear layers bf16 on %s; attention float32 on %s", why,
             kn_isa_reason());
    ops->isa = isa;
    ops->weight_prepare = cpu_weight_prepare_bf16;
    ops->weight_release = cpu_weight_release_bf16;
    ops->linear = cpu_linear_bf16;
    return 0;
}
