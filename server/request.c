/* A request's life in one place: creation and linking, admission, replies (bodies and
 * errors), finishing a deferred request and freeing it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

srv_req *srv_req_new(srv_server *s, srv_conn *conn, int fd)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = s;
    r->conn = conn;
    r->fd = fd;
    r->route = -1;
    r->arrival_ns = sched_now_ns();
    r->next = s->reqs;
    if (s->reqs) s->reqs->prev = r;
    s->reqs = r;
    return r;
}

void srv_req_free(srv_req *r)
{
    if (!r) return;
    if (r->prev)
        r->prev->next = r->next;
    else if (r->srv->reqs == r)
        r->srv->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    srv_unreserve(r);
    free(r->body);
    free(r->out);
    free(r->rep.body);
    free(r->sbuf.p);
    if (r->kind) r->kind->free(r->job);
    free(r);
}

int srv_reserve(srv_req *r)
{
    srv_server *s = r->srv;
    if (r->reserved) return 0;
    if (s->reserved >= s->opt.max_concurrent_requests) return -1;
    s->reserved++;
    r->reserved = 1;
    return 0;
}

void srv_unreserve(srv_req *r)
{
    if (!r->reserved) return;
    r->reserved = 0;
    r->srv->reserved--;
}

int srv_reply(srv_req *r, int http, char *body, size_t len, const char *ctype)
{
    free(r->out);
    r->http = http;
    r->out = body;
    r->out_len = body ? len : 0;
    r->out_coding = 0;
    r->ctype = ctype ? ctype : "application/json";
    if (!body && http == 200) { /* the body could not be built */
        r->http = 500;
        r->ctype = "text/plain";
    }
    r->state = SRV_REQ_REPLIED;
    return SRV_DONE;
}

static int srv__vreply_error(srv_req *r, herr_kind k, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int http = 500;
    size_t len = 0;
    char *body = herr_encode(r->family, k, msg, &http, &len);
    if (k == HERR_OVERLOADED) r->retry_after = srv_retry_after(r->srv);
    if (k == HERR_UNAVAILABLE) r->retry_after = 5;
    return srv_reply(r, body ? http : 500, body, len, "application/json");
}

int srv_reply_error(srv_req *r, herr_kind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = srv__vreply_error(r, k, fmt, ap);
    va_end(ap);
    return rc;
}

int srv_reject(srv_req *r, metrics_reason why, herr_kind k, const char *fmt, ...)
{
    metrics_reject(r->srv->metrics, why);
    va_list ap;
    va_start(ap, fmt);
    int rc = srv__vreply_error(r, k, fmt, ap);
    va_end(ap);
    return rc;
}

void srv_req_finish(srv_req *r)
{
    if (!r->conn)
        srv_req_free(r); /* its connection went at a forced stop */
    else
        r->srv->resume(r);
}

void srv_req_stream(srv_req *r)
{
    if (r->conn) r->srv->resume(r);
}
