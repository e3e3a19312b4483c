/* Reference kernels: the plainest loops that state what each op computes. Every other
 * backend is tested against these; they are never on the serving path. Accumulation is
 * in double so the reference is the more exact side of every comparison. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels.h"
#include "chunk.h"

static void ref_linear(const float *x, const kn_weight *wt, const float *b, float *y, int M, int N,
                       int K, const int32_t *groups, int ngroups)
{
    (void)groups, (void)ngroups; /* every row on its own: trivially batch invariant */
    const float *w = wt->w;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
            y[(size_t)m * N + n] = (float)acc;
        }
}

static void ref_embed(const int32_t *ids, const int32_t *pos_ids, const int32_t *tt,
                      const float *word, const float *pos, const float *type, float *out, int T,
                      int H)
{
    for (int t = 0; t < T; t++) {
        const float *a = word + (size_t)ids[t] * H, *p = pos + (size_t)pos_ids[t] * H;
        const float *c = type + (size_t)(tt ? tt[t] : 0) * H;
        for (int h = 0; h < H; h++)
            out[(size_t)t * H + h] = (a[h] + p[h]) + c[h];
    }
}

static void ref_add_layernorm(float *x, const float *res, const float *g, const float *b, float eps,
                              int T, int H)
{
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * H;
        if (res)
            for (int h = 0; h < H; h++)
                r[h] += res[(size_t)t * H + h];
        double mean = 0, var = 0;
        for (int h = 0; h < H; h++)
            mean += r[h];
        mean /= H;
        for (int h = 0; h < H; h++)
            var += (r[h] - mean) * (r[h] - mean);
        var /= H;
        double inv = 1.0 / sqrt(var + eps);
        for (int h = 0; h < H; h++)
            r[h] = (float)((r[h] - mean) * inv * g[h] + b[h]);
    }
}

static void ref_gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
}

static void ref_tanh(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)tanh(x[i]);
}

static double ref__dot(const float *a, const float *b, int d, float scale)
{
    double acc = 0;
    for (int i = 0; i < d; i++)
        acc += (double)(a[i] * scale) * b[i];
    return acc;
}

/* Softmax over n scores where keep[j] says the key takes part, then out = Σ p_j v_j. */
static void ref__softmax_av(const double *s, const unsigned char *keep, int n,
                            const float *const *vrows, int d, float *out)
{
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++)
        if (keep[j] && s[j] > mx) mx = s[j];
    for (int c = 0; c < d; c++)
        out[c] = 0;
    if (mx == -INFINITY) return;
    for (int j = 0; j < n; j++)
        if (keep[j]) sum += exp(s[j] - mx);
    for (int c = 0; c < d; c++) {
        double acc = 0;
        for (int j = 0; j < n; j++)
            if (keep[j]) acc += exp(s[j] - mx) / sum * vrows[j][c];
        out[c] = (float)acc;
    }
}

/* The reference keeps its score rows in static buffers: single-threaded, and at most
 * REF_MAX_KEYS keys per query (longer sequences are refused). */
enum { REF_MAX_KEYS = 1 << 16 };

static int ref__too_long(const kn_attn_args *a)
{
    for (int q = 0; q < a->nseq; q++)
        if (a->offsets[q + 1] - a->offsets[q] + (a->glob_off[q + 1] - a->glob_off[q]) >=
            REF_MAX_KEYS)
            return 1;
    return 0;
}

static int ref_window_attn(const kn_attn_args *a)
{
    static double s[REF_MAX_KEYS];
    static unsigned char keep[REF_MAX_KEYS];
    static const float *vrows[REF_MAX_KEYS];
    if (ref__too_long(a)) return -1;
    for (int q = 0; q < a->nseq; q++) {
        int b = a->offsets[q], e = a->offsets[q + 1];
        int g0 = a->glob_off[q], g1 = a->glob_off[q + 1], w = a->seq_w ? a->seq_w[q] : a->w;
        for (int i = b; i < e; i++)
            for (int h = 0; h < a->nh; h++) {
                float *o = a->out + (size_t)i * a->ldo + h * a->d;
                if (a->kind[i] != KN_TOK_LOCAL && a->kind[i] != KN_TOK_PAD_QUERY) {
                    if (a->kind[i] == KN_TOK_PAD) memset(o, 0, sizeof(float) * a->d);
                    continue;
                }
                const float *qi = a->q + (size_t)i * a->ld + h * a->d;
                int n = 0;
                for (int gi = g0; gi < g1; gi++) { /* global columns, local k and v */
                    int g = a->glob[gi];
                    s[n] = ref__dot(qi, a->k + (size_t)g * a->ld + h * a->d, a->d, a->scale);
                    keep[n] = 1;
                    vrows[n++] = a->v + (size_t)g * a->ld + h * a->d;
                }
                for (int j = i - w; j <= i + w; j++) {
                    if (j < b || j >= e || a->kind[j] != KN_TOK_LOCAL) continue;
                    s[n] = ref__dot(qi, a->k + (size_t)j * a->ld + h * a->d, a->d, a->scale);
                    keep[n] = 1;
                    vrows[n++] = a->v + (size_t)j * a->ld + h * a->d;
                }
                ref__softmax_av(s, keep, n, vrows, a->d, o);
            }
    }
    return 0;
}

static int ref_global_attn(const kn_attn_args *a)
{
    static double s[REF_MAX_KEYS];
    static unsigned char keep[REF_MAX_KEYS];
    static const float *vrows[REF_MAX_KEYS];
    if (ref__too_long(a)) return -1;
    const int H = a->nh * a->d;
    for (int q = 0; q < a->nseq; q++) {
        int b = a->offsets[q], e = a->offsets[q + 1];
        if (a->glob_off[q + 1] == a->glob_off[q]) continue;
        /* key_global and value_global of every token of the sequence, as HF computes them */
        float *kg = malloc(sizeof(float) * (size_t)(e - b) * H);
        float *vg = malloc(sizeof(float) * (size_t)(e - b) * H);
        if (!kg || !vg) {
            free(kg);
            free(vg);
            return -1;
        }
        const kn_weight wk = {a->wkg, H, a->hidden, NULL}, wv = {a->wvg, H, a->hidden, NULL};
        ref_linear(a->x + (size_t)b * a->hidden, &wk, a->bkg, kg, e - b, H, a->hidden, NULL, 0);
        ref_linear(a->x + (size_t)b * a->hidden, &wv, a->bvg, vg, e - b, H, a->hidden, NULL, 0);
        for (int gi = a->glob_off[q]; gi < a->glob_off[q + 1]; gi++)
            for (int h = 0; h < a->nh; h++) {
                const float *qg = a->qg + (size_t)gi * a->ldqg + h * a->d;
                int n = 0;
                for (int j = b; j < e; j++) {
                    s[n] = ref__dot(qg, kg + (size_t)(j - b) * H + h * a->d, a->d, a->scale);
                    keep[n] = a->kind[j] != KN_TOK_PAD && a->kind[j] != KN_TOK_PAD_QUERY;
                    vrows[n++] = vg + (size_t)(j - b) * H + h * a->d;
                }
                ref__softmax_av(s, keep, n, vrows, a->d,
                                a->out + (size_t)a->glob[gi] * a->ldo + h * a->d);
            }
        free(kg);
        free(vg);
    }
    return 0;
}

/* ---- chunked attention (Reformer) ------------------------------------------------------ */

size_t kn__chunk_keys(const kn_chunk_args *a)
{
    size_t most = 1;
    for (int i = 0; i < a->nseg; i++) {
        const int n = a->seg[i].n;
        size_t k = n > a->chunk ? (size_t)a->chunk * (size_t)(1 + a->before + a->after) : (size_t)n;
        if (k > most) most = k;
    }
    return most;
}

void kn__chunk_seg_ref(const kn_chunk_args *a, const kn_chunk_seg *s, float *z)
{
    const int n = s->n, d = a->d, chunked = n > a->chunk;
    const int C = chunked ? a->chunk : n, nc = n / C;
    const int nb = chunked ? a->before : 0, na = chunked ? a->after : 0;
    for (int i = 0; i < n; i++) {
        const int c = i / C, pi = s->pos[i];
        const float *q = s->q + (size_t)i * s->ld;
        int nk = 0;
        for (int j = -nb; j <= na; j++) {
            const int kc = ((c + j) % nc + nc) % nc;
            for (int r = kc * C; r < kc * C + C; r++) {
                const float *k = s->k + (size_t)r * s->ld;
                double acc = 0;
                for (int e = 0; e < d; e++)
                    acc += (double)q[e] * (double)(k[e] * a->key_scale);
                float v = (float)acc;
                const int pr = s->pos[r];
                if (s->keep && !s->keep[pr]) v = -1e9f;
                if (a->causal && pr > pi) v = -1e9f;
                if (a->self_mask && pr == pi) v = -1e5f;
                z[nk++] = v;
            }
        }
        float m = z[0];
        for (int j = 1; j < nk; j++)
            if (z[j] > m) m = z[j];
        double sum = 0;
        for (int j = 0; j < nk; j++)
            sum += exp((double)(z[j] - m));
        const float lse = m + (float)log(sum); /* float32, as torch.logsumexp */
        if (s->lse) s->lse[i] = lse;
        float *o = s->out + (size_t)i * s->ldo;
        for (int e = 0; e < d; e++) {
            double acc = 0;
            int t = 0;
            for (int j = -nb; j <= na; j++) {
                const int kc = ((c + j) % nc + nc) % nc;
                for (int r = kc * C; r < kc * C + C; r++, t++)
                    acc += exp((double)(z[t] - lse)) * s->v[(size_t)r * s->ld + e];
            }
            o[e] = (float)acc;
        }
    }
}

static int ref_chunk_attn(const kn_chunk_args *a)
{
    float *z = malloc(sizeof(float) * kn__chunk_keys(a));
    if (!z) return -1;
    for (int i = 0; i < a->nseg; i++)
        kn__chunk_seg_ref(a, &a->seg[i], z);
    free(z);
    return 0;
}

static void ref_relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : 0.0f;
}

/* ---- LSH hashing and sorting (Reformer) --------------------------------------------------- */

static int ref__argmax_pm(const float *y, int half)
{
    int best = 0;
    for (int i = 1; i < 2 * half; i++) {
        const float v = i < half ? y[i] : -y[i - half],
                    bv = best < half ? y[best] : -y[best - half];
        if (v > bv) best = i;
    }
    return best;
}

int kn__ref_lsh_hash(const kn_lsh_args *a)
{
    int rot2 = 0, NB = 1;
    for (int f = 0; f < a->nf; f++)
        rot2 += a->factors[f] / 2, NB *= a->factors[f];
    const int NBp = a->pad ? NB + 1 : NB;
    float *y = malloc(sizeof(float) * (size_t)(rot2 ? rot2 : 1));
    if (!y) return -1;
    for (int h = 0; h < a->nH; h++)
        for (int t = 0; t < a->L; t++) {
            const float *q = a->qk + (size_t)t * a->ld;
            for (int c = 0; c < rot2; c++) {
                double acc = 0;
                for (int e = 0; e < a->d; e++)
                    acc += (double)q[e] * a->rot[((size_t)e * a->nH + h) * rot2 + c];
                y[c] = (float)acc;
            }
            int bucket = 0, mul = 1, col = 0;
            for (int f = 0; f < a->nf; f++) {
                bucket += mul * ref__argmax_pm(y + col, a->factors[f] / 2);
                mul *= a->factors[f];
                col += a->factors[f] / 2;
            }
            if (a->pad && a->keep && !a->keep[t]) bucket = NB;
            a->buckets[(size_t)h * a->L + t] = bucket + h * NBp;
        }
    free(y);
    return 0;
}

/* Counting sort: stable by construction. */
int kn__ref_lsh_sort(const int32_t *keys, int32_t *perm, int n, int nkeys)
{
    int32_t *start = calloc((size_t)nkeys + 1, sizeof *start);
    if (!start) return -1;
    for (int i = 0; i < n; i++)
        start[keys[i] + 1]++;
    for (int k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    for (int i = 0; i < n; i++)
        perm[start[keys[i]]++] = i;
    free(start);
    return 0;
}

void kn_ops_init_ref(kn_ops *ops)
{
    ops->backend = "ref";
    ops->isa = "plain loops (double accumulators)";
    kn_ops_set_host_buffers(ops);
    ops->weight_prepare = NULL;
    ops->weight_release = NULL;
#define ref_lsh_hash kn__ref_lsh_hash
#define ref_lsh_sort kn__ref_lsh_sort
#define ref_ffn NULL /* not fused: the engine composes linear, gelu, linear */
#define KN__REF(name) ops->name = ref_##name;
    KN_OP_LIST(KN__REF)
#undef KN__REF
}
