/* Between the HTTP side and the engine workers, for every job kind (job.h): prepare in
 * the uv work pool, submit to the model's scheduler, run batches on the worker, collect
 * them in the async callback, encode the replies in the pool (off the loop and off the
 * engine), and top up every worker's next batch. All on the loop thread except the pool
 * steps and srv_model_run (worker thread). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/tgi.h"
#include "job.h"
#include "log.h"
#include "request.h"
#include "zip.h"

/* A reply body compressed here, in the pool, when the client takes a coding (zip.h). */
static void srv__compress(const srv_req *r, srv_job_reply *rep)
{
    const int coding = srv_zip_choose(r->accept_encoding);
    if (!coding || !rep->body || rep->len < SRV_ZIP_MIN_BYTES) return;
    size_t n = 0;
    char *z = srv_zip_deflate(coding, rep->body, rep->len, &n);
    if (!z) return; /* out of memory: it goes as it is */
    free(rep->body);
    rep->body = z;
    rep->len = n;
    rep->coding = coding;
}

/* The model's statistics (Triton's statistics extension), on the loop thread. */
static void srv__stat(srv_stat *st, uint64_t ns)
{
    st->count++;
    st->ns += ns;
}

static void srv__stat_fail(srv_req *r)
{
    if (r->model) srv__stat(&r->model->stats.fail, sched_now_ns() - r->arrival_ns);
}

/* The reply of a job, with its Content-Type and coding. */
static void srv__reply_job(srv_req *r)
{
    srv_job_reply *rep = &r->rep;
    char *body = rep->body;
    rep->body = NULL;
    srv_reply(r, 200, body, rep->len, rep->ctype);
    r->out_coding = rep->coding;
}

/* Scheduler keys: a kind's own key (0..SRV__KEYS-1) within its id's range. */
enum { SRV__KEYS = 16 };

/* ---- prepare (uv pool) and submit (loop) --------------------------------------------------- */

/* The work one engine turn may take (--engine-step-ms at the model's speed), 0: no steps. */
static double srv__step_cost(const srv_server *s, const srv_model *m)
{
    return (double)s->opt.engine_step_ms * 1e-3 * m->cost_per_s;
}

static void srv__submit(srv_req *r, int again)
{
    srv_server *s = r->srv;
    srv_model *m = r->model;
    sched_item *it = &r->item;
    if (again && !r->first_start_ns) r->first_start_ns = it->start_ns;
    memset(it, 0, sizeof *it);
    srv_job_cost c = {0};
    r->kind->cost(r->job, m, &c);
    if (!again && r->kind->plan) { /* steps or one piece, then the first run's cost */
        const int force = s->opt.debug_step_layers && c.tokens > (size_t)s->opt.long_request_tokens
                              ? (int)s->opt.debug_step_layers
                              : 0;
        r->kind->plan(r->job, m, srv__step_cost(s, m), force);
        r->kind->cost(r->job, m, &c);
    }
    it->tokens = c.tokens;
    it->cost = c.cost;
    it->solo = c.solo;
    it->key = r->kind->id * SRV__KEYS + c.key;
    it->fd = r->fd;
    it->probe = r->http11 && !r->sent && !r->probed;
    it->arrival_ns = r->arrival_ns;
    /* the deadline is the first run's: a generation past it goes on; a job in steps keeps
     * it between its steps (its reply is whole or nothing) */
    it->deadline_ns = s->opt.request_timeout_ms && (!again || r->kind->plan)
                          ? r->arrival_ns + (uint64_t)s->opt.request_timeout_ms * 1000000u
                          : 0;
    it->owner = r;
    if (!again) metrics_input_tokens(s->metrics, (int)(m - s->models), (double)it->tokens);
    sched_push(&m->q, it, sched_now_ns());
    r->state = SRV_REQ_QUEUED;
    s->inflight++;
    /* batches form in the async callback, outside libmicrohttpd's callbacks, so that a
     * request dropped at once is never resumed before it is suspended */
    uv_async_send(&s->async);
}

/* --max-request-seconds / --max-request-cost: a request over the bound is refused before
 * it is queued (413, with the bound); returns 1 then. */
static int srv__over_bound(srv_req *r)
{
    srv_server *s = r->srv;
    const srv_model *m = r->model;
    srv_job_cost c = {0};
    r->kind->cost(r->job, m, &c);
    const double total = c.total > 0 ? c.total : c.cost;
    if (m->max_cost <= 0 || total <= m->max_cost) return 0;
    const double per_token = eng_model_token_cost(&m->info);
    char bound[160];
    if (s->opt.max_request_cost)
        snprintf(bound, sizeof bound, "--max-request-cost %lld", s->opt.max_request_cost);
    else
        snprintf(bound, sizeof bound, "--max-request-seconds %lld at this machine's speed",
                 s->opt.max_request_seconds);
    srv_reject(r, METRICS_REJ_PAYLOAD, HERR_TOO_LARGE,
               "the request would cost %.4g units of engine work (%zu tokens, about %.3g s "
               "here); the limit is %.0f units (%s: about %.0f tokens in one sequence of model "
               "'%s')",
               total, c.tokens, m->cost_per_s > 0 ? total / m->cost_per_s : 0.0, m->max_cost, bound,
               m->max_cost / per_token, m->name);
    srv__stat_fail(r);
    return 1;
}

static void srv__prepare(uv_work_t *w)
{
    srv_req *r = w->data;
    uint64_t t0 = sched_now_ns();
    r->job = r->kind->prepare(r, &r->rep);
    if (!r->job) srv__compress(r, &r->rep);
    r->prep_ns = sched_now_ns() - t0;
}

static void srv__prepared(uv_work_t *w, int status)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    s->encoding--;
    if (r->rep.kind) r->kind = r->rep.kind; /* a dispatching route's choice (srv_job_root) */
    if (r->kind->tokenizes) metrics_tokenize_time(s->metrics, (double)r->prep_ns * 1e-9);
    if (!r->conn) { /* its connection went at a forced stop */
        srv_req_free(r);
        return;
    }
    srv_job_reply *rep = &r->rep;
    if (status) {
        srv_reply_error(r, HERR_INTERNAL, "the request's preparation was cancelled");
    } else if (!r->job && !rep->body) {
        srv_reject(r, METRICS_REJ_INVALID, herr_from_status_in(rep->st, r->family), "%s", rep->err);
        srv__stat_fail(r); /* the path's model (v2), when the route names one */
    } else {
        if (rep->truncated) metrics_truncated(s->metrics);
        if (!r->job) { /* answered without the engine (/tokenize, /decode) */
            srv__reply_job(r);
        } else {
            r->model = (srv_model *)rep->model;
            r->streaming = rep->stream;
            srv__stat(&r->model->stats.compute_input, r->prep_ns);
            if (!srv__over_bound(r)) {
                srv__submit(r, 0);
                return; /* stays suspended until the engine answers */
            }
        }
    }
    srv_req_finish(r);
}

int srv_job_start(srv_req *r)
{
    srv_server *s = r->srv;
    r->work.data = r;
    r->state = SRV_REQ_QUEUED; /* the pool holds it: a forced stop must not free it */
    s->encoding++;
    if (uv_queue_work(s->loop, &r->work, srv__prepare, srv__prepared) == 0) return SRV_DEFERRED;
    s->encoding--;
    r->state = SRV_REQ_BODY;
    return srv_reply_error(r, HERR_INTERNAL, "cannot queue the request's preparation");
}

/* ---- run (worker thread) ------------------------------------------------------------------- */

void srv_model_run(void *arg, sched_batch *b)
{
    srv_model *m = arg;
    void **jobs = malloc((size_t)b->n * sizeof *jobs);
    if (!jobs) {
        b->status = LS_ERR_NOMEM;
        return;
    }
    /* one kind per batch: the scheduler's keys differ between kinds */
    const srv_job_kind *kind = NULL;
    int n = 0;
    for (int i = 0; i < b->n; i++) {
        srv_req *r = b->items[i]->owner;
        if (b->items[i]->fate != SCHED_LIVE) continue;
        jobs[n++] = r->job;
        kind = r->kind;
    }
    /* kernel time of this batch: the context's cumulative counters before and after */
    double before[SCHED_MAX_OPS], after[SCHED_MAX_OPS];
    eng_ctx_op_seconds(m->ctx, before, SCHED_MAX_OPS);
    char err[256] = "";
    bt_stats st = {0};
    b->status = n ? kind->run_batch(m->ctx, jobs, n, &st, err, sizeof err) : LS_OK;
    free(jobs);
    b->pad_ratio = st.tokens ? (double)st.pad / (double)st.tokens : 0.0;
    eng_ctx_op_seconds(m->ctx, after, SCHED_MAX_OPS);
    for (int i = 0; i < SCHED_MAX_OPS; i++)
        b->kernel_s[i] = after[i] - before[i];
}

/* ---- completion: encode (uv pool), reply (loop) -------------------------------------------- */

static void srv__encode(uv_work_t *w)
{
    srv_req *r = w->data;
    uint64_t t0 = sched_now_ns();
    r->kind->encode(r->job, r->model, &r->rep);
    srv__compress(r, &r->rep);
    r->enc_ns = sched_now_ns() - t0;
}

static void srv__encoded(uv_work_t *w, int status)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    s->encoding--;
    srv_job_reply *rep = &r->rep;
    srv_model_stats *ms = &r->model->stats;
    if (status) {
        srv_reply_error(r, HERR_INTERNAL, "the response encoding was cancelled");
        srv__stat_fail(r);
    } else if (rep->body) {
        srv__reply_job(r);
        srv__stat(&ms->compute_output, r->enc_ns);
        srv__stat(&ms->success, sched_now_ns() - r->arrival_ns);
        ms->inference_count++;
        ms->last_inference_ms = (uint64_t)time(NULL) * 1000u;
    } else {
        srv_reply_error(r, herr_from_status_in(rep->st, r->family), "%s", rep->err);
        srv__stat_fail(r);
    }
    srv_req_finish(r);
}

/* A streamed reply whose 200 may already be out ends: an error becomes the stream's
 * last event (proto/tgi.h: the one streaming protocol). */
static void srv__stream_end(srv_req *r, const char *error)
{
    if (error) tgi_stream_error(&r->sbuf, error, "generation");
    r->stream_end = 1;
    r->state = SRV_REQ_REPLIED;
    srv_req_finish(r);
}

static void srv__complete(srv_server *s, sched_item *it, int batch_status)
{
    srv_req *r = it->owner;
    s->inflight--;
    r->probed |= it->probe == 2;
    const int streamed = r->streaming && (r->sbuf.n || r->sent); /* its 200 is decided */
    if (streamed && (it->fate != SCHED_LIVE || batch_status)) {
        if (it->fate == SCHED_DROP_GONE) metrics_reject(s->metrics, METRICS_REJ_DISCONNECTED);
        srv__stream_end(r, it->fate == SCHED_DROP_GONE ? NULL
                           : batch_status              ? ls_strerror((ls_status)batch_status)
                                                       : "the request's deadline passed");
        return;
    }
    if (it->fate == SCHED_LIVE && !batch_status && r->kind->progress) {
        const int more = r->kind->progress(r->job, r, &r->sbuf);
        if (r->sbuf.oom) {
            srv_reply_error(r, HERR_INTERNAL, "out of memory for the stream");
            srv_req_finish(r);
            return;
        }
        if (more && r->conn) {
            if (r->streaming && r->sbuf.n) srv_req_stream(r);
            srv__submit(r, 1);
            return;
        }
        if (more) { /* its connection went at a forced stop */
            srv_req_finish(r);
            return;
        }
        if (r->streaming && r->sbuf.n) {
            srv__stream_end(r, NULL);
            return;
        }
        /* nothing streamed: encode answers (an error before the first token) */
    }
    const uint64_t started = r->first_start_ns ? r->first_start_ns : it->start_ns;
    if (started) { /* a job in steps waited until its first */
        metrics_queue_time(s->metrics, (int)(r->model - s->models),
                           (double)(started - it->arrival_ns) * 1e-9);
        srv__stat(&r->model->stats.queue, started - it->arrival_ns);
    }
    if (it->fate != SCHED_LIVE || batch_status) srv__stat_fail(r);
    if (it->fate == SCHED_DROP_DEADLINE) {
        srv_reject(r, METRICS_REJ_DEADLINE, HERR_TIMEOUT,
                   "the request's deadline (%lld ms) passed before it could run",
                   s->opt.request_timeout_ms);
    } else if (it->fate == SCHED_DROP_GONE) {
        metrics_reject(s->metrics, METRICS_REJ_DISCONNECTED);
        srv_reply_error(r, HERR_UNAVAILABLE, "client disconnected");
    } else if (batch_status) {
        srv_reply_error(r, herr_from_status_in((ls_status)batch_status, r->family), "engine: %s",
                        ls_strerror((ls_status)batch_status));
    } else {
        r->work.data = r;
        s->encoding++;
        if (uv_queue_work(s->loop, &r->work, srv__encode, srv__encoded) == 0) return;
        s->encoding--;
        srv_reply_error(r, HERR_INTERNAL, "cannot queue the response encoding");
    }
    srv_req_finish(r);
}

void srv_pump(srv_server *s)
{
    for (int i = 0; i < s->nloaded; i++) {
        srv_model *m = &s->models[i];
        sched_item *dropped = NULL;
        if (wk_offer(m->wk, &m->q, &dropped))
            log_event("error", "scheduler", NULL, "%s: out of memory forming a batch", m->name);
        while (dropped) {
            sched_item *it = dropped;
            dropped = it->next;
            srv__complete(s, it, LS_OK);
        }
        metrics_set_queue(s->metrics, i, (double)sched_depth(&m->q), sched_queued_cost(&m->q));
    }
    metrics_set_inflight(s->metrics, s->inflight);
}

void srv_model_speed(srv_model *m, double cost_per_s)
{
    const opt_options *o = &m->srv->opt;
    if (cost_per_s <= m->best_cost_per_s) return;
    m->best_cost_per_s = cost_per_s;
    m->max_cost = o->max_request_cost ? (double)o->max_request_cost
                                      : (double)o->max_request_seconds * cost_per_s;
}

void srv_on_async(uv_async_t *a)
{
    srv_server *s = a->data;
    for (int i = 0; i < s->nloaded; i++) {
        srv_model *m = &s->models[i];
        sched_batch *b = wk_collect(m->wk, &m->running);
        metrics_set_engine_busy(s->metrics, i, m->running);
        while (b) {
            sched_batch *next = b->next;
            int live = 0;
            for (int k = 0; k < b->n; k++)
                live += b->items[k]->fate == SCHED_LIVE;
            if (live) {
                m->stats.execution_count++;
                m->stats.compute_infer.count += (uint64_t)live;
                m->stats.compute_infer.ns += (uint64_t)live * (uint64_t)(b->infer_s * 1e9);
                metrics_batch(s->metrics, i, live, (double)b->tokens, b->cost, b->infer_s);
                metrics_batch_padding(s->metrics, i, b->pad_ratio);
                metrics_kernel_seconds(s->metrics, i, b->kernel_s, SCHED_MAX_OPS);
                /* predicted vs actual, then the model's speed: a moving average of cost
                 * per second, seeded by the warm-up calibration */
                if (b->infer_s > 0) {
                    double v = b->cost / b->infer_s;
                    if (m->cost_per_s > 0)
                        metrics_batch_time_ratio(s->metrics, i,
                                                 b->infer_s * m->cost_per_s / b->cost);
                    m->cost_per_s = m->cost_per_s > 0 ? 0.8 * m->cost_per_s + 0.2 * v : v;
                    if (b->infer_s >= 0.01) srv_model_speed(m, v);
                }
            }
            for (int k = 0; k < b->n; k++)
                srv__complete(s, b->items[k], b->status);
            sched_batch_free(b);
            b = next;
        }
    }
    if (!s->stopping) srv_pump(s);
}

void srv_fail_queued(srv_server *s, herr_kind k, const char *msg)
{
    for (int i = 0; i < s->nloaded; i++) {
        srv_model *m = &s->models[i];
        sched_item *it = sched_take_all(&m->q);
        sched_batch *b = wk_take_open(m->wk);
        for (int j = 0; b && j < b->n; j++) {
            b->items[j]->next = it;
            it = b->items[j];
        }
        sched_batch_free(b);
        while (it) {
            sched_item *next = it->next;
            srv_req *r = it->owner;
            s->inflight--;
            srv_reply_error(r, k, "%s", msg);
            srv_req_finish(r);
            it = next;
        }
    }
    metrics_set_inflight(s->metrics, s->inflight);
}
