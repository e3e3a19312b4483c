/* The generation job behind TGI's /generate, /generate_stream and the root route (a
 * Reformer language model, engine.h eng_gen_*). A job runs in slices: each batch it is in
 * decodes tokens for at most SLICE_NS (one token at least), then it goes back to the
 * scheduler, so a long generation never holds the engine from other requests, a client
 * that left is seen between slices, and a stream sends each slice's tokens at once. The
 * worker also decodes the text (the tokenizer is thread-safe), so the loop only formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/tgi.h"
#include "../tokenizer/tokenizer.h"
#include "request.h"

/* a slice: at most 50 ms or 16 tokens, whichever comes first (one token at least) */
enum { GEN_SLICE_NS = 50 * 1000 * 1000, GEN_SLICE_TOKENS = 16 };

typedef struct {
    tgi_request rq;
    int route; /* SRV_GEN_* */
    const srv_model *model;
    int32_t *prompt;
    int nprompt;
    eng_gen_params gp;
    eng_gen *g;
    /* the worker's results so far (read on the loop between runs) */
    eng_gen_token *toks; /* [max_new_tokens] */
    int ntok;
    char *text; /* decode of the generated tokens (lossy UTF-8), ntext bytes */
    size_t ntext;
    size_t *tok_end; /* [max_new_tokens] text committed after token i (its text ends there) */
    int done;
    tgi_finish finish;
    ls_status st;
    char err[256];
    /* the loop's side */
    int sent;            /* tokens already streamed */
    int counted;         /* tokens already in the metrics */
    uint64_t first_ns;   /* first token produced (monotonic), 0 before */
    uint64_t arrival_ns; /* the request's */
} gen_job;

static void gen_free(void *job)
{
    gen_job *j = job;
    if (!j) return;
    tgi_request_free(&j->rq);
    eng_gen_free(j->g);
    free(j->prompt), free(j->toks), free(j->text), free(j->tok_end);
    free(j);
}

static void *gen_prepare(const srv_req *r, srv_job_reply *rep)
{
    const srv_server *s = r->srv;
    gen_job *j = calloc(1, sizeof *j);
    if (!j) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory for the request");
        return NULL;
    }
    j->route = r->job_arg;
    j->arrival_ns = r->arrival_ns;
    if ((rep->st = tgi_request_parse(r->body, r->len, &j->rq, rep->err, sizeof rep->err))) {
        gen_free(j);
        return NULL;
    }
    if (j->route == SRV_GEN_ROOT) j->route = j->rq.stream ? SRV_GEN_STREAM : SRV_GEN_ROOT;
    /* the model: the body's "model", else the first one that generates */
    char why[160] = "no model served here generates text";
    for (int i = 0; i < s->nmodels && !j->model; i++) {
        const srv_model *m = &s->models[i];
        if (j->rq.model[0] && srv_model_named((srv_server *)s, j->rq.model) != m) continue;
        if (eng_model_can_generate(m->m, why, sizeof why))
            j->model = m;
        else if (j->rq.model[0])
            break;
    }
    if (!j->model) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_INVALID_INPUT, "%s%s%s",
                          j->rq.model[0] ? j->rq.model : "", j->rq.model[0] ? ": " : "", why);
        if (j->rq.model[0] && !srv_model_named((srv_server *)s, j->rq.model))
            snprintf(rep->err, sizeof rep->err, "model '%s' is not served here", j->rq.model);
        gen_free(j);
        return NULL;
    }
    const tok_tokenizer *tk = eng_model_tokenizer(j->model->m);
    if (!tk) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_UNSUPPORTED,
                          "%s has no tokenizer: text generation needs one", j->model->name);
        gen_free(j);
        return NULL;
    }
    tok_encode_params tp = tok_encode_default_params();
    tok_encoding *e = NULL;
    if ((rep->st = tok_encode(tk, j->rq.inputs, j->rq.len, NULL, 0, &tp, &e, rep->err,
                              sizeof rep->err))) {
        gen_free(j);
        return NULL;
    }
    j->nprompt = (int)e->n;
    j->prompt = malloc(sizeof(int32_t) * (e->n ? e->n : 1));
    if (j->prompt) memcpy(j->prompt, e->ids, sizeof(int32_t) * e->n);
    tok_encoding_free(e);
    eng_gen_params gp = eng_gen_default_params(j->model->m);
    const tgi_request *q = &j->rq;
    if (q->max_new_tokens > 0) gp.max_new_tokens = q->max_new_tokens;
    gp.do_sample = q->do_sample;
    if (q->temperature > 0) gp.temperature = q->temperature;
    if (q->top_k > 0) gp.top_k = q->top_k;
    if (q->top_p > 0) gp.top_p = q->top_p;
    if (q->repetition_penalty > 0) gp.repetition_penalty = q->repetition_penalty;
    /* TGI draws a seed when none is given and reports it */
    gp.seed = q->has_seed ? q->seed : (uint64_t)sched_now_ns() ^ ((uint64_t)(uintptr_t)j << 16);
    if (q->use_cache >= 0) gp.use_cache = q->use_cache;
    if (q->num_hashes > 0) gp.num_hashes = q->num_hashes;
    if (q->hash_seed >= 0) gp.hash_seed = q->hash_seed;
    if (s->opt.max_input_tokens > 0 && j->nprompt > s->opt.max_input_tokens) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_TOO_LARGE,
                          "inputs: %d tokens; --max-input-tokens is %lld", j->nprompt,
                          s->opt.max_input_tokens);
        gen_free(j);
        return NULL;
    }
    j->gp = gp;
    if (!j->prompt || (rep->st = eng_gen_start(j->model->m, j->prompt, j->nprompt, &gp, &j->g,
                                               rep->err, sizeof rep->err))) {
        if (!j->prompt) rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory");
        gen_free(j);
        return NULL;
    }
    j->toks = calloc((size_t)gp.max_new_tokens, sizeof *j->toks);
    j->tok_end = calloc((size_t)gp.max_new_tokens, sizeof *j->tok_end);
    if (!j->toks || !j->tok_end) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory");
        gen_free(j);
        return NULL;
    }
    rep->model = j->model;
    rep->stream = j->route == SRV_GEN_STREAM;
    /* how it is computed, as the text routes say it (a Reformer: lsh, local or both) */
    snprintf(rep->headers, sizeof rep->headers,
             "x-longserve-attention: %s; tokens=%d; windows=1\r\n", j->model->info.attention,
             j->nprompt);
    return j;
}

static void gen_cost(const void *job, const srv_model *m, srv_job_cost *c)
{
    const gen_job *j = job;
    /* the first slice runs the prompt; later ones a token at a time (a cached step costs
     * about one token's dense work, a recomputation the whole sequence) */
    const size_t n = (size_t)eng_gen_length(j->g);
    const size_t rows = j->ntok == 0 || !j->gp.use_cache ? n : 1;
    c->tokens = rows;
    c->cost = eng_model_cost(&m->info, 1, rows, 0);
    c->key = 0;
}

/* The UTF-8 prefix of s[0..n) that a later token cannot change: without a trailing U+FFFD
 * (the lossy decode's mark of an unfinished character). */
static size_t gen__committed(const char *s, size_t n)
{
    while (n >= 3 && (unsigned char)s[n - 3] == 0xef && (unsigned char)s[n - 2] == 0xbf &&
           (unsigned char)s[n - 1] == 0xbd)
        n -= 3;
    return n;
}

/* After token i: the text of the generated ids, the stop checks. Worker thread. */
static ls_status gen__after_token(gen_job *j, char *err, size_t errlen)
{
    const tok_tokenizer *tk = eng_model_tokenizer(j->model->m);
    char *text = NULL;
    size_t n = 0;
    const int32_t *ids = eng_gen_ids(j->g) + j->nprompt;
    ls_status st = tok_decode(tk, ids, (size_t)j->ntok, 1, &text, &n, err, errlen);
    if (st) return st;
    free(j->text);
    j->text = text, j->ntext = n;
    const eng_gen_token *t = &j->toks[j->ntok - 1];
    const int last = t->eos || j->ntok >= j->gp.max_new_tokens;
    size_t end = last ? n : gen__committed(text, n);
    const size_t prev = j->ntok > 1 ? j->tok_end[j->ntok - 2] : 0;
    if (end < prev) end = prev;
    j->tok_end[j->ntok - 1] = end;
    if (t->eos) {
        j->done = 1, j->finish = TGI_FINISH_EOS;
        return LS_OK;
    }
    for (int k = 0; k < j->rq.nstop; k++) {
        const size_t sl = strlen(j->rq.stop[k]);
        if (sl <= n && memcmp(text + n - sl, j->rq.stop[k], sl) == 0) {
            j->done = 1, j->finish = TGI_FINISH_STOP;
            j->tok_end[j->ntok - 1] = n;
            return LS_OK;
        }
    }
    if (j->ntok >= j->gp.max_new_tokens) j->done = 1, j->finish = TGI_FINISH_LENGTH;
    return LS_OK;
}

static ls_status gen_run(eng_ctx *ctx, void *const *jobs, int n, bt_stats *stats, char *err,
                         size_t errlen)
{
    (void)err, (void)errlen;
    for (int i = 0; i < n; i++) {
        gen_job *j = jobs[i];
        const uint64_t t0 = sched_now_ns();
        const int n0 = j->ntok;
        stats->tokens += (size_t)(j->ntok == 0 ? j->nprompt : 1);
        do {
            eng_gen_token t;
            j->st = eng_gen_next(ctx, j->g, &t, j->err, sizeof j->err);
            if (!j->st) {
                j->toks[j->ntok++] = t;
                j->st = gen__after_token(j, j->err, sizeof j->err);
            }
            if (j->st) j->done = 1;
        } while (!j->done && sched_now_ns() - t0 < GEN_SLICE_NS && j->ntok - n0 < GEN_SLICE_TOKENS);
    }
    return LS_OK;
}

static tgi_token gen__token(const gen_job *j, int i)
{
    const eng_gen_token *t = &j->toks[i];
    const size_t a = i ? j->tok_end[i - 1] : 0, b = j->tok_end[i];
    tgi_token o = {t->id, j->text + a, b - a, t->logprob, t->eos};
    if (t->eos) { /* skipped by the text; its own string in the token */
        const char *s = tok_id_to_token(eng_model_tokenizer(j->model->m), t->id);
        o.text = s ? s : "", o.len = s ? strlen(s) : 0;
    }
    return o;
}

/* The text the reply carries: the prompt's first when return_full_text. */
static char *gen__full_text(const gen_job *j, size_t *len)
{
    const size_t p = j->rq.return_full_text ? j->rq.len : 0;
    char *s = malloc(p + j->ntext + 1);
    if (!s) return NULL;
    memcpy(s, j->rq.inputs, p);
    memcpy(s + p, j->text ? j->text : "", j->ntext);
    s[p + j->ntext] = 0;
    *len = p + j->ntext;
    return s;
}

/* The request's model as the metrics index it. */
static int gen__model(const srv_req *r)
{
    return (int)(r->model - r->srv->models);
}

static int gen_progress(void *job, srv_req *r, ls_buf *events)
{
    gen_job *j = job;
    srv_server *s = r->srv;
    if (j->ntok && !j->first_ns) {
        j->first_ns = sched_now_ns();
        metrics_generation_first_token(s->metrics, gen__model(r),
                                       (double)(j->first_ns - j->arrival_ns) * 1e-9);
    }
    metrics_generated_tokens(s->metrics, gen__model(r), j->ntok - j->counted);
    j->counted = j->ntok;
    if (j->done && !j->st && j->first_ns)
        metrics_generation_done(s->metrics, gen__model(r), j->ntok,
                                (double)(sched_now_ns() - j->first_ns) * 1e-9);
    if (j->route != SRV_GEN_STREAM) return !j->done;
    /* the stream: one event per token, the last with the whole text and the details */
    for (; j->sent < j->ntok; j->sent++) {
        const tgi_token t = gen__token(j, j->sent);
        const int final = j->done && !j->st && j->sent == j->ntok - 1;
        size_t len = 0;
        char *full = final ? gen__full_text(j, &len) : NULL;
        tgi_stream_event(events, j->sent + 1, &t, final, full ? full : "", len, j->finish, j->ntok,
                         j->gp.do_sample ? &j->gp.seed : NULL);
        free(full);
    }
    /* an error before any token is answered as an error (encode), after as an event */
    if (j->st && j->ntok) tgi_stream_error(events, j->err, "generation");
    return !j->done;
}

static void gen_encode(void *job, const srv_model *m, srv_job_reply *rep)
{
    (void)m;
    gen_job *j = job;
    if (j->st) {
        rep->st = j->st;
        snprintf(rep->err, sizeof rep->err, "%s", j->err);
        return;
    }
    tgi_token *t = malloc(sizeof *t * (size_t)(j->ntok ? j->ntok : 1));
    size_t len = 0;
    char *full = gen__full_text(j, &len);
    if (t && full) {
        for (int i = 0; i < j->ntok; i++)
            t[i] = gen__token(j, i);
        rep->body = tgi_generate_encode(full, len, j->rq.details, j->finish, j->ntok,
                                        j->gp.do_sample ? &j->gp.seed : NULL, t, j->ntok,
                                        j->route == SRV_GEN_ROOT, &rep->len);
    }
    if (!rep->body) rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory");
    free(t);
    free(full);
}

const srv_job_kind srv_job_gen = {
    .name = "generate",
    .id = 2,
    .tokenizes = 1,
    .prepare = gen_prepare,
    .cost = gen_cost,
    .run_batch = gen_run,
    .progress = gen_progress,
    .encode = gen_encode,
    .free = gen_free,
};
