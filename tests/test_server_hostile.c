/* longserve end to end, hostile clients (issue 13): idle and trickling connections, slow
 * bodies, half-closes, ambiguous framing, long queries, bad transfer codings, endless
 * chunked bodies, the parser's own refusals and NULs in paths, one test each, on raw
 * sockets. Harness: tests/server_harness.h. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server_harness.h"

static const char *const infer = "/v2/models/lf_base/infer";
static const char *const small_body = "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
                                      "\"shape\":[1,3],\"data\":[0,5,2]}]}";

/* A connection that fails nothing when the server refuses or drops it. */
static int quiet_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert(fd >= 0);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

/* Whether the server has closed fd (EOF or reset) within timeout_s. */
static int closed_within(int fd, double timeout_s)
{
    double t0 = now_s();
    char buf[4096];
    while (now_s() - t0 < timeout_s) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) == 1) {
            ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return 1;
        }
    }
    return 0;
}

/* Raw bytes out, one response in; the connection is left open. */
static void raw(int fd, const char *bytes, hresp *r)
{
    hsend(fd, bytes, strlen(bytes));
    hread(fd, r);
}

/* GET /health on a fresh connection: its status and how long the answer took. */
static int health(int port, double *sec)
{
    double t0 = now_s();
    hresp r;
    hreq(port, "GET", "/health", NULL, NULL, &r);
    *sec = now_s() - t0;
    int st = r.status;
    hresp_free(&r);
    return st;
}

/* ---- 1: idle and trickling connections do not starve the others ----------------------- */

enum { NIDLE = 300, NTRICKLE = 40 };

START_TEST(idle_connections)
{
    const char *extra[] = {"--max-connections", "256", "--header-timeout", "2", NULL};
    server s;
    server_start(&s, extra);
    static int idle[NIDLE], trickle[NTRICKLE];
    /* under the limit: answered at once */
    for (int i = 0; i < 200; i++)
        idle[i] = quiet_connect(s.port);
    double sec;
    ck_assert_int_eq(health(s.port, &sec), 200);
    ck_assert_msg(sec < 10, "/health took %.2f s beside 200 idle connections", sec);
    /* over it, with clients sending a byte now and then: answered once the header timeout
     * lets the oldest go */
    for (int i = 200; i < NIDLE; i++)
        idle[i] = quiet_connect(s.port);
    for (int i = 0; i < NTRICKLE; i++)
        trickle[i] = quiet_connect(s.port);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < NTRICKLE; i++)
            (void)!send(trickle[i], k ? "X" : "G", 1, MSG_NOSIGNAL);
        sleep_ms(250);
    }
    ck_assert_int_eq(health(s.port, &sec), 200);
    ck_assert_msg(sec < 10, "/health took %.2f s beside %d idle connections", sec,
                  NIDLE + NTRICKLE);
    fprintf(stderr, "idle_connections: /health in %.2f s beside %d idle and trickling sockets\n",
            sec, NIDLE + NTRICKLE);
    /* and every one of them is let go within the header timeout, trickling or not */
    for (int i = 0; i < NTRICKLE; i++) {
        (void)!send(trickle[i], "X", 1, MSG_NOSIGNAL);
        ck_assert_msg(closed_within(trickle[i], 15), "trickling connection %d still open", i);
        close(trickle[i]);
    }
    for (int i = 0; i < NIDLE; i++) {
        ck_assert_msg(closed_within(idle[i], 15), "idle connection %d still open", i);
        close(idle[i]);
    }
    expect_healthy(s.port);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* A source address of our own (127.0.0.2) is another client for the per-address limit. */
START_TEST(per_ip_limit)
{
    const char *extra[] = {"--max-connections-per-ip", "8", NULL};
    server s;
    server_start(&s, extra);
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = quiet_connect(s.port);
    /* the ninth from 127.0.0.1 is refused ... */
    int fd = quiet_connect(s.port);
    ck_assert_msg(closed_within(fd, 10), "a ninth connection from one address was kept");
    close(fd);
    /* ... another address is served */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    me.sin_addr.s_addr = htonl(0x7f000002);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)s.port);
    ck_assert(bind(fd, (struct sockaddr *)&me, sizeof me) == 0);
    ck_assert(connect(fd, (struct sockaddr *)&to, sizeof to) == 0);
    hresp r;
    raw(fd, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    close(fd);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 2: slow bodies hold no admission slot, and are let go ------------------------------ */

START_TEST(slow_bodies)
{
    const char *extra[] = {
        "--max-concurrent-requests", "2", "--header-timeout", "2", "--min-body-rate", "1000", NULL};
    server s;
    server_start(&s, extra);
    int slow[3];
    for (int i = 0; i < 3; i++) {
        slow[i] = quiet_connect(s.port);
        const char *h = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 100000\r\n\r\n{\"inputs\":";
        hsend(slow[i], h, strlen(h));
    }
    sleep_ms(200);
    hresp r;
    hreq(s.port, "POST", infer, NULL, small_body, &r);
    ck_assert_msg(r.status == 200, "a request beside 3 slow uploads: %d %s", r.status, r.body);
    hresp_free(&r);
    /* 10 bytes in 2 s is under 1000 bytes/s: the uploads are cut off */
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(closed_within(slow[i], 15), "slow upload %d still open", i);
        close(slow[i]);
    }
    ck_assert_int_eq(metric(s.port, "longserve_rejected_requests_total{reason=\"queue_full\"}"), 0);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 3: a half-close after a whole request is legal ------------------------------------- */

typedef struct {
    int port;
    hresp r;
} bg;

static void *bg_main(void *p)
{
    bg *b = p;
    hreq(b->port, "POST", infer, NULL, small_body, &b->r);
    return NULL;
}

START_TEST(half_close)
{
    const char *extra[] = {"--debug-engine-delay-ms", "1500", NULL};
    server s;
    server_start(&s, extra);
    /* alone: the request runs at once */
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", infer, NULL, small_body, strlen(small_body));
    shutdown(fd, SHUT_WR);
    hresp r;
    hread(fd, &r);
    close(fd);
    ck_assert_msg(r.status == 200, "half-closed: %d %s", r.status, r.body);
    hresp_free(&r);
    /* queued behind another while the engine works: checked for a departed client */
    pthread_t t;
    bg b = {.port = s.port};
    ck_assert_int_eq(pthread_create(&t, NULL, bg_main, &b), 0);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    fd = hconnect(s.port);
    hsend_request(fd, "POST", infer, NULL, small_body, strlen(small_body));
    shutdown(fd, SHUT_WR);
    hread(fd, &r);
    close(fd);
    ck_assert_msg(r.status == 200, "half-closed behind another: %d %s", r.status, r.body);
    ck_assert(strstr(r.body, "last_hidden_state") != NULL);
    hresp_free(&r);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    ck_assert_int_eq(
        metric(s.port, "longserve_rejected_requests_total{reason=\"client_disconnected\"}"), 0);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 6: framing two readers could disagree on: 400, connection closed -------------------- */

static void expect_refused(int port, const char *bytes, const char *needle)
{
    int fd = hconnect(port);
    hresp r;
    raw(fd, bytes, &r);
    ck_assert_msg(r.status == 400, "%d %s for %.60s", r.status, r.body, bytes);
    ck_assert_msg(strstr(r.body, needle), "body lacks '%s': %s", needle, r.body);
    hresp_free(&r);
    ck_assert_msg(closed_within(fd, 10), "the connection stays open after %.60s", bytes);
    close(fd);
}

START_TEST(ambiguous_framing)
{
    server s;
    server_start(&s, NULL);
    char req[1024];
    snprintf(req, sizeof req,
             "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
             "Content-Length: 5\r\n\r\n%s",
             strlen(small_body), small_body);
    expect_refused(s.port, req, "Content-Length headers that differ");
    double nf = metric(s.port, "longserve_requests_total{route=\"(none)\",status=\"404\"}");
    /* a smuggled request behind a chunked body with a Content-Length never runs */
    expect_refused(
        s.port,
        "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
        "both Content-Length and Transfer-Encoding");
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"(none)\",status=\"404\"}"),
                     nf);
    expect_refused(s.port, "GET /health HTTP/1.1\r\n\r\n", "Host");
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 7: a long query string is answered --------------------------------------------------- */

START_TEST(long_query)
{
    server s;
    server_start(&s, NULL);
    static char req[4096];
    int k = snprintf(req, sizeof req, "GET /health?");
    for (int i = 0; i < 500; i++)
        k += snprintf(req + k, sizeof req - (size_t)k, "a=b&");
    snprintf(req + k, sizeof req - (size_t)k, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int fd = hconnect(s.port);
    hresp r;
    raw(fd, req, &r);
    close(fd);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 11: a transfer coding we cannot read: refused at once, no slot held ----------------- */

START_TEST(bad_transfer_coding)
{
    const char *extra[] = {"--max-concurrent-requests", "1", NULL};
    server s;
    server_start(&s, extra);
    /* a chunk size past 2^64 ends the connection at once (libmicrohttpd's parser) */
    int fd = hconnect(s.port);
    const char *h = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff0\r\n";
    hsend(fd, h, strlen(h));
    shutdown(fd, SHUT_WR);
    ck_assert_msg(closed_within(fd, 5), "a chunk size past 2^64 holds the connection");
    close(fd);
    /* a coding we cannot read: 400 at once, connection closed */
    fd = hconnect(s.port);
    h = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: gzip, chunked\r\n\r\nffffffffffffffff\r\n";
    hsend(fd, h, strlen(h));
    shutdown(fd, SHUT_WR);
    double t0 = now_s();
    hresp r;
    hread(fd, &r);
    close(fd);
    ck_assert_msg(r.status == 400, "gzip, chunked: %d %s", r.status, r.body);
    ck_assert(strstr(r.body, "Transfer-Encoding 'gzip, chunked' is not supported") != NULL);
    ck_assert_msg(now_s() - t0 < 5, "answered after %.1f s", now_s() - t0);
    hresp_free(&r);
    /* the one slot is free */
    hreq(s.port, "POST", infer, NULL, small_body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 12: a chunked body without end over the limit gets its 413 --------------------------- */

START_TEST(chunked_over_limit)
{
    const char *extra[] = {"--payload-limit", "100000", NULL};
    server s;
    server_start(&s, extra);
    int fd = hconnect(s.port);
    const char *h = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
    hsend(fd, h, strlen(h));
    static char chunk[6 + 0x4000 + 2]; /* "4000\r\n", 16 KiB of spaces, "\r\n" */
    memcpy(chunk, "4000\r\n", 6);
    memset(chunk + 6, ' ', 0x4000);
    memcpy(chunk + 6 + 0x4000, "\r\n", 2);
    /* up to 60 limits' worth, until the answer comes */
    size_t sent = 0;
    for (int i = 0; i < 400; i++) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 0) == 1) break;
        if (send(fd, chunk, sizeof chunk, MSG_NOSIGNAL) < 0) break;
        sent += sizeof chunk;
    }
    hresp r;
    hread(fd, &r);
    close(fd);
    ck_assert_msg(r.status == 413, "%d after %zu bytes", r.status, sent);
    spec_expect("POST", infer, &r);
    ck_assert(strstr(r.body, "larger than the limit") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);
    ck_assert_int_ge(
        metric(s.port, "longserve_rejected_requests_total{reason=\"payload_too_large\"}"), 1);
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"v2_infer\",status=\"413\"}"),
                     1);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 13: error bodies are JSON (valid UTF-8), the parser's refusals are counted ---------- */

/* Raw bytes that libmicrohttpd itself refuses: exactly one reply comes back, with status
 * `status`, a JSON body of the path's error shape holding `needle`, and the connection
 * closes; the series `series` of /metrics counts it once. */
static void parser_refusal(int port, const char *bytes, size_t n, int status, const char *needle,
                           const char *series)
{
    const double before = metric(port, series);
    int fd = hconnect(port);
    hsend(fd, bytes, n);
    shutdown(fd, SHUT_WR);
    hresp r;
    hread(fd, &r);
    char ct[128] = "", rest[256];
    hheader(&r, "Content-Type", ct, sizeof ct);
    ck_assert_msg(r.status == status, "%d (not %d) %s for %.60s", r.status, status, r.body, bytes);
    ck_assert_msg(strcmp(ct, "application/json") == 0, "Content-Type '%s' for %.60s", ct, bytes);
    cJSON *j = hjson(&r);
    ck_assert_msg(cJSON_GetObjectItem(j, "error") != NULL, "%s", r.body);
    cJSON_Delete(j);
    ck_assert_msg(strstr(r.body, needle), "body lacks '%s': %s", needle, r.body);
    hresp_free(&r);
    /* nothing after the reply (libmicrohttpd 0.9.75 sends some header blocks twice) */
    size_t k = 0;
    double t0 = now_s();
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ck_assert_msg(now_s() - t0 < 10, "the connection stays open after %.60s", bytes);
        if (poll(&pf, 1, 100) != 1) continue;
        ssize_t got = recv(fd, rest + k, sizeof rest - 1 - k, 0);
        if (got <= 0) break;
        k += (size_t)got;
        ck_assert_msg(k < sizeof rest - 1, "more after the reply for %.60s", bytes);
    }
    rest[k] = 0;
    ck_assert_msg(k == 0, "%zu bytes after the reply for %.60s: %s", k, bytes, rest);
    close(fd);
    ck_assert_msg(metric(port, series) == before + 1, "%s: %g -> %g for %.60s", series, before,
                  metric(port, series), bytes);
}

#define NONE(code) "longserve_requests_total{route=\"(none)\",status=\"" #code "\"}"
#define REFUSE(bytes, status, needle, series)                                                      \
    parser_refusal(s.port, bytes, sizeof bytes - 1, status, needle, series)

START_TEST(parser_errors)
{
    const char *extra[] = {"--connection-memory", "8192", NULL};
    server s;
    server_start(&s, extra);
    hresp r;
    int fd = hconnect(s.port);
    raw(fd, "GET /%ff%fe/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    close(fd);
    ck_assert_int_eq(r.status, 404);
    for (const unsigned char *p = (const unsigned char *)r.body; *p; p++)
        ck_assert_msg(*p < 0x80, "raw byte 0x%02x in %s", *p, r.body);
    cJSON *j = hjson(&r);
    cJSON_Delete(j);
    ck_assert(strstr(r.body, "/%FF%FE/x") != NULL);
    hresp_free(&r);
    ck_assert_int_eq(metric(s.port, NONE(404)), 1);
    /* every refusal libmicrohttpd 0.9.75 makes itself (connection.c) */
    REFUSE("GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400,
           "a header line is malformed", NONE(400));
    REFUSE("GET /health HTTPX1.1\r\nHost: x\r\n\r\n", 400, "malformed", NONE(400));
    REFUSE("GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP version", NONE(505));
    REFUSE("GET /health HTTP/0.9\r\n\r\n", 505, "HTTP version", NONE(505));
    REFUSE("POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n", 400,
           "Content-Length header is not a number", NONE(400));
    REFUSE("POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
           413, "Content-Length is too large", NONE(413));
    REFUSE("POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
           400, "chunked encoding", "longserve_requests_total{route=\"v2_infer\",status=\"400\"}");
    REFUSE("POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff0\r\n",
           413, "chunk size", "longserve_requests_total{route=\"v2_infer\",status=\"413\"}");
    /* over --connection-memory: the request line (414), a header (431) */
    enum { BIG = 9000 };
    static char big[BIG + 100];
    int k = snprintf(big, sizeof big, "GET /");
    memset(big + k, 'a', BIG);
    k += BIG;
    k += snprintf(big + k, sizeof big - (size_t)k, " HTTP/1.1\r\nHost: x\r\n\r\n");
    parser_refusal(s.port, big, (size_t)k, 414, "--connection-memory 8192", NONE(414));
    k = snprintf(big, sizeof big, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + k, 'a', BIG);
    k += BIG;
    k += snprintf(big + k, sizeof big - (size_t)k, "\r\n\r\n");
    parser_refusal(s.port, big, (size_t)k, 431, "--connection-memory 8192", NONE(431));
    /* the shape follows the path: OpenAI's for /v1/ */
    REFUSE("POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
           "\"type\":\"invalid_request_error\"", NONE(400));
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"other\",status=\"other\"}"),
                     0);
    expect_healthy(s.port);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- 14: a NUL in the path is no shorter path ------------------------------------------ */

START_TEST(nul_in_path)
{
    server s;
    server_start(&s, NULL);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base%00x/infer", NULL, small_body, &r);
    ck_assert_msg(r.status == 400, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "NUL") != NULL);
    hresp_free(&r);
    hreq(s.port, "GET", "/health%00", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- the API key: the scheme in any case, the key file's trailing blanks ---------------- */

START_TEST(api_key_leniency)
{
    const char *keyfile = "/tmp/ls-srv-key-hostile";
    FILE *f = fopen(keyfile, "w");
    fputs("s3cret-key \t\r\n", f);
    fclose(f);
    const char *extra[] = {"--api-key-file", keyfile, NULL};
    server s;
    server_start(&s, extra);
    const char *auth[] = {"authorization: bearer s3cret-key\r\n",
                          "Authorization: BEARER s3cret-key\r\n"};
    for (int i = 0; i < 2; i++) {
        hresp r;
        hreq(s.port, "POST", infer, auth[i], small_body, &r);
        ck_assert_msg(r.status == 200, "%s: %d %s", auth[i], r.status, r.body);
        hresp_free(&r);
    }
    hresp r;
    hreq(s.port, "POST", infer, "Authorization: bearer S3CRET-KEY\r\n", small_body, &r);
    ck_assert_int_eq(r.status, 401);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    unlink(keyfile);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, idle_connections);
    tcase_add_test(tc, per_ip_limit);
    tcase_add_test(tc, slow_bodies);
    tcase_add_test(tc, half_close);
    tcase_add_test(tc, ambiguous_framing);
    tcase_add_test(tc, long_query);
    tcase_add_test(tc, bad_transfer_coding);
    tcase_add_test(tc, chunked_over_limit);
    tcase_add_test(tc, parser_errors);
    tcase_add_test(tc, nul_in_path);
    tcase_add_test(tc, api_key_leniency);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
