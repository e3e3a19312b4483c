/* libmicrohttpd under the libuv loop: MHD runs in external-epoll mode, its epoll fd is
 * watched by a uv_poll_t and its timeouts by a uv_timer_t. This file owns the connection
 * side of a request: admission before the body (route, method, API key, model, readiness,
 * Content-Length, queue capacity), reading the body under the payload limit, suspending
 * while the engine works and sending the reply. Nothing else includes microhttpd.h. */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "../proto/http_meta.h"
#include "http.h"
#include "log.h"
#include "request.h"
#include "routes.h"
#include "zip.h"

/* One client connection, from its accept to its close (MHD_OPTION_NOTIFY_CONNECTION), so
 * that clients too slow with their headers or bodies can be let go: libmicrohttpd's own
 * timeout restarts at every byte, which a client sending one a second never reaches. */
typedef struct http__sock {
    struct http__sock *prev, *next;
    struct srv_http *h;
    int fd;
    uint64_t since_ns; /* accepted, or its last request ended: the headers are due */
    srv_req *req;      /* the request on it, from its request line to its end */
    int reaped;        /* shut down by the reaper; libmicrohttpd closes it */
} http__sock;

/* The adapter's state, behind srv_server.http. */
struct srv_http {
    srv_server *srv;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;   /* on MHD's epoll fd */
    uv_timer_t timer; /* MHD_get_timeout */
    uv_timer_t reap;  /* lets slow clients go (http__reap) */
    http__sock *socks;
    int open; /* handles not yet closed: the struct is freed after the last */
};

/* The request's connection: srv_conn is libmicrohttpd's, seen by nobody else. */
static struct MHD_Connection *http__conn(const srv_req *r)
{
    return (struct MHD_Connection *)r->conn;
}

static void http__run(struct srv_http *h);
static void http__kick(struct srv_http *h);

static unsigned http__method(const char *m)
{
    if (strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0) return SRV_GET;
    if (strcmp(m, MHD_HTTP_METHOD_POST) == 0) return SRV_POST;
    if (strcmp(m, MHD_HTTP_METHOD_OPTIONS) == 0) return SRV_OPTIONS;
    return 0;
}

static void http__allow_str(unsigned allow, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", allow & SRV_GET ? "GET, HEAD" : "",
             (allow & SRV_GET) && (allow & SRV_POST) ? ", " : "", allow & SRV_POST ? "POST" : "");
}

/* Constant time in the key's length whatever the client sends. */
static int http__auth_ok(const char *hdr, const char *key)
{
    /* the scheme is case-insensitive (RFC 9110 11.1), the token is not */
    if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0) return 0;
    const char *tok = hdr + 7;
    while (*tok == ' ')
        tok++;
    size_t a = strlen(tok), b = strlen(key);
    unsigned char d = a != b;
    for (size_t i = 0; i < b; i++)
        d |= (unsigned char)(tok[a ? i % a : 0] ^ key[i]);
    return d == 0;
}

static const char *http__header(srv_req *r, const char *name)
{
    return MHD_lookup_connection_value(http__conn(r), MHD_HEADER_KIND, name);
}

/* The headers later steps read: Triton's binary framing and the content codings. Returns
 * -1 (and replies) when the body comes in a coding we cannot read. */
static int http__read_headers(srv_req *r)
{
    const char *ih = http__header(r, "Inference-Header-Content-Length");
    r->infer_header_len = -1;
    if (ih) {
        char *end;
        unsigned long long v = strtoull(ih, &end, 10);
        r->infer_header_len =
            *ih >= '0' && *ih <= '9' && *end == 0 && v < (1ULL << 62) ? (long long)v : -2;
    }
    r->accept_encoding = srv_zip_accepts(http__header(r, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    const char *ce = http__header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
    r->content_encoding = srv_zip_coding(ce);
    if (r->content_encoding >= 0) return 0;
    r->content_encoding = 0;
    srv_reply_error(r, HERR_BAD_REQUEST,
                    "Content-Encoding '%.64s' is not supported (gzip, deflate or identity)", ce);
    return -1;
}

/* A body sent with Content-Encoding, inflated in place under the payload limit. Returns -1
 * (and replies) when it cannot be. */
static int http__inflate(srv_req *r)
{
    const long long limit = r->srv->opt.payload_limit;
    char *out = NULL;
    size_t n = 0;
    int rc = srv_zip_inflate(r->content_encoding, r->body, r->len, (size_t)limit, &out, &n);
    if (rc == -1)
        srv_reject(r, METRICS_REJ_PAYLOAD, HERR_TOO_LARGE,
                   "the body inflates to more than the limit of %lld bytes", limit);
    else if (rc == -2)
        srv_reject(r, METRICS_REJ_INVALID, HERR_BAD_REQUEST, "the body is not valid %s data",
                   r->content_encoding == SRV_ENC_GZIP ? "gzip" : "deflate");
    else if (rc)
        srv_reply_error(r, HERR_INTERNAL, "out of memory inflating the request body");
    if (rc) return -1;
    free(r->body);
    r->body = out;
    r->len = n;
    r->cap = n + 1;
    return 0;
}

/* Text from the client made safe to quote in a JSON message: valid UTF-8 is kept, other
 * bytes and controls become %XX. */
static const char *http__quote(const char *in, char *out, size_t n)
{
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)in;
    while (*p && k + 4 < n) {
        size_t len = *p < 0x80             ? 1
                     : (*p & 0xe0) == 0xc0 ? 2
                     : (*p & 0xf0) == 0xe0 ? 3
                     : (*p & 0xf8) == 0xf0 ? 4
                                           : 0;
        int ok = len && (len == 1 ? *p >= 0x20 && *p != 0x7f : *p >= 0xc2 && *p <= 0xf4);
        for (size_t i = 1; ok && i < len; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && len == 3) ok = !(*p == 0xe0 && p[1] < 0xa0) && !(*p == 0xed && p[1] >= 0xa0);
        if (ok && len == 4) ok = !(*p == 0xf0 && p[1] < 0x90) && !(*p == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            k += (size_t)snprintf(out + k, n - k, "%%%02X", *p++);
            continue;
        }
        if (k + len >= n) break;
        memcpy(out + k, p, len);
        k += len;
        p += len;
    }
    out[k] = 0;
    return out;
}

typedef struct {
    int cl, te, host; /* how many Content-Length, Transfer-Encoding and Host headers */
    int cl_differ;    /* two Content-Lengths disagree */
    const char *cl_v, *te_v;
} http__framing;

static enum MHD_Result http__framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    http__framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->cl++ && strcmp(f->cl_v, value ? value : "") != 0) f->cl_differ = 1;
        f->cl_v = value ? value : "";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->te++;
        f->te_v = value ? value : "";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        f->host++;
    }
    return MHD_YES;
}

/* The framing libmicrohttpd is lenient about, refused where two readers of the request
 * (a proxy in front, this server) could disagree on where it ends (RFC 9112 6.1-6.3). A
 * refusal closes the connection: the bytes after the headers cannot be trusted. */
static int http__framing_check(srv_req *r, const char *version)
{
    http__framing f = {0};
    MHD_get_connection_values(http__conn(r), MHD_HEADER_KIND, http__framing_header, &f);
    r->close = 1;
    if (f.cl_differ)
        srv_reply_error(r, HERR_BAD_REQUEST, "the request has Content-Length headers that differ");
    else if (f.te && f.cl)
        srv_reply_error(r, HERR_BAD_REQUEST,
                        "the request has both Content-Length and Transfer-Encoding");
    else if (f.te > 1 || (f.te && strcasecmp(f.te_v, "chunked") != 0)) {
        char q[96];
        srv_reply_error(r, HERR_BAD_REQUEST,
                        "Transfer-Encoding '%s' is not supported (only chunked)",
                        http__quote(f.te > 1 ? "(several)" : f.te_v, q, sizeof q));
    } else if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && f.host != 1)
        srv_reply_error(r, HERR_BAD_REQUEST, "an HTTP/1.1 request needs one Host header");
    else if (r->bad_path)
        srv_reply_error(r, HERR_BAD_REQUEST, "the path holds a NUL byte (%%00)");
    else
        r->close = 0;
    return r->close ? -1 : 0;
}

/* With --tls-client-ca libmicrohttpd asks for a client certificate but leaves checking it to
 * us: GnuTLS verifies it against that trust list. */
static int http__client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    unsigned status = 1;
    return ci && ci->tls_session &&
           gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status) == 0 &&
           status == 0;
}

/* The error shape of a path no route takes, guessed from its prefix. */
static herr_family http__family(const char *url)
{
    return strncmp(url, "/v2", 3) == 0    ? HERR_FAM_KSERVE
           : strncmp(url, "/v1/", 4) == 0 ? HERR_FAM_OPENAI
                                          : HERR_FAM_TEI;
}

/* Admission that needs only the headers, cheapest first. May reply. */
static void http__begin(srv_req *r, const char *url, const char *method, const char *version)
{
    srv_server *s = r->srv;
    r->method = http__method(method);
    unsigned allow = 0;
    char path[512]; /* /v2/models/{m}/versions/{v}/... is routed as /v2/models/{m}/... */
    url = srv_route_unversion(url, path, sizeof path, r->version, sizeof r->version);
    r->route = srv_route_match(url, r->method, &allow, r->capture, sizeof r->capture);
    r->family = r->route >= 0 ? srv_routes[r->route].family : http__family(url);
    if (http__framing_check(r, version)) return;
    if (s->opt.tls_ca_pem && !http__client_cert_ok(http__conn(r))) {
        srv_reject(r, METRICS_REJ_UNAUTHORIZED, HERR_UNAUTHORIZED,
                   "a client certificate signed by a --tls-client-ca authority is required");
        return;
    }
    char q[300];
    if (r->method == SRV_OPTIONS && allow && s->opt.cors_allow_origin[0]) {
        r->allow = allow;
        srv_reply(r, 204, NULL, 0, NULL);
        return;
    }
    if (r->route < 0) {
        if (allow) {
            r->allow = allow;
            char a[32];
            http__allow_str(allow, a, sizeof a);
            srv_reply_error(r, HERR_METHOD, "method %s is not allowed on %s (allowed: %s)", method,
                            http__quote(url, q, sizeof q), a);
        } else {
            srv_reply_error(r, HERR_NOT_FOUND, "no route %s %s", method,
                            http__quote(url, q, sizeof q));
        }
        return;
    }
    const srv_route *rt = &srv_routes[r->route];
    if (s->opt.api_key[0] && !(rt->flags & SRV_RT_PUBLIC) &&
        !http__auth_ok(http__header(r, MHD_HTTP_HEADER_AUTHORIZATION), s->opt.api_key)) {
        srv_reject(r, METRICS_REJ_UNAUTHORIZED, HERR_UNAUTHORIZED,
                   "missing or wrong API key (Authorization: Bearer KEY)");
        return;
    }
    if ((rt->flags & SRV_RT_MODEL) && !(r->model = srv_model_find(s, r->capture))) {
        srv_reply_error(r, HERR_NOT_FOUND, "model '%s' is not served here",
                        http__quote(r->capture, q, sizeof q));
        return;
    }
    if (r->version[0] && strcmp(r->version, HM_MODEL_VERSION) != 0) {
        char qv[100];
        srv_reply_error(r, HERR_NOT_FOUND, "model '%s' has no version '%s' (its one version is %s)",
                        http__quote(r->capture, q, sizeof q),
                        http__quote(r->version, qv, sizeof qv), HM_MODEL_VERSION);
        return;
    }
    if (!s->ready && !(rt->flags & SRV_RT_LOADING)) {
        srv_reject(r, METRICS_REJ_NOT_READY, HERR_UNAVAILABLE,
                   "loading: %d of %d models loaded; try again later", s->nloaded, s->nmodels);
        return;
    }
    if (http__read_headers(r)) return;
    if (rt->flags & SRV_RT_ENGINE) {
        if (!srv_ready(s)) {
            srv_reject(r, METRICS_REJ_NOT_READY, HERR_UNAVAILABLE, "%s",
                       s->draining ? "the server is shutting down" : "the server is not ready");
            return;
        }
        const char *cl = http__header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == 0 && n > (unsigned long long)s->opt.payload_limit) {
                srv_reject(r, METRICS_REJ_PAYLOAD, HERR_TOO_LARGE,
                           "the body has %llu bytes; the limit is %lld", n, s->opt.payload_limit);
                return;
            }
        }
    }
    r->state = SRV_REQ_BODY;
}

/* Queue admission once the body is in, so that slow uploads hold no place. */
static int http__admit(srv_req *r)
{
    srv_server *s = r->srv;
    if (!(srv_routes[r->route].flags & SRV_RT_ENGINE) || !srv_reserve(r)) return 0;
    srv_reject(r, METRICS_REJ_QUEUE_FULL, HERR_OVERLOADED,
               "the server is at its limit of %lld concurrent requests",
               s->opt.max_concurrent_requests);
    return -1;
}

static int http__append(srv_req *r, const char *data, size_t n)
{
    const size_t limit = (size_t)r->srv->opt.payload_limit;
    if (n > limit - r->len) return -1;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > limit + 1) cap = limit + 1;
        char *nb = realloc(r->body, cap);
        if (!nb) return -2;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = 0;
    return 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

/* A streamed reply's body, as the job makes it: what sbuf holds, else the connection
 * waits (suspended) until srv_req_stream or the end resumes it. */
static ssize_t http__stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_req *r = cls;
    if (r->soff < r->sbuf.n) {
        size_t n = r->sbuf.n - r->soff < max ? r->sbuf.n - r->soff : max;
        memcpy(buf, r->sbuf.p + r->soff, n);
        r->soff += n;
        if (r->soff == r->sbuf.n) r->soff = r->sbuf.n = 0;
        return (ssize_t)n;
    }
    if (r->stream_end) return MHD_CONTENT_READER_END_OF_STREAM;
    MHD_suspend_connection(http__conn(r));
    r->suspended = 1;
    return 0;
}

/* A reply of the loop's own (metadata, statistics, metrics) compressed when the client
 * takes it; engine replies come compressed from the pool (job.c). Larger bodies would
 * hold up the loop and are sent as they are. */
static void http__compress(srv_req *r)
{
    const int coding = srv_zip_choose(r->accept_encoding);
    if (!coding || r->out_coding || r->http != 200 || r->out_len < SRV_ZIP_MIN_BYTES ||
        r->out_len > ((size_t)1 << 18))
        return;
    size_t n = 0;
    char *z = srv_zip_deflate(coding, r->out, r->out_len, &n);
    if (!z) return;
    free(r->out);
    r->out = z;
    r->out_len = n;
    r->out_coding = coding;
}

/* A whole reply written on the socket, which is then shut for writing: libmicrohttpd's
 * own writes on it fail from then on and it closes the connection. Plain HTTP only. */
static void http__write_raw(int fd, unsigned http, const char *ctype, const char *body, size_t len,
                            const char *id)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nX-Request-Id: %s\r\n\r\n",
                     http, MHD_get_reason_phrase_for(http), ctype, len, id);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && len)
        (void)!send(fd, body, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
}

/* ---- libmicrohttpd's own refusals -------------------------------------------------------- */

/* libmicrohttpd 0.9.75 answers what its parser refuses (a request line or header line it
 * cannot read, an HTTP version other than 1.x, a missing Host, a bad or huge Content-Length,
 * a malformed or huge chunk, a request line or headers over --connection-memory) with fixed
 * HTML bodies (connection.c: transmit_error_response_len) and has no option to change them.
 * It makes and queues them through its own exported MHD_create_response_from_buffer and
 * MHD_queue_response, called through its PLT, so the two definitions below take those
 * calls too (ELF symbol interposition: the executable's definition wins) and pass every
 * call on to the library's (dlsym RTLD_NEXT). Our replies pass untouched (http__ours); a
 * refusal of libmicrohttpd's gets a JSON body in the request's error shape instead, with
 * Content-Type and X-Request-Id, and is counted under its route or "(none)". Were the
 * library bound to itself (-Bsymbolic, a static link), its HTML would stay and
 * http__completed would count what it sees. tests/test_server_hostile.c checks each case. */

static _Thread_local int http__ours;             /* http__send is queuing our reply */
static _Thread_local const char *http__mhd_body; /* libmicrohttpd's last fixed body */

typedef struct MHD_Response *(*http__create_fn)(size_t, void *, enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*http__queue_fn)(struct MHD_Connection *, unsigned int,
                                          struct MHD_Response *);

static void *http__next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        fprintf(stderr, "longserve: libmicrohttpd has no %s\n", name);
        abort(); /* the library this file was built against is not the one loaded */
    }
    return f;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
    static _Atomic(http__create_fn) next;
    http__create_fn f = next;
    if (!f) next = f = (http__create_fn)http__next("MHD_create_response_from_buffer");
    if (!http__ours && mode == MHD_RESPMEM_PERSISTENT) http__mhd_body = buffer;
    return f(size, buffer, mode);
}

/* What libmicrohttpd refused, in our words: found by its status and, where one status has
 * several causes, by words of its fixed body. */
static herr_kind http__mhd_error(unsigned code, const char *body, char *msg, size_t n,
                                 long long mem)
{
    const char *b = body ? body : "";
    switch (code) {
    case 400:
        snprintf(msg, n, "%s",
                 strstr(b, "chunked encoding") ? "the chunked encoding of the body is malformed"
                 : strstr(b, "Content-Length") ? "the Content-Length header is not a number"
                 : strstr(b, "Host")           ? "an HTTP/1.1 request needs one Host header"
                 : strstr(b, "syntactically")  ? "the request line or a header line is malformed"
                                               : "the request is malformed");
        return HERR_BAD_REQUEST;
    case 413:
        snprintf(msg, n, "%s",
                 strstr(b, "chunk size") ? "a chunk size of the body is too large"
                                         : "the Content-Length is too large");
        return HERR_TOO_LARGE;
    case 414:
        snprintf(msg, n,
                 "the request line is longer than fits the connection's memory "
                 "(--connection-memory %lld bytes)",
                 mem);
        return HERR_URI_TOO_LONG;
    case 431:
        snprintf(msg, n,
                 "the request headers are larger than fit the connection's memory "
                 "(--connection-memory %lld bytes)",
                 mem);
        return HERR_HEADERS_TOO_LARGE;
    case 505:
        snprintf(msg, n, "the HTTP version is not supported (HTTP/1.0 and HTTP/1.1 are)");
        return HERR_HTTP_VERSION;
    default:
        snprintf(msg, n, "the request could not be read (HTTP status %u)", code);
        return HERR_INTERNAL;
    }
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int code,
                                   struct MHD_Response *resp)
{
    static _Atomic(http__queue_fn) next;
    http__queue_fn f = next;
    if (!f) next = f = (http__queue_fn)http__next("MHD_queue_response");
    const char *body = http__mhd_body;
    http__mhd_body = NULL;
    const union MHD_ConnectionInfo *si =
        http__ours || code < 400 ? NULL
                                 : MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http__sock *k = si ? si->socket_context : NULL;
    if (!k || !k->h) return f(c, code, resp); /* ours, or a connection we do not watch */
    srv_server *s = k->h->srv;
    srv_req *r = k->req;
    char msg[200];
    herr_kind kind = http__mhd_error(code, body, msg, sizeof msg, s->opt.connection_memory);
    int http = 0;
    size_t len = 0;
    char *json = herr_encode(r ? r->family : HERR_FAM_TEI, kind, msg, &http, &len);
    /* A Content-Length it cannot read: libmicrohttpd 0.9.75 builds the reply's header block
     * twice (parse_connection_headers' caller overwrites the error's state), so that the
     * client would read headers as the body. The reply goes on the socket instead and
     * libmicrohttpd's own is queued to fail there. */
    if (json && r && body && strstr(body, "Content-Length") && !s->opt.tls_cert_pem) {
        http__write_raw(k->fd, code, "application/json", json, len, r->id);
        free(json);
        json = NULL;
    }
    struct MHD_Response *mine =
        json ? MHD_create_response_from_buffer(len, json, MHD_RESPMEM_MUST_FREE) : NULL;
    if (mine) {
        MHD_add_response_header(mine, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (r) MHD_add_response_header(mine, "X-Request-Id", r->id);
    } else {
        free(json);
    }
    enum MHD_Result rc = f(c, code, mine ? mine : resp);
    if (mine) MHD_destroy_response(mine);
    const uint64_t now = sched_now_ns();
    const double sec = (double)(now - (r && r->arrival_ns ? r->arrival_ns : k->since_ns)) * 1e-9;
    int route = r && r->begun ? r->route : -1;
    metrics_request(s->metrics, route, (int)code, sec);
    log_event("info", "request", r ? r->id : NULL, "refused by the HTTP parser: %u %s %.3fms", code,
              msg, sec * 1e3);
    if (r) {
        r->refused = r->sent = 1;
        r->http = (int)code;
        srv_unreserve(r);
    }
    return rc;
}

static enum MHD_Result http__send(srv_req *r)
{
    srv_server *s = r->srv;
    const int stream = r->streaming && !r->out && r->sbuf.n;
    if (!stream) http__compress(r);
    struct MHD_Response *resp =
        stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, http__stream_read,
                                                   r, NULL)
               : MHD_create_response_from_buffer(r->out_len, r->out, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->out = NULL; /* MHD frees it */
    if (r->out_coding) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                r->out_coding == SRV_ENC_GZIP ? "gzip" : "deflate");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    }
    if (stream) {
        r->http = 200;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    } else if (r->out_len) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    }
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    char tmp[64];
    /* the job's report (text routes: tokens in/used, truncation, globals, windows) */
    for (const char *h = r->http == 200 ? r->rep.headers : ""; *h;) {
        const char *colon = strchr(h, ':'), *eol = strstr(h, "\r\n");
        if (!colon || !eol || colon > eol) break;
        char name[64], value[64];
        snprintf(name, sizeof name, "%.*s", (int)(colon - h), h);
        snprintf(value, sizeof value, "%.*s", (int)(eol - colon - 2), colon + 2);
        MHD_add_response_header(resp, name, value);
        h = eol + 2;
    }
    if (r->retry_after) {
        snprintf(tmp, sizeof tmp, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, tmp);
    }
    if (r->allow) {
        http__allow_str(r->allow, tmp, sizeof tmp);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, tmp);
    }
    if (r->http == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    const char *cors = s->opt.cors_allow_origin;
    const char *origin = http__header(r, "Origin");
    if (cors[0] && origin && (strcmp(cors, "*") == 0 || strcmp(cors, origin) == 0)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", cors);
        MHD_add_response_header(resp, "Vary", "Origin");
        if (r->method == SRV_OPTIONS) {
            http__allow_str(r->allow, tmp, sizeof tmp);
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", tmp);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Content-Type, Authorization, X-Request-Id");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
    }
    http__ours = 1;
    enum MHD_Result rc = MHD_queue_response(http__conn(r), (unsigned)r->http, resp);
    http__ours = 0;
    MHD_destroy_response(resp);
    double sec = (double)(sched_now_ns() - r->arrival_ns) * 1e-9;
    metrics_request(s->metrics, r->route, r->http, sec);
    const char *method = r->method == SRV_POST      ? "POST"
                         : r->method == SRV_GET     ? "GET"
                         : r->method == SRV_OPTIONS ? "OPTIONS"
                                                    : "other";
    log_event(r->http >= 500 ? "warn" : "info", "request", r->id, "%s %s %d %.3fms %zu bytes in",
              method, r->route >= 0 ? srv_routes[r->route].name : "unknown", r->http, sec * 1e3,
              r->len);
    srv_unreserve(r);
    r->state = SRV_REQ_REPLIED;
    r->sent = 1;
    return rc;
}

/* A reply written straight to the socket, for a body found over the limit while it streams
 * in: libmicrohttpd takes no reply before the upload ends, which a client streaming without
 * end never reaches. Nothing else is written while a body is read; the connection closes
 * once the client stops sending (or after one more payload limit). */
static void http__send_raw(srv_req *r)
{
    http__write_raw(r->fd, (unsigned)r->http, r->ctype, r->out, r->out_len, r->id);
    double sec = (double)(sched_now_ns() - r->arrival_ns) * 1e-9;
    metrics_request(r->srv->metrics, r->route, r->http, sec);
    log_event("info", "request", r->id, "POST %s %d %.3fms %zu bytes in", srv_routes[r->route].name,
              r->http, sec * 1e3, r->len);
    srv_unreserve(r);
    free(r->out);
    r->out = NULL;
    r->raw_sent = r->sent = 1;
}

/* libmicrohttpd's first sight of a request (MHD_OPTION_URI_LOG_CALLBACK), before it parses
 * the query: the request is made here, so that libmicrohttpd's own refusals (400, 413,
 * 414, 431, 505) reach http__completed and the metrics. No route reads a query string, and
 * libmicrohttpd, parsing a long one into its connection memory, can run out of it and hang
 * the connection without its 431: the query is cut off here, in libmicrohttpd's buffer
 * (where it parses from, after this call). */
static void *http__uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    srv_server *s = cls;
    char *q = strchr(uri, '?');
    if (q) memset(q, 0, strlen(q));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    srv_req *r = srv_req_new(s, (srv_conn *)c, ci ? ci->connect_fd : -1);
    if (!r) return NULL;
    for (const char *p = uri; *p; p++)
        r->bad_path |= p[0] == '%' && p[1] == '0' && p[2] == '0';
    r->family = http__family(uri); /* for a refusal by libmicrohttpd before its route */
    snprintf(r->id, sizeof r->id, "%016llx", (unsigned long long)s->seq++);
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http__sock *k = si ? si->socket_context : NULL;
    if (k) k->req = r;
    return r;
}

static enum MHD_Result http__access(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **con_cls)
{
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) return MHD_NO; /* out of memory at its request line */
    if (!r->begun) {
        r->begun = 1;
        r->arrival_ns = sched_now_ns();
        r->http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
        /* a client's id is kept when it is short and printable, so logs can be joined */
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
        int ok = rid && *rid && strlen(rid) < 64;
        for (const char *p = rid; ok && *p; p++)
            ok = *p > 0x20 && *p < 0x7f && *p != '"';
        if (ok) snprintf(r->id, sizeof r->id, "%s", rid);
        http__begin(r, url, method, version);
        return r->state == SRV_REQ_REPLIED ? http__send(r) : MHD_YES;
    }
    if (r->streaming && !r->sent && r->sbuf.n && !*upload_size)
        return http__send(r); /* the stream's first bytes */
    if (r->state == SRV_REQ_REPLIED) {
        if (*upload_size) {
            /* the rest of a body over the limit is dropped unread, up to one more payload
             * limit, while the client reads its 413; one that keeps sending beyond that
             * loses its connection */
            r->discarded += *upload_size;
            *upload_size = 0;
            if (r->discarded > (size_t)s->opt.payload_limit) {
                log_event("info", "payload_limit", r->id,
                          "closing: the client sent %zu bytes past the limit", r->discarded);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (r->raw_sent) return MHD_NO; /* answered on the socket: nothing more to send */
        return r->sent ? MHD_YES : http__send(r);
    }
    if (r->state == SRV_REQ_QUEUED) return MHD_YES; /* resumed spuriously: keep waiting */
    if (*upload_size) {
        int rc = http__append(r, upload, *upload_size);
        *upload_size = 0;
        if (rc == -1) {
            srv_reject(r, METRICS_REJ_PAYLOAD, HERR_TOO_LARGE,
                       "the body is larger than the limit of %lld bytes", s->opt.payload_limit);
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            http__send_raw(r);
        } else if (rc) {
            srv_reply_error(r, HERR_INTERNAL, "out of memory for the request body");
        }
        return MHD_YES;
    }
    if (!r->body && http__append(r, "", 0)) return MHD_NO; /* handlers get a string */
    if (r->content_encoding && http__inflate(r)) return http__send(r);
    if (http__admit(r)) return http__send(r);
    const srv_route *rt = &srv_routes[r->route];
    r->kind = rt->job;
    r->job_arg = rt->job_arg;
    int rc =
        s->engine_handler && (rt->flags & SRV_RT_ENGINE) ? s->engine_handler(r) : rt->handler(r);
    if (rc == SRV_DEFERRED) {
        MHD_suspend_connection(c);
        r->suspended = 1;
        return MHD_YES;
    }
    return http__send(r);
}

static void http__completed(void *cls, struct MHD_Connection *c, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    srv_server *s = cls;
    srv_req *r = *con_cls;
    *con_cls = NULL;
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    http__sock *k = si ? si->socket_context : NULL;
    if (k) {
        k->req = NULL;
        k->since_ns = sched_now_ns(); /* the next request's headers are due */
    }
    if (!r) return;
    if (r->refused) {
        /* answered and counted by MHD_queue_response below */
    } else if (!r->begun) {
        /* libmicrohttpd refused it itself and its calls bypassed MHD_queue_response below
         * (a library bound to itself): the body is its own, the count is ours */
        const union MHD_ConnectionInfo *hi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (hi && hi->http_status) {
            double sec = (double)(sched_now_ns() - r->arrival_ns) * 1e-9;
            metrics_request(s->metrics, -1, (int)hi->http_status, sec);
            log_event("info", "request", r->id, "refused by the HTTP parser: %u %.3fms",
                      hi->http_status, sec * 1e3);
        }
    } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->sent) {
        log_event("info", "client_gone", r->id, "connection ended before the reply (code %d)",
                  (int)toe);
    }
    if (r->state == SRV_REQ_QUEUED) {
        /* the engine still holds it (only at a forced stop): freed when it comes back */
        r->conn = NULL;
        return;
    }
    srv_req_free(r);
}

/* MHD_OPTION_NOTIFY_CONNECTION: every connection is known from its accept to its close. */
static void http__notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    srv_server *s = cls;
    struct srv_http *h = s->http;
    http__sock *k = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!h || !ci || !(k = calloc(1, sizeof *k))) return; /* not watched: MHD's timeout */
        k->h = h;
        k->fd = ci->connect_fd;
        k->since_ns = sched_now_ns();
        k->next = h->socks;
        if (h->socks) h->socks->prev = k;
        h->socks = k;
        *socket_context = k;
        return;
    }
    /* libmicrohttpd at --max-connections listens again only in the run after a close */
    if (h) http__kick(h);
    if (!k) return;
    if (k->prev)
        k->prev->next = k->next;
    else if (h && h->socks == k)
        h->socks = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    *socket_context = NULL;
}

/* Every few hundred ms: a connection whose headers are late by --header-timeout, or whose
 * body comes slower than --min-body-rate once that long has passed, is shut down (the
 * socket, not the fd: libmicrohttpd sees the hang-up and closes it as usual). */
static void http__reap(uv_timer_t *t)
{
    struct srv_http *h = t->data;
    srv_server *s = h->srv;
    const uint64_t now = sched_now_ns(), grace = (uint64_t)s->opt.header_timeout * 1000000000u;
    for (http__sock *k = h->socks; k; k = k->next) {
        srv_req *r = k->req;
        if (k->reaped) continue;
        const char *why = NULL;
        if ((!r || !r->begun) && now - k->since_ns > grace) {
            why = "its request headers did not arrive within --header-timeout";
        } else if (r && r->begun && r->state == SRV_REQ_BODY && s->opt.min_body_rate &&
                   now - r->arrival_ns > grace) {
            double sec = (double)(now - r->arrival_ns) * 1e-9;
            if ((double)r->len < (double)s->opt.min_body_rate * sec)
                why = "its body came slower than --min-body-rate";
        }
        if (!why) continue;
        log_event("info", "client_slow", r ? r->id : NULL, "closing a connection: %s", why);
        shutdown(k->fd, SHUT_RDWR);
        k->reaped = 1;
    }
    /* a run each tick: libmicrohttpd at its connection limit does not always say (through
     * its epoll fd) that it is ready to accept again */
    http__run(h);
}

static void http__log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_event("warn", "http", NULL, "%s", msg);
}

/* ---- the loop side --------------------------------------------------------------------------- */

static void http__on_timer(uv_timer_t *t)
{
    http__run(t->data);
}

static void http__on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    http__run(p->data);
}

static void http__run(struct srv_http *h)
{
    if (!h->mhd) return;
    MHD_run(h->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        uv_timer_start(&h->timer, http__on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
}

static void http__kick(struct srv_http *h)
{
    /* never MHD_run from inside an MHD callback: run it from the loop, next iteration */
    if (h->mhd) uv_timer_start(&h->timer, http__on_timer, 0, 0);
}

/* srv_server.resume: a deferred request has its reply. */
static void http__resume(srv_req *r)
{
    if (!r->suspended) return;
    r->suspended = 0;
    MHD_resume_connection(http__conn(r));
    http__kick(r->srv->http);
}

static void http__closed(uv_handle_t *handle)
{
    struct srv_http *h = handle->data;
    srv_handle_closed(handle);
    if (--h->open == 0) {
        h->srv->http = NULL;
        free(h);
    }
}

/* Room for --max-connections sockets: the soft open-file limit is raised towards the hard
 * one; what does not fit lowers the connection limit (models, logs and the loop keep 64). */
static unsigned http__conn_limit(const srv_server *s)
{
    const rlim_t want = (rlim_t)s->opt.max_connections + 64;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return (unsigned)s->opt.max_connections;
    if (rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl)) rl.rlim_cur = old;
    }
    if (rl.rlim_cur >= want) return (unsigned)s->opt.max_connections;
    unsigned n = rl.rlim_cur > 64 + 16 ? (unsigned)(rl.rlim_cur - 64) : 16;
    log_event(
        "warn", "listen", NULL,
        "the open-file limit (%llu) leaves room for %u connections, not --max-connections %lld",
        (unsigned long long)rl.rlim_cur, n, s->opt.max_connections);
    return n;
}

/* The listening socket, bound here rather than in libmicrohttpd so that a port in use is
 * an error naming its cause, before anything loads. Returns the fd, or -1 with err. */
static int http__listen(const srv_server *s, int *port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%lld", s->opt.port);
    int gai = getaddrinfo(s->opt.hostname, ps, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "--hostname %s: %s", s->opt.hostname, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int one = 1, rc = fd < 0 ? -1 : 0;
    if (!rc) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restarts */
    if (!rc) rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    if (!rc) rc = listen(fd, SOMAXCONN);
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    if (!rc) rc = getsockname(fd, (struct sockaddr *)&sa, &salen);
    if (rc) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s:%lld: %s%s", s->opt.hostname, s->opt.port,
                 strerror(e),
                 e == EADDRINUSE ? " (another process listens on that port: stop it or choose "
                                   "another --port)"
                 : e == EACCES   ? " (ports below 1024 need privileges)"
                                 : "");
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

/* The PEM texts opt_parse read, checked with GnuTLS before libmicrohttpd gets them: its own
 * failure says only that TLS could not be set up. */
static int http__tls_check(const opt_options *o, char *err, size_t errlen)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        snprintf(err, errlen, "TLS: out of memory");
        return -1;
    }
    gnutls_datum_t cert = {(unsigned char *)o->tls_cert_pem, (unsigned)strlen(o->tls_cert_pem)},
                   key = {(unsigned char *)o->tls_key_pem, (unsigned)strlen(o->tls_key_pem)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
        snprintf(err, errlen, "--tls-cert %s with --tls-key %s: %s", o->tls_cert, o->tls_key,
                 gnutls_strerror(rc));
    if (rc >= 0 && o->tls_ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)o->tls_ca_pem, (unsigned)strlen(o->tls_ca_pem)};
        int n = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (n <= 0) {
            snprintf(err, errlen, "--tls-client-ca %s: %s", o->tls_client_ca,
                     n < 0 ? gnutls_strerror(n) : "no certificate in it");
            rc = -1;
        }
    }
    gnutls_certificate_free_credentials(cred);
    return rc < 0 ? -1 : 0;
}

int http_start(srv_server *s, char *err, size_t errlen)
{
    const opt_options *o = &s->opt;
    if (o->tls_cert_pem && http__tls_check(o, err, errlen)) return -1;
    int port = 0, fd = http__listen(s, &port, err, errlen);
    if (fd < 0) return -1;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[4];
    int nt = 0;
    if (o->tls_cert_pem) { /* the texts outlive the daemon (opt_free after http_stop) */
        flags |= MHD_USE_TLS;
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, o->tls_key_pem};
        tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, o->tls_cert_pem};
        if (o->tls_ca_pem)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, o->tls_ca_pem};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* the logger first: libmicrohttpd reports problems with the later options through it */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, http__access, s, MHD_OPTION_EXTERNAL_LOGGER, http__log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_NOTIFY_COMPLETED, http__completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, http__notify_conn, s, MHD_OPTION_URI_LOG_CALLBACK,
        http__uri_log, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->opt.idle_timeout,
        MHD_OPTION_CONNECTION_LIMIT, http__conn_limit(s), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)s->opt.connection_memory, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d) {
        close(fd);
        snprintf(err, errlen, "libmicrohttpd cannot serve%s on %s:%d",
                 o->tls_cert_pem ? " HTTPS" : "", s->opt.hostname, port);
        return -1;
    }
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    struct srv_http *h = ei ? calloc(1, sizeof *h) : NULL;
    if (!h) {
        MHD_stop_daemon(d);
        snprintf(err, errlen, "%s", ei ? "out of memory" : "libmicrohttpd gives no epoll fd");
        return -1;
    }
    s->port = port;
    h->srv = s;
    h->mhd = d;
    uv_timer_init(s->loop, &h->timer);
    uv_timer_init(s->loop, &h->reap);
    uv_poll_init(s->loop, &h->poll, ei->epoll_fd);
    h->timer.data = h->reap.data = h->poll.data = h;
    h->open = 3;
    s->handles += 3;
    s->http = h;
    s->resume = http__resume;
    uv_poll_start(&h->poll, UV_READABLE, http__on_poll);
    uv_timer_start(&h->reap, http__reap, 250, 250);
    http__kick(h);
    return 0;
}

void http_stop(srv_server *s)
{
    struct srv_http *h = s->http;
    if (!h || !h->mhd) return;
    /* libuv lets go of the epoll fd before MHD closes it */
    uv_close((uv_handle_t *)&h->poll, http__closed);
    uv_close((uv_handle_t *)&h->timer, http__closed);
    uv_close((uv_handle_t *)&h->reap, http__closed);
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
}
