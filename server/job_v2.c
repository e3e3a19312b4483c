/* The KServe v2 job: raw token tensors for the model the path names
 * (POST /v2/models/{m}/infer), decoded and validated in the pool (v2_infer.h), in JSON or
 * with Triton's binary tensor data (Inference-Header-Content-Length). */
#include <stdio.h>
#include <stdlib.h>

#include "request.h"
#include "v2_infer.h"

static void *jv2_prepare(const srv_req *r, srv_job_reply *rep)
{
    v2_job *j = calloc(1, sizeof *j);
    if (!j) {
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory for the request");
        return NULL;
    }
    size_t max = (size_t)r->srv->opt.max_input_tokens;
    if (max > V2_MAX_ELEMS) max = V2_MAX_ELEMS;
    /* Triton's binary tensor data: the header says how much of the body is JSON */
    size_t json_len = r->infer_header_len >= 0 ? (size_t)r->infer_header_len : r->len;
    if (r->infer_header_len == -2)
        rep->st = ls_fail(rep->err, sizeof rep->err, LS_ERR_BAD_REQUEST,
                          "Inference-Header-Content-Length must be a number of bytes");
    else
        rep->st = v2_job_decode(&r->model->info, r->body, r->len, json_len, max, j, rep->err,
                                sizeof rep->err);
    if (rep->st) {
        free(j); /* v2_job_decode frees what it took on failure */
        return NULL;
    }
    rep->model = r->model;
    return j;
}

static double jv2__total(const v2_job *j, const srv_model *m)
{
    return eng_model_cost(&m->info, (size_t)j->B, (size_t)j->L, v2_job_globals(j));
}

static void jv2_cost(const void *job, const srv_model *m, srv_job_cost *c)
{
    const v2_job *j = job;
    c->tokens = v2_job_tokens(j);
    c->total = jv2__total(j, m);
    c->cost = bt_steps_next_cost(&j->steps, c->total);
    c->solo = j->steps.per > 0;
    c->key = v2_job_explicit_global(j);
}

static void jv2_plan(void *job, const srv_model *m, double step_cost, int force_layers)
{
    v2_job *j = job;
    bt_steps_plan(&j->steps, &m->info, jv2__total(j, m), step_cost, force_layers);
}

static ls_status jv2_run(eng_ctx *ctx, void *const *jobs, int n, bt_stats *stats, char *err,
                         size_t errlen)
{
    v2_job *const *vj = (v2_job *const *)jobs;
    if (n == 1 && vj[0]->steps.per) return v2_job_step(ctx, vj[0], stats, err, errlen);
    return v2_batch_run(ctx, vj, n, stats, err, errlen);
}

static int jv2_progress(void *job, srv_req *r, ls_buf *events)
{
    (void)r, (void)events;
    return bt_steps_more(&((v2_job *)job)->steps);
}

static void jv2_encode(void *job, const srv_model *m, srv_job_reply *rep)
{
    const v2_job *j = job;
    if (j->st) {
        rep->st = j->st;
        snprintf(rep->err, sizeof rep->err, "%s", j->err);
        return;
    }
    size_t json_len = 0;
    if (!(rep->body = v2_job_encode(j, m->name, &rep->len, &json_len))) {
        rep->st =
            ls_fail(rep->err, sizeof rep->err, LS_ERR_NOMEM, "out of memory encoding the response");
        return;
    }
    if (json_len) { /* binary outputs follow the JSON header, as Triton sends them */
        rep->ctype = "application/octet-stream";
        snprintf(rep->headers, sizeof rep->headers, "Inference-Header-Content-Length: %zu\r\n",
                 json_len);
    }
}

static void jv2_free(void *job)
{
    v2_job_free(job);
    free(job);
}

const srv_job_kind srv_job_v2 = {
    .name = "v2",
    .id = 0,
    .tokenizes = 0,
    .prepare = jv2_prepare,
    .cost = jv2_cost,
    .plan = jv2_plan,
    .run_batch = jv2_run,
    .progress = jv2_progress,
    .encode = jv2_encode,
    .free = jv2_free,
};
