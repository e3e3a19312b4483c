/* The pipelines' post-processing (engine/pipeline.h): sentence-transformers pooling,
 * window aggregation and normalisation, and the Hugging Face pipelines' softmax, label
 * scores, token labels, fill-mask top-k and question-answering span search. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

void eng_pipe_softmax(const float *x, int n, float *p)
{
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (p[i] = expf(x[i] - m));
    for (int i = 0; i < n; i++)
        p[i] = (float)(p[i] / sum);
}

/* ---- feature extraction ------------------------------------------------------------------ */

void eng_pipe_pool(const float *x, size_t n, size_t H, eng_pooling p, float *out)
{
    for (size_t h = 0; h < H; h++) {
        double acc = p == ENG_POOL_MAX ? -INFINITY : 0;
        if (p == ENG_POOL_CLS) acc = x[h];
        for (size_t k = 0; p != ENG_POOL_CLS && k < n; k++) {
            double v = x[k * H + h];
            acc = p == ENG_POOL_MAX ? (v > acc ? v : acc) : acc + v;
        }
        if (p == ENG_POOL_MEAN) acc /= (double)n;
        if (p == ENG_POOL_MEAN_SQRT_LEN) acc /= sqrt((double)n);
        out[h] = (float)acc;
    }
}

void eng_pipe_splade(const float *logits, size_t n, size_t V, float *out)
{
    for (size_t v = 0; v < V; v++)
        out[v] = 0;
    for (size_t k = 0; k < n; k++) { /* row by row: the logits are (n, V), token-major */
        const float *x = logits + k * V;
        for (size_t v = 0; v < V; v++) {
            const float w = x[v] > 0 ? log1pf(x[v]) : 0;
            if (w > out[v]) out[v] = w;
        }
    }
}

void eng_pipe_windows(const float *const *vecs, const int *ntok, int nwin, int H, float *out)
{
    if (nwin == 1) { /* one window: exactly its vector */
        memcpy(out, vecs[0], (size_t)H * sizeof *out);
        return;
    }
    double wsum = 0;
    for (int k = 0; k < nwin; k++)
        wsum += ntok[k];
    for (int h = 0; h < H; h++) {
        double acc = 0;
        for (int k = 0; k < nwin; k++)
            acc += (double)ntok[k] * vecs[k][h];
        out[h] = (float)(acc / wsum);
    }
}

void eng_pipe_l2_normalize(float *v, int H)
{
    double ss = 0;
    for (int h = 0; h < H; h++)
        ss += (double)v[h] * v[h];
    double norm = sqrt(ss);
    if (norm < 1e-12) norm = 1e-12; /* torch.nn.functional.normalize's eps */
    for (int h = 0; h < H; h++)
        v[h] = (float)(v[h] / norm);
}

/* ---- classification ------------------------------------------------------------------------ */

static float *eng__pipe_scratch(size_t n, char *err, size_t errlen)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for %zu scores", n);
    return p;
}

static int eng__score_desc(const void *a, const void *b)
{
    const eng_pipe_score *x = a, *y = b;
    if (x->score != y->score) return (x->score < y->score) - (x->score > y->score);
    return (x->label > y->label) - (x->label < y->label);
}

ls_status eng_pipe_classify(const float *logits, int L, int fn, eng_pipe_score *out, char *err,
                            size_t errlen)
{
    float *p = eng__pipe_scratch((size_t)L, err, errlen);
    if (!p) return LS_ERR_NOMEM;
    if (fn == ENG_PIPE_FN_DEFAULT) fn = L == 1 ? ENG_PIPE_FN_SIGMOID : ENG_PIPE_FN_SOFTMAX;
    if (fn == ENG_PIPE_FN_NONE)
        memcpy(p, logits, (size_t)L * sizeof *p);
    else if (fn == ENG_PIPE_FN_SIGMOID)
        for (int k = 0; k < L; k++)
            p[k] = 1.0f / (1.0f + expf(-logits[k]));
    else
        eng_pipe_softmax(logits, L, p);
    for (int k = 0; k < L; k++)
        out[k] = (eng_pipe_score){k, p[k]};
    qsort(out, (size_t)L, sizeof *out, eng__score_desc);
    free(p);
    return LS_OK;
}

float eng_pipe_cosine(const float *a, const float *b, int H)
{
    double aa = 0, bb = 0, ab = 0;
    for (int d = 0; d < H; d++) {
        aa += (double)a[d] * a[d];
        bb += (double)b[d] * b[d];
        ab += (double)a[d] * b[d];
    }
    const double na = sqrt(aa) > 1e-12 ? sqrt(aa) : 1e-12, nb = sqrt(bb) > 1e-12 ? sqrt(bb) : 1e-12;
    return (float)(ab / (na * nb));
}

ls_status eng_pipe_token_classify(const float *logits, int n, int L, const uint8_t *special,
                                  const uint8_t *ignore, eng_pipe_entity *out, int *count,
                                  char *err, size_t errlen)
{
    *count = 0;
    float *p = eng__pipe_scratch((size_t)L, err, errlen);
    if (!p) return LS_ERR_NOMEM;
    for (int t = 0; t < n; t++) {
        if (special && special[t]) continue;
        eng_pipe_softmax(logits + (size_t)t * (size_t)L, L, p);
        int best = 0;
        for (int k = 1; k < L; k++)
            if (p[k] > p[best]) best = k;
        if (ignore && ignore[best]) continue;
        out[(*count)++] = (eng_pipe_entity){t, best, p[best]};
    }
    free(p);
    return LS_OK;
}

ls_status eng_pipe_top_k(const float *logits, int V, int k, int32_t *ids, float *scores, int *count,
                         char *err, size_t errlen)
{
    *count = 0;
    const int K = k < V ? k : V;
    float *p = eng__pipe_scratch((size_t)V, err, errlen);
    if (!p) return LS_ERR_NOMEM;
    eng_pipe_softmax(logits, V, p);
    for (int i = 0; i < K; i++) { /* by selection: K is small */
        int best = -1;
        for (int v = 0; v < V; v++)
            if (p[v] >= 0 && (best < 0 || p[v] > p[best])) best = v;
        if (best < 0) break; /* only NaN left */
        ids[i] = best;
        scores[i] = p[best];
        p[best] = -1; /* taken */
        (*count)++;
    }
    free(p);
    return LS_OK;
}

/* ---- question answering -------------------------------------------------------------------- */

ls_status eng_pipe_answer(const float *start_logits, const float *end_logits,
                          const int8_t *sequence_ids, int n, int max_answer_len, eng_pipe_span *out,
                          char *err, size_t errlen)
{
    *out = (eng_pipe_span){-1, -1, -1};
    float *ps = malloc((size_t)n * sizeof *ps), *pe = malloc((size_t)n * sizeof *pe);
    float *xs = calloc((size_t)n + 1, sizeof *xs), *xe = calloc((size_t)n + 1, sizeof *xe);
    ls_status st =
        ps && pe && xs && xe
            ? LS_OK
            : ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for a span search of %d tokens", n);
    if (!st && n > 0) {
        for (int t = 0; t < n; t++) {
            int ctx = sequence_ids[t] == 1 || t == 0;
            xs[t] = ctx ? start_logits[t] : -10000.0f;
            xe[t] = ctx ? end_logits[t] : -10000.0f;
        }
        eng_pipe_softmax(xs, n, ps);
        eng_pipe_softmax(xe, n, pe);
        ps[0] = pe[0] = 0;
        for (int s = 0; s < n; s++) {
            if (sequence_ids[s] != 1) continue;
            for (int t = s; t < n && t < s + max_answer_len; t++) {
                if (sequence_ids[t] != 1) continue;
                float sc = ps[s] * pe[t];
                if (sc > out->score) *out = (eng_pipe_span){s, t, sc};
            }
        }
    }
    free(ps), free(pe), free(xs), free(xe);
    return st;
}
