/* longserve-run end to end: the real binary, a fixture model, requests on stdin.
 * Bad requests must give a clear message on stderr and the documented exit status,
 * never a crash (a signal) or a partial response. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

typedef struct {
    int status; /* exit status, or -signal */
    char out[1 << 16], err[4096];
} run_result;

static const char *fixture(const char *model, char *buf, size_t n)
{
    const char *f = getenv("LS_FIXTURES");
    snprintf(buf, n, "%s/%s", f ? f : "tests/fixtures", model);
    return buf;
}

/* Runs longserve-run --model DIR --threads N with `body` on stdin; captures both streams. */
static void run_threads(const char *model, const char *body, const char *threads, run_result *r)
{
    const char *bin = getenv("LONGSERVE_RUN");
    ck_assert_msg(bin != NULL, "LONGSERVE_RUN not set");
    char dir[512];
    fixture(model, dir, sizeof dir);
    char inp[] = "/tmp/ls-run-in-XXXXXX", outp[] = "/tmp/ls-run-out-XXXXXX",
         errp[] = "/tmp/ls-run-err-XXXXXX";
    int fi = mkstemp(inp), fo = mkstemp(outp), fe = mkstemp(errp);
    ck_assert(fi >= 0 && fo >= 0 && fe >= 0);
    size_t len = strlen(body);
    ck_assert_int_eq(write(fi, body, len), (ssize_t)len);
    lseek(fi, 0, SEEK_SET);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execl(bin, bin, "--model", dir, "--threads", threads, (char *)NULL);
        _exit(127);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
    memset(r->out, 0, sizeof r->out);
    memset(r->err, 0, sizeof r->err);
    ck_assert(pread(fo, r->out, sizeof r->out - 1, 0) >= 0);
    ck_assert(pread(fe, r->err, sizeof r->err - 1, 0) >= 0);
    close(fi), close(fo), close(fe);
    unlink(inp), unlink(outp), unlink(errp);
}

static void run(const char *model, const char *body, run_result *r)
{
    run_threads(model, body, "1", r);
}

static void expect_error(const char *model, const char *body, int status, const char *needle)
{
    run_result r;
    run(model, body, &r);
    ck_assert_msg(r.status >= 0, "crashed with signal %d on: %.200s", -r.status, body);
    ck_assert_msg(r.status == status, "exit %d, expected %d; stderr: %s", r.status, status, r.err);
    ck_assert_msg(strstr(r.err, needle) != NULL, "stderr lacks \"%s\": %s", needle, r.err);
    ck_assert_msg(r.out[0] == 0, "stdout not empty on error: %.200s", r.out);
}

#define IDS(shape, data)                                                                           \
    "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":" shape                 \
    ",\"data\":" data "}]}"

START_TEST(success_shapes)
{
    run_result r;
    run("lf_base", IDS("[2,3]", "[0,5,2,0,7,2]"), &r);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cJSON *j = cJSON_Parse(r.out);
    ck_assert(j != NULL);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_name")->valuestring, "lf_base");
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "last_hidden_state");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "datatype")->valuestring, "FP32");
    const cJSON *s = cJSON_GetObjectItem(o, "shape");
    ck_assert_int_eq(cJSON_GetArrayItem(s, 0)->valueint, 2);
    ck_assert_int_eq(cJSON_GetArrayItem(s, 1)->valueint, 3);
    ck_assert_int_eq(cJSON_GetArrayItem(s, 2)->valueint, 32);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "data")), 2 * 3 * 32);
    cJSON_Delete(j);
}
END_TEST

START_TEST(requested_output_only)
{
    run_result r;
    run("lf_base",
        "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT32\","
        "\"shape\":[1,2],\"data\":[[0,2]]}],\"outputs\":[{\"name\":\"pooler_output\"}]}",
        &r);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cJSON *j = cJSON_Parse(r.out);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "r1");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "outputs")), 1);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0), "name")
            ->valuestring,
        "pooler_output");
    cJSON_Delete(j);
}
END_TEST

START_TEST(malformed)
{
    expect_error("lf_base", "{\"inputs\": [", 2, "not valid JSON");
    expect_error("lf_base", "", 2, "not valid JSON");
    expect_error("lf_base", "[1,2,3]", 2, "\"inputs\" array");
    expect_error("lf_base", "{\"inputs\": {}}", 2, "\"inputs\" array");
    expect_error("lf_base", "{\"inputs\":[]}", 2, "'input_ids' is required");
    expect_error("lf_base", "{\"inputs\":[{\"datatype\":\"INT64\"}]}", 2, "\"name\"");
    expect_error("lf_base",
                 "{\"id\":5,\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
                 "\"shape\":[1,1],\"data\":[0]}]}",
                 2, "\"id\" must be a string");
}
END_TEST

START_TEST(unknown_input_name)
{
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[0,2]},{\"name\":\"pixel_values\",\"datatype\":\"INT64\",\"shape\":"
                 "[1,2],\"data\":[0,2]}]}",
                 2, "unknown input 'pixel_values'");
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[0,2]},{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":"
                 "[1,2],\"data\":[0,2]}]}",
                 2, "given twice");
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[0,2]}],\"outputs\":[{\"name\":\"logits\"}]}",
                 3, "output 'logits' is not produced");
}
END_TEST

START_TEST(token_id_out_of_range)
{
    expect_error("lf_base", IDS("[1,3]", "[0,100000,2]"), 3, "outside the vocabulary");
    expect_error("lf_base", IDS("[1,3]", "[0,-1,2]"), 3, "outside the vocabulary");
    expect_error("lf_base", IDS("[1,3]", "[0,1e30,2]"), 2, "out of range");
    expect_error("lf_base", IDS("[1,3]", "[0,1.5,2]"), 2, "not an integer");
    expect_error("lf_base", IDS("[1,3]", "[0,\"7\",2]"), 2, "not an integer");
    expect_error("bert_tiny",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[5,6]},{\"name\":\"token_type_ids\",\"datatype\":\"INT64\","
                 "\"shape\":[1,2],\"data\":[0,2]}]}",
                 3, "token_type_ids");
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[0,2]},{\"name\":\"attention_mask\",\"datatype\":\"INT64\","
                 "\"shape\":[1,2],\"data\":[1,2]}]}",
                 3, "must be 0 or 1");
}
END_TEST

START_TEST(wrong_shape)
{
    expect_error("lf_base", IDS("[1,5]", "[0,5,6,2]"), 2, "needs 5 data elements, got 4");
    expect_error("lf_base", IDS("[1,2]", "[0,5,6,2]"), 2, "more data elements");
    expect_error("lf_base", IDS("[4]", "[0,5,6,2]"), 2, "shape must be [batch, length]");
    expect_error("lf_base", IDS("[1,2,2]", "[0,5,6,2]"), 2, "shape must be [batch, length]");
    expect_error("lf_base", IDS("[0,4]", "[]"), 2, "two positive integers");
    expect_error("lf_base", IDS("[-1,4]", "[0,5,6,2]"), 2, "two positive integers");
    expect_error("lf_base", IDS("[100000,100000]", "[0]"), 4, "the limit is");
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,2],"
                 "\"data\":[0,2]},{\"name\":\"attention_mask\",\"datatype\":\"INT64\","
                 "\"shape\":[1,3],\"data\":[1,1,1]}]}",
                 2, "differs from another input");
    expect_error("lf_base",
                 "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"FP32\",\"shape\":[1,2],"
                 "\"data\":[0,2]}]}",
                 2, "datatype must be");
}
END_TEST

START_TEST(too_long_and_model_rules)
{
    /* lf_base accepts max_position_embeddings - 2 tokens */
    char dir[512], *body = malloc(1 << 16);
    fixture("lf_base", dir, sizeof dir);
    int n = 400, k = snprintf(body, 1 << 16,
                              "{\"inputs\":[{\"name\":\"input_ids\","
                              "\"datatype\":\"INT64\",\"shape\":[1,%d],\"data\":[",
                              n);
    for (int i = 0; i < n; i++)
        k += snprintf(body + k, (1 << 16) - k, i ? ",5" : "0");
    snprintf(body + k, (1 << 16) - k, "]}]}");
    expect_error("lf_base", body, 4, "the model accepts at most");
    free(body);
    /* question answering needs its three separators for automatic global attention */
    expect_error("lf_qa", IDS("[1,4]", "[0,5,6,2]"), 3, "separator tokens");
}
END_TEST

START_TEST(thread_count_changes_no_bit)
{
    /* every linear layer is tiled per sequence and each tile is one single-threaded
     * product, so 1 and 2 threads give the same bytes */
    static run_result a, b;
    const char *body = IDS("[2,40]", "[0,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                                     "25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,2,"
                                     "0,9,8,7,6,5,4,3,9,8,7,6,5,4,3,9,8,7,6,5,4,3,9,8,7,6,5,4,"
                                     "3,9,8,7,6,5,4,3,9,8,7,2]");
    run_threads("lf_base", body, "1", &a);
    run_threads("lf_base", body, "2", &b);
    ck_assert_msg(a.status == 0 && b.status == 0, "%s %s", a.err, b.err);
    ck_assert_str_eq(a.out, b.out);
}
END_TEST

START_TEST(bad_model_dir)
{
    run_result r;
    run("no_such_model", IDS("[1,2]", "[0,2]"), &r);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "cannot load model") && strstr(r.err, "config.json"), "%s", r.err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runner");
    TCase *tc = tcase_create("longserve-run");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, success_shapes);
    tcase_add_test(tc, requested_output_only);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, unknown_input_name);
    tcase_add_test(tc, token_id_out_of_range);
    tcase_add_test(tc, wrong_shape);
    tcase_add_test(tc, too_long_and_model_rules);
    tcase_add_test(tc, thread_count_changes_no_bit);
    tcase_add_test(tc, bad_model_dir);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
