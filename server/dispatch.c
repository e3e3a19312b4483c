/* Between the HTTP side and the engine workers: a decoded request becomes a scheduler
 * item; the async callback collects finished batches, answers their requests (encoding
 * the bodies in the uv work pool, off the loop and off the engine) and tops up every
 * worker's next batch. All on the loop thread except srv_model_run (worker thread). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "srv.h"

int srv_submit(srv_req *r)
{
    srv_server *s = r->srv;
    srv_model *m = r->model;
    sched_item *it = &r->item;
    memset(it, 0, sizeof *it);
    if (r->txt) {
        /* text rows are ragged: each costs what its own length and globals cost; keys 2
         * and 3 keep text jobs apart from v2 jobs (another packer) */
        it->tokens = txt_job_tokens(r->txt);
        for (int k = 0; k < r->txt->nrows; k++) {
            const txt_row *row = &r->txt->rows[k];
            size_t g = 0;
            for (int t = 0; row->glob && t < row->n; t++)
                g += row->glob[t];
            it->cost += sched_cost(m->info.hidden_size, m->info.max_window, 1, (size_t)row->n, g);
        }
        it->key = 2 + txt_job_explicit_global(r->txt);
    } else {
        it->tokens = v2_job_tokens(&r->v2);
        it->cost = sched_cost(m->info.hidden_size, m->info.max_window, (size_t)r->v2.B,
                              (size_t)r->v2.L, v2_job_globals(&r->v2));
        it->key = v2_job_explicit_global(&r->v2);
    }
    it->fd = r->fd;
    it->arrival_ns = r->arrival_ns;
    it->deadline_ns = s->opt.request_timeout_ms
                          ? r->arrival_ns + (uint64_t)s->opt.request_timeout_ms * 1000000u
                          : 0;
    it->owner = r;
    metrics_input_tokens(s->metrics, (double)it->tokens);
    sched_push(&m->q, it, sched_now_ns());
    r->state = SRV_REQ_QUEUED;
    s->inflight++;
    /* batches form in the async callback, outside libmicrohttpd's callbacks, so that a
     * request dropped at once is never resumed before it is suspended */
    uv_async_send(&s->async);
    return SRV_DEFERRED;
}

void srv_model_run(void *arg, sched_batch *b)
{
    srv_model *m = arg;
    /* a batch holds one kind of job: the scheduler's key differs between v2 and text */
    const int text = b->key >= 2;
    void **jobs = malloc((size_t)b->n * sizeof *jobs);
    if (!jobs) {
        b->status = LS_ERR_NOMEM;
        return;
    }
    int n = 0;
    size_t tokens = 0, pad = 0; /* padding: attention_mask 0 (v2 only; text rows never pad) */
    for (int i = 0; i < b->n; i++) {
        srv_req *r = b->items[i]->owner;
        if (b->items[i]->fate != SCHED_LIVE) continue;
        jobs[n++] = text ? (void *)r->txt : (void *)&r->v2;
        if (text) {
            tokens += txt_job_tokens(r->txt);
            continue;
        }
        const size_t nt = v2_job_tokens(&r->v2); /* B·L, row-major like attn */
        tokens += nt;
        for (size_t t = 0; r->v2.attn && t < nt; t++)
            pad += r->v2.attn[t] == 0;
    }
    b->pad_ratio = tokens ? (double)pad / (double)tokens : 0.0;
    /* kernel time of this batch: the context's cumulative counters before and after */
    double before[SCHED_MAX_OPS], after[SCHED_MAX_OPS];
    eng_ctx_op_seconds(m->ctx, before, SCHED_MAX_OPS);
    char err[256] = "";
    if (n == 0)
        b->status = LS_OK;
    else if (text)
        b->status = txt_batch_run(m->ctx, (txt_job *const *)jobs, n, NULL, err, sizeof err);
    else
        b->status = v2_batch_run(m->ctx, (v2_job *const *)jobs, n, NULL, err, sizeof err);
    free(jobs);
    eng_ctx_op_seconds(m->ctx, after, SCHED_MAX_OPS);
    for (int i = 0; i < SCHED_MAX_OPS; i++)
        b->kernel_s[i] = after[i] - before[i];
}

/* ---- text routes: decode and tokenize off the loop
 * ----------------------------------------------- */

static void srv__prepare(uv_work_t *w)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    const txt_limits lim = {
        .max_input_tokens = s->opt.max_input_tokens,
        .max_inputs = (int)s->opt.max_client_batch_size,
        .max_global = (int)s->opt.max_global_tokens,
        .auto_truncate = s->opt.auto_truncate,
    };
    uint64_t t0 = sched_now_ns();
    r->prep_st = txt_job_prepare(r->txt, r->txt_kind, r->body, r->len, s->tms, s->nmodels, &lim,
                                 &r->out, &r->out_len, r->prep_err, sizeof r->prep_err);
    r->prep_ns = sched_now_ns() - t0;
}

static void srv__prepared(uv_work_t *w, int status)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    s->encoding--;
    metrics_tokenize_time(s->metrics, (double)r->prep_ns * 1e-9);
    char *body = r->out;
    r->out = NULL;
    if (!r->conn) { /* its connection went at a forced stop */
        free(body);
        srv_req_free(r);
        return;
    }
    if (status) {
        free(body);
        srv_reply_error(r, HERR_INTERNAL, "tokenization was cancelled");
    } else if (r->prep_st) {
        free(body);
        srv_reject(r, METRICS_REJ_INVALID, herr_from_status(r->prep_st), "%s", r->prep_err);
    } else {
        if (r->txt->echo.truncated) metrics_truncated(s->metrics);
        if (body) { /* /tokenize, /decode: answered without the engine */
            srv_reply(r, 200, body, r->out_len, NULL);
        } else {
            for (int i = 0; i < s->nmodels; i++)
                if (&s->models[i].tm == r->txt->m) r->model = &s->models[i];
            srv_submit(r);
            return; /* stays suspended until the engine answers */
        }
    }
    http_resume(r);
}

int srv_text_start(srv_req *r, tei_kind kind)
{
    srv_server *s = r->srv;
    if (!(r->txt = calloc(1, sizeof *r->txt)))
        return srv_reply_error(r, HERR_INTERNAL, "out of memory for the request");
    r->txt_kind = kind;
    r->work.data = r;
    r->state = SRV_REQ_QUEUED; /* the pool holds it: a forced stop must not free it */
    s->encoding++;
    if (uv_queue_work(s->loop, &r->work, srv__prepare, srv__prepared) == 0) return SRV_DEFERRED;
    s->encoding--;
    r->state = SRV_REQ_BODY;
    return srv_reply_error(r, HERR_INTERNAL, "cannot queue the tokenization");
}

/* ---- completion ---------------------------------------------------------------------------- */

static void srv__encode(uv_work_t *w)
{
    srv_req *r = w->data;
    size_t len = 0;
    char *body =
        r->txt ? txt_job_encode(r->txt, &len) : v2_job_encode(&r->v2, r->model->name, &len);
    r->out = body;
    r->out_len = len;
}

static void srv__encoded(uv_work_t *w, int status)
{
    srv_req *r = w->data;
    srv_server *s = r->srv;
    s->encoding--;
    char *body = r->out;
    r->out = NULL;
    if (status == 0 && body)
        srv_reply(r, 200, body, r->out_len, NULL);
    else {
        free(body);
        srv_reply_error(r, HERR_INTERNAL, "out of memory encoding the response");
    }
    if (!r->conn)
        srv_req_free(r); /* its connection went at a forced stop */
    else
        http_resume(r);
}

static void srv__complete(srv_server *s, sched_item *it, int batch_status)
{
    srv_req *r = it->owner;
    s->inflight--;
    if (it->start_ns)
        metrics_queue_time(s->metrics, (double)(it->start_ns - it->arrival_ns) * 1e-9);
    if (it->fate == SCHED_DROP_DEADLINE) {
        srv_reject(r, METRICS_REJ_DEADLINE, HERR_TIMEOUT,
                   "the request's deadline (%lld ms) passed before it could run",
                   s->opt.request_timeout_ms);
    } else if (it->fate == SCHED_DROP_GONE) {
        metrics_reject(s->metrics, METRICS_REJ_DISCONNECTED);
        srv_reply_error(r, HERR_UNAVAILABLE, "client disconnected");
    } else if (batch_status) {
        srv_reply_error(r, herr_from_status((ls_status)batch_status), "engine: %s",
                        ls_strerror((ls_status)batch_status));
    } else if (r->txt && r->txt->st) {
        srv_reply_error(r, herr_from_status(r->txt->st), "%s", r->txt->err);
    } else if (!r->txt && r->v2.st) {
        srv_reply_error(r, herr_from_status(r->v2.st), "%s", r->v2.err);
    } else {
        r->work.data = r;
        s->encoding++;
        if (uv_queue_work(s->loop, &r->work, srv__encode, srv__encoded) == 0) return;
        s->encoding--;
        srv_reply_error(r, HERR_INTERNAL, "cannot queue the response encoding");
    }
    if (!r->conn)
        srv_req_free(r);
    else
        http_resume(r);
}

void srv_pump(srv_server *s)
{
    double depth = 0, cost = 0;
    for (int i = 0; i < s->nmodels; i++) {
        srv_model *m = &s->models[i];
        sched_item *dropped = NULL;
        if (wk_offer(m->wk, &m->q, &dropped))
            log_event("error", "scheduler", NULL, "%s: out of memory forming a batch", m->name);
        while (dropped) {
            sched_item *it = dropped;
            dropped = it->next;
            srv__complete(s, it, LS_OK);
        }
        depth += sched_depth(&m->q);
        cost += sched_queued_cost(&m->q);
    }
    metrics_set_queue(s->metrics, depth, cost);
    metrics_set_inflight(s->metrics, s->inflight);
}

void srv_on_async(uv_async_t *a)
{
    srv_server *s = a->data;
    int busy = 0;
    for (int i = 0; i < s->nmodels; i++) {
        srv_model *m = &s->models[i];
        sched_batch *b = wk_collect(m->wk, &m->running);
        busy += m->running;
        while (b) {
            sched_batch *next = b->next;
            int live = 0;
            for (int k = 0; k < b->n; k++)
                live += b->items[k]->fate == SCHED_LIVE;
            if (live) {
                metrics_batch(s->metrics, live, (double)b->tokens, b->cost, b->infer_s);
                metrics_batch_padding(s->metrics, b->pad_ratio);
                metrics_kernel_seconds(s->metrics, b->kernel_s, SCHED_MAX_OPS);
                /* predicted vs actual, then the model's speed: a moving average of cost
                 * per second, seeded by the warm-up calibration */
                if (b->infer_s > 0) {
                    double v = b->cost / b->infer_s;
                    if (m->cost_per_s > 0)
                        metrics_batch_time_ratio(s->metrics, b->infer_s * m->cost_per_s / b->cost);
                    m->cost_per_s = m->cost_per_s > 0 ? 0.8 * m->cost_per_s + 0.2 * v : v;
                }
            }
            for (int k = 0; k < b->n; k++)
                srv__complete(s, b->items[k], b->status);
            sched_batch_free(b);
            b = next;
        }
    }
    metrics_set_engine_busy(s->metrics, busy);
    if (!s->stopping) srv_pump(s);
}

void srv_fail_queued(srv_server *s, herr_kind k, const char *msg)
{
    for (int i = 0; i < s->nmodels; i++) {
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
            if (!r->conn)
                srv_req_free(r);
            else
                http_resume(r);
            it = next;
        }
    }
    metrics_set_inflight(s->metrics, s->inflight);
}
