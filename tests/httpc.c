/* The HTTP/1.1 client of the integration tests and bench_load: sockets to 127.0.0.1,
 * requests and raw bytes out, one whole response in (Content-Length, chunked or up to the
 * close). Failures are returned, and told to the hook the tests set. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"

static void (*httpc__fail_hook)(const char *msg);

void httpc_on_error(void (*fail)(const char *msg))
{
    httpc__fail_hook = fail;
}

static int httpc__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int httpc__fail(const char *fmt, ...)
{
    if (httpc__fail_hook) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        httpc__fail_hook(msg);
    }
    return -1;
}

void hresp_free(hresp *r)
{
    free(r->body);
    r->body = NULL;
}

int hconnect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return httpc__fail("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return httpc__fail("connect: %s", strerror(e));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {120, 0}; /* a hung server fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

int hsend(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return httpc__fail("send: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int hsend_request(int fd, const char *method, const char *path, const char *headers,
                  const char *body, size_t len)
{
    char head[4096];
    int has_conn = headers && (strncasecmp(headers, "Connection:", 11) == 0 ||
                               strcasestr(headers, "\r\nConnection:") != NULL);
    int k = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s", method, path,
                     has_conn ? "" : "Connection: close\r\n", headers ? headers : "");
    if (body) k += snprintf(head + k, sizeof head - (size_t)k, "Content-Length: %zu\r\n", len);
    k += snprintf(head + k, sizeof head - (size_t)k, "\r\n");
    if (k >= (int)sizeof head) return httpc__fail("request head over %zu bytes", sizeof head);
    if (hsend(fd, head, (size_t)k)) return -1;
    return body && len ? hsend(fd, body, len) : 0;
}

/* A chunked body p[0..n): its decoded length in *olen (the bytes in out when out is not
 * NULL) and the bytes it takes, 0 while incomplete, -1 when malformed. */
static long httpc__dechunk(const char *p, size_t n, char *out, size_t *olen)
{
    size_t i = 0, o = 0;
    for (;;) {
        const char *eol = memmem(p + i, n - i, "\r\n", 2);
        if (!eol) return 0;
        if (!isxdigit((unsigned char)p[i])) return -1;
        char *end;
        unsigned long long sz = strtoull(p + i, &end, 16);
        if (end != eol && *end != ';') return -1;
        i = (size_t)(eol - p) + 2;
        if (sz == 0) /* trailers, up to an empty line */
            for (;;) {
                eol = memmem(p + i, n - i, "\r\n", 2);
                if (!eol) return 0;
                size_t ll = (size_t)(eol - (p + i));
                i += ll + 2;
                if (ll == 0) {
                    *olen = o;
                    return (long)i;
                }
            }
        if (sz > n - i || n - i - sz < 2) return 0;
        if (p[i + sz] != '\r' || p[i + sz + 1] != '\n') return -1;
        if (out) memcpy(out + o, p + i, sz);
        o += sz;
        i += sz + 2;
    }
}

int hread(int fd, hresp *r)
{
    r->status = -1;
    r->head[0] = 0;
    r->body = NULL;
    r->len = 0;
    size_t cap = 1 << 16, n = 0, hl = 0; /* hl: the head's length with its blank line */
    long long clen = -1;                 /* Content-Length, when given */
    int chunked = 0, closed = 0;
    char *b = malloc(cap);
    if (!b) return httpc__fail("out of memory");
    for (;;) {
        size_t dl;
        if (hl && clen >= 0 && n - hl >= (size_t)clen) break;
        if (hl && chunked && httpc__dechunk(b + hl, n - hl, NULL, &dl) != 0) break;
        if (closed) break;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return httpc__fail("out of memory");
            }
            b = nb;
        }
        ssize_t k = recv(fd, b + n, cap - n - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            closed = 1;
        } else if (k < 0) {
            int e = errno;
            free(b);
            return httpc__fail("recv: %s", strerror(e));
        } else {
            n += (size_t)k;
        }
        b[n] = 0;
        if (hl) continue;
        /* interim 1xx replies (100 Continue) are skipped, as HTTP/1.1 clients must */
        for (char *end; !hl && (end = memmem(b, n, "\r\n\r\n", 4));) {
            size_t h = (size_t)(end - b) + 4;
            if (strncmp(b, "HTTP/1.", 7) != 0 || b[9] != '1' || strncmp(b + 9, "101", 3) == 0) {
                hl = h;
                break;
            }
            memmove(b, b + h, n - h);
            n -= h;
            b[n] = 0;
        }
        if (!hl) continue;
        if (hl - 4 >= sizeof r->head) {
            free(b);
            return httpc__fail("a response head of %zu bytes", hl - 4);
        }
        memcpy(r->head, b, hl - 4);
        r->head[hl - 4] = 0;
        char v[64];
        if (hheader(r, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked"))
            chunked = 1;
        else if (hheader(r, "Content-Length", v, sizeof v))
            clen = strtoll(v, NULL, 10);
    }
    if (!hl) {
        int rc = httpc__fail("no complete response head in %zu bytes: %.200s", n, b);
        free(b);
        return rc;
    }
    if (sscanf(b, "HTTP/1.%*d %d", &r->status) != 1) {
        int rc = httpc__fail("bad status line: %.100s", b);
        free(b);
        r->status = -1;
        return rc;
    }
    size_t avail = n - hl, len = avail;
    char *body = malloc(avail + 1);
    if (!body) {
        free(b);
        return httpc__fail("out of memory");
    }
    if (chunked) {
        if (httpc__dechunk(b + hl, avail, body, &len) <= 0) {
            int rc = httpc__fail("a chunked body cut short or malformed (%zu bytes)", avail);
            free(body);
            free(b);
            return rc;
        }
    } else {
        if (clen >= 0) {
            if (avail < (size_t)clen) {
                int rc = httpc__fail("a body of %zu bytes, Content-Length %lld", avail, clen);
                free(body);
                free(b);
                return rc;
            }
            len = (size_t)clen;
        }
        memcpy(body, b + hl, len);
    }
    body[len] = 0;
    free(b);
    r->body = body;
    r->len = len;
    return r->status;
}

const char *hheader(const hresp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            l += nl + 1;
            while (*l == ' ')
                l++;
            size_t k = strcspn(l, "\r\n");
            snprintf(out, n, "%.*s", (int)k, l);
            return out;
        }
    }
    return NULL;
}
