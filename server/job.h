/* One interface for every kind of engine work behind a route. A job lives through five
 * steps on three threads:
 *
 *     prepare    uv pool     decode the body, validate, tokenize; pick the model; may
 *                            answer at once without the engine (/tokenize, errors)
 *     cost       loop        tokens, cost and batch key for the scheduler
 *     run_batch  worker      jobs of one kind and model as one packed batch (batch.h)
 *     encode     uv pool     post-processing and the response body
 *     free       any         after the reply
 *
 * The scheduler and the worker see jobs, not routes; a new kind (generation, say) is a
 * new server/job_<kind>.c with its srv_job_kind, and a route naming it. */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <stddef.h>

#include "../common/buf.h"
#include "../proto/http_errors.h"
#include "batch.h"
#include "server.h"

/* What prepare and encode hand back. */
typedef struct {
    char *body; /* malloc'd: the response (status 200) */
    size_t len;
    char headers[512]; /* extra response headers, "Name: value\r\n" each */
    const char *ctype; /* the body's Content-Type (static), NULL: application/json */
    int coding;        /* the body is compressed with this SRV_ENC_* coding (zip.h), 0: not */
    ls_status st;      /* failure: proto/http_errors.c maps it to a status code */
    char err[512];
    const srv_model *model; /* prepare: the model that runs the job */
    int truncated;          /* prepare: an input was truncated (metrics) */
    int stream;             /* prepare: the reply is a stream of events (progress) */
    /* prepare of a route that dispatches (srv_job_root): the kind that runs the job */
    const struct srv_job_kind *kind;
} srv_job_reply;

typedef struct {
    size_t tokens;
    double cost;  /* engine work of the next run in the model's cost units (eng_model_cost) */
    double total; /* the whole job's work (--max-request-seconds), 0: cost */
    int key;      /* jobs of a kind share a batch only with equal keys */
    int solo;     /* the next run is a step of a job in steps: alone in its batch */
} srv_job_cost;

typedef struct srv_job_kind {
    const char *name;
    int id;        /* tells kinds apart in the scheduler's keys */
    int tokenizes; /* prepare's time is tokenization time (metrics) */
    /* The job, or NULL with rep->st (refused) or rep->body (answered) set. Reads the
     * request's body, route argument, path model and the server's options and models. */
    void *(*prepare)(const srv_req *r, srv_job_reply *rep);
    void (*cost)(const void *job, const srv_model *m, srv_job_cost *c);
    /* Jobs that may run in steps (a forward a few layers per engine turn), or NULL: on the
     * loop before the first submission; step_cost is the work one turn may take
     * (--engine-step-ms at the model's speed, 0: no steps), force_layers > 0 forces steps of
     * that many layers (--debug-step-layers). Each run is then one step, alone in its batch;
     * progress says whether steps are left, and the job keeps its deadline between them. */
    void (*plan)(void *job, const srv_model *m, double step_cost, int force_layers);
    /* Sets every job's verdict; a failure returned is the whole batch's (device, memory). */
    ls_status (*run_batch)(eng_ctx *ctx, void *const *jobs, int n, bt_stats *stats, char *err,
                           size_t errlen);
    /* Jobs that run in slices (generation), or NULL: on the loop after each run, appends
     * what a streamed reply sends now to events and returns 1 when the job wants another
     * run (it goes back to the scheduler), 0 when it is done (a streamed reply ends with
     * events; another is encoded). */
    int (*progress)(void *job, srv_req *r, ls_buf *events);
    /* The body of a job that ran, or rep->st with its verdict. */
    void (*encode)(void *job, const srv_model *m, srv_job_reply *rep);
    void (*free)(void *job); /* free(NULL) is a no-op */
} srv_job_kind;

extern const srv_job_kind srv_job_v2;   /* KServe v2 tensors (job_v2.c) */
extern const srv_job_kind srv_job_text; /* TEI, OpenAI, pipeline text routes (job_text.c) */
extern const srv_job_kind srv_job_gen;  /* TGI generation (job_gen.c) */
/* TGI's and TEI's root route, POST / and /invocations (job_root.c): generation when the
 * model generates, else the text route of the model's head, as TEI routes it. Only its
 * prepare runs: it names the kind that runs the job (srv_job_reply.kind). */
extern const srv_job_kind srv_job_root;

/* The text kind's prepare for a route kind (a tei_kind) other than r's (job_text.c). */
void *srv_job_text_prepare(const srv_req *r, int kind, srv_job_reply *rep);

/* The generation routes' argument: /generate, /generate_stream, TGI's root route (its
 * body's "stream" chooses, and a non-streamed answer is a one-element list). */
enum { SRV_GEN_GENERATE, SRV_GEN_STREAM, SRV_GEN_ROOT };

/* The handler of every engine route: prepares the route's job in the uv pool, then
 * submits it to its model's scheduler. SRV_DEFERRED. */
int srv_job_start(srv_req *r);

/* The loop's side of the workers: collects finished batches and answers their requests
 * (uv_async callback), tops up every worker's next batch, and at shutdown answers what
 * has not reached the engine. */
void srv_on_async(uv_async_t *a);
void srv_pump(srv_server *s);
void srv_fail_queued(srv_server *s, herr_kind k, const char *msg);
/* wk_run_fn: runs a batch's live jobs on the model's worker thread. */
void srv_model_run(void *arg, sched_batch *b);
/* Loop thread: a speed measured (cost units per second); the best so far sets the cost bound
 * of --max-request-seconds. */
void srv_model_speed(srv_model *m, double cost_per_s);

#endif
