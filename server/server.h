/* The server's state: its options, loop handles, models (each with its scheduler and
 * engine worker) and live requests. Lives on the loop thread; a model's eng_ctx belongs
 * to its worker thread. The HTTP adapter's state is a struct only server/http.c defines. */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../engine/engine.h"
#include "metrics.h"
#include "options.h"
#include "scheduler.h"
#include "text.h"
#include "worker.h"

typedef struct srv_server srv_server;
typedef struct srv_req srv_req;

/* Triton's statistics extension (/v2/models/{m}/stats), per model, on the loop thread: a
 * count of requests and their summed nanoseconds. */
typedef struct {
    uint64_t count, ns;
} srv_stat;

typedef struct {
    uint64_t last_inference_ms; /* wall clock of the last success, ms since the epoch */
    uint64_t inference_count;   /* successful requests */
    uint64_t execution_count;   /* engine batches that held one of its requests */
    srv_stat success, fail;     /* arrival to reply */
    srv_stat queue;             /* submitted to the engine's start */
    srv_stat compute_input;     /* prepare: decode, validate, tokenize */
    srv_stat compute_infer;     /* the batch's engine time, for each request in it */
    srv_stat compute_output;    /* encode (and compression) */
} srv_model_stats;

typedef struct {
    const char *name, *path; /* the option's strings */
    eng_model *m;
    eng_ctx *ctx; /* used by the model's worker thread only */
    eng_model_info info;
    const char *task;
    sched q;
    wk_worker *wk;
    int running; /* the worker runs a batch (as last collected) */
    srv_server *srv;
    txt_model tm; /* what the text routes see of the model (its tokenizer is the engine's) */
    const char *alias[OPT_MAX_ALIASES]; /* --served-model-name (tm.aliases) */
    /* engine speed in cost units per second: measured at warm-up (calibration), then a
     * moving average over real batches; for Retry-After and the prediction metric */
    double cost_per_s;
    /* the cost bound (--max-request-cost, else --max-request-seconds at the best speed seen:
     * the warm-up calibration, raised by any faster batch of 10 ms or more, so that a warm-up
     * on a busy machine does not leave it small), 0: none; set once the model is warm */
    double max_cost, best_cost_per_s;
    char hashing[200]; /* Reformer: /info's lsh_hashing */
    srv_model_stats stats;
    /* loading: written by the worker's init, read by the loop once wk_init_result says it
     * has finished; `loaded` (loop) is set then, and only then is anything above used */
    int loaded;
    int files;
    uint64_t bytes, tensors;
    double load_s, warm_s;
} srv_model;

struct srv_http; /* the HTTP adapter (server/http.c) */

struct srv_server {
    opt_options opt;
    uv_loop_t *loop;
    struct srv_http *http;
    /* The adapter's one entry the rest of the server calls: a deferred request has its
     * reply, send it (set by http_start). */
    void (*resume)(srv_req *r);
    /* Fuzzing only (fuzz/fuzz_http.c): when set, answers every engine route in place of
     * its handler, so that the HTTP layer is exercised without models. */
    int (*engine_handler)(srv_req *r);
    int port; /* bound */
    uv_async_t async;
    uv_async_t load_async; /* a model's worker has finished loading (main.c) */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    int handles;       /* open uv handles, to know when all close callbacks ran */
    srv_model *models; /* every model of the options, loaded or not (srv_model.loaded) */
    int nmodels;
    int nloaded;       /* models[0 .. nloaded) are loaded: they load one at a time, in order */
    uint64_t start_ns; /* the process's start, for the load time */
    metrics *metrics;
    int ready; /* every model loaded and warmed up; until then only SRV_RT_LOADING routes */
    int draining, stopping, exit_code;
    uint64_t drain_deadline_ns;
    int reserved;                         /* admitted requests (queue capacity in use) */
    int inflight;                         /* submitted to a scheduler, not yet replied */
    int encoding;                         /* jobs in the uv work pool (prepare, encode) */
    const txt_model *tms[OPT_MAX_MODELS]; /* the text routes' view of models[] */
    uint64_t seq;
    srv_req *reqs; /* every live request */
};

/* The model a name (or --served-model-name alias) names, or NULL. */
srv_model *srv_model_find(srv_server *s, const char *name);
/* As srv_model_find, and with --accept-any-model-name the one model whatever the name:
 * the model a request body's "model" names. */
srv_model *srv_model_named(srv_server *s, const char *name);
/* Ready to take engine work: models loaded and warmed up, not draining. */
int srv_ready(const srv_server *s);
/* Seconds a refused client should wait: the queued cost at each model's measured speed. */
int srv_retry_after(const srv_server *s);
/* uv_close callback of the server's handles (counts them down). */
void srv_handle_closed(uv_handle_t *h);

#endif
