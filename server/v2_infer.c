/* v2 infer: decode and validate a request against the model, pack the rows of one or
 * more requests into one ragged batch, run it, copy each request's rows of the outputs
 * back, and shape them to [B, L, ...] as Hugging Face returns them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v2_infer.h"

/* ---- decode and validate --------------------------------------------------------------- */

static ls_status v2__flags(const int32_t *v, size_t n, const char *name, uint8_t **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (!v) return LS_OK;
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0 && v[i] != 1)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input '%s': element %zu is %d; it must be 0 or 1", name, i, v[i]);
    uint8_t *f = malloc(n);
    if (!f) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        f[i] = (uint8_t)v[i];
    *out = f;
    return LS_OK;
}

/* Whether the model produces output `name` (the engine's table, eng_model_outputs);
 * checked before running so that a request for a missing output costs no engine time. */
static int v2__produces(const eng_model_info *info, const char *name)
{
    eng_output_desc d[ENG_MAX_OUTPUTS];
    const int n = eng_model_outputs(info, d, ENG_MAX_OUTPUTS);
    for (int i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0) return 1;
    return 0;
}

ls_status v2_job_decode(const eng_model_info *info, const char *body, size_t len, size_t json_len,
                        size_t max_elems, v2_job *j, char *err, size_t errlen)
{
    memset(j, 0, sizeof *j);
    ls_status st = v2_request_parse(body, len, json_len, max_elems, &j->rq, err, errlen);
    if (st) return st;
    j->B = j->rq.B;
    j->L = j->rq.L;
    const size_t n = (size_t)j->B * (size_t)j->L;
    st = v2__flags(j->rq.attention_mask, n, "attention_mask", &j->attn, err, errlen);
    if (!st)
        st = v2__flags(j->rq.global_attention_mask, n, "global_attention_mask", &j->glob, err,
                       errlen);
    for (int i = 0; !st && i < j->rq.noutputs; i++)
        if (!v2__produces(info, j->rq.outputs[i]))
            st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                         "output '%.64s' is not produced by this model (%s)", j->rq.outputs[i],
                         info->architecture[0] ? info->architecture : info->model_type);
    /* the engine checks these too, but for the whole packed batch: checking each request
     * here keeps one request's bad input from failing its batch-mates, and the message
     * names the request's own row and position */
    for (size_t t = 0; !st && t < n; t++) {
        int32_t id = j->rq.input_ids[t];
        if (id < 0 || id >= info->vocab_size)
            st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                         "input_ids: token id %d at [%zu, %zu] is outside the vocabulary "
                         "[0, %d)",
                         id, t / (size_t)j->L, t % (size_t)j->L, info->vocab_size);
        else if (j->rq.token_type_ids &&
                 (j->rq.token_type_ids[t] < 0 || j->rq.token_type_ids[t] >= info->type_vocab_size))
            st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                         "token_type_ids: %d at [%zu, %zu] is outside [0, %d)",
                         j->rq.token_type_ids[t], t / (size_t)j->L, t % (size_t)j->L,
                         info->type_vocab_size);
    }
    if (!st && j->L > info->max_tokens)
        st = ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                     "rows have %d tokens; the model accepts at most %d", j->L, info->max_tokens);
    if (st) v2_job_free(j);
    return st;
}

void v2_job_free(v2_job *j)
{
    if (!j) return;
    v2_request_free(&j->rq);
    free(j->attn);
    free(j->glob);
    bt_steps_free(&j->steps);
    for (int i = 0; i < j->nout; i++)
        free(j->out_data[i]);
    memset(j, 0, sizeof *j);
}

size_t v2_job_tokens(const v2_job *j)
{
    return (size_t)j->B * (size_t)j->L;
}

size_t v2_job_globals(const v2_job *j)
{
    size_t g = 0, n = v2_job_tokens(j);
    for (size_t t = 0; j->glob && t < n; t++)
        g += j->glob[t];
    return g;
}

int v2_job_explicit_global(const v2_job *j)
{
    return j->glob != NULL;
}

/* ---- run: the shared batch loop, with v2's rows and scatter ------------------------------- */

static int v2__nrows(const void *job)
{
    return ((const v2_job *)job)->B;
}

static void v2__row(const void *job, int i, bt_row *r)
{
    const v2_job *j = job;
    const size_t at = (size_t)i * (size_t)j->L;
    *r = (bt_row){
        .n = j->L,
        .ids = j->rq.input_ids + at,
        .type_ids = j->rq.token_type_ids ? j->rq.token_type_ids + at : NULL,
        .attn = j->attn ? j->attn + at : NULL,
        .glob = j->glob ? j->glob + at : NULL,
        .num_hashes = j->rq.num_hashes,
        .has_hash_seed = j->rq.has_hash_seed,
        .hash_seed = j->rq.hash_seed,
    };
}

static void v2__reset(void *job)
{
    v2_job *j = job;
    j->st = LS_OK;
    j->err[0] = 0;
}

static void v2__fail(void *job, ls_status st, const char *msg)
{
    v2_job *j = job;
    j->st = st;
    snprintf(j->err, sizeof j->err, "%s", msg);
}

/* Copies job j's rows (tokens from tok0, sequences from seq0) of every output it wants. */
static ls_status v2__scatter(const eng_outputs *out, v2_job *j, size_t tok0, size_t seq0)
{
    for (int i = 0; i < out->n; i++) {
        const eng_tensor *et = &out->t[i];
        if (!v2_request_wants(&j->rq, et->name)) continue;
        const size_t w = et->width ? (size_t)et->width : 1;
        const size_t rows = et->per_token ? v2_job_tokens(j) : (size_t)j->B;
        const size_t row0 = et->per_token ? tok0 : seq0;
        float *d = malloc(rows * w * sizeof *d);
        if (!d)
            return ls_fail(j->err, sizeof j->err, LS_ERR_NOMEM, "out of memory for output '%s'",
                           et->name);
        memcpy(d, et->data + row0 * w, rows * w * sizeof *d);
        v2_output *o = &j->out[j->nout];
        j->out_data[j->nout++] = d;
        o->name = et->name;
        o->data = d;
        o->binary = v2_request_binary(&j->rq, et->name);
        o->ndim = 0;
        o->shape[o->ndim++] = j->B;
        if (et->per_token) o->shape[o->ndim++] = j->L;
        if (et->width) o->shape[o->ndim++] = et->width;
    }
    for (int i = 0; i < j->rq.noutputs; i++) {
        int found = 0;
        for (int k = 0; k < out->n; k++)
            found |= strcmp(j->rq.outputs[i], out->t[k].name) == 0;
        if (!found)
            return ls_fail(j->err, sizeof j->err, LS_ERR_INVALID_INPUT,
                           "output '%.64s' is not produced by this model", j->rq.outputs[i]);
    }
    return LS_OK;
}

static void v2__keep(void *job, const eng_outputs *out, size_t tok0, size_t seq0)
{
    v2_job *j = job;
    j->st = v2__scatter(out, j, tok0, seq0);
}

static const bt_ops v2__ops = {
    .nrows = v2__nrows, .row = v2__row, .reset = v2__reset, .keep = v2__keep, .fail = v2__fail};

ls_status v2_batch_run(eng_ctx *ctx, v2_job *const *jobs, int n, bt_stats *stats, char *err,
                       size_t errlen)
{
    return bt_run(ctx, &v2__ops, (void *const *)jobs, n, stats, err, errlen);
}

ls_status v2_job_step(eng_ctx *ctx, v2_job *j, bt_stats *stats, char *err, size_t errlen)
{
    return bt_step(ctx, &v2__ops, j, &j->steps, stats, err, errlen);
}

char *v2_job_encode(const v2_job *j, const char *model_name, size_t *len, size_t *json_len)
{
    return v2_response_encode(model_name, j->rq.id, j->out, j->nout, len, json_len);
}

ls_status v2_infer(eng_ctx *ctx, const eng_model *m, const char *model_name, const char *body,
                   size_t len, char **resp, size_t *resp_len, char *err, size_t errlen)
{
    *resp = NULL;
    eng_model_info info;
    eng_model_get_info(m, &info);
    v2_job j;
    ls_status st = v2_job_decode(&info, body, len, len, V2_MAX_ELEMS, &j, err, errlen);
    if (st) return st;
    v2_job *jobs[1] = {&j};
    st = v2_batch_run(ctx, jobs, 1, NULL, err, errlen);
    if (!st && j.st) st = ls_fail(err, errlen, j.st, "%s", j.err);
    if (!st) {
        size_t json_len;
        *resp = v2_job_encode(&j, model_name, resp_len, &json_len);
        if (!*resp) st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for the response");
    }
    v2_job_free(&j);
    return st;
}
