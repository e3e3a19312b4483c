/* The text job behind TEI's /embed, /embed_all, /predict, /rerank, /similarity, /tokenize,
 * /decode, OpenAI's
 * /v1/embeddings and the pipelines' /token_classify, /fill_mask, /answer (text.h): the
 * route's tei_kind is the job's argument; the body's "model" (or the first model whose
 * head fits) picks the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

void *srv_job_text_prepare(const srv_req *r, int kind, srv_job_reply *rep)
{
    const srv_server *s = r->srv;
    txt_job *j = calloc(1, sizeof *j);
    if (!j) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory for the request");
        return NULL;
    }
    const txt_limits lim = {
        .max_input_tokens = s->opt.max_input_tokens,
        .max_inputs = (int)s->opt.max_client_batch_size,
        .max_global = (int)s->opt.max_global_tokens,
        .auto_truncate = s->opt.auto_truncate,
        .any_model_name = s->opt.accept_any_model_name,
        .max_chunks = (int)s->opt.max_chunks,
    };
    rep->st = txt_job_prepare(j, (tei_kind)kind, r->body, r->len, s->tms, s->nmodels, &lim,
                              &rep->body, &rep->len, rep->err, sizeof rep->err);
    if (!rep->st && !rep->body) {
        rep->truncated = j->echo.truncated;
        snprintf(rep->headers, sizeof rep->headers, "%s", j->headers);
        for (int i = 0; i < s->nmodels; i++)
            if (&s->models[i].tm == j->m) rep->model = &s->models[i];
        return j;
    }
    txt_job_free(j); /* refused, or answered at once */
    free(j);
    return NULL;
}

static void *jtxt_prepare(const srv_req *r, srv_job_reply *rep)
{
    return srv_job_text_prepare(r, r->job_arg, rep);
}

/* The whole job's work: text rows are ragged, each costs what its own length and globals
 * cost (a long_document's windows one by one) */
static double jtxt__total(const txt_job *j, const srv_model *m)
{
    double cost = 0;
    for (int k = 0; k < j->nrows; k++) {
        const txt_row *row = &j->rows[k];
        size_t g = 0;
        for (int t = 0; row->glob && t < row->n; t++)
            g += row->glob[t];
        cost += eng_model_cost(&m->info, 1, (size_t)row->n, g);
    }
    return cost;
}

static void jtxt_cost(const void *job, const srv_model *m, srv_job_cost *c)
{
    const txt_job *j = job;
    c->tokens = txt_job_tokens(j);
    c->total = jtxt__total(j, m);
    c->cost = bt_steps_next_cost(&j->steps, c->total);
    c->solo = j->steps.per > 0;
    c->key = txt_job_explicit_global(j);
}

static void jtxt_plan(void *job, const srv_model *m, double step_cost, int force_layers)
{
    txt_job *j = job;
    bt_steps_plan(&j->steps, &m->info, jtxt__total(j, m), step_cost, force_layers);
}

static ls_status jtxt_run(eng_ctx *ctx, void *const *jobs, int n, bt_stats *stats, char *err,
                          size_t errlen)
{
    txt_job *const *tj = (txt_job *const *)jobs;
    if (n == 1 && tj[0]->steps.per) return txt_job_step(ctx, tj[0], stats, err, errlen);
    return txt_batch_run(ctx, tj, n, stats, err, errlen);
}

static int jtxt_progress(void *job, srv_req *r, ls_buf *events)
{
    (void)r, (void)events;
    return bt_steps_more(&((txt_job *)job)->steps);
}

static void jtxt_encode(void *job, const srv_model *m, srv_job_reply *rep)
{
    (void)m;
    txt_job *j = job;
    if (!j->st) rep->body = txt_job_encode(j, &rep->len);
    if (!rep->body) { /* the run's verdict, or the encoder's */
        rep->st = j->st;
        snprintf(rep->err, sizeof rep->err, "%s", j->err);
    }
}

static void jtxt_free(void *job)
{
    txt_job_free(job);
    free(job);
}

const srv_job_kind srv_job_text = {
    .name = "text",
    .id = 1,
    .tokenizes = 1,
    .prepare = jtxt_prepare,
    .cost = jtxt_cost,
    .plan = jtxt_plan,
    .run_batch = jtxt_run,
    .progress = jtxt_progress,
    .encode = jtxt_encode,
    .free = jtxt_free,
};
