/* The Reformer forward (hf-semantics Part B) on a packed ragged batch: each sequence padded
 * on its own as Hugging Face pads it (B2) → embeddings with axial positions (B3) →
 * reversible layers (B4) with local (B6) or LSH (B5) attention and the feed-forward (B7) →
 * LayerNorm over both streams → head (B8) → back to the caller's rows.
 *
 * LSH (B5.3-B5.8): rotations drawn as torch draws them after torch.manual_seed(hash_seed)
 * on an AVX2 CPU (engine/torch_rng.c), argmax buckets, counting sort by (round, bucket,
 * position), chunked attention over the sorted rounds, unsort and the rounds' weighted sum.
 * Without hash_seed (config or request) the rotations are those HF draws after
 * torch.manual_seed(ENG_DEFAULT_HASH_SEED) for that sequence alone: one stream, consecutive
 * draws in layer order (B5.10).
 *
 * Decoding (eng__reformer_prefill / _step) reproduces generate()'s cache (B5.11): the new
 * query is hashed against the cached keys' buckets and attends to its sorted chunk. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "torch_rng.h"

/* Everything one forward needs besides the outputs; one owner, freed by rf__free. */
typedef struct {
    int32_t *off;   /* [nseq+1] padded offsets */
    int32_t *ids;   /* [Tp] */
    int32_t *pos;   /* [Tp] position in its sequence */
    uint8_t *keep;  /* [Tp] 1 token, 0 padding */
    uint8_t *mask;  /* [nseq] the sequence has an attention mask (given or made by padding) */
    float *x1, *x2; /* [Tp, H] the two streams */
    float *h;       /* [Tp, H] */
    float *proj;    /* [Tp, 3A] */
    float *att;     /* [Tp, A] */
    float *ffn;     /* [ENG_FFN_ROWS, I] */
    float *fin;     /* [Tp, 2H] */
    float *seq;     /* [nseq, 3H] classifier rows: position 0 (2H), dense (H) */
    kn_chunk_seg *seg;
    eng_mt19937 *rng;  /* [nseq] the default stream of sequences without a seed */
    eng__rf_state *st; /* sequence 0 draws from st (its seed or stream), or NULL */
    int capture;       /* with st: keep sequence 0's projections and buckets in st */
    int layer;         /* the layer being computed */
} rf__bufs;

static void rf__free(rf__bufs *w)
{
    free(w->off), free(w->ids), free(w->pos), free(w->keep), free(w->mask);
    free(w->x1), free(w->x2), free(w->h), free(w->proj), free(w->att), free(w->ffn);
    free(w->fin), free(w->seq), free(w->seg), free(w->rng);
}

/* B2: the padded length of a sequence of n tokens. */
static int rf__padded(const eng_model *m, int n)
{
    return n % m->rf_lcm && n > m->rf_min ? n + (m->rf_lcm - n % m->rf_lcm) : n;
}

/* B5.3 / B5.9: the buckets of a sequence of padded length Lp: the config's num_buckets, or,
 * when it is null, what HF chooses on a freshly loaded model's first call with Lp tokens
 * (2^p with p = bit_length(2·(Lp div C)) - 1, factorised in two when above 2·max(int(sqrt(
 * max_pos div C)), C)). HF keeps that choice in the module for later calls; here every
 * sequence gets its own, so that a result never depends on earlier requests. */
static eng__rf_buckets rf__buckets(const eng_model *m, int Lp)
{
    const hf_reformer *r = &m->cfg.reformer;
    eng__rf_buckets bk = {.n = r->n_buckets};
    for (int i = 0; i < r->n_buckets; i++)
        bk.f[i] = r->num_buckets[i];
    if (!bk.n) {
        const int C = r->lsh_chunk;
        int p = 0;
        for (long long v = 2LL * (Lp / C); v > 1; v >>= 1)
            p++; /* bit_length(v) - 1 */
        const long long lim0 = (long long)sqrt((double)(m->cfg.max_position_embeddings / C));
        const long long limit = 2 * (lim0 > C ? lim0 : C);
        if ((1LL << p) > limit)
            bk.n = 2, bk.f[0] = 1 << (p / 2), bk.f[1] = 1 << (p - p / 2);
        else
            bk.n = 1, bk.f[0] = 1 << p;
    }
    bk.NB = 1, bk.rot2 = 0;
    for (int i = 0; i < bk.n; i++)
        bk.NB *= bk.f[i], bk.rot2 += bk.f[i] / 2;
    return bk;
}

/* B3: word embedding + position embedding (axial: concatenated rows of each axis, the
 * position split row-major over axial_pos_shape). */
static void rf__embed(const eng_model *m, const rf__bufs *w, size_t Tp)
{
    const hf_reformer *r = &m->cfg.reformer;
    const int H = m->H;
    for (size_t t = 0; t < Tp; t++) {
        float *x = w->x1 + t * H;
        const float *e = m->word + (size_t)w->ids[t] * H;
        if (!r->axial) {
            const float *p = m->pos + (size_t)w->pos[t] * H;
            for (int i = 0; i < H; i++)
                x[i] = e[i] + p[i];
            continue;
        }
        int idx[HF_MAX_AXES], p = w->pos[t];
        for (int k = r->n_axes - 1; k >= 0; k--) {
            idx[k] = p % r->axial_shape[k];
            p /= r->axial_shape[k];
        }
        int col = 0;
        for (int k = 0; k < r->n_axes; k++) {
            const float *a = m->axial[k] + (size_t)idx[k] * r->axial_dim[k];
            for (int i = 0; i < r->axial_dim[k]; i++, col++)
                x[col] = e[col] + a[i];
        }
    }
    memcpy(w->x2, w->x1, sizeof(float) * Tp * H);
}

/* B5.1: LSH keys = query_key / sqrt(mean(qk²) + 1e-6) / sqrt(d), per head, in place. */
static void rf__lsh_keys(float *k, size_t Tp, int ld, int nh, int d)
{
    const float sd = sqrtf((float)d);
    for (size_t t = 0; t < Tp; t++)
        for (int h = 0; h < nh; h++) {
            float *v = k + t * ld + (size_t)h * d;
            float ss = 0;
            for (int e = 0; e < d; e++)
                ss += v[e] * v[e];
            const float inv = 1.0f / sqrtf(ss / (float)d + 1e-6f);
            for (int e = 0; e < d; e++)
                v[e] = v[e] * inv / sd;
        }
}

/* Scratch of the LSH heads of one layer, grown to the largest (rounds x length) met and
 * reused for every head and sequence. */
typedef struct {
    size_t cap;    /* slots (rounds x positions) */
    float *q, *o;  /* [cap, 3d] sorted q | k | v, [cap, d] outputs */
    float *lse;    /* [cap] */
    int32_t *pos;  /* [cap] */
    int32_t *slot; /* [cap] */
    int32_t *bkt;  /* [cap] */
    int32_t *cnt;  /* [cnt_cap] */
    size_t cnt_cap;
    float *x, *y;  /* hashing: [RF_HASH_ROWS, d] qk rows, [RF_HASH_ROWS, nH·rot/2] rotated */
    size_t xy_cap; /* floats of y */
    kn_chunk_seg *seg;
    int seg_cap;
} rf__lsh_ws;

enum { RF_HASH_ROWS = 1024 }; /* positions hashed per GEMM */

static void rf__lsh_ws_free(rf__lsh_ws *ws)
{
    free(ws->q), free(ws->o), free(ws->lse), free(ws->pos), free(ws->slot), free(ws->bkt);
    free(ws->cnt), free(ws->x), free(ws->y), free(ws->seg);
    memset(ws, 0, sizeof *ws);
}

/* Room for tot slots, nk + 2 counters, the hashing of nrot rotations and nseg segments; 0 or
 * -1. */
static int rf__lsh_ws_reserve(rf__lsh_ws *ws, size_t tot, size_t nk, int d, int nrot, int nseg)
{
    if (nseg > ws->seg_cap) {
        free(ws->seg);
        ws->seg_cap = 0;
        if (!(ws->seg = malloc(sizeof *ws->seg * (size_t)nseg))) return -1;
        ws->seg_cap = nseg;
    }
    if (tot > ws->cap) {
        free(ws->q), free(ws->o), free(ws->lse), free(ws->pos), free(ws->slot), free(ws->bkt);
        ws->q = malloc(sizeof(float) * tot * 3 * d), ws->o = malloc(sizeof(float) * tot * d);
        ws->lse = malloc(sizeof(float) * tot), ws->pos = malloc(sizeof(int32_t) * tot);
        ws->slot = malloc(sizeof(int32_t) * tot), ws->bkt = malloc(sizeof(int32_t) * tot);
        ws->cap = tot;
        if (!ws->q || !ws->o || !ws->lse || !ws->pos || !ws->slot || !ws->bkt) {
            rf__lsh_ws_free(ws);
            return -1;
        }
    }
    if (nk + 2 > ws->cnt_cap) {
        free(ws->cnt);
        ws->cnt_cap = 0;
        if (!(ws->cnt = malloc(sizeof(int32_t) * (nk + 2)))) return -1;
        ws->cnt_cap = nk + 2;
    }
    const size_t ny = (size_t)RF_HASH_ROWS * (size_t)nrot;
    if (ny > ws->xy_cap) {
        free(ws->x), free(ws->y);
        ws->x = malloc(sizeof(float) * RF_HASH_ROWS * d), ws->y = malloc(sizeof(float) * ny);
        ws->xy_cap = ws->x && ws->y ? ny : 0;
        if (!ws->xy_cap) return -1;
    }
    return 0;
}

/* The rotations of one head as a linear layer's weight: rot ([nh, d, nH, rot/2]) for head hd
 * transposed to (nH·rot/2, d), so that the hash products are one GEMM y = qk · Rᵀ. */
typedef struct {
    float *w;      /* [nh][nH·rot/2][d] */
    kn_weight *wt; /* [nh] */
    int nh;
} rf__rot;

static void rf__rot_free(const kn_ops *k, rf__rot *r)
{
    for (int h = 0; r->wt && h < r->nh; h++)
        if (r->wt[h].prep && k->weight_release) k->weight_release(&r->wt[h]);
    free(r->w), free(r->wt);
    memset(r, 0, sizeof *r);
}

static int rf__rot_make(const kn_ops *k, rf__rot *r, const float *rot, int nh, int d, int nrot)
{
    r->w = malloc(sizeof(float) * (size_t)nh * nrot * d);
    r->wt = calloc((size_t)nh, sizeof *r->wt);
    r->nh = nh;
    if (!r->w || !r->wt) return -1;
    for (int h = 0; h < nh; h++) {
        float *w = r->w + (size_t)h * nrot * d;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < nrot; j++)
                w[(size_t)j * d + i] = rot[((size_t)h * d + i) * nrot + j];
        r->wt[h] = (kn_weight){w, nrot, d, NULL};
        if (k->weight_prepare && k->weight_prepare(&r->wt[h])) return -1;
    }
    return 0;
}

/* The bucket of one factor (half = its buckets / 2; rotations col .. col+half-1 of round h)
 * from the float products y: the argmax of concat(y, -y), the first index winning ties.
 * When the best and the second best are closer than float sums can tell apart (the error
 * bound d·2⁻²⁴·Σ|x·r| stays below about 3e-5·|best| for Gaussian rotations; 1e-4 leaves
 * room), the factor is decided again from products summed in double, as it always was
 * before the GEMM: near ties get that verdict, the others cannot differ from it. */
static int rf__bucket_factor(const float *y, const float *x, const float *rot, int hd, int d,
                             int nH, int h, int rot2, int col, int half)
{
    int best = 0;
    float bv = -INFINITY, second = -INFINITY;
    for (int sign = 1; sign >= -1; sign -= 2)
        for (int j = 0; j < half; j++) {
            const float v = (float)sign * y[col + j];
            if (v > bv) {
                second = bv;
                bv = v, best = (sign < 0 ? half : 0) + j;
            } else if (v > second) {
                second = v;
            }
        }
    if (!(bv - second <= 1e-4f * fabsf(bv))) return best;
    best = 0, bv = -INFINITY; /* a near tie: every product again in double */
    for (int sign = 1; sign >= -1; sign -= 2)
        for (int j = 0; j < half; j++) {
            double acc = 0;
            for (int i = 0; i < d; i++)
                acc += (double)x[i] * rot[(((size_t)hd * d + i) * nH + h) * rot2 + col + j];
            const float v = (float)sign * (float)acc;
            if (v > bv) bv = v, best = (sign < 0 ? half : 0) + j;
        }
    return best;
}

/* B5.3-B5.8 for one head `hd` of sequences s0 .. S-1 whose padded length exceeds the chunk:
 * hash with rot ([nh, d, nH, rot/2]; rw: the same as the table's weights), sort, attend,
 * unsort and combine into att. */
static ls_status rf__lsh_head(eng_ctx *c, const rf__bufs *w, int s0, int S, int hd,
                              const float *rot, const rf__rot *rw, int nH,
                              const eng__rf_buckets *bk, rf__lsh_ws *ws, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const hf_reformer *r = &m->cfg.reformer;
    const int A = m->A, d = m->d, C = r->lsh_chunk;
    const int rot2 = bk->rot2, nb = bk->NB; /* rotations per round / 2, buckets */
    const int nrot = nH * rot2;
    size_t tot = 0;
    int nseg = 0;
    for (int s = s0; s < S; s++)
        if (w->off[s + 1] - w->off[s] > C) tot += (size_t)nH * (w->off[s + 1] - w->off[s]), nseg++;
    if (!tot) return LS_OK;
    if (rf__lsh_ws_reserve(ws, tot, (size_t)nH * (nb + 1), d, nrot, nseg))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "LSH attention: out of memory (%zu slots)", tot);
    float *q = ws->q, *o = ws->o, *lse = ws->lse;
    int32_t *pos = ws->pos, *slot = ws->slot, *bkt = ws->bkt, *cnt = ws->cnt;
    kn_chunk_seg *seg = ws->seg;
    size_t base = 0;
    nseg = 0;
    for (int s = s0; s < S; s++) {
        const int lo = w->off[s], n = w->off[s + 1] - lo;
        if (n <= C) continue;
        int pad = 0; /* B5.3 step 5: a padding bucket when this row has padding */
        for (int t = 0; w->mask[s] && t < n; t++)
            pad |= !w->keep[lo + t];
        const int nbp = nb + pad;
        /* buckets of every (round, position), offset by round: the rotations as one GEMM per
         * block of positions, then the argmax of each factor */
        for (int t0 = 0; t0 < n; t0 += RF_HASH_ROWS) {
            const int rows = n - t0 < RF_HASH_ROWS ? n - t0 : RF_HASH_ROWS;
            for (int t = 0; t < rows; t++)
                memcpy(ws->x + (size_t)t * d,
                       w->proj + (size_t)(lo + t0 + t) * 3 * A + (size_t)hd * d, sizeof(float) * d);
            ENG_OP(c, (&m->ops), linear, ws->x, &rw->wt[hd], NULL, ws->y, rows, nrot, d, NULL, 0);
            for (int t = 0; t < rows; t++) {
                const float *x = ws->x + (size_t)t * d, *yt = ws->y + (size_t)t * nrot;
                for (int h = 0; h < nH; h++) {
                    int b = 0, mul = 1, col = 0;
                    for (int f = 0; f < bk->n; f++) {
                        const int half = bk->f[f] / 2;
                        b += mul * rf__bucket_factor(yt + (size_t)h * rot2, x, rot, hd, d, nH, h,
                                                     rot2, col, half);
                        mul *= bk->f[f];
                        col += half;
                    }
                    if (pad && !w->keep[lo + t0 + t]) b = nb;
                    bkt[base + (size_t)h * n + t0 + t] = h * nbp + b;
                }
            }
        }
        if (w->capture && s == 0) { /* the cache keeps the first n_orig positions' buckets */
            eng__rf_cache *cl = &w->st->lay[w->layer];
            const int n0 = w->st->n;
            for (int h = 0; h < nH; h++)
                for (int t = 0; t < n0; t++) {
                    const int32_t v = bkt[base + (size_t)h * n + t];
                    cl->bkt[((size_t)hd * nH + h) * w->st->cap + t] = v;
                    if (v > cl->bmax) cl->bmax = v;
                }
            cl->has_bkt = 1;
            w->st->bk = *bk;
        }
        /* counting sort by offset bucket, stable in (round, position) */
        const int nk = nH * nbp;
        memset(cnt, 0, sizeof(int32_t) * (nk + 1));
        for (int i = 0; i < nH * n; i++)
            cnt[bkt[base + i] + 1]++;
        for (int k = 0; k < nk; k++)
            cnt[k + 1] += cnt[k];
        for (int i = 0; i < nH * n; i++) {
            const int sl = cnt[bkt[base + i]]++;
            slot[base + i] = sl; /* flat index i = h·n + t sits at slot sl */
            const int t = i % n;
            pos[base + sl] = t;
            const float *x = w->proj + (size_t)(lo + t) * 3 * A + (size_t)hd * d;
            float *dst = q + (base + sl) * 3 * d;
            memcpy(dst, x, sizeof(float) * d);             /* query: raw qk */
            memcpy(dst + d, x + 2 * A, sizeof(float) * d); /* key: normalised */
            memcpy(dst + 2 * d, x + A, sizeof(float) * d); /* value */
        }
        seg[nseg++] = (kn_chunk_seg){q + base * 3 * d,
                                     q + base * 3 * d + d,
                                     q + base * 3 * d + 2 * d,
                                     3 * d,
                                     o + base * d,
                                     d,
                                     lse + base,
                                     pos + base,
                                     w->mask[s] ? w->keep + lo : NULL,
                                     nH * n};
        base += (size_t)nH * n;
    }
    kn_chunk_args a = {seg, nseg, d, C, r->lsh_before, r->lsh_after, r->is_decoder, 1, 1.0f};
    int rc;
    ENG_OP_RC(rc, c, (&m->ops), chunk_attn, &a);
    if (rc) return ls_fail(err, errlen, LS_ERR_NOMEM, "LSH attention: out of scratch memory");
    /* unsort and combine the rounds (B5.8) */
    base = 0;
    for (int s = s0; s < S; s++) {
        const int lo = w->off[s], n = w->off[s + 1] - lo;
        if (n <= C) continue;
        for (int t = 0; t < n; t++) {
            float *dst = w->att + (size_t)(lo + t) * A + (size_t)hd * d;
            if (nH == 1) {
                memcpy(dst, o + (base + slot[base + t]) * d, sizeof(float) * d);
                continue;
            }
            float mx = -INFINITY, l[64];
            for (int h = 0; h < nH; h++) {
                l[h] = lse[base + slot[base + (size_t)h * n + t]];
                if (l[h] > mx) mx = l[h];
            }
            double sum = 0;
            for (int h = 0; h < nH; h++)
                sum += exp((double)(l[h] - mx));
            const float all = mx + (float)log(sum);
            for (int e = 0; e < d; e++)
                dst[e] = 0;
            for (int h = 0; h < nH; h++) {
                const float wt = expf(l[h] - all);
                const float *src = o + (base + slot[base + (size_t)h * n + t]) * d;
                for (int e = 0; e < d; e++)
                    dst[e] += wt * src[e];
            }
        }
        base += (size_t)nH * n;
    }
    return LS_OK;
}

/* What the LSH layers of one forward share: the rotations of the last (seed, rounds) drawn,
 * as drawn and as the table's weights, and the heads' scratch. */
typedef struct {
    float *rot;
    int64_t seed;
    int nH, rot2;
    rf__rot rw;
    rf__lsh_ws ws;
} rf__lsh_state;

static void rf__lsh_state_free(const kn_ops *k, rf__lsh_state *ls)
{
    rf__rot_free(k, &ls->rw);
    rf__lsh_ws_free(&ls->ws);
    free(ls->rot);
    ls->rot = NULL;
}

static ls_status rf__layer(eng_ctx *c, const eng_rf_layer *y, const eng_batch *b, rf__bufs *w,
                           size_t Tp, rf__lsh_state *ls, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    const hf_reformer *r = &m->cfg.reformer;
    const int H = m->H, A = m->A, I = m->I, nh = m->nh, d = m->d;
    const float eps = (float)m->cfg.layer_norm_eps;

    /* Y1 = X1 + Attn(LN(X2)) */
    memcpy(w->h, w->x2, sizeof(float) * Tp * H);
    ENG_OP(c, k, add_layernorm, w->h, NULL, y->ln1_g, y->ln1_b, eps, (int)Tp, H);
    ENG_OP(c, k, linear, w->h, &y->proj, NULL, w->proj, (int)Tp, 3 * A, H, w->off, b->nseq);
    if (w->capture) { /* lsh: query_key | value; local: key | value */
        float *kv = w->st->lay[w->layer].kv;
        for (int t = 0; t < w->st->n; t++)
            memcpy(kv + (size_t)t * 2 * A, w->proj + (size_t)t * 3 * A + (y->lsh ? 0 : A),
                   sizeof(float) * 2 * A);
    }
    kn_chunk_args a = {.seg = w->seg, .nseg = b->nseq * nh, .d = d, .causal = r->is_decoder};
    int hashed = 0;
    if (y->lsh) {
        for (int s = 0; s < b->nseq; s++)
            if (w->off[s + 1] - w->off[s] > r->lsh_chunk) hashed = 1;
        rf__lsh_keys(w->proj + 2 * A, Tp, 3 * A, nh, d);
        a.chunk = r->lsh_chunk, a.before = r->lsh_before, a.after = r->lsh_after;
        a.self_mask = 1, a.key_scale = 1.0f;
    } else {
        a.chunk = r->local_chunk, a.before = r->local_before, a.after = r->local_after;
        a.self_mask = 0, a.key_scale = 1.0f / sqrtf((float)d);
    }
    /* segment layout: lsh q | v | k, local q | k | v */
    const int qo = 0, ko = y->lsh ? 2 * A : A, vo = y->lsh ? A : 2 * A;
    for (int s = 0; s < b->nseq; s++)
        for (int h = 0; h < nh; h++) {
            const size_t o = (size_t)w->off[s];
            const float *base = w->proj + o * 3 * A + (size_t)h * d;
            w->seg[s * nh + h] = (kn_chunk_seg){
                .q = base + qo,
                .k = base + ko,
                .v = base + vo,
                .ld = 3 * A,
                .out = w->att + o * A + (size_t)h * d,
                .ldo = A,
                .lse = NULL,
                .pos = w->pos + o,
                .keep = w->mask[s] ? w->keep + o : NULL,
                .n = w->off[s + 1] - w->off[s],
            };
        }
    if (hashed) { /* the short rows below; the hashed ones per head in rf__lsh_head */
        int ns = 0;
        for (int i = 0; i < b->nseq * nh; i++)
            if (w->seg[i].n <= r->lsh_chunk) w->seg[ns++] = w->seg[i];
        a.nseg = ns;
    }
    int rc;
    ENG_OP_RC(rc, c, k, chunk_attn, &a);
    if (rc) return ls_fail(err, errlen, LS_ERR_NOMEM, "chunked attention: out of scratch memory");
    if (hashed) { /* per sequence: its rounds, buckets and seed (the request's, else the
                     config's) */
        ls_status st = LS_OK;
        for (int s = 0; s < b->nseq && !st; s++) {
            if (w->off[s + 1] - w->off[s] <= r->lsh_chunk) continue;
            /* a decoding keeps the buckets of its first hashing, as HF's module keeps them */
            const eng__rf_buckets bk = s == 0 && w->st && w->st->bk.n
                                           ? w->st->bk
                                           : rf__buckets(m, w->off[s + 1] - w->off[s]);
            if (s == 0 && w->st) w->st->bk = bk;
            const int rot2 = bk.rot2;
            const int nH = b->num_hashes && b->num_hashes[s] > 0 ? b->num_hashes[s] : r->num_hashes;
            const int64_t seed = b->hash_seed && b->hash_seed[s] >= 0 ? b->hash_seed[s]
                                 : r->has_hash_seed                   ? r->hash_seed
                                                                      : -1;
            const size_t nr = (size_t)nh * d * nH * rot2;
            eng_mt19937 *stream = s == 0 && w->st && w->st->seed < 0 ? &w->st->rng
                                  : seed < 0                         ? &w->rng[s]
                                                                     : NULL;
            /* HF re-seeds before each hashing: the same rotations in every layer for a seed;
             * a sequence without one draws the next rotations of its stream in every layer */
            if (stream || !ls->rot || seed != ls->seed || nH != ls->nH || rot2 != ls->rot2) {
                free(ls->rot);
                ls->seed = -1;
                if (!(ls->rot = malloc(sizeof(float) * nr))) {
                    st = ls_fail(err, errlen, LS_ERR_NOMEM, "LSH rotations: out of memory");
                    break;
                }
                if (stream)
                    eng_torch_randn_next(stream, ls->rot, nr, ENG_RANDN_PATH_AVX2);
                else
                    eng_torch_randn((uint64_t)seed, ls->rot, nr);
                rf__rot_free(k, &ls->rw);
                if (rf__rot_make(k, &ls->rw, ls->rot, nh, d, nH * rot2)) {
                    st = ls_fail(err, errlen, LS_ERR_NOMEM, "LSH rotations: out of memory");
                    break;
                }
                ls->seed = stream ? -1 : seed, ls->nH = nH, ls->rot2 = rot2;
            }
            for (int h = 0; h < nh && !st; h++)
                st = rf__lsh_head(c, w, s, s + 1, h, ls->rot, &ls->rw, nH, &bk, &ls->ws, err,
                                  errlen);
        }
        if (st) return st;
    }
    ENG_OP(c, k, linear, w->att, &y->ao, NULL, w->h, (int)Tp, H, A, w->off, b->nseq);
    for (size_t i = 0; i < Tp * H; i++)
        w->x1[i] += w->h[i];

    /* Y2 = X2 + FFN(LN(Y1)), each sequence in pieces of at most ENG_FFN_ROWS rows */
    memcpy(w->h, w->x1, sizeof(float) * Tp * H);
    ENG_OP(c, k, add_layernorm, w->h, NULL, y->ln2_g, y->ln2_b, eps, (int)Tp, H);
    const int relu = strcmp(m->cfg.hidden_act, "relu") == 0;
    for (int s = 0; s < b->nseq; s++)
        for (int r0 = w->off[s]; r0 < w->off[s + 1]; r0 += ENG_FFN_ROWS) {
            const int rows = w->off[s + 1] - r0 < ENG_FFN_ROWS ? w->off[s + 1] - r0 : ENG_FFN_ROWS;
            float *in = w->h + (size_t)r0 * H;
            ENG_OP(c, k, linear, in, &y->ff1, y->ff1_b, w->ffn, rows, I, H, NULL, 0);
            if (relu)
                ENG_OP(c, k, relu, w->ffn, (size_t)rows * I);
            else
                ENG_OP(c, k, gelu, w->ffn, (size_t)rows * I);
            ENG_OP(c, k, linear, w->ffn, &y->ff2, y->ff2_b, in, rows, H, I, NULL, 0);
        }
    for (size_t i = 0; i < Tp * H; i++)
        w->x2[i] += w->h[i];
    return LS_OK;
}

/* The outputs for the caller's rows: per-token rows of the padded layout cut back to each
 * sequence's own tokens (B2 step 5). */
static void rf__unpad(const eng_batch *b, const rf__bufs *w, const float *src, float *dst,
                      int width)
{
    for (int s = 0; s < b->nseq; s++)
        memcpy(dst + (size_t)b->offsets[s] * width, src + (size_t)w->off[s] * width,
               sizeof(float) * (size_t)(b->offsets[s + 1] - b->offsets[s]) * width);
}

static ls_status rf__forward(eng_ctx *c, const eng_batch *b, eng_outputs *out, eng__rf_state *rs,
                             int capture, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    if (b->nseq <= 0 || !b->offsets || b->offsets[0] != 0 || !b->ids)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "empty batch");
    const int S = b->nseq, H = m->H, A = m->A, V = m->V, nl = m->cfg.num_labels;
    size_t Tp = 0;
    for (int s = 0; s < S; s++) {
        const int n = b->offsets[s + 1] - b->offsets[s];
        if (n < 0)
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "batch offsets decrease at %d", s);
        if (n == 0) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "sequence %d is empty", s);
        if (n > m->max_tokens)
            return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                           "sequence %d has %d tokens; the model accepts at most %d", s, n,
                           m->max_tokens);
        Tp += (size_t)rf__padded(m, n);
    }
    const size_t T = (size_t)b->offsets[S];
    for (size_t t = 0; t < T; t++)
        if (b->ids[t] < 0 || b->ids[t] >= V)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input_ids: token id %d at position %zu is outside the vocabulary "
                           "[0, %d)",
                           b->ids[t], t, V);

    rf__bufs w = {
        .off = malloc(sizeof(int32_t) * (S + 1)),
        .ids = malloc(sizeof(int32_t) * Tp),
        .pos = malloc(sizeof(int32_t) * Tp),
        .keep = malloc(Tp),
        .mask = malloc((size_t)S),
        .x1 = malloc(sizeof(float) * Tp * H),
        .x2 = malloc(sizeof(float) * Tp * H),
        .h = malloc(sizeof(float) * Tp * H),
        .proj = malloc(sizeof(float) * Tp * 3 * A),
        .att = malloc(sizeof(float) * Tp * A),
        .ffn = malloc(sizeof(float) * (Tp < ENG_FFN_ROWS ? Tp : ENG_FFN_ROWS) * m->I),
        .fin = malloc(sizeof(float) * Tp * 2 * H),
        .seq = malloc(sizeof(float) * S * 3 * H),
        .seg = malloc(sizeof(kn_chunk_seg) * S * m->nh),
        .rng = malloc(sizeof(eng_mt19937) * S),
        .st = rs,
        .capture = capture,
    };
    /* outputs: (T, width) per-token rows, QA's start | end, or (S, labels) */
    const size_t need = m->head == ENG_HEAD_MLM  ? T * V + Tp * V
                        : m->head == ENG_HEAD_QA ? 2 * T + 2 * Tp
                                                 : T * 2 * H + (size_t)S * nl;
    if (need > c->rf_cap) {
        free(c->rf_out);
        c->rf_out = malloc(sizeof(float) * need);
        c->rf_cap = c->rf_out ? need : 0;
    }
    if (!w.off || !w.ids || !w.pos || !w.keep || !w.mask || !w.x1 || !w.x2 || !w.h || !w.proj ||
        !w.att || !w.ffn || !w.fin || !w.seq || !w.seg || !w.rng || !c->rf_out) {
        rf__free(&w);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for a batch of %zu tokens", Tp);
    }
    /* B2: each sequence padded with pad_token_id and a mask made when the model pads */
    w.off[0] = 0;
    for (int s = 0; s < S; s++) {
        const int lo = b->offsets[s], n = b->offsets[s + 1] - lo, np = rf__padded(m, n);
        w.off[s + 1] = w.off[s] + np;
        w.mask[s] = np > n || b->attn_mask;
        for (int i = 0; i < np; i++) {
            const size_t t = (size_t)w.off[s] + i;
            w.ids[t] = i < n ? b->ids[lo + i] : m->cfg.pad_token_id;
            w.pos[t] = i;
            w.keep[t] = i < n ? (b->attn_mask ? b->attn_mask[lo + i] != 0 : 1) : 0;
        }
    }
    for (int s = 0; s < S; s++)
        eng_mt_seed(&w.rng[s], ENG_DEFAULT_HASH_SEED);
    rf__embed(m, &w, Tp);
    ls_status st = LS_OK;
    rf__lsh_state ls = {.seed = -1};
    for (int l = 0; l < m->L && !st; l++) {
        w.layer = l;
        st = rf__layer(c, &m->rf[l], b, &w, Tp, &ls, err, errlen);
    }
    rf__lsh_state_free(k, &ls);
    if (st) {
        rf__free(&w);
        return st;
    }
    /* final LayerNorm over concat(X1, X2) */
    for (size_t t = 0; t < Tp; t++) {
        memcpy(w.fin + t * 2 * H, w.x1 + t * H, sizeof(float) * H);
        memcpy(w.fin + t * 2 * H + H, w.x2 + t * H, sizeof(float) * H);
    }
    ENG_OP(c, k, add_layernorm, w.fin, NULL, m->rf_ln_g, m->rf_ln_b, (float)m->cfg.layer_norm_eps,
           (int)Tp, 2 * H);
    const float *data[ENG_MAX_OUTPUTS] = {NULL};
    float *o = c->rf_out;
    switch (m->head) {
    case ENG_HEAD_BASE:
    case ENG_HEAD_TOKCLS:
        rf__unpad(b, &w, w.fin, o, 2 * H);
        data[0] = o;
        break;
    case ENG_HEAD_MLM: {
        float *full = o + T * V;
        ENG_OP(c, k, linear, w.fin, &m->mlm_dec, m->mlm_dec_b, full, (int)Tp, V, 2 * H, w.off, S);
        rf__unpad(b, &w, full, o, V);
        data[0] = o;
        break;
    }
    case ENG_HEAD_SEQCLS:
        for (int s = 0; s < S; s++) /* position 0, then dense, tanh, out_proj */
            memcpy(w.seq + (size_t)s * 2 * H, w.fin + (size_t)w.off[s] * 2 * H,
                   sizeof(float) * 2 * H);
        float *dense = w.seq + (size_t)S * 2 * H;
        ENG_OP(c, k, linear, w.seq, &m->cls_dense, m->cls_dense_b, dense, S, H, 2 * H, NULL, 0);
        ENG_OP(c, k, tanh, dense, (size_t)S * H);
        ENG_OP(c, k, linear, dense, &m->cls_out, m->cls_out_b, o, S, nl, H, NULL, 0);
        data[0] = o;
        break;
    case ENG_HEAD_QA: {
        float *full = o + 2 * T; /* (Tp, 2) */
        ENG_OP(c, k, linear, w.fin, &m->qa, m->qa_b, full, (int)Tp, 2, 2 * H, w.off, S);
        for (int s = 0; s < S; s++)
            for (int i = 0; i < b->offsets[s + 1] - b->offsets[s]; i++) {
                const size_t src = (size_t)w.off[s] + i, dst = (size_t)b->offsets[s] + i;
                o[dst] = full[2 * src];
                o[T + dst] = full[2 * src + 1];
            }
        data[0] = o;
        data[1] = o + T;
        break;
    }
    }
    rf__free(&w);
    out->n = m->nouts;
    for (int i = 0; i < m->nouts; i++) {
        const eng_output_desc *d = &m->outs[i];
        out->t[i] = (eng_tensor){d->name, d->per_token, d->width, data[i], d->id};
    }
    return LS_OK;
}

ls_status eng__reformer_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out, char *err,
                                size_t errlen)
{
    return rf__forward(c, b, out, NULL, 0, err, errlen);
}

/* ---- decoding: HF's generate() with past_buckets_states (B5.11) ----------------------------- */

eng__rf_state *eng__rf_state_new(const eng_model *m, int nH, int64_t seed)
{
    eng__rf_state *s = calloc(1, sizeof *s);
    if (!s || !(s->lay = calloc((size_t)m->L, sizeof *s->lay))) {
        free(s);
        return NULL;
    }
    s->L = m->L, s->nH = nH, s->seed = seed;
    if (m->cfg.reformer.n_buckets) s->bk = rf__buckets(m, 0); /* null: the prefill chooses */
    eng_mt_seed(&s->rng, ENG_DEFAULT_HASH_SEED);
    return s;
}

void eng__rf_state_free(eng__rf_state *s)
{
    if (!s) return;
    for (int l = 0; l < s->L; l++)
        free(s->lay[l].kv), free(s->lay[l].bkt);
    free(s->lay);
    free(s->rot);
    free(s);
}

/* Room for `need` positions in every layer's cache (grown by half again). */
static ls_status rf__state_grow(const eng_model *m, eng__rf_state *s, int need, char *err,
                                size_t errlen)
{
    if (need <= s->cap) return LS_OK;
    int cap = s->cap + s->cap / 2 > need ? s->cap + s->cap / 2 : need;
    if (cap < 64) cap = 64;
    if (cap > m->max_tokens) cap = m->max_tokens > need ? m->max_tokens : need;
    const size_t A = (size_t)m->A, nb = (size_t)m->nh * s->nH;
    for (int l = 0; l < m->L; l++) {
        eng__rf_cache *cl = &s->lay[l];
        float *kv = realloc(cl->kv, sizeof(float) * cap * 2 * A);
        if (!kv) return ls_fail(err, errlen, LS_ERR_NOMEM, "decoding cache: out of memory");
        cl->kv = kv;
        if (!m->rf[l].lsh) continue;
        int32_t *b = malloc(sizeof(int32_t) * nb * cap);
        if (!b) return ls_fail(err, errlen, LS_ERR_NOMEM, "decoding cache: out of memory");
        for (size_t i = 0; cl->bkt && i < nb; i++) /* rows [head][round] keep their stride */
            memcpy(b + i * cap, cl->bkt + i * s->cap, sizeof(int32_t) * s->n);
        free(cl->bkt);
        cl->bkt = b;
    }
    s->cap = cap;
    return LS_OK;
}

static ls_status rf__prefill_batch(eng_ctx *c, eng__rf_state *s, const int32_t *ids, int n,
                                   int capture, float *logits, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    if (m->head != ENG_HEAD_MLM)
        return ls_fail(err, errlen, LS_ERR_UNSUPPORTED, "the model has no language-model head");
    int32_t off[2] = {0, n}, nH = s->nH;
    int64_t seed = s->seed;
    eng_batch b = {.nseq = 1, .offsets = off, .ids = ids, .num_hashes = &nH, .hash_seed = &seed};
    eng_outputs out;
    ls_status st = rf__forward(c, &b, &out, s, capture, err, errlen);
    if (st) return st;
    memcpy(logits, out.t[0].data + (size_t)(n - 1) * m->V, sizeof(float) * m->V);
    return LS_OK;
}

ls_status eng__reformer_prefill(eng_ctx *c, eng__rf_state *s, const int32_t *ids, int n,
                                float *logits, char *err, size_t errlen)
{
    if (n <= 0) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "the prompt has no tokens");
    ls_status st = rf__state_grow(c->m, s, n, err, errlen);
    if (st) return st;
    s->n = n; /* the forward's capture keeps the first n positions */
    for (int l = 0; l < s->L; l++)
        s->lay[l].has_bkt = 0, s->lay[l].bmax = 0;
    st = rf__prefill_batch(c, s, ids, n, 1, logits, err, errlen);
    if (st) s->n = 0;
    return st;
}

ls_status eng__reformer_last_logits(eng_ctx *c, eng__rf_state *s, const int32_t *ids, int n,
                                    float *logits, char *err, size_t errlen)
{
    return rf__prefill_batch(c, s, ids, n, 0, logits, err, errlen);
}

/* lse and p = exp(z - lse) in place over z[0..n), as the chunk_attn op computes them. */
static float rf__softmax(float *z, int n)
{
    float mx = z[0];
    for (int j = 1; j < n; j++)
        if (z[j] > mx) mx = z[j];
    double sum = 0;
    for (int j = 0; j < n; j++)
        sum += exp((double)(z[j] - mx));
    const float lse = mx + (float)log(sum);
    for (int j = 0; j < n; j++)
        z[j] = (float)exp((double)(z[j] - lse));
    return lse;
}

static float rf__dot(const float *a, const float *b, int d)
{
    double acc = 0;
    for (int e = 0; e < d; e++)
        acc += (double)a[e] * (double)b[e];
    return (float)acc;
}

/* The bucket of qk vector x (head hd, round h) under rotations rot ([nh, d, nH, rot/2]):
 * argmax of concat(y, -y) per factor, combined (B5.3), without the round's offset. */
static int rf__bucket(const eng__rf_buckets *bk, const float *x, const float *rot, int hd, int h,
                      int nH, int d)
{
    const int rot2 = bk->rot2;
    int b = 0, mul = 1, col = 0;
    for (int f = 0; f < bk->n; f++) {
        const int half = bk->f[f] / 2;
        int best = 0;
        float bv = -INFINITY;
        for (int sign = 1; sign >= -1; sign -= 2)
            for (int j = 0; j < half; j++) {
                double y = 0;
                for (int i = 0; i < d; i++)
                    y += (double)x[i] * rot[(((size_t)hd * d + i) * nH + h) * rot2 + col + j];
                const float v = (float)sign * (float)y;
                if (v > bv) bv = v, best = (sign < 0 ? half : 0) + j;
            }
        b += mul * best;
        mul *= bk->f[f];
        col += half;
    }
    return b;
}

/* Scratch of one decoding step. */
typedef struct {
    float *x1, *x2, *h, *proj, *att, *ffn, *fin, *z, *keys, *o, *rot;
    int32_t *sorted, *cnt, *kpos;
    float lse[64];
} rf__step_bufs;

/* The new query (position p) of LSH layer l, head hd, against the cache (B5.11): with
 * buckets, its chunk in every round's sorted order; without, every cached key. */
static void rf__lsh_step_head(const eng_model *m, eng__rf_state *s, int l, int hd, int inc,
                              rf__step_bufs *t, int p)
{
    const hf_reformer *r = &m->cfg.reformer;
    eng__rf_cache *cl = &s->lay[l];
    const int A = m->A, d = m->d, nH = s->nH, C = r->lsh_chunk, Lt = p + 1;
    const float *q = t->proj + (size_t)hd * d;
    float *o = t->att + (size_t)hd * d;
    const int NB = s->bk.NB;
    /* keys: normalised query_key of each position (B5.1) */
    const float sd = sqrtf((float)d);
#define RF__KEY(dst, pos)                                                                          \
    do {                                                                                           \
        const float *x_ = cl->kv + (size_t)(pos)*2 * A + (size_t)hd * d;                           \
        float ss_ = 0;                                                                             \
        for (int e_ = 0; e_ < d; e_++)                                                             \
            ss_ += x_[e_] * x_[e_];                                                                \
        const float inv_ = 1.0f / sqrtf(ss_ / (float)d + 1e-6f);                                   \
        for (int e_ = 0; e_ < d; e_++)                                                             \
            (dst)[e_] = x_[e_] * inv_ / sd;                                                        \
    } while (0)
    if (!cl->has_bkt) { /* every position once, the query's own at -1e5 */
        for (int j = 0; j < Lt; j++) {
            RF__KEY(t->keys, j);
            t->z[j] = j == p ? -1e5f : rf__dot(q, t->keys, d);
        }
        rf__softmax(t->z, Lt);
        for (int e = 0; e < d; e++) {
            double acc = 0;
            for (int j = 0; j < Lt; j++)
                acc += (double)t->z[j] * cl->kv[(size_t)j * 2 * A + A + (size_t)hd * d + e];
            o[e] = (float)acc;
        }
        return;
    }
    const int K = C * (1 + r->lsh_before + r->lsh_after);
    for (int h = 0; h < nH; h++) {
        int32_t *row = cl->bkt + ((size_t)hd * nH + h) * s->cap;
        row[p] = rf__bucket(&s->bk, q, t->rot, hd, h, nH, d) + h * (NB + inc);
        /* stable counting sort of the round's Lt bucket ids, the new one last */
        int hi = 0;
        for (int j = 0; j < Lt; j++)
            if (row[j] > hi) hi = row[j];
        memset(t->cnt, 0, sizeof(int32_t) * (hi + 2));
        for (int j = 0; j < Lt; j++)
            t->cnt[row[j] + 1]++;
        for (int k = 0; k < hi + 1; k++)
            t->cnt[k + 1] += t->cnt[k];
        int slot = 0;
        for (int j = 0; j < Lt; j++) {
            const int sl = t->cnt[row[j]]++;
            t->sorted[sl] = j;
            if (j == p) slot = sl;
        }
        /* the query's chunk and the ones before/after, modulo the cached length */
        const int start = (slot / C - r->lsh_before) * C;
        for (int j = 0; j < K; j++) {
            const int sl = ((start + j) % Lt + Lt) % Lt;
            t->kpos[j] = t->sorted[sl];
        }
        float *z = t->z;
        for (int j = 0; j < K; j++) {
            RF__KEY(t->keys, t->kpos[j]);
            z[j] = t->kpos[j] == p ? -1e5f : rf__dot(q, t->keys, d);
        }
        t->lse[h] = rf__softmax(z, K);
        float *oh = t->o + (size_t)h * d;
        for (int e = 0; e < d; e++) {
            double acc = 0;
            for (int j = 0; j < K; j++)
                acc += (double)z[j] * cl->kv[(size_t)t->kpos[j] * 2 * A + A + (size_t)hd * d + e];
            oh[e] = (float)acc;
        }
    }
#undef RF__KEY
    if (nH == 1) {
        memcpy(o, t->o, sizeof(float) * d);
        return;
    }
    float mx = -INFINITY;
    for (int h = 0; h < nH; h++)
        if (t->lse[h] > mx) mx = t->lse[h];
    double sum = 0;
    for (int h = 0; h < nH; h++)
        sum += exp((double)(t->lse[h] - mx));
    const float all = mx + (float)log(sum);
    for (int e = 0; e < d; e++)
        o[e] = 0;
    for (int h = 0; h < nH; h++) {
        const float wt = expf(t->lse[h] - all);
        for (int e = 0; e < d; e++)
            o[e] += wt * t->o[(size_t)h * d + e];
    }
}

/* The rotations of one hashing call: the seed's (drawn once) or the stream's next. */
static ls_status rf__step_rot(const eng_model *m, eng__rf_state *s, rf__step_bufs *t, char *err,
                              size_t errlen)
{
    const size_t nr = (size_t)m->nh * m->d * s->nH * s->bk.rot2;
    if (s->seed >= 0) {
        if (!s->rot) {
            if (!(s->rot = malloc(sizeof(float) * nr)))
                return ls_fail(err, errlen, LS_ERR_NOMEM, "LSH rotations: out of memory");
            eng_torch_randn((uint64_t)s->seed, s->rot, nr);
        }
        t->rot = s->rot;
        return LS_OK;
    }
    eng_torch_randn_next(&s->rng, t->rot, nr, ENG_RANDN_PATH_AVX2);
    return LS_OK;
}

static ls_status rf__step_layer(eng_ctx *c, eng__rf_state *s, int l, rf__step_bufs *t, int p,
                                char *err, size_t errlen)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    const hf_reformer *r = &m->cfg.reformer;
    const eng_rf_layer *y = &m->rf[l];
    eng__rf_cache *cl = &s->lay[l];
    const int H = m->H, A = m->A, I = m->I, nh = m->nh, d = m->d, Lt = p + 1;
    const float eps = (float)m->cfg.layer_norm_eps;

    memcpy(t->h, t->x2, sizeof(float) * H);
    ENG_OP(c, k, add_layernorm, t->h, NULL, y->ln1_g, y->ln1_b, eps, 1, H);
    ENG_OP(c, k, linear, t->h, &y->proj, NULL, t->proj, 1, 3 * A, H, NULL, 0);
    memcpy(cl->kv + (size_t)p * 2 * A, t->proj + (y->lsh ? 0 : A), sizeof(float) * 2 * A);
    if (y->lsh) {
        const int had = cl->has_bkt;
        int inc = 0;
        if (had) { /* a cached padding bucket widens the query's round offsets (HF's check) */
            inc = cl->bmax > s->nH * s->bk.NB - 1;
            ls_status st = rf__step_rot(m, s, t, err, errlen);
            if (st) return st;
        }
        for (int hd = 0; hd < nh; hd++)
            rf__lsh_step_head(m, s, l, hd, inc, t, p);
        if (had) {
            for (int hd = 0; hd < nh; hd++)
                for (int h = 0; h < s->nH; h++) {
                    const int32_t v = cl->bkt[((size_t)hd * s->nH + h) * s->cap + p];
                    if (v > cl->bmax) cl->bmax = v;
                }
        } else if (Lt >= r->lsh_chunk) { /* the cache reaches a chunk: hash every position */
            /* HF fails here when num_buckets is null and nothing chose it yet */
            if (s->bk.n == 0)
                return ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                               "decoding reaches the LSH chunk (%d) and num_buckets is null in "
                               "config.json with a prompt too short to choose it (Hugging Face "
                               "fails there too): give a prompt longer than the chunk",
                               r->lsh_chunk);
            ls_status st = rf__step_rot(m, s, t, err, errlen);
            if (st) return st;
            const int NB = s->bk.NB;
            cl->bmax = 0;
            for (int hd = 0; hd < nh; hd++)
                for (int h = 0; h < s->nH; h++)
                    for (int j = 0; j < Lt; j++) {
                        const float *x = cl->kv + (size_t)j * 2 * A + (size_t)hd * d;
                        const int32_t v = rf__bucket(&s->bk, x, t->rot, hd, h, s->nH, d) + h * NB;
                        cl->bkt[((size_t)hd * s->nH + h) * s->cap + j] = v;
                        if (v > cl->bmax) cl->bmax = v;
                    }
            cl->has_bkt = 1;
        }
    } else { /* local (B6): the cached chunks before the query's, as HF slices them */
        const int C = r->local_chunk;
        int s0 = (p / C - r->local_before) * C;
        if (s0 < 0) s0 = p + s0 > 0 ? p + s0 : 0; /* Python's negative slice start */
        const int nk = Lt - s0;
        const float scale = 1.0f / sqrtf((float)d);
        for (int hd = 0; hd < nh; hd++) {
            const float *q = t->proj + (size_t)hd * d;
            for (int j = 0; j < nk; j++) {
                const float *kk = cl->kv + (size_t)(s0 + j) * 2 * A + (size_t)hd * d;
                double acc = 0;
                for (int e = 0; e < d; e++)
                    acc += (double)q[e] * (double)(kk[e] * scale);
                t->z[j] = (float)acc;
            }
            rf__softmax(t->z, nk);
            for (int e = 0; e < d; e++) {
                double acc = 0;
                for (int j = 0; j < nk; j++)
                    acc +=
                        (double)t->z[j] * cl->kv[(size_t)(s0 + j) * 2 * A + A + (size_t)hd * d + e];
                t->att[(size_t)hd * d + e] = (float)acc;
            }
        }
    }
    ENG_OP(c, k, linear, t->att, &y->ao, NULL, t->h, 1, H, A, NULL, 0);
    for (int i = 0; i < H; i++)
        t->x1[i] += t->h[i];
    memcpy(t->h, t->x1, sizeof(float) * H);
    ENG_OP(c, k, add_layernorm, t->h, NULL, y->ln2_g, y->ln2_b, eps, 1, H);
    ENG_OP(c, k, linear, t->h, &y->ff1, y->ff1_b, t->ffn, 1, I, H, NULL, 0);
    if (strcmp(m->cfg.hidden_act, "relu") == 0)
        ENG_OP(c, k, relu, t->ffn, (size_t)I);
    else
        ENG_OP(c, k, gelu, t->ffn, (size_t)I);
    ENG_OP(c, k, linear, t->ffn, &y->ff2, y->ff2_b, t->h, 1, H, I, NULL, 0);
    for (int i = 0; i < H; i++)
        t->x2[i] += t->h[i];
    return LS_OK;
}

ls_status eng__reformer_step(eng_ctx *c, eng__rf_state *s, int32_t id, float *logits, char *err,
                             size_t errlen)
{
    const eng_model *m = c->m;
    const kn_ops *k = &m->ops;
    const hf_reformer *r = &m->cfg.reformer;
    const int H = m->H, A = m->A, p = s->n;
    if (id < 0 || id >= m->V)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "token id %d is outside the vocabulary [0, %d)", id, m->V);
    if (p <= 0) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "decoding step before prefill");
    if (p >= m->max_tokens)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE, "the sequence reached the model's %d tokens",
                       m->max_tokens);
    if (s->nH > 64)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "num_hashes %d: at most 64", s->nH);
    ls_status st = rf__state_grow(m, s, p + 1, err, errlen);
    if (st) return st;
    const int NB = s->bk.NB, rot2 = s->bk.rot2;
    const int K = r->lsh_chunk * (1 + r->lsh_before + r->lsh_after);
    const size_t nz = (size_t)(p + 1 > K ? p + 1 : K);
    const size_t nrange = (size_t)s->nH * (NB + 1) + 2;
    rf__step_bufs t = {
        .x1 = malloc(sizeof(float) * H),
        .x2 = malloc(sizeof(float) * H),
        .h = malloc(sizeof(float) * H),
        .proj = malloc(sizeof(float) * 3 * A),
        .att = malloc(sizeof(float) * A),
        .ffn = malloc(sizeof(float) * m->I),
        .fin = malloc(sizeof(float) * 2 * H),
        .z = malloc(sizeof(float) * nz),
        .keys = malloc(sizeof(float) * m->d),
        .o = malloc(sizeof(float) * (size_t)s->nH * m->d),
        .rot = malloc(sizeof(float) * ((size_t)m->nh * m->d * s->nH * rot2 + 1)),
        .sorted = malloc(sizeof(int32_t) * (p + 1)),
        .cnt = malloc(sizeof(int32_t) * nrange),
        .kpos = malloc(sizeof(int32_t) * (K + 1)),
    };
    if (!t.x1 || !t.x2 || !t.h || !t.proj || !t.att || !t.ffn || !t.fin || !t.z || !t.keys ||
        !t.o || !t.rot || !t.sorted || !t.cnt || !t.kpos) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "decoding step: out of memory");
        goto done;
    }
    float *rot_own = t.rot;
    int32_t pos = p;
    rf__bufs e = {.ids = &id, .pos = &pos, .x1 = t.x1, .x2 = t.x2};
    rf__embed(m, &e, 1);
    for (int l = 0; l < m->L && !st; l++)
        st = rf__step_layer(c, s, l, &t, p, err, errlen);
    t.rot = rot_own;
    if (st) goto done;
    memcpy(t.fin, t.x1, sizeof(float) * H);
    memcpy(t.fin + H, t.x2, sizeof(float) * H);
    ENG_OP(c, k, add_layernorm, t.fin, NULL, m->rf_ln_g, m->rf_ln_b, (float)m->cfg.layer_norm_eps,
           1, 2 * H);
    ENG_OP(c, k, linear, t.fin, &m->mlm_dec, m->mlm_dec_b, logits, 1, m->V, 2 * H, NULL, 0);
    s->n = p + 1;
done:
    free(t.x1), free(t.x2), free(t.h), free(t.proj), free(t.att), free(t.ffn), free(t.fin);
    free(t.z), free(t.keys), free(t.o), free(t.rot), free(t.sorted), free(t.cnt), free(t.kpos);
    return st;
}
