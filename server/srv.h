/* The HTTP server's shared state: the server, its models, one request, the route table.
 * Everything here lives on the loop thread, except what a request lends the engine worker
 * between srv_submit and its completion (item and v2 job). No libmicrohttpd types: only
 * http.c speaks to libmicrohttpd. */
#ifndef SRV_SRV_H
#define SRV_SRV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../engine/engine.h"
#include "../proto/http_errors.h"
#include "metrics.h"
#include "options.h"
#include "scheduler.h"
#include "text.h"
#include "v2_infer.h"
#include "worker.h"

typedef struct srv_server srv_server;
typedef struct srv_req srv_req;

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
    tok_tokenizer *tok; /* <dir>/tokenizer.json, or NULL: only the v2 route */
    txt_model tm;       /* what the text routes see of the model */
    /* engine speed in cost units per second: measured at warm-up (calibration), then a
     * moving average over real batches; for Retry-After and the prediction metric */
    double cost_per_s;
} srv_model;

/* ---- routes ------------------------------------------------------------------------ */

enum { SRV_GET = 1, SRV_POST = 2, SRV_OPTIONS = 4 };
enum {
    SRV_RT_PUBLIC = 1, /* no API key needed (probes and metrics) */
    SRV_RT_MODEL = 2,  /* the path's {m} names a model: 404 before reading the body */
    SRV_RT_ENGINE = 4, /* runs on the engine: readiness, payload limit and queue admission */
};

/* Handlers fill r's reply and return SRV_DONE, or SRV_DEFERRED after srv_submit (the reply
 * comes when the engine is done). */
enum { SRV_DONE = 0, SRV_DEFERRED = 1 };
typedef int (*srv_handler)(srv_req *r);

typedef struct {
    const char *pattern; /* '*' matches one path segment, given to the handler as r->capture */
    unsigned methods;
    herr_family family; /* error body shape */
    unsigned flags;
    srv_handler handler;
    const char *name; /* metrics label */
} srv_route;

extern const srv_route srv_routes[];
extern const int srv_nroutes;

/* The route for path, or NULL; *allow gets the methods of every route matching the path
 * (for 405), capture the '*' segment. */
int srv_route_match(const char *path, unsigned method, unsigned *allow, char *capture,
                    size_t caplen);

/* ---- one request ---------------------------------------------------------------------- */

typedef enum { SRV_REQ_HEADERS, SRV_REQ_BODY, SRV_REQ_QUEUED, SRV_REQ_REPLIED } srv_req_state;

struct srv_req {
    srv_server *srv;
    void *conn; /* struct MHD_Connection */
    int fd;
    char id[72];
    int route;          /* index in srv_routes, -1 unknown */
    herr_family family; /* error body shape: the route's, or guessed from the path */
    unsigned method;
    char capture[128];
    srv_model *model;
    uint64_t arrival_ns;
    srv_req_state state;
    int reserved;  /* holds one of --max-concurrent-requests */
    int suspended; /* waiting for the engine */
    int sent;      /* the reply is queued on the connection */
    char *body;    /* the request body, NUL-terminated */
    size_t len, cap;
    size_t discarded; /* body bytes dropped after a 413 */
    /* the reply */
    int http;
    char *out;
    size_t out_len;
    const char *ctype;
    int retry_after; /* seconds; 0: no header */
    unsigned allow;  /* for 405: an Allow header */
    /* the engine: a v2 job, or a text job (txt non-NULL) */
    sched_item item;
    v2_job v2;
    txt_job *txt;
    tei_kind txt_kind;
    ls_status prep_st; /* the text job's decode/tokenize verdict */
    char prep_err[512];
    uint64_t prep_ns; /* decode + tokenize time */
    uv_work_t work;
    srv_req *prev, *next; /* srv->reqs */
};

/* ---- the server ------------------------------------------------------------------------- */

struct srv_server {
    opt_options opt;
    uv_loop_t *loop;
    void *mhd; /* struct MHD_Daemon */
    int port;  /* bound */
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer;
    uv_async_t async;
    uv_signal_t sig_term, sig_int;
    uv_timer_t drain_timer;
    int handles; /* open uv handles, to know when all close callbacks ran */
    srv_model *models;
    int nmodels;
    metrics *metrics;
    int ready, draining, stopping, exit_code;
    uint64_t drain_deadline_ns;
    int reserved;                         /* admitted requests (queue capacity in use) */
    int inflight;                         /* submitted to a scheduler, not yet replied */
    int encoding;                         /* replies being encoded in the uv work pool */
    const txt_model *tms[OPT_MAX_MODELS]; /* the text routes' view of models[] */
    uint64_t seq;
    srv_req *reqs; /* every live request */
};

srv_model *srv_model_find(srv_server *s, const char *name);

/* Reply helpers: take ownership of body (malloc'd). */
int srv_reply(srv_req *r, int http, char *body, size_t len, const char *ctype);
int srv_reply_error(srv_req *r, herr_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts a refusal in the metrics, then srv_reply_error. */
int srv_reject(srv_req *r, metrics_reason why, herr_kind k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_req_free(srv_req *r);

/* Queue admission: a place among --max-concurrent-requests, without blocking. */
int srv_reserve(srv_req *r);
void srv_unreserve(srv_req *r);
int srv_retry_after(const srv_server *s);

/* dispatch.c: hands a decoded request to its model's scheduler (SRV_DEFERRED). */
int srv_submit(srv_req *r);
/* dispatch.c: a text route's request: decode and tokenize in the uv work pool, then
 * submit (or answer /tokenize, /decode, errors). SRV_DEFERRED. */
int srv_text_start(srv_req *r, tei_kind kind);
void srv_on_async(uv_async_t *a);
void srv_pump(srv_server *s);
/* Replies to every queued request that has not reached the engine (shutdown). */
void srv_fail_queued(srv_server *s, herr_kind k, const char *msg);
void srv_model_run(void *arg, sched_batch *b); /* wk_run_fn */

/* http.c */
int http_start(srv_server *s, char *err, size_t errlen);
void http_stop(srv_server *s);
/* A deferred request has its reply: resume its connection (and run libmicrohttpd). */
void http_resume(srv_req *r);
void http_kick(srv_server *s);

int srv_ready(const srv_server *s);
void srv_handle_closed(uv_handle_t *h);

#endif
