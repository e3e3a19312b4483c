/* longserve end to end, KServe v2 and metadata: the metadata routes, v2 inference byte for
 * byte equal to longserve-run, and every route's response matching proto/openapi.yaml (with
 * the checker shown to refuse wrong bodies). The harness is tests/server_harness.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "openapi_check.h"
#include "server_harness.h"

/* ---- success shapes ---------------------------------------------------------------------------
 */

START_TEST(metadata_routes)
{
    server s;
    server_start(&s, NULL);
    hresp r;
    char h[256];

    hreq(s.port, "GET", "/health", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"live\"}");
    ck_assert(hheader(&r, "X-Request-Id", h, sizeof h) != NULL);
    hresp_free(&r);

    hreq(s.port, "GET", "/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ready\"}");
    hresp_free(&r);

    const char *live[] = {"/v2/health/live", "/v2/health/ready"};
    for (int i = 0; i < 2; i++) {
        hreq(s.port, "GET", live[i], NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        cJSON *j = hjson(&r);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "live")));
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ready")));
        cJSON_Delete(j);
        hresp_free(&r);
    }

    hreq(s.port, "GET", "/v2", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "longserve");
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "version")));
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "extensions")));
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_base", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "lf_base");
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "versions")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "platform")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "inputs")), 4);
    const cJSON *o0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o0, "name")->valuestring, "last_hidden_state");
    ck_assert_str_eq(cJSON_GetObjectItem(o0, "datatype")->valuestring, "FP32");
    ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(o0, "shape"), 2)->valueint, 32);
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_qa", NULL, NULL, &r);
    j = hjson(&r);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 1), "name")
            ->valuestring,
        "end_logits");
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/v2/models/lf_seqcls/ready", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"name\":\"lf_seqcls\",\"ready\":true}");
    hresp_free(&r);

    hreq(s.port, "GET", "/v1/models", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "object")->valuestring, "list");
    const cJSON *d = cJSON_GetObjectItem(j, "data");
    ck_assert_int_eq(cJSON_GetArraySize(d), 3);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "id")->valuestring, "lf_qa");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "object")->valuestring, "model");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "created")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "owned_by")));
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/info", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_id")->valuestring, "lf_base");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_input_length")->valueint, 128);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_batch_tokens")->valueint, 16384);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "payload_limit")->valueint, 2000000);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "api_key")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "models")), 3);
    /* what computes, and why: the backend and the ISA its GEMM was chosen by */
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "models"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(m0, "backend")->valuestring, "cpu");
    const char *isa = cJSON_GetObjectItem(m0, "isa")->valuestring;
    ck_assert_msg(strstr(isa, "cpuid") && (strstr(isa, "avx") || strstr(isa, "portable")),
                  "isa: %s", isa);
    cJSON_Delete(j);
    hresp_free(&r);

    hreq(s.port, "GET", "/metrics", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(hheader(&r, "Content-Type", h, sizeof h) && strstr(h, "text/plain"));
    /* every series exists before it is first used */
    const char *series[] = {"longserve_requests_total{route=\"v2_infer\",status=\"429\"} 0",
                            "longserve_rejected_requests_total{reason=\"queue_full\"} 0",
                            "# TYPE longserve_request_duration_seconds histogram",
                            "# TYPE longserve_queue_duration_seconds histogram",
                            "# TYPE longserve_inference_duration_seconds histogram",
                            "# TYPE longserve_input_tokens histogram",
                            "# TYPE longserve_batch_size histogram",
                            "# TYPE longserve_batch_tokens histogram",
                            "# TYPE longserve_batch_padding_ratio histogram",
                            "longserve_batch_padding_ratio_count 0",
                            "longserve_truncated_requests_total 0",
                            "longserve_kernel_seconds_total{op=\"linear\"} 0",
                            "longserve_kernel_seconds_total{op=\"window_attn\"} 0",
                            "longserve_kernel_seconds_total{op=\"global_attn\"} 0",
                            "longserve_queue_depth 0",
                            "longserve_ready 1"};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        ck_assert_msg(strstr(r.body, series[i]) != NULL, "/metrics lacks '%s'", series[i]);
    hresp_free(&r);

    /* every route is written down in proto/openapi.yaml */
    char dir[512], path[700];
    snprintf(path, sizeof path, "%s/../../proto/openapi.yaml", fixture("", dir, sizeof dir));
    char *spec = read_file(path);
    const char *routes[] = {"/v2/models/{model}/infer",
                            "/v2/models/{model}",
                            "/v2/models/{model}/ready",
                            "/v2",
                            "/v2/health/live",
                            "/v2/health/ready",
                            "/v1/models",
                            "/info",
                            "/health",
                            "/ready",
                            "/metrics",
                            "/embed",
                            "/embed_all",
                            "/v1/embeddings",
                            "/predict",
                            "/token_classify",
                            "/fill_mask",
                            "/answer",
                            "/tokenize",
                            "/decode"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "\n  %s:\n", routes[i]);
        ck_assert_msg(strstr(spec, key) != NULL, "proto/openapi.yaml lacks %s", routes[i]);
    }
    free(spec);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* The server's v2 answer is byte for byte what longserve-run prints for the same body. */
START_TEST(v2_infer_equals_runner)
{
    server s;
    server_start(&s, NULL);
    static const char *const cases[][2] = {
        {"lf_base", "short_nomask"},           {"lf_base", "padded_mixed_global"},
        {"lf_base", "long120_tokentype"},      {"lf_qa", "auto_global_padded"},
        {"lf_qa", "explicit_global"},          {"lf_seqcls", "auto_global_padded"},
        {"lf_seqcls", "explicit_many_global"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512], path[700], url[128];
        snprintf(path, sizeof path, "%s/cases/%s.request.json",
                 fixture(cases[i][0], dir, sizeof dir), cases[i][1]);
        char *body = read_file(path);
        snprintf(url, sizeof url, "/v2/models/%s/infer", cases[i][0]);
        hresp r;
        hreq(s.port, "POST", url, "Content-Type: application/json\r\n", body, &r);
        ck_assert_msg(r.status == 200, "%s/%s: %d %s", cases[i][0], cases[i][1], r.status, r.body);
        char *want = run_runner(cases[i][0], body);
        ck_assert_msg(strcmp(r.body, want) == 0, "%s/%s: server and longserve-run differ",
                      cases[i][0], cases[i][1]);
        free(want);
        hresp_free(&r);
        free(body);
    }
    /* the batches' metrics are in before their responses go out: the engine spent time
     * in its kernels, and the padded cases (attention_mask 0) landed above the 0 bucket */
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"linear\"}") > 0);
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"window_attn\"}") > 0);
    ck_assert(metric(s.port, "longserve_kernel_seconds_total{op=\"embed\"}") > 0);
    const double nb = sizeof cases / sizeof cases[0];
    ck_assert(metric(s.port, "longserve_batch_padding_ratio_count") == nb);
    double unpadded = metric(s.port, "longserve_batch_padding_ratio_bucket{le=\"0\"}");
    ck_assert_msg(unpadded >= 1 && unpadded < nb, "%g of %g batches without padding", unpadded, nb);
    ck_assert(metric(s.port, "longserve_batch_padding_ratio_bucket{le=\"1\"}") == nb);
    double sum = metric(s.port, "longserve_batch_padding_ratio_sum");
    ck_assert(sum > 0 && sum < nb);
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 0);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- proto/openapi.yaml: the documented response shapes ------------------------------------ */

/* One request whose response must be documented in the spec and match it; the body is
 * returned in r for further checks. */
static void spec_req(int port, const char *method, const char *path, const char *body, int status,
                     hresp *r)
{
    hreq(port, method, path, body ? "Content-Type: application/json\r\n" : NULL, body, r);
    ck_assert_msg(r->status == status, "%s %s: %d, expected %d: %.300s", method, path, r->status,
                  status, r->body);
    spec_expect(method, path, r);
}

static void spec_route(int port, const char *method, const char *path, const char *body, int status)
{
    hresp r;
    spec_req(port, method, path, body, status, &r);
    hresp_free(&r);
}

/* A body the spec must refuse, with the JSON pointer the refusal names. */
static void spec_refuses(const char *method, const char *tmpl, int status, const char *body,
                         const char *where)
{
    char err[600];
    int rc = oa_validate(spec(), method, tmpl, status, body, err, sizeof err);
    ck_assert_msg(rc == OA_MISMATCH, "%s %s %d accepted a wrong body (rc %d, %s): %.200s", method,
                  tmpl, status, rc, err, body);
    ck_assert_msg(strstr(err, where) != NULL, "the refusal '%s' does not name '%s'", err, where);
}

/* Every route's success body, and each error family's, matches its schema; and the checker
 * bites: wrong bodies are refused with the place they go wrong. */
START_TEST(openapi_responses)
{
    /* the YAML loader: quoted scalars stay strings, plain ones become numbers/booleans */
    const cJSON *sp = spec();
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "info"), "version")->valuestring,
                     "0.1.0");
    const cJSON *sh = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "components"), "schemas"),
                "V2InferInput"),
            "properties"),
        "shape");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(sh, "minItems")) &&
              cJSON_GetObjectItem(sh, "minItems")->valuedouble == 2);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(sh, "description")));
    const cJSON *ok200 = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(sp, "paths"), "/embed"),
                            "post"),
        "responses");
    ck_assert(cJSON_GetObjectItem(ok200, "200") != NULL); /* '200' is a key, quoted or not */
    ck_assert_str_eq(oa_match_path(sp, "/v2/models/x/ready?a=1"), "/v2/models/{model}/ready");
    ck_assert_str_eq(oa_match_path(sp, "/v2/health/ready"), "/v2/health/ready");
    ck_assert_str_eq(oa_match_path(sp, "/v2/models/x"), "/v2/models/{model}");
    ck_assert(oa_match_path(sp, "/v2/models//infer") == NULL);
    ck_assert(oa_match_path(sp, "/nowhere") == NULL);

    server s;
    text_server(&s, NULL);
    int p = s.port;
    hresp r;

    /* metadata */
    spec_route(p, "GET", "/health", NULL, 200);
    spec_route(p, "GET", "/ready", NULL, 200);
    spec_route(p, "GET", "/v2/health/live", NULL, 200);
    spec_route(p, "GET", "/v2/health/ready", NULL, 200);
    spec_route(p, "GET", "/v2", NULL, 200);
    spec_route(p, "GET", "/v2/models/lf_base", NULL, 200);
    spec_route(p, "GET", "/v2/models/qa", NULL, 200);
    spec_route(p, "GET", "/v2/models/lf_base/ready", NULL, 200);
    spec_route(p, "GET", "/v1/models", NULL, 200);
    spec_route(p, "GET", "/info", NULL, 200);

    /* KServe v2 inference: 200, and the family's {"error"} on 400 / 404 / 405 / 422 */
    char *v2 = v2_body(2, 9, 4);
    spec_route(p, "POST", "/v2/models/lf_base/infer", v2, 200);
    free(v2);
    spec_route(p, "POST", "/v2/models/lf_base/infer", "{\"inputs\": [", 400);
    spec_route(p, "POST", "/v2/models/nope/infer", "{}", 404);
    spec_route(p, "GET", "/v2/models/nope", NULL, 404);
    spec_route(p, "GET", "/v2/models/lf_base/infer", NULL, 405);
    spec_route(p, "POST", "/v2/models/lf_base/infer",
               "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
               "\"data\":[0,100000,2]}]}",
               422);

    /* text routes */
    spec_route(p, "POST", "/embed", "{\"inputs\":[\"a b\",\"c\"]}", 200);
    spec_route(p, "POST", "/embed", "{\"inputs\":\"a b c\",\"pooling\":\"cls\"}", 200);
    spec_route(p, "POST", "/embed_all", "{\"inputs\":\"a b\"}", 200);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":[\"a b\",\"c\"],\"model\":\"st_tiny\"}",
               200);
    spec_req(p, "POST", "/v1/embeddings",
             "{\"input\":\"a b\",\"model\":\"st_tiny\",\"encoding_format\":\"base64\"}", 200, &r);
    cJSON *j = hjson(&r);
    ck_assert(cJSON_IsString(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding")));
    cJSON_Delete(j);
    hresp_free(&r);
    spec_route(p, "POST", "/predict", "{\"inputs\":\"i like this movie\"}", 200);
    spec_route(p, "POST", "/predict", "{\"inputs\":[\"a b\",\"c d\"],\"raw_scores\":true}", 200);
    spec_route(p, "POST", "/predict",
               "{\"inputs\":[\"what is the capital\",\"paris is the capital\"]}", 200);
    spec_route(p, "POST", "/token_classify", "{\"inputs\":\"john smith lives in london\"}", 200);
    spec_route(p, "POST", "/token_classify",
               "{\"inputs\":[\"john smith\",\"mary went to paris\"],\"ignore_labels\":[]}", 200);
    spec_route(p, "POST", "/fill_mask", "{\"inputs\":\"paris is the <mask> of france\"}", 200);
    spec_route(p, "POST", "/fill_mask",
               "{\"inputs\":[\"the quick brown <mask> jumps\",\"a <mask> b\"],\"top_k\":2}", 200);
    spec_req(p, "POST", "/answer",
             "{\"question\":\"who lives in london?\",\"context\":\"john smith lives in london\"}",
             200, &r);
    hresp_free(&r);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":\"a b\"}", 200);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":[\"a b\",\"c\"],\"add_special_tokens\":false}",
               200);
    spec_route(p, "POST", "/decode", "{\"ids\":[[2,5],[3]],\"skip_special_tokens\":false}", 200);
    spec_route(p, "POST", "/decode", "{\"ids\":[5,6]}", 200);

    /* TEI's {"error","error_type"} and OpenAI's {"error":{...}} */
    spec_route(p, "POST", "/embed", "{\"inputs\":\"\"}", 400);
    spec_route(p, "POST", "/embed", "{\"inputs\":\"a\",\"model\":\"nope\"}", 422);
    spec_route(p, "POST", "/predict", "{\"inputs\":\"a\",\"model\":\"st_tiny\"}", 422);
    spec_route(p, "POST", "/answer", "{\"question\":\"who?\"}", 400);
    spec_route(p, "POST", "/tokenize", "{\"inputs\":5}", 400);
    spec_route(p, "POST", "/decode", "{\"ids\":[-1]}", 400);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":\"\",\"model\":\"st_tiny\"}", 400);
    spec_route(p, "POST", "/v1/embeddings", "{\"input\":[[1,2,99999]]}", 422);

    /* the checker bites: a real /v1/embeddings answer with one float turned into a string */
    spec_req(p, "POST", "/v1/embeddings", "{\"input\":\"a b\",\"model\":\"st_tiny\"}", 200, &r);
    j = hjson(&r);
    hresp_free(&r);
    cJSON *emb =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding");
    cJSON_ReplaceItemInArray(emb, 3, cJSON_CreateString("0.25"));
    char *bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/v1/embeddings", 200, bad, "/data/0/embedding/3: expected number");
    free(bad);
    cJSON_DeleteItemFromObject(j, "usage");
    cJSON_DeleteItemFromObject(j, "model");
    bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/v1/embeddings", 200, bad, "required member \"model\"");
    free(bad);
    cJSON_Delete(j);
    /* and a real /embed answer whose vector is a string list */
    spec_req(p, "POST", "/embed", "{\"inputs\":\"a b\"}", 200, &r);
    j = hjson(&r);
    hresp_free(&r);
    cJSON *row = cJSON_GetArrayItem(j, 0);
    cJSON_ReplaceItemInArray(row, 1, cJSON_CreateString("x"));
    bad = cJSON_PrintUnformatted(j);
    spec_refuses("POST", "/embed", 200, bad, "/0/1: expected number, got string");
    free(bad);
    cJSON_Delete(j);
    spec_refuses("POST", "/embed", 200, "{\"embeddings\":[]}", "(root): expected array");
    spec_refuses("POST", "/embed", 200, "[[0.5,", "not JSON");
    spec_refuses("POST", "/embed", 422, "{\"error\":\"x\",\"error_type\":\"bogus\"}",
                 "/error_type: \"bogus\" is not in the enum");
    spec_refuses("POST", "/embed", 400,
                 "{\"error\":{\"message\":\"x\"},\"error_type\":\"validation\"}",
                 "/error: expected string");
    spec_refuses("POST", "/v1/embeddings", 400, "{\"error\":\"x\",\"error_type\":\"validation\"}",
                 "/error: expected object");
    spec_refuses("POST", "/v2/models/{model}/infer", 200,
                 "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"logits\",\"datatype\":\"FP32\","
                 "\"shape\":[1,2.5],\"data\":[1,null]}]}",
                 "/outputs/0/shape/1: expected integer");
    spec_refuses("POST", "/predict", 200, "[{\"label\":\"a\",\"score\":\"0.5\"}]",
                 "matches none of the 2 oneOf");
    spec_refuses("POST", "/tokenize", 200,
                 "[[{\"id\":1,\"text\":\"a\",\"special\":false,\"start\":null}]]",
                 "/0/0: required member \"stop\"");
    spec_refuses("GET", "/health", 200, "{\"status\":\"dead\"}", "/status");
    /* the V2 output data admit null (non-finite values); a tensor shape does not */
    ck_assert_int_eq(oa_validate(sp, "POST", "/v2/models/{model}/infer", 200,
                                 "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"logits\","
                                 "\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[1,null]}]}",
                                 NULL, 0),
                     OA_OK);
    char err[256];
    ck_assert_int_eq(oa_validate(sp, "GET", "/metrics", 200, "x", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "GET", "/health", 418, "{}", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "DELETE", "/health", 405, "{}", err, sizeof err),
                     OA_UNDOCUMENTED);
    ck_assert_int_eq(oa_validate(sp, "GET", "/v2/models/{model}/infer", 405, "{\"error\":\"x\"}",
                                 err, sizeof err),
                     OA_OK);
    ck_assert_int_eq(
        oa_validate(sp, "GET", "/v2/models/{model}/infer", 405, "{\"err\":\"x\"}", err, sizeof err),
        OA_MISMATCH);

    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_v2");
    TCase *tc = tcase_create("v2");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, metadata_routes);
    tcase_add_test(tc, v2_infer_equals_runner);
    tcase_add_test(tc, openapi_responses);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
