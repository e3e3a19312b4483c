/* Long requests in steps (--engine-step-ms; engine.h eng_fwd_*): a short request that
 * arrives while a long one runs completes first; the stepped reply has the one-shot bytes;
 * deadlines, client disconnects and SIGTERM's drain still hold between steps; and requests
 * over the cost bound are refused up front (413 with the bound). --debug-step-layers 1
 * makes every long-lane request run one layer per step (lf_base has 2), and
 * --debug-engine-delay-ms makes each engine turn last long enough that nothing depends on
 * timing luck: the orders asserted here hold by construction. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_harness.h"

static const char infer[] = "/v2/models/lf_base/infer";

/* A request in the background, and when its reply came. */
typedef struct {
    int port;
    const char *body;
    hresp r;
    double done_s;
} timed_req;

static void *timed_main(void *p)
{
    timed_req *t = p;
    hreq(t->port, "POST", infer, NULL, t->body, &t->r);
    t->done_s = now_s();
    return NULL;
}

static void timed_start(pthread_t *th, timed_req *t, int port, const char *body)
{
    *t = (timed_req){.port = port, .body = body};
    ck_assert_int_eq(pthread_create(th, NULL, timed_main, t), 0);
}

/* A server whose long-lane requests (over 48 tokens) run one layer per step, every engine
 * turn sleeping delay_ms first; more: further flags (NULL-terminated) or NULL. */
static void start_stepped(server *s, const char *delay_ms, const char *const *more)
{
    const char *a[16] = {"--debug-engine-delay-ms", delay_ms, "--debug-step-layers", "1",
                         "--long-request-tokens",   "48"};
    int n = 6;
    for (int i = 0; more && more[i] && n < 15; i++)
        a[n++] = more[i];
    a[n] = NULL;
    server_start(s, a);
}

static double batches(int port)
{
    return metric(port, "longserve_batch_requests_count");
}

START_TEST(short_request_runs_between_steps)
{
    char *lbody = v2_body(1, 100, 7), *sbody = v2_body(1, 10, 8);
    /* the one-shot reply, from a server without steps */
    const char *plain[] = {"--long-request-tokens", "48", "--engine-step-ms", "0", NULL};
    server p;
    server_start(&p, plain);
    hresp want;
    hreq(p.port, "POST", infer, NULL, lbody, &want);
    ck_assert_msg(want.status == 200, "%d %s", want.status, want.body);
    ck_assert_int_eq(server_stop(&p, 30), 0);

    /* each engine turn sleeps 800 ms: the long request's first step holds the engine while
     * the short one is queued; without steps the short one would wait for the whole long
     * forward and finish after it */
    server s;
    start_stepped(&s, "800", NULL);
    const double b0 = batches(s.port);
    pthread_t th;
    timed_req lr;
    timed_start(&th, &lr, s.port, lbody);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    hresp r;
    hreq(s.port, "POST", infer, NULL, sbody, &r);
    const double short_done = now_s();
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    pthread_join(th, NULL);
    ck_assert_msg(lr.r.status == 200, "%d %s", lr.r.status, lr.r.body);
    ck_assert_msg(short_done < lr.done_s,
                  "the short request finished %.3f s after the long one: it waited for it",
                  short_done - lr.done_s);
    /* the long request ran as two steps (one layer each) with the short batch between */
    ck_assert_int_eq(batches(s.port) - b0, 3);
    /* batch invariance across steps: the stepped reply is the one-shot reply, byte for byte */
    ck_assert_uint_eq(lr.r.len, want.len);
    ck_assert_msg(memcmp(lr.r.body, want.body, want.len) == 0,
                  "the stepped reply differs from the one-shot reply");
    hresp_free(&lr.r);
    hresp_free(&want);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    free(lbody);
    free(sbody);
}
END_TEST

START_TEST(deadline_between_steps)
{
    /* the first step starts within the deadline and ends after it: the second never runs */
    const char *more[] = {"--request-timeout-ms", "1000", NULL};
    server s;
    start_stepped(&s, "2000", more);
    char *body = v2_body(1, 100, 9);
    const double b0 = batches(s.port);
    hresp r;
    hreq(s.port, "POST", infer, NULL, body, &r);
    ck_assert_msg(r.status == 504, "%d %s", r.status, r.body);
    ck_assert(strstr(r.body, "deadline") != NULL);
    hresp_free(&r);
    ck_assert_int_eq(batches(s.port) - b0, 1);
    ck_assert_int_eq(metric(s.port, "longserve_inflight_requests"), 0);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(client_leaves_between_steps)
{
    server s;
    start_stepped(&s, "600", NULL);
    char *body = v2_body(1, 100, 10);
    const double b0 = batches(s.port);
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", infer, NULL, body, strlen(body));
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    close(fd); /* during the first step */
    /* seen when it is re-queued: dropped, its state freed with the job, no second step */
    wait_metric_at_least(s.port,
                         "longserve_rejected_requests_total{reason=\"client_disconnected\"}", 1);
    ck_assert_int_eq(metric(s.port, "longserve_inflight_requests"), 0);
    ck_assert_int_eq(batches(s.port) - b0, 1);
    /* and the engine serves the next one in full */
    hresp r;
    hreq(s.port, "POST", infer, NULL, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    ck_assert_int_eq(batches(s.port) - b0, 3);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(sigterm_drains_stepped_request)
{
    const char *more[] = {"--shutdown-timeout", "30", NULL};
    server s;
    start_stepped(&s, "600", more);
    char *body = v2_body(1, 100, 11);
    pthread_t th;
    timed_req lr;
    timed_start(&th, &lr, s.port, body);
    wait_metric_at_least(s.port, "longserve_engine_busy", 1);
    kill(s.pid, SIGTERM); /* during the first step: the second still runs */
    pthread_join(th, NULL);
    ck_assert_msg(lr.r.status == 200, "%d %s", lr.r.status, lr.r.body);
    ck_assert(strstr(lr.r.body, "last_hidden_state") != NULL);
    hresp_free(&lr.r);
    /* and the server exits by itself, 0 (a second SIGTERM could land after its handlers
     * closed) */
    ck_assert_int_eq(server_wait_exit(&s, 30), 0);
    free(body);
}
END_TEST

START_TEST(cost_bound_413)
{
    /* lf_base (hidden 32, windows 4 and 8): 10 tokens cost ~12.5k units (a short row is
     * charged ENG_COST_MIN_ROW tokens of dense work), 100 tokens ~20k */
    const char *extra[] = {"--max-request-cost", "16000", NULL};
    server s;
    server_start(&s, extra);
    char *small = v2_body(1, 10, 12), *big = v2_body(1, 100, 13);
    hresp r;
    hreq(s.port, "POST", infer, NULL, small, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    hreq(s.port, "POST", infer, NULL, big, &r);
    ck_assert_msg(r.status == 413, "%d %s", r.status, r.body);
    ck_assert_msg(strstr(r.body, "the limit is 16000 units (--max-request-cost 16000") != NULL,
                  "%s", r.body);
    ck_assert_msg(strstr(r.body, "100 tokens") != NULL, "%s", r.body);
    hresp_free(&r);
    ck_assert_int_eq(
        metric(s.port, "longserve_rejected_requests_total{reason=\"payload_too_large\"}"), 1);
    free(small);
    free(big);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(long_document_windows_count)
{
    /* 300 words as windows of 4 tokens, stride 1: ~300 rows of 4 tokens, each a read of every
     * weight, cost what 300 rows of ENG_COST_MIN_ROW tokens cost (> 4M units for st_tiny);
     * their tokens alone (1200) would cost under 1M */
    const char *extra[] = {"--max-request-cost", "1000000", NULL};
    server s;
    text_server(&s, extra);
    size_t cap = 300 * 8 + 128;
    char *body = malloc(cap);
    size_t k = (size_t)snprintf(body, cap, "{\"model\":\"st_tiny\",\"inputs\":\"");
    for (int i = 0; i < 300; i++)
        k += (size_t)snprintf(body + k, cap - k, "%sword", i ? " " : "");
    snprintf(body + k, cap - k, "\",\"long_document\":{\"window\":4,\"stride\":1}}");
    hresp r;
    hreq(s.port, "POST", "/embed", NULL, body, &r);
    ck_assert_msg(r.status == 413, "%d %s", r.status, r.body);
    ck_assert_msg(strstr(r.body, "--max-request-cost 1000000") != NULL, "%s", r.body);
    hresp_free(&r);
    /* an ordinary request fits */
    hreq(s.port, "POST", "/embed", NULL, "{\"model\":\"st_tiny\",\"inputs\":\"a few words\"}", &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_steps");
    TCase *tc = tcase_create("steps");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, short_request_runs_between_steps);
    tcase_add_test(tc, deadline_between_steps);
    tcase_add_test(tc, client_leaves_between_steps);
    tcase_add_test(tc, sigterm_drains_stepped_request);
    tcase_add_test(tc, cost_bound_413);
    tcase_add_test(tc, long_document_windows_count);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
