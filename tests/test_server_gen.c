/* longserve end to end, text generation (TGI's /generate, /generate_stream and root route)
 * with the byte-level Reformer LM of tools/make_reformer_fixtures.py: greedy ids equal
 * Hugging Face generate()'s (cached and recomputed), the stream parses as Server-Sent
 * Events and concatenates to the /generate text, bad parameters are 422 naming the field,
 * and a client that leaves mid-stream stops its generation. Harness: tests/server_harness.h. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server_harness.h"

static const char *const gen_models[] = {"lm=reformer/rf_byte_lm", "cls=reformer/rf_seqcls", NULL};

/* The prompt's fixture entry i of generate.json. */
static const cJSON *gen_prompt(const cJSON *doc, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "prompts"), i);
}

static char *gen_body(const char *text, const char *params)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "inputs", text);
    cJSON_AddItemToObject(b, "parameters", cJSON_Parse(params));
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

/* The token ids of a /generate answer with details. */
static void expect_ids(const cJSON *resp, const cJSON *want, const char *what)
{
    const cJSON *toks = cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "details"), "tokens");
    ck_assert_msg(cJSON_GetArraySize(toks) == cJSON_GetArraySize(want), "%s: %d tokens, HF %d",
                  what, cJSON_GetArraySize(toks), cJSON_GetArraySize(want));
    for (int i = 0; i < cJSON_GetArraySize(want); i++) {
        const int got = cJSON_GetObjectItem(cJSON_GetArrayItem(toks, i), "id")->valueint;
        ck_assert_msg(got == cJSON_GetArrayItem(want, i)->valueint, "%s: token %d is %d, HF %d",
                      what, i, got, cJSON_GetArrayItem(want, i)->valueint);
    }
}

START_TEST(generate_equals_hf)
{
    server s;
    server_start_models(&s, gen_models, NULL);
    cJSON *doc = fixture_json("reformer/generate.json");
    for (int i = 0; i < cJSON_GetArraySize(cJSON_GetObjectItem(doc, "prompts")); i++) {
        const cJSON *p = gen_prompt(doc, i);
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        for (int cache = 1; cache >= 0; cache--) {
            char params[160];
            snprintf(params, sizeof params,
                     "{\"max_new_tokens\": 32, \"details\": true, \"use_cache\": %s}",
                     cache ? "true" : "false");
            char *body = gen_body(text, params);
            hresp r;
            hreq(s.port, "POST", "/generate", NULL, body, &r);
            ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
            spec_expect("POST", "/generate", &r);
            char hv[128]; /* rf_byte_lm: local, lsh, local, lsh */
            ck_assert(hheader(&r, "x-longserve-attention", hv, sizeof hv));
            ck_assert_msg(strncmp(hv, "lsh+local; tokens=", 18) == 0 && strstr(hv, "; windows=1"),
                          "%s", hv);
            cJSON *j = hjson(&r);
            char what[96];
            snprintf(what, sizeof what, "prompt %d, use_cache %d", i, cache);
            expect_ids(j, cJSON_GetObjectItem(p, cache ? "new_ids_use_cache" : "new_ids_no_cache"),
                       what);
            const cJSON *d = cJSON_GetObjectItem(j, "details");
            ck_assert_str_eq(cJSON_GetObjectItem(d, "finish_reason")->valuestring, "length");
            ck_assert_int_eq(cJSON_GetObjectItem(d, "generated_tokens")->valueint, 32);
            /* the tokens' texts concatenate to the text */
            char cat[4096] = "";
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItem(d, "tokens")) strncat(
                cat, cJSON_GetObjectItem(t, "text")->valuestring, sizeof cat - strlen(cat) - 1);
            ck_assert_str_eq(cat, cJSON_GetObjectItem(j, "generated_text")->valuestring);
            cJSON_Delete(j);
            hresp_free(&r);
            free(body);
        }
    }
    cJSON_Delete(doc);
    /* /info says what generation and hashing compute */
    hresp r;
    hreq(s.port, "GET", "/info", NULL, NULL, &r);
    spec_expect("GET", "/info", &r);
    cJSON *info = hjson(&r);
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(info, "models"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(m0, "task")->valuestring, "text-generation");
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(m0, "generation")->valuestring, "use_cache"));
    ck_assert_ptr_nonnull(
        strstr(cJSON_GetObjectItem(m0, "lsh_hashing")->valuestring, "hash_seed 13"));
    cJSON_Delete(info);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* The events of a /generate_stream body: their JSON objects in order. */
static cJSON *sse_events(const char *body)
{
    cJSON *list = cJSON_CreateArray();
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        ck_assert_msg(end != NULL, "an event without its blank line: %.200s", p);
        ck_assert_msg(strncmp(p, "data:", 5) == 0, "an event that is not data: %.200s", p);
        char *json = strndup(p + 5, (size_t)(end - p - 5));
        cJSON *e = cJSON_Parse(json);
        ck_assert_msg(e != NULL, "event is not JSON: %s", json);
        free(json);
        cJSON_AddItemToArray(list, e);
        p = end + 2;
    }
    return list;
}

START_TEST(stream_concatenates_to_generate)
{
    server s;
    server_start_models(&s, gen_models, NULL);
    static const char *const params[] = {
        "{\"max_new_tokens\": 40}",
        "{\"max_new_tokens\": 40, \"do_sample\": true, \"seed\": 11, \"top_k\": 30, \"top_p\": "
        "0.9, \"temperature\": 0.7, \"repetition_penalty\": 1.3}",
        "{\"max_new_tokens\": 40, \"stop\": [\"VV\"]}",
    };
    for (size_t k = 0; k < sizeof params / sizeof *params; k++) {
        char *body = gen_body(
            k == 2 ? "Hello, world!" : "The quick brown fox jumps over the lazy dog.", params[k]);
        hresp g, st;
        hreq(s.port, "POST", "/generate", NULL, body, &g);
        ck_assert_msg(g.status == 200, "%s", g.body);
        hreq(s.port, "POST", "/generate_stream", NULL, body, &st);
        ck_assert_msg(st.status == 200, "%s", st.body);
        char ct[96];
        ck_assert_ptr_nonnull(hheader(&st, "Content-Type", ct, sizeof ct));
        ck_assert_str_eq(ct, "text/event-stream");
        cJSON *gj = hjson(&g), *ev = sse_events(st.body);
        const int n = cJSON_GetArraySize(ev);
        ck_assert_int_ge(n, 1);
        char cat[4096] = "";
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(ev, i);
            ck_assert_int_eq(cJSON_GetObjectItem(e, "index")->valueint, i + 1);
            const cJSON *tok = cJSON_GetObjectItem(e, "token");
            if (!cJSON_IsTrue(cJSON_GetObjectItem(tok, "special")))
                strncat(cat, cJSON_GetObjectItem(tok, "text")->valuestring,
                        sizeof cat - strlen(cat) - 1);
            const cJSON *gt = cJSON_GetObjectItem(e, "generated_text");
            ck_assert_msg(i == n - 1 ? cJSON_IsString(gt) : cJSON_IsNull(gt), "event %d", i);
        }
        const cJSON *last = cJSON_GetArrayItem(ev, n - 1);
        const char *text = cJSON_GetObjectItem(gj, "generated_text")->valuestring;
        ck_assert_str_eq(cJSON_GetObjectItem(last, "generated_text")->valuestring, text);
        ck_assert_str_eq(cat, text);
        const char *fin =
            cJSON_GetObjectItem(cJSON_GetObjectItem(last, "details"), "finish_reason")->valuestring;
        if (k == 2) {
            ck_assert_str_eq(fin, "stop_sequence");
            ck_assert_msg(strlen(text) >= 2 && strcmp(text + strlen(text) - 2, "VV") == 0, "%s",
                          text);
        } else {
            ck_assert_msg(strcmp(fin, "length") == 0 || strcmp(fin, "eos_token") == 0, "%s", fin);
        }
        cJSON_Delete(gj);
        cJSON_Delete(ev);
        hresp_free(&g);
        hresp_free(&st);
        free(body);
    }
    /* the root route: a one-element list, or the stream */
    hresp r;
    hreq(s.port, "POST", "/", NULL,
         "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": 3}, \"stream\": false}", &r);
    ck_assert_msg(r.status == 200, "%s", r.body);
    spec_expect("POST", "/", &r);
    cJSON *j = hjson(&r);
    ck_assert(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1);
    cJSON_Delete(j);
    hresp_free(&r);
    hreq(s.port, "POST", "/", NULL,
         "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": 3}, \"stream\": true}", &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *ev = sse_events(r.body);
    ck_assert_int_eq(cJSON_GetArraySize(ev), 3);
    cJSON_Delete(ev);
    hresp_free(&r);
    ck_assert_int_eq(metric(s.port, "longserve_generation_time_to_first_token_seconds_count"), 8);
    ck_assert_int_ge(metric(s.port, "longserve_generated_tokens_total"), 3 + 3 + 6);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(bad_parameters_are_422)
{
    server s;
    server_start_models(&s, gen_models, NULL);
    static const struct {
        const char *body, *field;
        int status;
    } bad[] = {
        {"{\"inputs\": \"x\", \"parameters\": {\"max_new_tokens\": 0}}", "max_new_tokens", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"max_new_tokens\": 2.5}}", "max_new_tokens", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"max_new_tokens\": 100000}}", "max_new_tokens",
         413},
        {"{\"inputs\": \"x\", \"parameters\": {\"temperature\": 0}}", "temperature", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"temperature\": \"hot\"}}", "temperature", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"top_p\": 1.5}}", "top_p", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"top_k\": -1}}", "top_k", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"repetition_penalty\": -2}}", "repetition_penalty",
         422},
        {"{\"inputs\": \"x\", \"parameters\": {\"seed\": -1}}", "seed", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"do_sample\": \"yes\"}}", "do_sample", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"stop\": \"a\"}}", "stop", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"stop\": [\"\"]}}", "stop", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"num_hashes\": 65}}", "num_hashes", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"hash_seed\": -3}}", "hash_seed", 422},
        {"{\"inputs\": \"x\", \"parameters\": {\"use_cache\": 1}}", "use_cache", 422},
        {"{\"inputs\": \"x\", \"parameters\": [1]}", "parameters", 422},
        {"{\"inputs\": \"\"}", "inputs", 422},
        {"{\"inputs\": 5}", "inputs", 422},
        {"{\"parameters\": {}}", "inputs", 422},
        {"{\"inputs\": \"x\", \"model\": \"cls\"}", "language-model head", 422},
        {"{\"inputs\": \"x\", \"model\": \"nope\"}", "nope", 422},
        {"{\"inputs\": \"x\"", "JSON", 400},
        {"[1, 2]", "object", 400},
        {"{\"inputs\": \"ab\\u0000 anything\"}", "`inputs`: NUL (\\\\u0000)", 400},
        {"{\"inputs\": \"x\", \"parameters\": {\"stop\": [\"\\u0000\"]}}",
         "`parameters.stop[0]`: NUL", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        for (int route = 0; route < 2; route++) {
            const char *path = route ? "/generate_stream" : "/generate";
            hresp r;
            hreq(s.port, "POST", path, NULL, bad[i].body, &r);
            ck_assert_msg(r.status == bad[i].status, "%s %s: %d %s", path, bad[i].body, r.status,
                          r.body);
            spec_expect("POST", path, &r);
            ck_assert_msg(strstr(r.body, bad[i].field) != NULL, "%s: %s", bad[i].body, r.body);
            hresp_free(&r);
        }
    expect_healthy(s.port);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* Reads from fd until `needle` has arrived (or fails after the socket's timeout). */
static const char *read_until(int fd, const char *needle)
{
    static char buf[1 << 20];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        ck_assert_msg(k > 0, "the stream ended before '%s'", needle);
        n += (size_t)k;
        buf[n] = 0;
        if (strstr(buf, needle)) return buf;
    }
    ck_abort_msg("'%s' not in the first %zu bytes", needle, n);
    return NULL;
}

START_TEST(disconnect_stops_generation)
{
    /* every slice (at most 16 tokens) waits 100 ms: 400 tokens would take 2.5 s or more */
    const char *extra[] = {"--debug-engine-delay-ms", "100", NULL};
    server s;
    server_start_models(&s, gen_models, extra);
    const char *body = "{\"inputs\": \"Hello, world!\", \"parameters\": {\"max_new_tokens\": 400}}";
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", "/generate_stream", NULL, body, strlen(body));
    read_until(fd, "\"index\":1,");
    close(fd);
    /* the job is dropped at its next slice: nothing is in flight, far fewer tokens made */
    wait_metric_at_least(s.port,
                         "longserve_rejected_requests_total{reason=\"client_disconnected\"}", 1);
    for (double t0 = now_s(); metric(s.port, "longserve_inflight_requests") > 0;) {
        ck_assert_msg(now_s() - t0 < 60, "the generation is still in flight");
        sleep_ms(20);
    }
    const double made = metric(s.port, "longserve_generated_tokens_total");
    ck_assert_msg(made < 400, "%g tokens generated for a client that left", made);
    /* and the server serves the next one */
    hresp r;
    hreq(s.port, "POST", "/generate", NULL,
         "{\"inputs\": \"Hi\", \"parameters\": {\"max_new_tokens\": 2}}", &r);
    ck_assert_int_eq(r.status, 200);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* A long generation goes back to the scheduler between slices: a request to the same model
 * is answered while it runs, and the stream then completes. */
START_TEST(long_generation_lets_others_run)
{
    const char *extra[] = {"--debug-engine-delay-ms", "100", NULL};
    server s;
    server_start_models(&s, gen_models, extra);
    const char *body = "{\"inputs\": \"Hello, world!\", \"parameters\": {\"max_new_tokens\": 400}}";
    int fd = hconnect(s.port);
    hsend_request(fd, "POST", "/generate_stream", NULL, body, strlen(body));
    read_until(fd, "\"index\":1,");
    hresp r;
    hreq(s.port, "POST", "/v2/models/lm/infer", NULL,
         "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
         "\"data\":[5,6,7]}]}",
         &r);
    ck_assert_msg(r.status == 200, "%s", r.body);
    hresp_free(&r);
    /* answered between two slices: the generation (one slice of <= 16 tokens per 100 ms)
     * had made fewer tokens than it makes in all */
    const double made = metric(s.port, "longserve_generated_tokens_total");
    const char *all = read_until(fd, "\"finish_reason\""),
               *g = strstr(all, "\"generated_tokens\":");
    close(fd);
    ck_assert_ptr_nonnull(g);
    const int total = atoi(g + strlen("\"generated_tokens\":"));
    ck_assert_int_ge(total, 100); /* the byte LM stops at eos after 317 tokens */
    ck_assert_msg(made < total, "the v2 request waited for the whole generation (%g of %d)", made,
                  total);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* A ReformerModel of the byte LM's weights (its config with another architecture) in a
 * temporary directory: the text routes of a Reformer with the byte tokenizer. */
static void byte_base_model(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/ls-rfbase-%d", (int)getpid());
    mkdir(dir, 0755);
    char src[700], path[700], fx[512];
    fixture("reformer/rf_byte_lm", fx, sizeof fx);
    snprintf(src, sizeof src, "%s/model.safetensors", fx);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    ck_assert_int_eq(symlink(src, path), 0);
    cJSON *cfg = fixture_json("reformer/rf_byte_lm/config.json");
    cJSON_ReplaceItemInObject(cfg, "architectures",
                              cJSON_CreateStringArray((const char *[]){"ReformerModel"}, 1));
    char *text = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(cfg);
}

/* The text routes take the LSH knobs of the v2 route (num_hashes, hash_seed) and echo
 * them; /embed_all with them equals v2's last_hidden_state with the same parameters. */
START_TEST(text_routes_take_lsh_parameters)
{
    char dir[128], spec[200];
    byte_base_model(dir, sizeof dir);
    snprintf(spec, sizeof spec, "base=%s", dir);
    const char *models[] = {spec, NULL};
    server s;
    server_start_models(&s, models, NULL);
    const char *text = "A text long enough to be hashed by the LSH layers";
    cJSON *rows[2];
    for (int seed = 5; seed <= 6; seed++) {
        char body[512];
        snprintf(body, sizeof body, "{\"inputs\": \"%s\", \"hash_seed\": %d, \"num_hashes\": 3}",
                 text, seed);
        hresp r;
        hreq(s.port, "POST", "/embed_all", NULL, body, &r);
        ck_assert_msg(r.status == 200, "%s", r.body);
        char h[32];
        ck_assert_str_eq(hheader(&r, "x-hash-seed", h, sizeof h), seed == 5 ? "5" : "6");
        ck_assert_str_eq(hheader(&r, "x-num-hashes", h, sizeof h), "3");
        rows[seed - 5] = hjson(&r);
        hresp_free(&r);
    }
    /* the v2 request of the same bytes (id = byte + 2) */
    cJSON *v2 = cJSON_CreateObject(), *in = cJSON_AddArrayToObject(v2, "inputs");
    cJSON *t = cJSON_CreateObject();
    const int n = (int)strlen(text);
    cJSON_AddStringToObject(t, "name", "input_ids");
    cJSON_AddStringToObject(t, "datatype", "INT64");
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray((const int[]){1, n}, 2));
    cJSON *data = cJSON_AddArrayToObject(t, "data");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(data, cJSON_CreateNumber((unsigned char)text[i] + 2));
    cJSON_AddItemToArray(in, t);
    cJSON *par = cJSON_AddObjectToObject(v2, "parameters");
    cJSON_AddNumberToObject(par, "hash_seed", 5);
    cJSON_AddNumberToObject(par, "num_hashes", 3);
    hresp r;
    post_json(s.port, "/v2/models/base/infer", v2, &r);
    ck_assert_msg(r.status == 200, "%s", r.body);
    cJSON *vj = hjson(&r);
    const cJSON *vd =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(vj, "outputs"), 0), "data");
    const cJSON *e5 = cJSON_GetArrayItem(rows[0], 0), *e6 = cJSON_GetArrayItem(rows[1], 0);
    ck_assert_int_eq(cJSON_GetArraySize(e5), n);
    const int w = cJSON_GetArraySize(cJSON_GetArrayItem(e5, 0));
    ck_assert_int_eq(cJSON_GetArraySize(vd), n * w);
    double diff = 0, diff56 = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < w; k++) {
            const double a = cJSON_GetArrayItem(cJSON_GetArrayItem(e5, i), k)->valuedouble;
            const double b = cJSON_GetArrayItem(vd, i * w + k)->valuedouble;
            const double c = cJSON_GetArrayItem(cJSON_GetArrayItem(e6, i), k)->valuedouble;
            diff = fmax(diff, fabs(a - b)), diff56 = fmax(diff56, fabs(a - c));
        }
    ck_assert_msg(diff <= 1e-6, "/embed_all vs v2: %g", diff);
    ck_assert_msg(diff56 > 1e-3, "hash_seed 5 and 6 give the same rows (%g)", diff56);
    cJSON_Delete(vj);
    hresp_free(&r);
    cJSON_Delete(rows[0]);
    cJSON_Delete(rows[1]);
    ck_assert_int_eq(server_stop(&s, 30), 0);
    char path[200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_gen");
    TCase *tc = tcase_create("gen");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, generate_equals_hf);
    tcase_add_test(tc, stream_concatenates_to_generate);
    tcase_add_test(tc, bad_parameters_are_422);
    tcase_add_test(tc, disconnect_stops_generation);
    tcase_add_test(tc, text_routes_take_lsh_parameters);
    tcase_add_test(tc, long_generation_lets_others_run);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
