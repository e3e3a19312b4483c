/* One HTTP request's life, whatever its route: created when its headers arrive, admitted
 * (a reservation among --max-concurrent-requests), given a reply (a body, or an error in
 * its protocol family's shape), finished (its connection resumed, or the request freed
 * when the connection has gone) and freed. Loop thread only, except the fields a job's
 * prepare and encode read in the uv pool. */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/http_errors.h"
#include "job.h"
#include "metrics.h"
#include "server.h"

typedef enum { SRV_REQ_HEADERS, SRV_REQ_BODY, SRV_REQ_QUEUED, SRV_REQ_REPLIED } srv_req_state;

typedef struct srv_conn srv_conn; /* the adapter's connection: defined by server/http.c only */

struct srv_req {
    srv_server *srv;
    srv_conn *conn; /* NULL once the connection has gone */
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
    int http11;    /* the request says HTTP/1.1 (it may be sent 1xx replies) */
    int probed;    /* its connection was sent the scheduler's probe (sched_item.probe) */
    int begun;     /* the access handler has seen its headers */
    int close;     /* the reply closes the connection (the framing cannot be trusted) */
    int bad_path;  /* the raw path holds %00 */
    int refused;   /* libmicrohttpd answered it itself (its status, counted in http.c) */
    int raw_sent;  /* the reply went straight to the socket (a body over the limit) */
    char *body;    /* the request body, NUL-terminated (decompressed when it came encoded) */
    size_t len, cap;
    /* request headers past admission, read by the HTTP adapter */
    long long infer_header_len; /* Inference-Header-Content-Length: -1 absent, -2 not a number */
    int content_encoding;       /* SRV_ENC_GZIP, SRV_ENC_DEFLATE (zip.h), 0 identity */
    unsigned accept_encoding;   /* SRV_ENC_* bits the client takes in the reply */
    char version[32];           /* /v2/models/{m}/versions/{v}/...: v, else "" */
    size_t discarded;           /* body bytes dropped after a 413 */
    /* the reply */
    int http;
    char *out;
    size_t out_len;
    const char *ctype;
    int out_coding;  /* out is compressed with this SRV_ENC_* coding; 0: as it is */
    int retry_after; /* seconds; 0: no header */
    unsigned allow;  /* for 405: an Allow header */
    /* a streamed reply (text/event-stream): bytes go out as the job makes them */
    int streaming;  /* the job streams (its prepare said so) */
    int stream_end; /* every byte is in sbuf: the stream ends after them */
    ls_buf sbuf;    /* not yet sent: sbuf.p[soff .. sbuf.n) */
    size_t soff;
    /* the engine job */
    const srv_job_kind *kind;
    int job_arg; /* the route's argument to its kind (a tei_kind for text routes) */
    void *job;
    srv_job_reply rep; /* what prepare or encode handed back (rep.headers go with a 200) */
    uint64_t prep_ns;  /* prepare's time */
    uint64_t enc_ns;   /* encode's time (with compression) */
    sched_item item;
    uint64_t first_start_ns; /* a job re-queued between runs: when its first run started */
    uv_work_t work;
    srv_req *prev, *next; /* srv->reqs */
};

/* A new request on conn, linked into s->reqs (NULL when out of memory). */
srv_req *srv_req_new(srv_server *s, srv_conn *conn, int fd);
void srv_req_free(srv_req *r);

/* Reply helpers: they set the reply (taking ownership of body, malloc'd) and return
 * SRV_DONE. An error's body has the request's protocol family's shape. */
enum { SRV_DONE = 0, SRV_DEFERRED = 1 };
int srv_reply(srv_req *r, int http, char *body, size_t len, const char *ctype);
int srv_reply_error(srv_req *r, herr_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts a refusal in the metrics, then srv_reply_error. */
int srv_reject(srv_req *r, metrics_reason why, herr_kind k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Queue admission: a place among --max-concurrent-requests, without blocking. */
int srv_reserve(srv_req *r);
void srv_unreserve(srv_req *r);

/* A deferred request has its reply: its connection resumes, or, when the connection has
 * gone meanwhile (a forced stop), the request is freed. */
void srv_req_finish(srv_req *r);
/* A streamed reply has new bytes in r->sbuf (more to come): its connection resumes. */
void srv_req_stream(srv_req *r);

#endif
