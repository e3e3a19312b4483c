/* Fuzz target: a request byte stream into the HTTP adapter. The real server/http.c runs
 * in-process (libmicrohttpd in external-epoll mode under a libuv loop, the route table, the
 * admission checks, the body reader and inflater, libmicrohttpd's own refusals) with no
 * model: engine routes are answered by a stub that echoes the body's length. Each input
 * is written to a fresh loopback connection, which is then half-closed; the loop runs
 * until the server closes it. Whatever comes back must be a sequence of well-formed HTTP/1.1
 * responses (status line, headers, a Content-Length body), each error (4xx, 5xx) a JSON
 * object with "error", and nothing may follow a reply that says Connection: close. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../server/http.h"
#include "../server/log.h"
#include "../server/request.h"
#include "../server/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c, ...)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_http: %s broken: ", #c);                                         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static srv_server srv;
static uv_loop_t loop;

/* Every engine route: {"bytes": the body's length}. */
static int stub_handler(srv_req *r)
{
    char *b = malloc(48);
    int n = b ? snprintf(b, 48, "{\"bytes\":%zu}", r->len) : 0;
    return srv_reply(r, 200, b, (size_t)n, "application/json");
}

static void start(void)
{
    /* small limits, so that short inputs reach them */
    char *argv[] = {"fuzz_http",
                    "--model-id",
                    "fuzz=/nonexistent",
                    "--hostname",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--payload-limit",
                    "4096",
                    "--connection-memory",
                    "8192",
                    "--api-key",
                    "k3y",
                    "--cors-allow-origin",
                    "*",
                    NULL};
    char err[512];
    log_quiet(!getenv("FUZZ_VERBOSE"));
    signal(SIGPIPE, SIG_IGN);
    REQUIRE(opt_parse(&srv.opt, (int)(sizeof argv / sizeof *argv) - 1, argv, err, sizeof err) == 0,
            "%s", err);
    uv_loop_init(&loop);
    loop.data = &srv;
    srv.loop = &loop;
    static const char *names[64];
    for (int i = 0; i < srv_nroutes && i < 64; i++)
        names[i] = srv_routes[i].name;
    srv.metrics = metrics_new(names, srv_nroutes, NULL, 0, "fuzz", "cpu");
    REQUIRE(srv.metrics != NULL, "metrics_new");
    srv.ready = 1; /* no model: routes naming one answer 404, engine routes the stub */
    srv.engine_handler = stub_handler;
    REQUIRE(http_start(&srv, err, sizeof err) == 0, "%s", err);
}

/* ---- the reply ------------------------------------------------------------------------------ */

static const char *find(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    for (; p + n <= end; p++)
        if (memcmp(p, s, n) == 0) return p;
    return NULL;
}

/* The value of header `name` in head[0..n), NUL-terminated into out, or NULL. */
static const char *header(const char *head, const char *end, const char *name, char *out,
                          size_t cap)
{
    size_t k = strlen(name);
    for (const char *l = head; l < end;) {
        const char *eol = find(l, end, "\r\n");
        if (!eol) eol = end;
        if ((size_t)(eol - l) > k && strncasecmp(l, name, k) == 0 && l[k] == ':') {
            const char *v = l + k + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t n = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return out;
        }
        l = eol + 2;
    }
    return NULL;
}

/* Checks out[0..n) as responses; `reset`: the connection was reset, so the last reply may
 * be cut short; `head`: the input may hold HEAD requests, whose replies have no body. */
static void check_replies(const char *out, size_t n, int reset, int head)
{
    const char *p = out, *end = out + n;
    while (p < end) {
        const char *hend = find(p, end, "\r\n\r\n");
        if (!hend && reset) return;
        REQUIRE(hend, "a reply without the end of its headers: %.200s", p);
        REQUIRE(end - p > 12 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1') &&
                    p[8] == ' ' && p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' &&
                    p[11] >= '0' && p[11] <= '9' && p[12] == ' ',
                "a bad status line: %.80s", p);
        const int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        const char *body = hend + 4;
        char v[128];
        if (status < 200) { /* 100 Continue */
            p = body;
            continue;
        }
        const char *cl = header(p, hend, "Content-Length", v, sizeof v);
        REQUIRE(cl || status == 204 || status == 304, "no Content-Length: %.300s", p);
        char *e = NULL;
        unsigned long long len = cl ? strtoull(cl, &e, 10) : 0;
        REQUIRE(!cl || (*cl && *e == 0), "Content-Length '%s'", cl);
        /* a reply to HEAD has the length of the body it does not send */
        if (head && len &&
            ((size_t)(end - body) < len ||
             ((size_t)(end - body) >= 7 && memcmp(body, "HTTP/1.", 7) == 0)))
            len = 0;
        if ((unsigned long long)(end - body) < len && reset) return;
        REQUIRE((unsigned long long)(end - body) >= len, "a body cut short: %.300s", p);
        if (status >= 400 && len) {
            REQUIRE(header(p, hend, "Content-Type", v, sizeof v) &&
                        strcmp(v, "application/json") == 0,
                    "an error reply not JSON: %.300s", p);
            cJSON *j = cJSON_ParseWithLength(body, (size_t)len);
            REQUIRE(j && cJSON_IsObject(j) && cJSON_GetObjectItem(j, "error"),
                    "an error body not a JSON error: %.*s", (int)len, body);
            cJSON_Delete(j);
        }
        REQUIRE(status < 400 || len || head, "an error reply without a body: %.300s", p);
        const int close_after =
            header(p, hend, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0;
        p = body + len;
        REQUIRE(!close_after || p == end, "%zu bytes after a reply with Connection: close: %.200s",
                (size_t)(end - p), p);
    }
}

/* ---- one input -------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv.http) start();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd >= 0, "socket: %s", strerror(errno));
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0 || errno == EINPROGRESS,
            "connect: %s", strerror(errno));
    static char out[1 << 20];
    size_t sent = 0, got = 0;
    int half = 0, reset = 0, quiet = 0;
    /* Client and server share this thread, and loopback hands bytes over within send(), so
     * a few loop turns (zero timers run on the next one) in which nothing arrives mean the
     * server has done all it will for now: it then waits for the client to close a
     * kept-alive connection, which the client does. The rest ends when the server closes. */
    for (;;) {
        if (sent < size) {
            ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) sent += (size_t)k;
            if (k < 0 && errno != EAGAIN && errno != ENOTCONN) sent = size; /* closed on us */
        }
        if (sent == size && !half) {
            shutdown(fd, SHUT_WR);
            half = 1;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t k = recv(fd, out + got, sizeof out - 1 - got, 0);
        if (k == 0) break;
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
            reset = 1; /* the server closed with the client's bytes unread */
            break;
        }
        if (k > 0) {
            got += (size_t)k;
            quiet = 0;
            REQUIRE(got < sizeof out - 1, "more than %zu bytes of replies", sizeof out);
        } else if (half && ++quiet == 16) {
            break;
        }
    }
    close(fd);
    for (int i = 0; i < 4; i++) /* the server sees the close and frees the connection */
        uv_run(&loop, UV_RUN_NOWAIT);
    out[got] = 0;
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%zu bytes back%s:\n%.400s\n", got, reset ? " (reset)" : "", out);
    check_replies(out, got, reset, memmem(data, size, "HEAD", 4) != NULL);
    return 0;
}
