/* Generation for Reformer language models: the decoding loop over the cached step (or the
 * full recomputation) of reformer.c, and the token choice of Hugging Face's generate():
 * repetition penalty, then greedy argmax, or temperature, top-k, top-p and a draw. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"

typedef struct {
    float s;
    int32_t id;
} gen__scored;

struct eng_gen {
    const eng_model *m;
    eng_gen_params p;
    int32_t *ids; /* [cap] prompt then generated */
    int n, n_prompt, cap;
    int started;
    eng__rf_state *st;
    float *logits;      /* [V] */
    float *work;        /* [V] */
    gen__scored *order; /* [V] */
    uint8_t *seen;      /* [V] ids in the sequence (repetition penalty) */
    eng_mt19937 rng;    /* the sampler's draws */
};

eng_gen_params eng_gen_default_params(const eng_model *m)
{
    return (eng_gen_params){
        .max_new_tokens = 20,
        .temperature = 1.0f,
        .top_p = 1.0f,
        .repetition_penalty = 1.0f,
        .use_cache = 1,
        .hash_seed = -1,
        .eos_token_id = m ? m->cfg.eos_token_id : -1,
    };
}

int eng_model_can_generate(const eng_model *m, char *why, size_t n)
{
    const char *no = NULL;
    if (m->fam != ENG_FAM_REFORMER)
        no = "only Reformer language models generate";
    else if (m->head != ENG_HEAD_MLM || !m->cfg.reformer.is_decoder)
        no = "the model has no causal language-model head (ReformerModelWithLMHead)";
    else if (m->cfg.reformer.lsh_after || m->cfg.reformer.local_after)
        no = "a causal LM needs lsh/local_num_chunks_after 0";
    if (no && why) snprintf(why, n, "%s", no);
    return !no;
}

void eng_gen_free(eng_gen *g)
{
    if (!g) return;
    eng__rf_state_free(g->st);
    free(g->ids), free(g->logits), free(g->work), free(g->order), free(g->seen);
    free(g);
}

ls_status eng_gen_start(const eng_model *m, const int32_t *prompt, int n, const eng_gen_params *p,
                        eng_gen **out, char *err, size_t errlen)
{
    *out = NULL;
    char why[160];
    if (!eng_model_can_generate(m, why, sizeof why))
        return ls_fail(err, errlen, LS_ERR_UNSUPPORTED, "%s", why);
    if (n <= 0) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "inputs: the prompt is empty");
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= m->V)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "inputs: token id %d at position %d is outside the vocabulary [0, %d)",
                           prompt[i], i, m->V);
    if (p->max_new_tokens < 1)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "parameters.max_new_tokens: %d, must be at least 1", p->max_new_tokens);
    if ((long long)n + p->max_new_tokens > m->max_tokens)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "inputs: %d prompt tokens + max_new_tokens %d exceed the model's %d tokens",
                       n, p->max_new_tokens, m->max_tokens);
    if (!(p->temperature > 0) || !isfinite(p->temperature))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "parameters.temperature: must be a positive number");
    if (!(p->top_p > 0 && p->top_p <= 1))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "parameters.top_p: must be in (0, 1]");
    if (p->top_k < 0)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "parameters.top_k: must be >= 0");
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "parameters.repetition_penalty: must be a positive number");
    const hf_reformer *r = &m->cfg.reformer;
    const int nH = p->num_hashes > 0 ? p->num_hashes : r->num_hashes;
    if (nH > 64)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "parameters.num_hashes: %d, at most 64",
                       nH);
    const int64_t seed = p->hash_seed >= 0 ? p->hash_seed : r->has_hash_seed ? r->hash_seed : -1;
    eng_gen *g = calloc(1, sizeof *g);
    if (!g) return ls_fail(err, errlen, LS_ERR_NOMEM, "generation: out of memory");
    g->m = m, g->p = *p, g->n = g->n_prompt = n;
    g->cap = n + p->max_new_tokens;
    g->ids = malloc(sizeof(int32_t) * g->cap);
    g->logits = malloc(sizeof(float) * m->V);
    g->work = malloc(sizeof(float) * m->V);
    g->order = malloc(sizeof(gen__scored) * m->V);
    g->seen = calloc((size_t)m->V, 1);
    g->st = eng__rf_state_new(m, nH, seed);
    if (!g->ids || !g->logits || !g->work || !g->order || !g->seen || !g->st) {
        eng_gen_free(g);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "generation: out of memory");
    }
    memcpy(g->ids, prompt, sizeof(int32_t) * n);
    for (int i = 0; i < n; i++)
        g->seen[prompt[i]] = 1;
    eng_mt_seed(&g->rng, p->seed);
    *out = g;
    return LS_OK;
}

int eng_gen_count(const eng_gen *g)
{
    return g->n - g->n_prompt;
}
const int32_t *eng_gen_ids(const eng_gen *g)
{
    return g->ids;
}
int eng_gen_length(const eng_gen *g)
{
    return g->n;
}

/* A uniform in [0, 1) with 53 bits. */
static double gen__uniform(eng_mt19937 *r)
{
    const uint64_t a = eng_mt_next(r) >> 5, b = eng_mt_next(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/* Higher score first; equal scores: the lower id first (a stable order). */
static int gen__cmp(const void *a, const void *b)
{
    const gen__scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* HF's order: logits processors (repetition penalty), then for sampling the warpers
 * (temperature, top-k, top-p), then argmax or a multinomial draw. */
static int32_t gen__choose(eng_gen *g, float *logprob)
{
    const int V = g->m->V;
    const eng_gen_params *p = &g->p;
    float *w = g->work;
    memcpy(w, g->logits, sizeof(float) * V);
    if (p->repetition_penalty != 1.0f)
        for (int v = 0; v < V; v++)
            if (g->seen[v])
                w[v] = w[v] < 0 ? w[v] * p->repetition_penalty : w[v] / p->repetition_penalty;
    int32_t pick = 0;
    if (p->do_sample) {
        for (int v = 0; v < V; v++)
            w[v] /= p->temperature;
        if (p->top_k > 0 || p->top_p < 1.0f) {
            for (int v = 0; v < V; v++)
                g->order[v] = (gen__scored){w[v], v};
            qsort(g->order, (size_t)V, sizeof *g->order, gen__cmp);
            int keep = p->top_k > 0 && p->top_k < V ? p->top_k : V;
            if (p->top_p < 1.0f) { /* smallest prefix whose probability reaches top_p */
                double z = 0, mx = w[g->order[0].id];
                for (int i = 0; i < keep; i++)
                    z += exp((double)w[g->order[i].id] - mx);
                double cum = 0;
                for (int i = 0; i < keep; i++) {
                    cum += exp((double)w[g->order[i].id] - mx) / z;
                    if (cum >= p->top_p) {
                        keep = i + 1;
                        break;
                    }
                }
            }
            for (int i = keep; i < V; i++)
                w[g->order[i].id] = -INFINITY;
        }
    }
    float mx = -INFINITY;
    for (int v = 0; v < V; v++)
        if (w[v] > mx) mx = w[v], pick = v;
    double z = 0;
    for (int v = 0; v < V; v++)
        z += exp((double)(w[v] - mx));
    if (p->do_sample) {
        double u = gen__uniform(&g->rng) * z, cum = 0;
        for (int v = 0; v < V; v++) {
            const double e = exp((double)(w[v] - mx));
            if (e == 0) continue;
            pick = v;
            cum += e;
            if (u < cum) break;
        }
    }
    *logprob = (float)((double)(w[pick] - mx) - log(z));
    return pick;
}

ls_status eng_gen_next(eng_ctx *c, eng_gen *g, eng_gen_token *tok, char *err, size_t errlen)
{
    if (c->m != g->m) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "context of another model");
    if (g->n >= g->cap)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "max_new_tokens already generated");
    ls_status st;
    if (!g->p.use_cache)
        st = eng__reformer_last_logits(c, g->st, g->ids, g->n, g->logits, err, errlen);
    else if (!g->started)
        st = eng__reformer_prefill(c, g->st, g->ids, g->n, g->logits, err, errlen);
    else
        st = eng__reformer_step(c, g->st, g->ids[g->n - 1], g->logits, err, errlen);
    if (st) return st;
    g->started = 1;
    tok->id = gen__choose(g, &tok->logprob);
    tok->eos = tok->id == g->p.eos_token_id;
    g->ids[g->n++] = tok->id;
    g->seen[tok->id] = 1;
    return LS_OK;
}
