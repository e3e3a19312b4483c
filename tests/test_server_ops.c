/* longserve end to end, operations: error bodies of each family, 405/413, the API key,
 * concurrent clients batched with answers equal to the one-by-one ones, overload (429),
 * client disconnects, deadlines (504) and the SIGTERM drain; start-up: a port in use, probes
 * while the models load, the loading log, a model that fails to load, SIGTERM while loading.
 * Harness: tests/server_harness.h. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "server_harness.h"

/* ---- errors ---------------------------------------------------------------------------------- */

static void expect_status(int port, const char *method, const char *path, const char *headers,
                          const char *body, int status, const char *needle)
{
    hresp r;
    hreq(port, method, path, headers, body, &r);
    ck_assert_msg(r.status == status, "%s %s: %d, expected %d: %s", method, path, r.status, status,
                  r.body);
    ck_assert_msg(strstr(r.body, needle) != NULL, "%s %s: body lacks '%s': %s", method, path,
                  needle, r.body);
    hresp_free(&r);
    expect_healthy(port); /* and the server still serves */
}

START_TEST(errors)
{
    server s;
    server_start(&s, NULL);
    const char *infer = "/v2/models/lf_base/infer";
    /* KServe family: {"error": msg} */
    expect_status(s.port, "POST", infer, NULL, "{\"inputs\": [", 400,
                  "{\"error\":\"request body is not valid JSON\"}");
    expect_status(s.port, "POST", infer, NULL, "", 400, "not valid JSON");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                  "\"data\":[0,\"x\"]}]}",
                  400, "not an integer");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"FP32\",\"shape\":[1,2],"
                  "\"data\":[0,2]}]}",
                  400, "datatype must be");
    expect_status(s.port, "POST", infer, NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
                  "\"data\":[0,100000,2]}]}",
                  422, "outside the vocabulary");
    expect_status(s.port, "POST", "/v2/models/lf_qa/infer", NULL,
                  "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,4],"
                  "\"data\":[0,5,6,2]}]}",
                  422, "separator tokens");
    expect_status(s.port, "POST", "/v2/models/nope/infer", NULL, "{}", 404,
                  "{\"error\":\"model 'nope' is not served here\"}");
    expect_status(s.port, "GET", "/v2/models/nope", NULL, NULL, 404, "model 'nope'");
    /* TEI family: {"error", "error_type"}; OpenAI: {"error": {"message","type","code"}} */
    expect_status(s.port, "GET", "/nowhere", NULL, NULL, 404, "\"error_type\":\"not_found\"");
    expect_status(s.port, "GET", "/v1/nowhere", NULL, NULL, 404,
                  "{\"error\":{\"message\":\"no route GET /v1/nowhere\",\"type\":"
                  "\"invalid_request_error\",\"code\":\"not_found\"}}");

    /* wrong method: 405 with Allow */
    hresp r;
    char h[128];
    hreq(s.port, "GET", infer, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(hheader(&r, "Allow", h, sizeof h), "POST");
    hresp_free(&r);
    hreq(s.port, "DELETE", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert(hheader(&r, "Allow", h, sizeof h) && strstr(h, "GET"));
    ck_assert(strstr(r.body, "\"error_type\"") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    /* 413 from Content-Length alone: the body is never sent, the answer comes anyway */
    int fd = hconnect(s.port);
    const char *head = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 50000000\r\nConnection: close\r\n\r\n";
    hsend(fd, head, strlen(head));
    hread(fd, &r);
    close(fd);
    ck_assert_int_eq(r.status, 413);
    spec_expect("POST", "/v2/models/lf_base/infer", &r);
    ck_assert(strstr(r.body, "the limit is 2000000") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    /* 413 while streaming: chunked, no Content-Length */
    fd = hconnect(s.port);
    head = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    hsend(fd, head, strlen(head));
    static char chunk[7 + 0x10000 + 2]; /* "10000\r\n", 64 KiB of spaces, "\r\n" */
    memcpy(chunk, "10000\r\n", 7);
    memset(chunk + 7, ' ', 0x10000);
    memcpy(chunk + 7 + 0x10000, "\r\n", 2);
    for (int i = 0; i < 40; i++)
        hsend(fd, chunk, sizeof chunk); /* 2.6 MB */
    hsend(fd, "0\r\n\r\n", 5);
    hread(fd, &r);
    close(fd);
    ck_assert_int_eq(r.status, 413);
    spec_expect("POST", "/v2/models/lf_base/infer", &r);
    ck_assert(strstr(r.body, "larger than the limit") != NULL);
    hresp_free(&r);
    expect_healthy(s.port);

    ck_assert_int_ge(
        metric(s.port, "longserve_rejected_requests_total{reason=\"payload_too_large\"}"), 2);
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"v2_infer\",status=\"400\"}"),
                     4);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(api_key)
{
    const char *keyfile = "/tmp/ls-srv-key";
    FILE *f = fopen(keyfile, "w");
    fputs("s3cret-key\n", f);
    fclose(f);
    const char *extra[] = {"--api-key-file", keyfile, NULL};
    server s;
    server_start(&s, extra);
    const char *body = "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
                       "\"shape\":[1,3],\"data\":[0,5,2]}]}";
    expect_status(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, 401, "API key");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer",
                  "Authorization: Bearer s3cret-kez\r\n", body, 401, "API key");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer", "Authorization: Bearer s3cret\r\n",
                  body, 401, "API key");
    expect_status(s.port, "GET", "/info", NULL, NULL, 401, "\"error_type\":\"unauthorized\"");
    expect_status(s.port, "POST", "/v2/models/lf_base/infer",
                  "Authorization: Bearer s3cret-key\r\n", body, 200, "last_hidden_state");
    /* probes and metrics need no key */
    expect_status(s.port, "GET", "/health", NULL, NULL, 200, "live");
    expect_status(s.port, "GET", "/metrics", NULL, NULL, 200, "longserve_ready 1");
    /* the key is in no log line */
    char *log = read_file(s.log_file);
    ck_assert_msg(strstr(log, "s3cret") == NULL, "the API key was logged");
    free(log);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    unlink(keyfile);
}
END_TEST

/* ---- concurrency: batches hold several requests, answers equal the one-by-one ones ---------- */

/* Two v2 responses: names, ids, shapes equal; data equal to 1e-5 of the output's largest
 * magnitude, the bound the engine's own batch-invariance test holds it to (a BLAS product
 * may sum in another order when the packed batch has more rows). Returns the largest
 * relative difference seen. */
static double v2_compare(const char *a, const char *b)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    ck_assert(x && y);
    ck_assert_str_eq(cJSON_GetObjectItem(x, "model_name")->valuestring,
                     cJSON_GetObjectItem(y, "model_name")->valuestring);
    ck_assert_str_eq(cJSON_GetObjectItem(x, "id")->valuestring,
                     cJSON_GetObjectItem(y, "id")->valuestring);
    const cJSON *ox = cJSON_GetObjectItem(x, "outputs"), *oy = cJSON_GetObjectItem(y, "outputs");
    ck_assert_int_eq(cJSON_GetArraySize(ox), cJSON_GetArraySize(oy));
    double worst = 0;
    for (int i = 0; i < cJSON_GetArraySize(ox); i++) {
        const cJSON *p = cJSON_GetArrayItem(ox, i), *q = cJSON_GetArrayItem(oy, i);
        ck_assert_str_eq(cJSON_GetObjectItem(p, "name")->valuestring,
                         cJSON_GetObjectItem(q, "name")->valuestring);
        char *sp = cJSON_PrintUnformatted(cJSON_GetObjectItem(p, "shape"));
        char *sq = cJSON_PrintUnformatted(cJSON_GetObjectItem(q, "shape"));
        ck_assert_str_eq(sp, sq);
        free(sp);
        free(sq);
        const cJSON *dp = cJSON_GetObjectItem(p, "data"), *dq = cJSON_GetObjectItem(q, "data");
        ck_assert_int_eq(cJSON_GetArraySize(dp), cJSON_GetArraySize(dq));
        double md = 0, mx = 0;
        const cJSON *u = dp->child, *v = dq->child;
        for (; u && v; u = u->next, v = v->next) {
            md = fmax(md, fabs(u->valuedouble - v->valuedouble));
            mx = fmax(mx, fabs(v->valuedouble));
        }
        double rel = mx > 0 ? md / mx : md;
        ck_assert_msg(rel <= 1e-5, "output %s differs by %.3g of its largest magnitude",
                      cJSON_GetObjectItem(p, "name")->valuestring, rel);
        worst = fmax(worst, rel);
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return worst;
}

enum { NCLIENTS = 64, NBODIES = 8 };

typedef struct {
    int port, which;
    const char *body;
    pthread_barrier_t *go;
    hresp r;
} client;

static void *client_main(void *p)
{
    client *c = p;
    int fd = hconnect(c->port);
    pthread_barrier_wait(c->go);
    hsend_request(fd, "POST", "/v2/models/lf_base/infer", NULL, c->body, strlen(c->body));
    hread(fd, &c->r);
    close(fd);
    spec_check("POST", "/v2/models/lf_base/infer", &c->r);
    return NULL;
}

START_TEST(concurrent_clients_batch)
{
    /* the engine sleeps 150 ms per batch: while one runs, the rest queue and batch */
    const char *extra[] = {"--debug-engine-delay-ms", "150", "--long-request-tokens", "48", NULL};
    server s;
    server_start(&s, extra);
    char *bodies[NBODIES], *alone[NBODIES];
    for (int i = 0; i < NBODIES; i++) {
        /* short and long inputs, one and two rows */
        bodies[i] = v2_body(1 + i % 2, i % 3 == 0 ? 100 + i : 5 + 3 * i, i);
        hresp r;
        hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, bodies[i], &r);
        ck_assert_msg(r.status == 200, "%d: %s", r.status, r.body);
        alone[i] = r.body;
    }
    double batches0 = metric(s.port, "longserve_batch_requests_count");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NCLIENTS);
    client *cs = calloc(NCLIENTS, sizeof *cs);
    pthread_t th[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        cs[i] = (client){.port = s.port, .which = (i * 5) % NBODIES, .go = &go};
        cs[i].body = bodies[cs[i].which];
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cs[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(th[i], NULL);
    double worst = 0;
    int exact = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        ck_assert_msg(cs[i].r.status == 200, "client %d: %d %s", i, cs[i].r.status, cs[i].r.body);
        exact += strcmp(cs[i].r.body, alone[cs[i].which]) == 0;
        worst = fmax(worst, v2_compare(cs[i].r.body, alone[cs[i].which]));
        hresp_free(&cs[i].r);
    }
    fprintf(stderr,
            "concurrent: %d of %d answers byte-identical to alone, worst relative "
            "difference %.3g\n",
            exact, NCLIENTS, worst);
    /* the engine tiles every linear layer per sequence (kernels/cpu/cpu.c), so batching
     * changes no bit of any answer */
    ck_assert_msg(exact == NCLIENTS, "only %d of %d answers byte-identical to alone", exact,
                  NCLIENTS);
    /* 64 requests in fewer batches than requests, and some batch held more than one */
    double batches = metric(s.port, "longserve_batch_requests_count") - batches0;
    double single = metric(s.port, "longserve_batch_requests_bucket{model=\"lf_base\",le=\"1\"}");
    ck_assert_msg(batches >= 1 && batches < NCLIENTS, "%g batches for %d requests", batches,
                  NCLIENTS);
    ck_assert_msg(metric(s.port, "longserve_batch_requests_count") - single >= 1,
                  "no batch held several requests");
    ck_assert_int_eq(metric(s.port, "longserve_requests_total{route=\"v2_infer\",status=\"200\"}"),
                     NCLIENTS + NBODIES);
    pthread_barrier_destroy(&go);
    free(cs);
    for (int i = 0; i < NBODIES; i++) {
        free(bodies[i]);
        free(alone[i]);
    }
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- overload, disconnects, deadlines, shutdown -----------------------------------------------
 */

typedef struct {
    int port;
    const char *path, *body;
    hresp r;
} bg_req;

static void *bg_main(void *p)
{
    bg_req *b = p;
    hreq(b->port, "POST", b->path, NULL, b->body, &b->r);
    return NULL;
}

static void bg_start(pthread_t *t, bg_req *b, int port, const char *body)
{
    *b = (bg_req){.port = port, .path = "/v2/models/lf_base/infer", .body = body};
    ck_assert_int_eq(pthread_create(t, NULL, bg_main, b), 0);
}

/* Starts the server, then a v2 request (body returned) in the background, and returns once
 * the engine runs it. */
static char *start_busy(server *s, const char *const *extra, int rows, int len, int seed,
                        pthread_t *t, bg_req *b)
{
    server_start(s, extra);
    char *body = v2_body(rows, len, seed);
    bg_start(t, b, s->port, body);
    wait_metric_at_least(s->port, "longserve_engine_busy", 1);
    return body;
}

START_TEST(overload_429)
{
    const char *extra[] = {"--max-concurrent-requests", "2", "--debug-engine-delay-ms", "2000",
                           NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(1, 10, 1);
    pthread_t t[2];
    bg_req b[2];
    bg_start(&t[0], &b[0], s.port, body);
    bg_start(&t[1], &b[1], s.port, body);
    wait_metric_at_least(s.port, "longserve_inflight_requests", 2);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 429);
    char h[32];
    ck_assert_msg(hheader(&r, "Retry-After", h, sizeof h) && atoi(h) >= 1, "no Retry-After");
    ck_assert(strstr(r.body, "concurrent requests") != NULL);
    hresp_free(&r);
    /* nothing admitted is lost */
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(b[i].r.status, 200);
        hresp_free(&b[i].r);
    }
    ck_assert_int_eq(metric(s.port, "longserve_rejected_requests_total{reason=\"queue_full\"}"), 1);
    /* and the places come back */
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(client_disconnects)
{
    const char *extra[] = {"--debug-engine-delay-ms", "2000", NULL};
    server s;
    server_start(&s, extra);
    char *body = v2_body(1, 20, 2);
    /* one request holds the engine ... */
    pthread_t t;
    bg_req b;
    bg_start(&t, &b, s.port, body);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    /* ... a second is queued behind it, and its client leaves */
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", "/v2/models/lf_base/infer", NULL, body, strlen(body));
    wait_metric_at_least(s.port, "longserve_inflight_requests", 2);
    close(fd);
    /* a client that leaves mid-body */
    fd = hconnect(s.port);
    const char *part = "POST /v2/models/lf_base/infer HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 1000\r\n\r\n{\"inputs\":";
    hsend(fd, part, strlen(part));
    close(fd);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    /* the queued one was dropped before it ran */
    wait_metric_at_least(s.port,
                         "longserve_rejected_requests_total{reason=\"client_disconnected\"}", 1);
    ck_assert_int_eq(metric(s.port, "longserve_inflight_requests"), 0);
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(deadline_504)
{
    const char *extra[] = {"--debug-engine-delay-ms", "3000", "--request-timeout-ms", "1000", NULL};
    server s;
    pthread_t t;
    bg_req b;
    char *body = start_busy(&s, extra, 1, 8, 3, &t, &b); /* within its deadline */
    hresp r;
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_msg(r.status == 504, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "deadline") != NULL);
    hresp_free(&r);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(sigterm_drains)
{
    const char *extra[] = {"--debug-engine-delay-ms", "3000", "--shutdown-timeout", "30", NULL};
    server s;
    pthread_t t;
    bg_req b;
    char *body = start_busy(&s, extra, 2, 12, 4, &t, &b);
    double t0 = now_s();
    kill(s.pid, SIGTERM);
    /* readiness fails at once (the loop answers while the engine works) */
    hresp r;
    for (;;) {
        hreq(s.port, "GET", "/ready", NULL, NULL, &r);
        if (r.status == 503) break;
        hresp_free(&r);
        ck_assert_msg(now_s() - t0 < 10, "/ready did not fail after SIGTERM");
        sleep_ms(2);
    }
    ck_assert(strstr(r.body, "\"error_type\":\"unhealthy\"") != NULL);
    hresp_free(&r);
    hreq(s.port, "GET", "/v2/health/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    hresp_free(&r);
    hreq(s.port, "GET", "/health", NULL, NULL, &r); /* still live */
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    /* new work is refused while draining */
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 503);
    hresp_free(&r);
    /* the running request completes, then the process exits 0 */
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    ck_assert(strstr(b.r.body, "last_hidden_state") != NULL);
    hresp_free(&b.r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    free(body);
}
END_TEST

/* A supervisor that signals again while the process tears down (its signal handlers are
 * closed by then) still sees the exit code, not a death by SIGTERM. The teardown is held open
 * by --debug-exit-delay-ms, so the second signal lands in it whatever the machine's speed. */
START_TEST(sigterm_during_teardown)
{
    const char *extra[] = {"--debug-exit-delay-ms", "3000", NULL};
    server s;
    server_start(&s, extra);
    kill(s.pid, SIGTERM);
    double t0 = now_s();
    for (;;) {
        char *log = read_file(s.log_file);
        int stopped = log && strstr(log, "stopped (exit 0)") != NULL;
        free(log);
        if (stopped) break;
        ck_assert_msg(now_s() - t0 < 30, "no 'stopped' line 30 s after SIGTERM");
        sleep_ms(5);
    }
    kill(s.pid, SIGTERM);
    kill(s.pid, SIGINT);
    ck_assert_int_eq(server_stop(&s, 30), 0); /* and a third SIGTERM */
}
END_TEST

/* SIGHUP is logged and ignored: the running request completes, the server stays ready. */
START_TEST(sighup_ignored)
{
    const char *extra[] = {"--debug-engine-delay-ms", "1000", NULL};
    server s;
    pthread_t t;
    bg_req b;
    char *body = start_busy(&s, extra, 1, 8, 5, &t, &b);
    kill(s.pid, SIGHUP);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    hresp r;
    hreq(s.port, "GET", "/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    hreq(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    free(body);
    char *log = read_file(s.log_file);
    ck_assert_msg(strstr(log, "(SIGHUP): ignored") != NULL, "%s", log);
    free(log);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* Past --shutdown-timeout with a batch of 4 on the engine: the log counts the 4 requests on
 * the engine and the 4 dropped (it used to count busy workers: "1 requests"). */
START_TEST(shutdown_timeout_counts)
{
    const char *extra[] = {"--debug-engine-delay-ms", "8000", "--shutdown-timeout", "1", NULL};
    server s;
    pthread_t t;
    bg_req b;
    char *body = start_busy(&s, extra, 1, 8, 6, &t, &b);
    /* four more queue while the first runs, then run as one batch */
    int fd[4];
    for (int i = 0; i < 4; i++) {
        fd[i] = hconnect(s.port);
        hsend_request(fd[i], "POST", "/v2/models/lf_base/infer", NULL, body, strlen(body));
    }
    wait_metric_at_least(s.port, "longserve_inflight_requests", 5);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.r.status, 200);
    hresp_free(&b.r);
    ck_assert_int_eq(metric(s.port, "longserve_inflight_requests"), 4);
    ck_assert_int_eq(metric(s.port, "longserve_engine_busy"), 1);
    kill(s.pid, SIGTERM);
    ck_assert_int_eq(server_wait_exit(&s, 30), 1);
    char *log = read_file(s.log_file);
    const char *line = strstr(log, "still on the engine");
    ck_assert_msg(line, "no forced-exit line: %.2000s", log);
    ck_assert_msg(strstr(log, "4 requests still on the engine (1 of 3 models busy)") &&
                      strstr(log, "dropping 4 open requests"),
                  "%.300s", line > log + 100 ? line - 100 : log);
    free(log);
    for (int i = 0; i < 4; i++)
        close(fd[i]);
    free(body);
}
END_TEST

/* ---- start-up: listen first, load after, readiness when loaded --------------------------------
 */

static int count_lines(const char *log, const char *a, const char *b)
{
    int n = 0;
    for (const char *l = log; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char *line = strndup(l, len);
        n += strstr(line, a) && (!b || strstr(line, b));
        free(line);
    }
    return n;
}

START_TEST(port_in_use)
{
    /* another socket holds the port: longserve says so and exits, before loading anything
     * (each model's loading would first sleep a minute) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    ck_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0);
    ck_assert(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    const char *extra[] = {"--port", port, "--debug-load-delay-ms", "60000", NULL};
    static const char *const models[] = {"lf_base=lf_base", NULL};
    server s;
    double t0 = now_s();
    server_spawn_models(&s, models, extra);
    int rc = server_wait_exit(&s, 30);
    double sec = now_s() - t0;
    close(fd);
    char *log = read_file(s.log_file);
    ck_assert_msg(rc == 1, "exit %d, expected 1; log:\n%s", rc, log);
    ck_assert_msg(sec < 30, "took %.1f s", sec);
    char want[80];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%s: Address already in use", port);
    ck_assert_msg(strstr(log, want) != NULL, "no '%s' in the log:\n%s", want, log);
    ck_assert_msg(strstr(log, "model_load") == NULL, "a model was loaded:\n%s", log);
    ck_assert_msg(access(s.port_file, F_OK) != 0, "the port file was written");
    free(log);
    unlink(s.log_file);
}
END_TEST

/* 1 when /proc/cpuinfo lists a bfloat16 instruction set the engine uses */
static int cpu_has_bf16(void)
{
    char *info = read_file("/proc/cpuinfo");
    const int has = info && (strstr(info, " amx_bf16") || strstr(info, " avx512_bf16"));
    free(info);
    return has;
}

static const cJSON *v2_output0(const cJSON *j)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0), "data");
}

START_TEST(dtype_bf16)
{
    /* --dtype bf16 serves bfloat16 linear layers and says so in /info, within 1.5e-2 of the
     * float32 server (the toy fixture's bound, tests/test_golden.c) and not equal to it; a
     * CPU without the instructions (LONGSERVE_BF16=none stands for one) and float16 are
     * refused at start with the reason, exit 1. Where the CPU has neither, the emulation
     * serves. */
    if (!cpu_has_bf16()) setenv("LONGSERVE_BF16", "bf16-emu", 1);
    static const char *const models[] = {"lf_base=lf_base", NULL};
    const char *bf[] = {"--dtype", "bf16", NULL};
    server s32, s16;
    server_start_models(&s32, models, NULL);
    server_start_models(&s16, models, bf);
    hresp r;
    hreq(s16.port, "GET", "/info", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_dtype")->valuestring, "bfloat16");
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "models"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(m0, "dtype")->valuestring, "bfloat16");
    ck_assert_msg(strstr(cJSON_GetObjectItem(m0, "isa")->valuestring, "linear layers bf16 on "),
                  "%s", cJSON_GetObjectItem(m0, "isa")->valuestring);
    cJSON_Delete(j);
    hresp_free(&r);
    char *body = v2_body(2, 100, 7);
    hresp a, b;
    hreq(s32.port, "POST", "/v2/models/lf_base/infer", NULL, body, &a);
    hreq(s16.port, "POST", "/v2/models/lf_base/infer", NULL, body, &b);
    ck_assert_msg(a.status == 200 && b.status == 200, "%d %d: %s", a.status, b.status, b.body);
    cJSON *ja = hjson(&a), *jb = hjson(&b);
    const double e = json_rel_err(v2_output0(jb), v2_output0(ja));
    printf("dtype_bf16: v2 last_hidden_state bf16 vs float32 rel err %.2e\n", e);
    ck_assert_msg(e > 0 && e <= 1.5e-2, "rel err %g", e);
    cJSON_Delete(ja), cJSON_Delete(jb);
    hresp_free(&a), hresp_free(&b);
    free(body);
    ck_assert_int_eq(server_stop(&s32, 30), 0);
    ck_assert_int_eq(server_stop(&s16, 30), 0);

    struct {
        const char *env, *dtype, *want;
    } bad[] = {{"none", "bf16", "bf16 needs AMX-BF16 or AVX512_BF16"},
               {NULL, "float16", "float16 has no fast path on a CPU, bfloat16 has"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (bad[i].env) setenv("LONGSERVE_BF16", bad[i].env, 1);
        const char *extra[] = {"--dtype", bad[i].dtype, NULL};
        server s;
        server_spawn_models(&s, models, extra);
        const int rc = server_wait_exit(&s, 30);
        char *log = read_file(s.log_file);
        ck_assert_msg(rc == 1, "--dtype %s: exit %d, expected 1; log:\n%s", bad[i].dtype, rc, log);
        ck_assert_msg(strstr(log, bad[i].want), "no '%s' in the log:\n%s", bad[i].want, log);
        free(log);
        unlink(s.log_file);
        unlink(s.port_file);
        unsetenv("LONGSERVE_BF16");
    }
}
END_TEST

/* A request the server must refuse while it loads: 503, Retry-After, `needle` in the body.
 * Checked only when the answer came before `until` (the loading is certain until then);
 * returns whether it was. */
static int expect_loading(int port, double until, const char *method, const char *path,
                          const char *body, const char *needle)
{
    hresp r;
    hreq(port, method, path, NULL, body, &r);
    char h[32];
    int sure = now_s() < until;
    if (sure) {
        ck_assert_msg(r.status == 503, "%s %s while loading: %d %s", method, path, r.status,
                      r.body);
        ck_assert_msg(strstr(r.body, needle) != NULL, "%s %s: body lacks '%s': %s", method, path,
                      needle, r.body);
        ck_assert_msg(hheader(&r, "Retry-After", h, sizeof h) && atoi(h) >= 1,
                      "%s %s: 503 without Retry-After", method, path);
    } else {
        fprintf(stderr, "%s %s: answered after the load delay, not checked as loading\n", method,
                path);
    }
    hresp_free(&r);
    return sure;
}

START_TEST(loading_then_ready)
{
    /* each model's loading first sleeps 4 s, and it starts after the process does: until
     * t0 + 4 s the server is certainly loading. Answers that come later (a very slow
     * machine) are not checked as loading rather than failed. */
    const char *extra[] = {"--debug-load-delay-ms", "4000", NULL};
    static const char *const models[] = {"lf_base=lf_base", "lf_f16=lf_f16", NULL};
    server s;
    const double until = now_s() + 4;
    server_spawn_models(&s, models, extra);
    server_wait_port(&s);
    /* liveness at once, whatever the models do */
    expect_status(s.port, "GET", "/health", NULL, NULL, 200, "live");
    hresp r;
    hreq(s.port, "GET", "/v2/health/live", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    char *body = v2_body(1, 6, 5);
    int sure = expect_loading(s.port, until, "GET", "/ready", NULL, "loading: 0 of 2 models");
    sure += expect_loading(s.port, until, "GET", "/v2/health/ready", NULL, "\"ready\":false");
    sure += expect_loading(s.port, until, "POST", "/v2/models/lf_base/infer", body, "loading");
    sure += expect_loading(s.port, until, "GET", "/info", NULL, "loading");
    hreq(s.port, "GET", "/metrics", NULL, NULL, &r); /* complete while loading */
    ck_assert_int_eq(r.status, 200);
    if (now_s() < until) {
        ck_assert(strstr(r.body, "longserve_ready 0\n") != NULL);
        sure++;
    }
    ck_assert(strstr(r.body, "longserve_batch_requests_count{model=\"lf_f16\"} 0\n") != NULL);
    hresp_free(&r);
    promtool_check(s.port);
    fprintf(stderr, "loading_then_ready: %d of 5 while-loading checks made\n", sure);
    /* then ready, and serving */
    server_wait_ready(&s);
    hreq(s.port, "GET", "/v2/health/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    expect_status(s.port, "POST", "/v2/models/lf_base/infer", NULL, body, 200, "last_hidden_state");
    expect_status(s.port, "GET", "/info", NULL, NULL, 200, "lf_f16");
    ck_assert_int_eq(metric(s.port, "longserve_ready"), 1);
    free(body);
    /* the loading is in the log: a line per weights file (the sharded lf_f16 has four) and
     * one per model with its files, bytes, tensors and seconds */
    char *log = read_file(s.log_file);
    ck_assert_int_eq(count_lines(log, "model_loading", "model lf_f16: weights file"), 4);
    for (int i = 1; i <= 4; i++) {
        char want[120];
        snprintf(want, sizeof want, "weights file %d of 4, ", i);
        ck_assert_msg(count_lines(log, want, "-of-00004.safetensors: ") == 1, "no '%s'", want);
    }
    ck_assert_int_eq(count_lines(log, "model lf_base: weights file 1 of 1", " tensors"), 1);
    ck_assert_int_eq(count_lines(log, "model_loaded", " bytes, 51 tensors, loaded in "), 2);
    ck_assert_int_eq(count_lines(log, "model_loaded", "model lf_f16 from "), 1);
    ck_assert_int_eq(count_lines(log, "model_loaded", "4 weights files, 67800 bytes"), 1);
    ck_assert_int_eq(count_lines(log, "ready: 2 models loaded and warmed up", NULL), 1);
    free(log);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(load_failure_exits)
{
    /* a model that cannot load stops the server, non-zero, with the error */
    static const char *const models[] = {"lf_base=lf_base", "nope=/nonexistent/model-dir", NULL};
    server s;
    server_spawn_models(&s, models, NULL);
    int rc = server_wait_exit(&s, 60);
    char *log = read_file(s.log_file);
    ck_assert_msg(rc == 1, "exit %d, expected 1; log:\n%s", rc, log);
    ck_assert_msg(count_lines(log, "error model_load", "model nope (/nonexistent/model-dir): ") ==
                      1,
                  "no error line for the model:\n%s", log);
    ck_assert(strstr(log, "ready:") == NULL);
    free(log);
    unlink(s.log_file);
    unlink(s.port_file);
}
END_TEST

START_TEST(sigterm_while_loading)
{
    /* a load cannot be interrupted, but the process need not wait for it */
    const char *extra[] = {"--debug-load-delay-ms", "60000", NULL};
    static const char *const models[] = {"lf_base=lf_base", NULL};
    server s;
    server_spawn_models(&s, models, extra);
    server_wait_port(&s);
    expect_healthy(s.port);
    double t0 = now_s();
    ck_assert_int_eq(server_stop(&s, 30), 0);
    ck_assert_msg(now_s() - t0 < 30, "SIGTERM while loading took %.1f s", now_s() - t0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, api_key);
    tcase_add_test(tc, concurrent_clients_batch);
    tcase_add_test(tc, overload_429);
    tcase_add_test(tc, client_disconnects);
    tcase_add_test(tc, deadline_504);
    tcase_add_test(tc, sigterm_drains);
    tcase_add_test(tc, sigterm_during_teardown);
    tcase_add_test(tc, sighup_ignored);
    tcase_add_test(tc, shutdown_timeout_counts);
    tcase_add_test(tc, port_in_use);
    tcase_add_test(tc, dtype_bf16);
    tcase_add_test(tc, loading_then_ready);
    tcase_add_test(tc, load_failure_exits);
    tcase_add_test(tc, sigterm_while_loading);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
