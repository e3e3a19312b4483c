/* longserve: the HTTP server. Startup (options, the listener, then the models, each loaded
 * and warmed up on its worker thread while the loop answers probes), the loop, and shutdown:
 * SIGTERM/SIGINT flip readiness at once, in-flight requests drain up to --shutdown-timeout, then
 * the process exits (0 when nothing was abandoned); SIGHUP is logged and ignored. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "job.h"
#include "log.h"
#include "request.h"
#include "routes.h"

/* Warm-up: one tiny forward, so that a broken model or backend fails at startup and not
 * on the first request, then a calibration forward of one sequence (up to 256 tokens,
 * one global token) that turns the cost model's units into seconds for this model on
 * this machine (m->cost_per_s). An explicit global mask keeps QA heads from needing
 * separators. */
enum { SRV_CALIB_TOKENS = 256 };

static ls_status srv__warmup(srv_model *m, char *err, size_t errlen)
{
    int32_t sep = m->info.sep_token_id >= 0 && m->info.sep_token_id < m->info.vocab_size
                      ? m->info.sep_token_id
                      : 0;
    int32_t off[] = {0, 2}, ids[SRV_CALIB_TOKENS];
    uint8_t glob[SRV_CALIB_TOKENS] = {1};
    for (int i = 0; i < SRV_CALIB_TOKENS; i++)
        ids[i] = sep;
    eng_batch b = {.nseq = 1, .offsets = off, .ids = ids, .global_mask = glob};
    eng_outputs out;
    ls_status st = eng_ctx_forward(m->ctx, &b, &out, err, errlen);
    if (st) return st;
    int n = m->info.max_tokens < SRV_CALIB_TOKENS ? m->info.max_tokens : SRV_CALIB_TOKENS;
    off[1] = n;
    /* the best of three: the cost bound (--max-request-seconds) comes from it, and a
     * neighbour's burst should not shrink it */
    double sec = 0;
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = sched_now_ns();
        if ((st = eng_ctx_forward(m->ctx, &b, &out, err, errlen))) return st;
        const double t = (double)(sched_now_ns() - t0) * 1e-9;
        if (i == 0 || t < sec) sec = t;
    }
    if (sec > 0) m->cost_per_s = eng_model_cost(&m->info, 1, (size_t)n, 1) / sec;
    return LS_OK;
}

static void srv__sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* eng_model_params.on_file, on the loading thread: one line per weights file (per shard). */
static void srv__on_file(void *arg, const eng_load_file *f)
{
    srv_model *m = arg;
    m->files++;
    m->bytes += f->bytes;
    m->tensors += f->tensors;
    log_event("info", "model_loading", NULL,
              "model %s: weights file %d of %d, %s: %llu bytes, %zu tensors, mapped and checked "
              "in %.3f s",
              m->name, f->index, f->count, f->path, (unsigned long long)f->bytes, f->tensors,
              f->seconds);
}

/* On the model's worker thread: the thread that computes also loads (wk_init_fn). */
static int srv__model_init(void *arg, char *err, size_t errlen)
{
    srv_model *m = arg;
    const opt_options *o = &m->srv->opt;
    if (o->debug_load_delay_ms) srv__sleep_ms(o->debug_load_delay_ms);
    eng_model_params mp = eng_model_default_params();
    if (o->window > 0) mp.window = (int)o->window; /* 0: the engine's default */
    mp.full_attention = (int)o->full_attention;
    mp.threads = (int)o->threads;
    mp.backend = o->backend;
    mp.dtype = o->dtype;
    mp.on_file = srv__on_file;
    mp.on_file_arg = m;
    uint64_t t0 = sched_now_ns();
    ls_status st = eng_model_load(m->path, &mp, &m->m, err, errlen);
    if (!st && !(m->ctx = eng_ctx_new(m->m)))
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for an engine context");
    m->load_s = (double)(sched_now_ns() - t0) * 1e-9;
    if (!st) {
        eng_model_get_info(m->m, &m->info);
        const eng_model_info *in = &m->info;
        if (in->lsh_layers && in->has_hash_seed) /* /info's description of the hashing */
            snprintf(m->hashing, sizeof m->hashing,
                     "%d rounds; rotations from hash_seed %lld (config.json) for every LSH layer, "
                     "as Hugging Face draws them on the CPU",
                     in->num_hashes, in->hash_seed);
        else if (in->lsh_layers)
            snprintf(m->hashing, sizeof m->hashing,
                     "%d rounds; no hash_seed in config.json: the rotations Hugging Face draws "
                     "after torch.manual_seed(%d), one stream per sequence, layer after layer",
                     in->num_hashes, ENG_DEFAULT_HASH_SEED);
        m->task = m->info.can_generate ? "text-generation" : eng_head_task(m->info.head);
        /* the names were set before the thread started (the loop reads them meanwhile) */
        m->tm.info = &m->info;
        m->tm.tok = eng_model_tokenizer(m->m);
        t0 = sched_now_ns();
        st = srv__warmup(m, err, errlen);
        m->warm_s = (double)(sched_now_ns() - t0) * 1e-9;
    }
    if (!st) return 0;
    eng_ctx_free(m->ctx);
    eng_model_free(m->m);
    m->ctx = NULL;
    m->m = NULL;
    m->tm.tok = NULL;
    return -1;
}

/* ---- loading: after the listener, on the models' worker threads ----------------------------- */

static void srv__finish(srv_server *s, int code);

static int srv__models_init(srv_server *s)
{
    s->models = calloc((size_t)s->opt.nmodels, sizeof *s->models);
    if (!s->models) return -1;
    s->nmodels = s->opt.nmodels;
    for (int i = 0; i < s->nmodels; i++) {
        srv_model *m = &s->models[i];
        m->srv = s;
        m->name = s->opt.model_id[i].name;
        m->path = s->opt.model_id[i].path;
        /* its names, for srv_model_find while it loads: --served-model-name aliases */
        int na = 0;
        for (int a = 0; a < s->opt.naliases; a++)
            if (s->opt.served_model_name[a].model == i)
                m->alias[na++] = s->opt.served_model_name[a].alias;
        m->tm = (txt_model){.name = m->name, .aliases = m->alias, .naliases = na};
    }
    return 0;
}

/* A model whose worker has loaded it: its scheduler, then the loop may use it. */
static void srv__model_loaded(srv_server *s, srv_model *m)
{
    /* the token budget translated into cost at the model's window, no global tokens */
    double per_token = eng_model_token_cost(&m->info);
    sched_params sp = {
        .max_tokens = (size_t)s->opt.max_batch_tokens,
        .max_cost = s->opt.max_batch_cost ? (double)s->opt.max_batch_cost
                                          : per_token * (double)s->opt.max_batch_tokens,
        .max_requests = (int)s->opt.max_batch_requests,
        .delay_ns = (uint64_t)s->opt.max_queue_delay_us * 1000u,
        .long_tokens = (size_t)s->opt.long_request_tokens,
        .weight = {(double)s->opt.short_lane_weight, 1.0},
    };
    sched_init(&m->q, &sp);
    /* the cost bound (raised with the best speed seen: srv_model_speed) */
    m->best_cost_per_s = 0;
    srv_model_speed(m, m->cost_per_s);
    s->tms[m - s->models] = &m->tm;
    m->loaded = 1;
    log_event("info", "model_loaded", NULL,
              "model %s from %s: %d weights file%s, %llu bytes, %llu tensors, loaded in %.3f s, "
              "warmed up in %.3f s; %s %s, %d layers, hidden %d, full attention up to %d tokens, "
              "then %s window %d, max %d tokens, %s, "
              "pooling %s%s%s, backend %s, %s: %s; %.3g cost units/s, request cost bound %.3g "
              "(about %.0f tokens in one sequence)",
              m->name, m->path, m->files, m->files == 1 ? "" : "s", (unsigned long long)m->bytes,
              (unsigned long long)m->tensors, m->load_s, m->warm_s, m->info.model_type, m->task,
              m->info.num_layers, m->info.hidden_size, m->info.full_attention_tokens,
              m->info.attention, m->info.max_window, m->info.max_tokens,
              !m->tm.tok                                    ? "no tokenizer (v2 route only)"
              : tok_get_model(m->tm.tok) == TOK_MODEL_BYTES ? "byte tokenizer"
                                                            : "tokenizer.json",
              eng_pooling_name(m->info.pooling), m->info.st_normalize ? " + normalize" : "",
              m->info.st_config ? " (sentence-transformers)" : "", m->info.backend, m->info.dtype,
              m->info.isa, m->cost_per_s, m->max_cost, m->max_cost / per_token);
}

/* Moves the loading on: takes in the models whose workers have finished, starts the next
 * one (one at a time, so that each warm-up calibration has the machine to itself) and flips
 * readiness after the last. A model that fails to load stops the server (exit 1). */
static void srv__load_next(srv_server *s)
{
    while (s->nloaded < s->nmodels) {
        srv_model *m = &s->models[s->nloaded];
        char err[1024] = "";
        if (!m->wk) {
            log_event("info", "model_loading", NULL, "model %s: loading %s (%d of %d)", m->name,
                      m->path, s->nloaded + 1, s->nmodels);
            m->wk = wk_start(srv__model_init, srv_model_run, m, &s->async, &s->load_async,
                             (int)s->opt.debug_engine_delay_ms, err, sizeof err);
            if (m->wk) return; /* load_async says when it is done */
        } else {
            int rc = wk_init_result(m->wk, err, sizeof err);
            if (rc > 0) return; /* still loading */
            if (rc == 0) {
                srv__model_loaded(s, m);
                s->nloaded++;
                continue;
            }
        }
        log_event("error", "model_load", NULL, "model %s (%s): %s", m->name, m->path, err);
        srv__finish(s, 1);
        return;
    }
    s->ready = 1;
    metrics_set_ready(s->metrics, 1);
    log_event("info", "ready", NULL, "ready: %d model%s loaded and warmed up, %.3f s after start",
              s->nmodels, s->nmodels == 1 ? "" : "s",
              (double)(sched_now_ns() - s->start_ns) * 1e-9);
}

static void srv__on_loaded(uv_async_t *a)
{
    srv_server *s = a->data;
    if (!s->stopping && !s->draining && !s->ready) srv__load_next(s);
}

static void srv__log_option(void *arg, const char *key, opt_type type, int flags, long long ival,
                            const char *sval)
{
    (void)flags;
    char *buf = arg;
    size_t n = strlen(buf);
    if (n > 3500) return;
    if (type == OPT_INT)
        snprintf(buf + n, 4096 - n, " %s=%lld", key, ival);
    else if (type == OPT_BOOL)
        snprintf(buf + n, 4096 - n, " %s=%s", key, ival ? "true" : "false");
    else
        snprintf(buf + n, 4096 - n, " %s=%s", key, sval ? sval : "(unset)");
}

static int srv__write_port_file(const char *path, int port)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok &= fclose(f) == 0;
    /* atomic: a reader sees no file or the whole port */
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/* ---- shutdown ------------------------------------------------------------------------------ */

static int srv__engine_requests_alive(const srv_server *s)
{
    int n = 0;
    for (const srv_req *r = s->reqs; r; r = r->next)
        n += r->route >= 0 && (srv_routes[r->route].flags & SRV_RT_ENGINE) &&
             r->state != SRV_REQ_BODY;
    return n;
}

static void srv__finish(srv_server *s, int code)
{
    s->exit_code = code;
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->drain_timer, srv_handle_closed);
    /* the signal handles stay open, unreferenced, until srv__close_signals at the end of
     * main: closing one gives its signal the default action back, and a supervisor's second
     * SIGTERM during the teardown would kill the process with that signal, not its code */
    uv_unref((uv_handle_t *)&s->sig_term);
    uv_unref((uv_handle_t *)&s->sig_int);
    uv_unref((uv_handle_t *)&s->sig_hup);
    uv_close((uv_handle_t *)&s->async, srv_handle_closed);
    uv_close((uv_handle_t *)&s->load_async, srv_handle_closed);
    http_stop(s);
    log_event("info", "shutdown", NULL, "stopped (exit %d)", code);
}

/* Last thing before the loop closes: each signal ignored as soon as libuv stops handling it
 * (uv_close sets the default action), then the close callbacks. */
static void srv__close_signals(srv_server *s)
{
    uv_close((uv_handle_t *)&s->sig_term, srv_handle_closed);
    signal(SIGTERM, SIG_IGN);
    uv_close((uv_handle_t *)&s->sig_int, srv_handle_closed);
    signal(SIGINT, SIG_IGN);
    uv_close((uv_handle_t *)&s->sig_hup, srv_handle_closed);
    signal(SIGHUP, SIG_IGN);
    uv_run(s->loop, UV_RUN_DEFAULT);
}

static void srv__drain_tick(uv_timer_t *t)
{
    srv_server *s = t->data;
    int alive = srv__engine_requests_alive(s);
    if (s->inflight == 0 && s->encoding == 0 && alive == 0) {
        srv__finish(s, s->exit_code);
        return;
    }
    uint64_t now = sched_now_ns();
    if (now < s->drain_deadline_ns) return;
    if (!s->exit_code) {
        log_event("warn", "shutdown", NULL,
                  "--shutdown-timeout reached with %d requests in flight: answering the "
                  "queued ones 503",
                  s->inflight);
        srv_fail_queued(s, HERR_UNAVAILABLE, "the server is shutting down");
        s->exit_code = 1;
        s->drain_deadline_ns = now + 2000000000u; /* let those replies go out */
        return;
    }
    /* the queued ones were answered: what is still in flight is on the engine; every live
     * request, answered or not, loses its connection with the process */
    int busy = 0, open = 0;
    for (int i = 0; i < s->nloaded; i++)
        busy += wk_holds_work(s->models[i].wk);
    for (const srv_req *r = s->reqs; r; r = r->next)
        open++;
    log_event("error", "shutdown", NULL,
              "%d requests still on the engine (%d of %d models busy) after the timeout: "
              "exiting without them, dropping %d open requests",
              s->inflight, busy, s->nloaded, open);
    _exit(1); /* a forward pass cannot be interrupted; its thread dies with the process */
}

static void srv__on_signal(uv_signal_t *h, int signum)
{
    srv_server *s = h->data;
    if (s->draining || s->stopping) {
        log_event("info", "shutdown", NULL, "signal %d again: already %s", signum,
                  s->stopping ? "stopping" : "draining");
        return;
    }
    s->draining = 1;
    metrics_set_ready(s->metrics, 0);
    log_event("info", "shutdown", NULL,
              "signal %d: not ready; draining %d in-flight requests (up to %lld s)", signum,
              s->inflight, s->opt.shutdown_timeout);
    s->drain_deadline_ns = sched_now_ns() + (uint64_t)s->opt.shutdown_timeout * 1000000000u;
    uv_timer_start(&s->drain_timer, srv__drain_tick, 0, 20);
}

/* SIGHUP (the terminal went away, or a supervisor's "reload") neither stops nor drains:
 * there is nothing to reload, and the default action would kill the in-flight requests. */
static void srv__on_hup(uv_signal_t *h, int signum)
{
    (void)h;
    log_event("info", "signal", NULL, "signal %d (SIGHUP): ignored; SIGTERM drains and stops",
              signum);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static srv_server srv;
    srv_server *s = &srv;
    char err[1024] = "";
    int rc = opt_parse(&s->opt, argc, argv, err, sizeof err);
    if (rc) {
        if (rc < 0) {
            fprintf(stderr, "longserve: %s\n", err);
            opt_free(&s->opt);
            return 2;
        }
        opt_free(&s->opt);
        return 0;
    }
    log_init(s->opt.json_output);
    signal(SIGPIPE, SIG_IGN); /* a client that leaves is an error return, not a death */
    signal(SIGHUP, SIG_IGN);  /* until srv__on_hup logs it, once listening */
    char conf[4096] = "";
    opt_visit(&s->opt, srv__log_option, conf);
    log_event("info", "config", NULL, "longserve %s:%s", LONGSERVE_VERSION, conf);

    uv_loop_t loop;
    uv_loop_init(&loop);
    loop.data = s;
    s->loop = &loop;
    s->exit_code = 0;
    s->start_ns = sched_now_ns();
    s->seq = (uint64_t)sched_now_ns() << 16; /* request ids differ across restarts */
    const char *route_names[64], *model_names[OPT_MAX_MODELS];
    for (int i = 0; i < srv_nroutes && i < 64; i++)
        route_names[i] = srv_routes[i].name;
    for (int i = 0; i < s->opt.nmodels; i++)
        model_names[i] = s->opt.model_id[i].name;
    s->metrics = metrics_new(route_names, srv_nroutes, model_names, s->opt.nmodels,
                             LONGSERVE_VERSION, s->opt.backend);
    uv_async_init(&loop, &s->async, srv_on_async);
    uv_async_init(&loop, &s->load_async, srv__on_loaded);
    uv_timer_init(&loop, &s->drain_timer);
    uv_signal_init(&loop, &s->sig_term);
    uv_signal_init(&loop, &s->sig_int);
    uv_signal_init(&loop, &s->sig_hup);
    s->async.data = s->load_async.data = s->drain_timer.data = s->sig_term.data = s->sig_int.data =
        s->sig_hup.data = s;
    s->handles += 6;

    /* listen first: a port in use fails before anything loads, and probes answer (/health
     * 200, /ready 503) while the models load */
    int ok = s->metrics && srv__models_init(s) == 0;
    if (ok && http_start(s, err, sizeof err)) {
        log_event("error", "listen", NULL, "%s", err);
        ok = 0;
    }
    if (ok) {
        uv_signal_start(&s->sig_term, srv__on_signal, SIGTERM);
        uv_signal_start(&s->sig_int, srv__on_signal, SIGINT);
        uv_signal_start(&s->sig_hup, srv__on_hup, SIGHUP);
        log_event("info", "listening", NULL, "listening on %s:%d%s", s->opt.hostname, s->port,
                  s->opt.tls_cert_pem ? " (HTTPS)" : "");
        if (s->opt.port_file[0] && srv__write_port_file(s->opt.port_file, s->port)) {
            log_event("error", "listen", NULL, "cannot write --port-file %s", s->opt.port_file);
            ok = 0;
        }
    }
    if (ok) {
        srv__load_next(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    } else {
        s->exit_code = 1;
        srv__finish(s, 1);
        uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks */
    }
    for (int i = 0; i < s->nmodels; i++) {
        char e[8];
        if (s->models[i].wk && wk_init_result(s->models[i].wk, e, sizeof e) > 0) {
            /* stopped while a model loads: a load cannot be interrupted */
            log_event("info", "shutdown", NULL, "exiting while model %s loads", s->models[i].name);
            fflush(NULL);
            _exit(s->exit_code);
        }
    }
    if (s->opt.debug_exit_delay_ms) srv__sleep_ms(s->opt.debug_exit_delay_ms);
    for (int i = 0; i < s->nmodels; i++) {
        wk_stop(s->models[i].wk);
        eng_ctx_free(s->models[i].ctx);
        eng_model_free(s->models[i].m);
    }
    while (s->reqs)
        srv_req_free(s->reqs); /* only after a failed start */
    free(s->models);
    srv__close_signals(s);
    if (uv_loop_close(&loop)) log_event("warn", "shutdown", NULL, "libuv handles left open");
    metrics_free(s->metrics);
    opt_free(&s->opt);
    return s->exit_code;
}
