/* Unit tests of the server's pure parts: the scheduler (lanes, fairness, budgets,
 * compatibility keys, dropping) and the option table (defaults, environment, flags,
 * bounds, secrets). Linked with server/scheduler.c and server/options.c directly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/options.h"
#include "../server/scheduler.h"

static sched_params params(void)
{
    return (sched_params){.max_tokens = 100,
                          .max_cost = 1e18,
                          .max_requests = 4,
                          .long_tokens = 50,
                          .weight = {4, 1}};
}

static sched_item item(size_t tokens, int key)
{
    return (sched_item){.tokens = tokens, .cost = (double)tokens, .key = key, .fd = -1};
}

START_TEST(budget_closes_batches)
{
    sched s;
    sched_params p = params();
    sched_init(&s, &p);
    sched_item it[6];
    for (int i = 0; i < 6; i++) {
        it[i] = item(30, 0);
        sched_push(&s, &it[i], 0);
    }
    sched_batch *b = sched_batch_new(&p);
    sched_item *dropped = NULL;
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 3); /* 90 tokens; a 4th would be 120 */
    ck_assert(b->closed);
    ck_assert_int_eq(sched_depth(&s), 3);
    ck_assert_ptr_eq(b->items[0], &it[0]); /* FIFO within a lane */
    sched_batch_free(b);
    b = sched_batch_new(&p);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 3);
    ck_assert(!b->closed); /* the queue ran dry first: still open for more */
    sched_item late = item(5, 0);
    sched_push(&s, &late, 0);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
    ck_assert(b->closed); /* 4 requests */
    ck_assert_ptr_null(dropped);
    sched_batch_free(b);
}
END_TEST

START_TEST(oversize_runs_alone_and_keys_separate)
{
    sched s;
    sched_params p = params();
    sched_init(&s, &p);
    sched_item big = item(500, 0), small = item(5, 0), other = item(5, 1);
    sched_push(&s, &big, 0);
    sched_push(&s, &small, 0);
    sched_item *dropped = NULL;
    sched_batch *b = sched_batch_new(&p);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
    ck_assert(b->closed);
    sched_batch_free(b);
    b = sched_batch_new(&p);
    sched_push(&s, &other, 0);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1); /* key 1 cannot join key 0 */
    ck_assert(b->closed);
    ck_assert_int_eq(b->key, 0);
    sched_batch_free(b);
}
END_TEST

START_TEST(weighted_fairness)
{
    /* a backlog of long requests does not starve short ones: with weights 4:1 by cost,
     * short requests get ~4x the cost the long ones get while both lanes are busy */
    sched s;
    sched_params p = params();
    p.max_tokens = 1000000;
    p.max_requests = 1;
    sched_init(&s, &p);
    sched_item longs[20], shorts[200];
    for (int i = 0; i < 20; i++) {
        longs[i] = item(80, 0);
        sched_push(&s, &longs[i], 0);
    }
    for (int i = 0; i < 200; i++) {
        shorts[i] = item(10, 0);
        sched_push(&s, &shorts[i], 0);
    }
    double cost[SCHED_NLANES] = {0, 0};
    sched_item *dropped = NULL;
    for (int k = 0; k < 60; k++) {
        sched_batch *b = sched_batch_new(&p);
        ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
        cost[b->items[0]->lane] += b->items[0]->cost;
        sched_batch_free(b);
    }
    double ratio = cost[SCHED_SHORT] / cost[SCHED_LONG];
    ck_assert_msg(ratio > 3 && ratio < 5.5, "short:long cost ratio %.2f", ratio);
}
END_TEST

START_TEST(deadlines_drop)
{
    sched s;
    sched_params p = params();
    sched_init(&s, &p);
    sched_item a = item(5, 0), b2 = item(5, 0);
    a.deadline_ns = 100;
    b2.deadline_ns = 0;
    sched_push(&s, &a, 0);
    sched_push(&s, &b2, 0);
    sched_item *dropped = NULL;
    sched_batch *b = sched_batch_new(&p);
    ck_assert_int_eq(sched_fill(&s, b, 200, &dropped), 1);
    ck_assert_ptr_eq(dropped, &a);
    ck_assert_int_eq(a.fate, SCHED_DROP_DEADLINE);
    ck_assert_ptr_eq(b->items[0], &b2);
    sched_batch_free(b);
}
END_TEST

START_TEST(cost_model)
{
    /* more global tokens or a wider window cost more; tokens scale linearly */
    double c0 = sched_cost(32, 8, 1, 100, 0);
    ck_assert(sched_cost(32, 8, 1, 100, 10) > c0);
    ck_assert(sched_cost(32, 64, 1, 100, 0) > c0);
    ck_assert(sched_cost(32, 8, 2, 100, 0) == 2 * c0);
}
END_TEST

START_TEST(options_table)
{
    opt_options o;
    char err[512];
    char *argv1[] = {"longserve", "--model-id", "a=/m/x", "--port=0", "--json-output", NULL};
    setenv("LONGSERVE_MAX_BATCH_TOKENS", "777", 1);
    setenv("LONGSERVE_PORT", "9000", 1);
    setenv("LONGSERVE_MODEL_ID", "/env/m1,b=/env/m2", 1);
    ck_assert_int_eq(opt_parse(&o, 5, argv1, err, sizeof err), 0);
    ck_assert_int_eq(o.port, 0); /* the flag wins over the environment */
    ck_assert_int_eq(o.max_batch_tokens, 777);
    ck_assert_int_eq(o.json_output, 1);
    ck_assert_int_eq(o.nmodels, 1); /* flags replace the environment's models */
    ck_assert_str_eq(o.model_id[0].name, "a");
    ck_assert_str_eq(o.model_id[0].path, "/m/x");
    ck_assert_int_eq(o.payload_limit, 2000000);
    opt_free(&o);

    char *argv2[] = {"longserve", NULL};
    ck_assert_int_eq(opt_parse(&o, 1, argv2, err, sizeof err), 0);
    ck_assert_int_eq(o.nmodels, 2);
    ck_assert_str_eq(o.model_id[0].name, "m1");
    ck_assert_str_eq(o.model_id[1].name, "b");
    opt_free(&o);
    unsetenv("LONGSERVE_MODEL_ID");
    unsetenv("LONGSERVE_PORT");
    unsetenv("LONGSERVE_MAX_BATCH_TOKENS");

    char *bad1[] = {"longserve", "--model-id", "m", "--port", "70000", NULL};
    ck_assert_int_eq(opt_parse(&o, 5, bad1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "--port") && strstr(err, "65535"), "%s", err);
    opt_free(&o);
    char *bad2[] = {"longserve", "--model-id", "m", "--no-such", NULL};
    ck_assert_int_eq(opt_parse(&o, 4, bad2, err, sizeof err), -1);
    ck_assert(strstr(err, "unknown option") != NULL);
    opt_free(&o);
    char *bad3[] = {"longserve", NULL};
    ck_assert_int_eq(opt_parse(&o, 1, bad3, err, sizeof err), -1);
    ck_assert(strstr(err, "no model") != NULL);
    opt_free(&o);
}
END_TEST

static void visit(void *arg, const char *key, opt_type type, int flags, long long ival,
                  const char *sval)
{
    (void)type;
    (void)ival;
    if (strcmp(key, "api_key") == 0) {
        ck_assert(flags & OPT_SECRET);
        ck_assert_str_eq(sval, "set");
        *(int *)arg = 1;
    }
    if (sval) ck_assert_msg(strstr(sval, "hunter2") == NULL, "%s shows the secret", key);
}

START_TEST(secrets_hidden)
{
    opt_options o;
    char err[512];
    char *argv[] = {"longserve", "--model-id", "m", "--api-key", "hunter2", NULL};
    ck_assert_int_eq(opt_parse(&o, 5, argv, err, sizeof err), 0);
    ck_assert_str_eq(o.api_key, "hunter2");
    int seen = 0;
    opt_visit(&o, visit, &seen);
    ck_assert(seen);
    opt_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_units");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, budget_closes_batches);
    tcase_add_test(tc, oversize_runs_alone_and_keys_separate);
    tcase_add_test(tc, weighted_fairness);
    tcase_add_test(tc, deadlines_drop);
    tcase_add_test(tc, cost_model);
    tcase_add_test(tc, options_table);
    tcase_add_test(tc, secrets_hidden);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
