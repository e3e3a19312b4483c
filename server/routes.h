/* The route table: method + path -> handler (or job kind), error family, admission
 * flags. Handlers see srv_req, never the HTTP library. */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stddef.h>

#include "../proto/http_errors.h"
#include "job.h"

enum { SRV_GET = 1, SRV_POST = 2, SRV_OPTIONS = 4 };
enum {
    SRV_RT_PUBLIC = 1,  /* no API key needed (probes and metrics) */
    SRV_RT_MODEL = 2,   /* the path's {m} names a model: 404 before reading the body */
    SRV_RT_ENGINE = 4,  /* runs on the engine: readiness, payload limit and queue admission */
    SRV_RT_LOADING = 8, /* answers while the models load (reads nothing of them); every
                           other route is 503 "loading" until all are loaded */
};

/* Handlers fill r's reply and return SRV_DONE, or SRV_DEFERRED (the reply comes later). */
typedef int (*srv_handler)(srv_req *r);

typedef struct {
    const char *pattern; /* '*' matches one path segment, given to the handler as r->capture */
    unsigned methods;
    herr_family family; /* error body shape */
    unsigned flags;
    srv_handler handler;
    const char *name;        /* metrics label */
    const srv_job_kind *job; /* engine routes: the kind of job (handler srv_job_start) */
    int job_arg;             /* the kind's argument (text routes: a tei_kind) */
} srv_route;

extern const srv_route srv_routes[];
extern const int srv_nroutes;

/* The route for path, or -1; *allow gets the methods of every route matching the path
 * (for 405), capture the '*' segment. */
int srv_route_match(const char *path, unsigned method, unsigned *allow, char *capture,
                    size_t caplen);

/* /v2/models/{m}/versions/{v}[/...] as /v2/models/{m}[/...] (written into buf), with v in
 * version; any other url is returned as it is, with version "". */
const char *srv_route_unversion(const char *url, char *buf, size_t n, char *version, size_t vlen);

#endif
