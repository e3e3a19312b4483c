/* longserve end to end, KServe v2 and metadata: the metadata routes, v2 inference byte for
 * byte equal to longserve-run, every route's response matching proto/openapi.yaml (with
 * the checker shown to refuse wrong bodies), and what Triton's clients use: binary tensor
 * data (bodies built by hand here), versioned routes, config, statistics, the repository
 * index and gzip/deflate bodies. The harness is tests/server_harness.h. */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "openapi_check.h"
#include "server_harness.h"

/* A growing byte buffer for the hand-built bodies. */
typedef struct {
    char *p;
    size_t n, cap;
} tbuf;

static void bput(tbuf *b, char c)
{
    if (b->n + 2 > b->cap) b->p = realloc(b->p, b->cap = b->cap ? b->cap * 2 : 4096);
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

__attribute__((format(printf, 2, 3))) static void bprintf(tbuf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    for (int i = 0; i < k && i < (int)sizeof tmp - 1; i++)
        bput(b, tmp[i]);
}

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
    /* TEI's fields: model_type is TEI's object, model_dtype what computes */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model_dtype")->valuestring, "float32");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "model_sha")));
    const cJSON *mt = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model_type"), "embedding");
    ck_assert_str_eq(cJSON_GetObjectItem(mt, "pooling")->valuestring, "mean");
    ck_assert_int_ge(cJSON_GetObjectItem(j, "tokenization_workers")->valueint, 1);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "sha")));
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_client_batch_size")->valueint, 32);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "auto_truncate")));
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
    /* every series exists before it is first used, the per-model ones for each model */
    const char *series[] = {
        "longserve_requests_total{route=\"v2_infer\",status=\"429\"} 0",
        "longserve_rejected_requests_total{reason=\"queue_full\"} 0",
        "# TYPE longserve_request_duration_seconds histogram",
        "# TYPE longserve_queue_duration_seconds histogram",
        "# TYPE longserve_inference_duration_seconds histogram",
        "# TYPE longserve_input_tokens histogram",
        "# TYPE longserve_batch_requests histogram",
        "# TYPE longserve_batch_tokens histogram",
        "# TYPE longserve_batch_padding_ratio histogram",
        "longserve_truncated_requests_total 0",
        "longserve_ready 1",
        "# TYPE longserve_build_info gauge\nlongserve_build_info{version=\"",
        "\",backend=\"cpu\"} 1\n",
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
    };
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        ck_assert_msg(strstr(r.body, series[i]) != NULL, "/metrics lacks '%s'", series[i]);
    static const char *const per_model[] = {
        "longserve_queue_duration_seconds_count{model=\"%s\"} 0",
        "longserve_inference_duration_seconds_bucket{model=\"%s\",le=\"0.0001\"} 0",
        "longserve_input_tokens_sum{model=\"%s\"} 0",
        "longserve_batch_requests_count{model=\"%s\"} 0",
        "longserve_batch_tokens_count{model=\"%s\"} 0",
        "longserve_batch_cost_count{model=\"%s\"} 0",
        "longserve_batch_padding_ratio_count{model=\"%s\"} 0",
        "longserve_batch_time_ratio_count{model=\"%s\"} 0",
        "longserve_generation_time_to_first_token_seconds_count{model=\"%s\"} 0",
        "longserve_generation_time_per_output_token_seconds_count{model=\"%s\"} 0",
        "longserve_generated_tokens_total{model=\"%s\"} 0",
        "longserve_kernel_seconds_total{model=\"%s\",op=\"linear\"} 0",
        "longserve_kernel_seconds_total{model=\"%s\",op=\"window_attn\"} 0",
        "longserve_kernel_seconds_total{model=\"%s\",op=\"global_attn\"} 0",
        "longserve_queued_requests{model=\"%s\"} 0",
        "longserve_queued_cost{model=\"%s\"} 0",
        "longserve_engine_busy{model=\"%s\"} 0",
    };
    static const char *const models[] = {"lf_base", "lf_qa", "lf_seqcls"};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof per_model / sizeof per_model[0]; i++) {
            char want[200];
            snprintf(want, sizeof want, per_model[i], models[k]);
            ck_assert_msg(strstr(r.body, want) != NULL, "/metrics lacks '%s'", want);
        }
    /* the process series hold this process's numbers */
    ck_assert(metric(s.port, "process_resident_memory_bytes") > 1e6);
    ck_assert(metric(s.port, "process_cpu_seconds_total") > 0);
    const double start = metric(s.port, "process_start_time_seconds");
    ck_assert_msg(start > (double)time(NULL) - 600 && start <= (double)time(NULL) + 1,
                  "process_start_time_seconds %.3f, now %lld", start, (long long)time(NULL));
    hresp_free(&r);
    promtool_check(s.port);

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
                            "/decode",
                            "/v2/models/{model}/config",
                            "/v2/models/{model}/stats",
                            "/v2/models/stats",
                            "/v2/repository/index",
                            "/v2/models/{model}/versions/{version}/infer"};
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
    static const char *const models[] = {"lf_base", "lf_qa", "lf_seqcls"};
    static const int nbatches[] = {3, 2, 2}; /* each model's cases above */
    double unpadded = 0;
    for (int k = 0; k < 3; k++) {
        char name[160];
        static const char *const ops[] = {"linear", "window_attn", "embed"};
        for (int o = 0; o < 3; o++) {
            snprintf(name, sizeof name, "longserve_kernel_seconds_total{model=\"%s\",op=\"%s\"}",
                     models[k], ops[o]);
            ck_assert_msg(metric(s.port, name) > 0, "%s is 0", name);
        }
        snprintf(name, sizeof name, "longserve_batch_padding_ratio_count{model=\"%s\"}", models[k]);
        ck_assert_msg(metric(s.port, name) == nbatches[k], "%s: %g", name, metric(s.port, name));
        snprintf(name, sizeof name, "longserve_batch_padding_ratio_bucket{model=\"%s\",le=\"1\"}",
                 models[k]);
        ck_assert(metric(s.port, name) == nbatches[k]);
        snprintf(name, sizeof name, "longserve_batch_padding_ratio_bucket{model=\"%s\",le=\"0\"}",
                 models[k]);
        unpadded += metric(s.port, name);
        snprintf(name, sizeof name, "longserve_input_tokens_count{model=\"%s\"}", models[k]);
        ck_assert(metric(s.port, name) == nbatches[k]);
    }
    const double nb = sizeof cases / sizeof cases[0];
    ck_assert(metric(s.port, "longserve_batch_padding_ratio_count") == nb); /* summed */
    ck_assert_msg(unpadded >= 1 && unpadded < nb, "%g of %g batches without padding", unpadded, nb);
    double sum = metric(s.port, "longserve_batch_padding_ratio_sum");
    ck_assert(sum > 0 && sum < nb);
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 0);
    promtool_check(s.port); /* with observations in the buckets */
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
    /* documented headers: x-longserve-attention's pattern and `required`, integers */
    char herr[300];
    ck_assert_int_eq(oa_validate_header(sp, "POST", "/embed", 200, "X-Longserve-Attention",
                                        "full; tokens=3; windows=1", herr, sizeof herr),
                     OA_OK);
    ck_assert_int_eq(oa_validate_header(sp, "POST", "/v1/embeddings", 200, "x-longserve-attention",
                                        "full+sliding_window; window=512; tokens=9; windows=2",
                                        herr, sizeof herr),
                     OA_OK);
    ck_assert_int_eq(oa_validate_header(sp, "POST", "/embed", 200, "x-longserve-attention",
                                        "half; tokens=3; windows=1", herr, sizeof herr),
                     OA_MISMATCH);
    ck_assert_int_eq(oa_validate_header(sp, "POST", "/embed", 200, "x-longserve-attention",
                                        "full; window=x; tokens=3; windows=1", herr, sizeof herr),
                     OA_MISMATCH);
    ck_assert_int_eq(oa_validate_header(sp, "POST", "/predict", 200, "x-longserve-attention", NULL,
                                        herr, sizeof herr),
                     OA_MISMATCH);
    ck_assert(strstr(herr, "required") != NULL);
    ck_assert_int_eq(
        oa_validate_header(sp, "POST", "/embed", 200, "x-compute-tokens", "12a", herr, sizeof herr),
        OA_MISMATCH);
    ck_assert_int_eq(
        oa_validate_header(sp, "POST", "/embed", 200, "x-truncated", NULL, herr, sizeof herr),
        OA_OK); /* documented, not required */
    ck_assert_int_eq(
        oa_validate_header(sp, "POST", "/embed", 200, "x-nothing", "1", herr, sizeof herr),
        OA_UNDOCUMENTED);

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

/* ---- Triton's extensions: binary tensor data, versions, config, statistics, encodings ------ */

enum { BR = 2, BL = 9 }; /* the binary tests' shape */

/* Token ids and an attention mask (last two tokens of row 1 padded) for lf_base. */
static void bin_inputs(long long ids[BR * BL], int mask[BR * BL])
{
    for (int r = 0; r < BR; r++)
        for (int t = 0; t < BL; t++) {
            ids[r * BL + t] = t == 0 ? 0 : t == BL - 1 ? 2 : 3 + (r * 7 + t * 13) % 290;
            mask[r * BL + t] = !(r == 1 && t >= BL - 2);
        }
}

/* The same request in JSON; outputs is the "outputs" member's text (or ""). */
static char *json_request(const char *outputs)
{
    long long ids[BR * BL];
    int mask[BR * BL];
    bin_inputs(ids, mask);
    tbuf b = {0};
    bprintf(&b,
            "{\"id\":\"b1\",\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
            "\"shape\":[%d,%d],\"data\":[",
            BR, BL);
    for (int i = 0; i < BR * BL; i++)
        bprintf(&b, "%s%lld", i ? "," : "", ids[i]);
    bprintf(&b,
            "]},{\"name\":\"attention_mask\",\"datatype\":\"INT32\",\"shape\":[%d,%d],"
            "\"data\":[",
            BR, BL);
    for (int i = 0; i < BR * BL; i++)
        bprintf(&b, "%s%d", i ? "," : "", mask[i]);
    bprintf(&b, "]}]%s}", outputs);
    return b.p;
}

/* The binary form: a JSON header (parameters is the request's "parameters" text or "") and
 * the ids as int64, the mask as int32, little-endian; *hlen is the header's length. */
static char *binary_request(const char *params, const char *outputs, size_t *len, size_t *hlen)
{
    long long ids[BR * BL];
    int mask[BR * BL];
    bin_inputs(ids, mask);
    tbuf b = {0};
    bprintf(&b,
            "{\"id\":\"b1\",%s\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\","
            "\"shape\":[%d,%d],\"parameters\":{\"binary_data_size\":%d}},"
            "{\"name\":\"attention_mask\",\"datatype\":\"INT32\",\"shape\":[%d,%d],"
            "\"parameters\":{\"binary_data_size\":%d}}]%s}",
            params, BR, BL, BR * BL * 8, BR, BL, BR * BL * 4, outputs);
    *hlen = b.n;
    for (int i = 0; i < BR * BL; i++)
        for (int k = 0; k < 8; k++)
            bput(&b, (char)((unsigned long long)ids[i] >> (8 * k) & 0xff));
    for (int i = 0; i < BR * BL; i++)
        for (int k = 0; k < 4; k++)
            bput(&b, (char)((unsigned)mask[i] >> (8 * k) & 0xff));
    *len = b.n;
    return b.p;
}

/* POST raw bytes with extra headers; the response is checked against the spec. */
static void post_raw(int port, const char *path, const char *headers, const char *body, size_t len,
                     hresp *r)
{
    int fd = hconnect(port);
    hsend_request(fd, "POST", path, headers, body, len);
    hread(fd, r);
    close(fd);
    spec_check("POST", path, r);
}

/* A request with Inference-Header-Content-Length hlen. */
static void post_binary(int port, const char *path, const char *body, size_t len, size_t hlen,
                        hresp *r)
{
    char h[160];
    snprintf(h, sizeof h,
             "Content-Type: application/octet-stream\r\nInference-Header-Content-Length: %zu\r\n",
             hlen);
    post_raw(port, path, h, body, len, r);
}

/* Output `name` of a response (JSON, or JSON header + binary data): its elements as floats
 * (malloc'd, *n of them) and whether they came as binary data. */
static float *output_floats(const hresp *r, const char *name, size_t *n, int *binary)
{
    char hl[32];
    size_t head = r->len;
    if (hheader(r, "Inference-Header-Content-Length", hl, sizeof hl)) head = strtoull(hl, 0, 10);
    cJSON *j = cJSON_ParseWithLength(r->body, head);
    ck_assert_msg(j != NULL, "the JSON header does not parse: %.200s", r->body);
    size_t off = head;
    float *v = NULL;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(j, "outputs"))
    {
        const cJSON *bs =
            cJSON_GetObjectItem(cJSON_GetObjectItem(o, "parameters"), "binary_data_size");
        size_t count = 1;
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(o, "shape")) count *= (size_t)d->valuedouble;
        if (bs) {
            ck_assert(cJSON_GetObjectItem(o, "data") == NULL);
            ck_assert_int_eq((size_t)bs->valuedouble, count * 4);
        }
        if (strcmp(cJSON_GetObjectItem(o, "name")->valuestring, name) == 0) {
            v = malloc(count * sizeof *v);
            *n = count;
            *binary = bs != NULL;
            if (bs) {
                ck_assert(off + count * 4 <= r->len);
                for (size_t i = 0; i < count; i++) {
                    const unsigned char *p = (const unsigned char *)r->body + off + 4 * i;
                    uint32_t u = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
                    memcpy(&v[i], &u, 4);
                }
            } else {
                size_t k = 0;
                cJSON_ArrayForEach(d, cJSON_GetObjectItem(o, "data")) v[k++] =
                    (float)d->valuedouble;
                ck_assert_int_eq(k, count);
            }
        }
        if (bs) off += count * 4;
    }
    ck_assert_msg(off == r->len, "binary outputs: %zu bytes, the body has %zu", off, r->len);
    cJSON_Delete(j);
    ck_assert_msg(v != NULL, "no output %s", name);
    return v;
}

/* Both outputs of lf_base equal (to the bit: 9 digits round-trip) those of the JSON answer. */
static void expect_same_outputs(const hresp *ref, const hresp *r, int lhs_binary, int pool_binary)
{
    const char *names[] = {"last_hidden_state", "pooler_output"};
    const int want[] = {lhs_binary, pool_binary};
    for (int i = 0; i < 2; i++) {
        size_t n0, n1;
        int b0, b1;
        float *a = output_floats(ref, names[i], &n0, &b0);
        float *b = output_floats(r, names[i], &n1, &b1);
        ck_assert_int_eq(n0, n1);
        ck_assert_msg(b1 == want[i], "%s: binary %d, expected %d", names[i], b1, want[i]);
        ck_assert_msg(memcmp(a, b, n0 * sizeof *a) == 0, "%s differs from the JSON answer",
                      names[i]);
        free(a);
        free(b);
    }
}

/* Binary inputs give the numbers JSON inputs give; binary outputs decode to the JSON
 * outputs' floats; JSON in / binary out and binary in / JSON out mix; versioned path. */
START_TEST(v2_binary_tensors)
{
    server s;
    server_start(&s, NULL);
    const char *url = "/v2/models/lf_base/infer";
    hresp ref, r;
    char h[128];
    char *js = json_request("");
    hreq(s.port, "POST", url, "Content-Type: application/json\r\n", js, &ref);
    ck_assert_int_eq(ref.status, 200);
    ck_assert(hheader(&ref, "Inference-Header-Content-Length", h, sizeof h) == NULL);

    /* binary in, JSON out: byte for byte the JSON request's answer */
    size_t len, hlen;
    char *bin = binary_request("", "", &len, &hlen);
    post_binary(s.port, url, bin, len, hlen, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(hheader(&r, "Content-Type", h, sizeof h) && strstr(h, "application/json"));
    ck_assert_str_eq(r.body, ref.body);
    hresp_free(&r);
    free(bin);

    /* binary in, binary out (the request's binary_data_output, as tritonclient sends it) */
    bin = binary_request("\"parameters\":{\"binary_data_output\":true},", "", &len, &hlen);
    post_binary(s.port, "/v2/models/lf_base/versions/1/infer", bin, len, hlen, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(hheader(&r, "Content-Type", h, sizeof h) &&
              strcmp(h, "application/octet-stream") == 0);
    ck_assert(hheader(&r, "Inference-Header-Content-Length", h, sizeof h));
    ck_assert_int_eq(r.len, strtoull(h, 0, 10) + (BR * BL * 32 + BR * 32) * 4);
    expect_same_outputs(&ref, &r, 1, 1);
    hresp_free(&r);
    free(bin);

    /* binary in; one output binary by its own parameter, one JSON against the default */
    bin =
        binary_request("\"parameters\":{\"binary_data_output\":true},",
                       ",\"outputs\":[{\"name\":\"last_hidden_state\"},{\"name\":\"pooler_output\","
                       "\"parameters\":{\"binary_data\":false}}]",
                       &len, &hlen);
    post_binary(s.port, url, bin, len, hlen, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    expect_same_outputs(&ref, &r, 1, 0);
    hresp_free(&r);
    free(bin);

    /* JSON in, binary out for one output */
    char *mixed = json_request(",\"outputs\":[{\"name\":\"last_hidden_state\"},{\"name\":"
                               "\"pooler_output\",\"parameters\":{\"binary_data\":true}}]");
    hreq(s.port, "POST", url, "Content-Type: application/json\r\n", mixed, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(hheader(&r, "Content-Type", h, sizeof h) &&
              strcmp(h, "application/octet-stream") == 0);
    expect_same_outputs(&ref, &r, 0, 1);
    hresp_free(&r);
    free(mixed);

    hresp_free(&ref);
    free(js);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* A malformed framing is a 400 naming what is wrong, and the server goes on serving. */
START_TEST(v2_binary_malformed)
{
    server s;
    server_start(&s, NULL);
    const char *url = "/v2/models/lf_base/infer";
    size_t len, hlen;
    char *bin = binary_request("", "", &len, &hlen);
    char *js = json_request("");
    hresp r;
    struct {
        const char *what, *header, *body;
        size_t len;
        const char *says;
    } cases[] = {
        {"header length beyond the body", "Inference-Header-Content-Length: 999999\r\n", bin, len,
         "the body has only"},
        {"header length not a number", "Inference-Header-Content-Length: 12abc\r\n", bin, len,
         "must be a number of bytes"},
        {"header length cutting the JSON", "Inference-Header-Content-Length: 40\r\n", bin, len,
         "is not valid JSON"},
        {"bytes left over", NULL, bin, len, "add up to"},
        {"bytes missing", NULL, bin, len - 8, "goes beyond the body"},
        {"no header at all", "", bin, len, "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char h[160];
        size_t n = cases[i].len;
        char *body = malloc(n + 16);
        memcpy(body, cases[i].body, n);
        if (!cases[i].header) { /* the right header length, the wrong amount of data */
            if (strstr(cases[i].says, "add up")) memcpy(body + n, "12345678", 8), n += 8;
            snprintf(h, sizeof h, "Inference-Header-Content-Length: %zu\r\n", hlen);
        } else {
            snprintf(h, sizeof h, "%s", cases[i].header);
        }
        post_raw(s.port, url, h, body, n, &r);
        ck_assert_msg(r.status == 400, "%s: %d %s", cases[i].what, r.status, r.body);
        spec_expect("POST", url, &r);
        cJSON *j = hjson(&r);
        const char *e = cJSON_GetObjectItem(j, "error")->valuestring;
        ck_assert_msg(strstr(e, cases[i].says), "%s: '%s' does not say '%s'", cases[i].what, e,
                      cases[i].says);
        cJSON_Delete(j);
        hresp_free(&r);
        free(body);
    }
    /* sizes that are not shape x datatype, data beside binary data, a bad parameter */
    const char *bad[][2] = {
        {"{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
         "\"parameters\":{\"binary_data_size\":12}}]}",
         "needs 24"},
        {"{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT32\",\"shape\":[1,3],\"data\":[0,"
         "5,2],\"parameters\":{\"binary_data_size\":12}}]}",
         "both"},
        {"{\"parameters\":{\"binary_data_output\":1},\"inputs\":[{\"name\":\"input_ids\","
         "\"datatype\":\"INT64\",\"shape\":[1,3],\"data\":[0,5,2]}]}",
         "binary_data_output must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512], h[96];
        size_t hl = strlen(bad[i][0]);
        memcpy(body, bad[i][0], hl);
        memset(body + hl, 0, 24);
        snprintf(h, sizeof h, "Inference-Header-Content-Length: %zu\r\n", hl);
        post_raw(s.port, url, h, body, hl + 12, &r);
        ck_assert_msg(r.status == 400, "%zu: %d %s", i, r.status, r.body);
        ck_assert_msg(strstr(r.body, bad[i][1]), "%s does not say %s", r.body, bad[i][1]);
        hresp_free(&r);
    }
    /* still serving, and right */
    expect_healthy(s.port);
    post_binary(s.port, url, bin, len, hlen, &r);
    ck_assert_int_eq(r.status, 200);
    hresp ref;
    hreq(s.port, "POST", url, NULL, js, &ref);
    ck_assert_str_eq(r.body, ref.body);
    hresp_free(&r);
    hresp_free(&ref);
    free(bin);
    free(js);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

static const cJSON *model_stats(const cJSON *j, int i, const char *name)
{
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "model_stats"), i);
    ck_assert_msg(m != NULL, "no model_stats[%d]", i);
    ck_assert_str_eq(cJSON_GetObjectItem(m, "name")->valuestring, name);
    ck_assert_str_eq(cJSON_GetObjectItem(m, "version")->valuestring, "1");
    return m;
}

static double stat_of(const cJSON *m, const char *what, const char *field)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "inference_stats"), what),
                               field)
        ->valuedouble;
}

/* /versions/1/... answers as the route without it, other versions are 404; config, stats
 * (counting what ran) and the repository index have Triton's shapes; /v2 advertises the
 * extensions. */
START_TEST(v2_versions_config_stats)
{
    server s;
    server_start(&s, NULL);
    int p = s.port;
    hresp r, r1;

    hreq(p, "GET", "/v2/models/lf_base", NULL, NULL, &r);
    hreq(p, "GET", "/v2/models/lf_base/versions/1", NULL, NULL, &r1);
    ck_assert_int_eq(r1.status, 200);
    spec_expect("GET", "/v2/models/lf_base/versions/1", &r1);
    ck_assert_str_eq(r.body, r1.body);
    hresp_free(&r);
    hresp_free(&r1);
    spec_route(p, "GET", "/v2/models/lf_seqcls/versions/1/ready", NULL, 200);
    spec_route(p, "GET", "/v2/models/lf_base/versions/2", NULL, 404);
    spec_route(p, "GET", "/v2/models/lf_base/versions/2/ready", NULL, 404);
    spec_route(p, "GET", "/v2/models/nope/versions/1", NULL, 404);
    char *body = v2_body(1, 6, 2);
    spec_req(p, "POST", "/v2/models/lf_base/versions/7/infer", body, 404, &r);
    ck_assert(strstr(r.body, "no version '7'"));
    hresp_free(&r);

    spec_req(p, "GET", "/v2", NULL, 200, &r);
    ck_assert(strstr(r.body, "\"binary_tensor_data\""));
    hresp_free(&r);

    /* config: Triton's shape, whole shapes as dims (max_batch_size 0) */
    spec_req(p, "GET", "/v2/models/lf_qa/versions/1/config", NULL, 200, &r);
    cJSON *j = hjson(&r);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "name")->valuestring, "lf_qa");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "max_batch_size")->valueint, 0);
    const cJSON *in0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "input"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(in0, "name")->valuestring, "input_ids");
    ck_assert_str_eq(cJSON_GetObjectItem(in0, "data_type")->valuestring, "TYPE_INT64");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(in0, "dims")), 2);
    const cJSON *o1 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "output"), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(o1, "name")->valuestring, "end_logits");
    ck_assert_str_eq(cJSON_GetObjectItem(o1, "data_type")->valuestring, "TYPE_FP32");
    cJSON_Delete(j);
    hresp_free(&r);
    spec_route(p, "GET", "/v2/models/nope/config", NULL, 404);

    /* stats: zero before, then two successes and one refusal on lf_base */
    spec_req(p, "GET", "/v2/models/lf_base/stats", NULL, 200, &r);
    j = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "model_stats")), 1);
    const cJSON *m = model_stats(j, 0, "lf_base");
    ck_assert(cJSON_GetObjectItem(m, "inference_count")->valuedouble == 0);
    ck_assert(cJSON_GetObjectItem(m, "last_inference")->valuedouble == 0);
    cJSON_Delete(j);
    hresp_free(&r);
    for (int i = 0; i < 2; i++) {
        hreq(p, "POST", i ? "/v2/models/lf_base/versions/1/infer" : "/v2/models/lf_base/infer",
             NULL, body, &r);
        ck_assert_int_eq(r.status, 200);
        hresp_free(&r);
    }
    hreq(p, "POST", "/v2/models/lf_base/infer", NULL,
         "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,3],"
         "\"data\":[0,100000,2]}]}",
         &r);
    ck_assert_int_eq(r.status, 422);
    hresp_free(&r);
    spec_req(p, "GET", "/v2/models/lf_base/versions/1/stats", NULL, 200, &r);
    j = hjson(&r);
    m = model_stats(j, 0, "lf_base");
    ck_assert(cJSON_GetObjectItem(m, "inference_count")->valuedouble == 2);
    const double ex = cJSON_GetObjectItem(m, "execution_count")->valuedouble;
    ck_assert(ex >= 1 && ex <= 2);
    ck_assert(cJSON_GetObjectItem(m, "last_inference")->valuedouble > 1.6e12);
    const char *stages[] = {"success", "queue", "compute_input", "compute_infer", "compute_output"};
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(stat_of(m, stages[i], "count") == 2, "%s count %g", stages[i],
                      stat_of(m, stages[i], "count"));
        ck_assert(stat_of(m, stages[i], "ns") >= 0);
    }
    ck_assert(stat_of(m, "success", "ns") > 0 && stat_of(m, "compute_infer", "ns") > 0);
    ck_assert(stat_of(m, "success", "ns") >= stat_of(m, "compute_infer", "ns"));
    ck_assert(stat_of(m, "fail", "count") == 1);
    cJSON_Delete(j);
    hresp_free(&r);
    spec_req(p, "GET", "/v2/models/stats", NULL, 200, &r);
    j = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "model_stats")), 3);
    model_stats(j, 0, "lf_base");
    m = model_stats(j, 2, "lf_seqcls");
    ck_assert(cJSON_GetObjectItem(m, "inference_count")->valuedouble == 0);
    cJSON_Delete(j);
    hresp_free(&r);

    /* repository index */
    spec_req(p, "POST", "/v2/repository/index", "{}", 200, &r);
    j = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    const cJSON *e1 = cJSON_GetArrayItem(j, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(e1, "name")->valuestring, "lf_qa");
    ck_assert_str_eq(cJSON_GetObjectItem(e1, "version")->valuestring, "1");
    ck_assert_str_eq(cJSON_GetObjectItem(e1, "state")->valuestring, "READY");
    cJSON_Delete(j);
    hresp_free(&r);
    free(body);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* gzip and deflate request bodies inflate (their inflated size under --payload-limit), and
 * replies come compressed when the client takes it. */
START_TEST(v2_content_encoding)
{
    server s;
    const char *extra[] = {"--payload-limit", "100000", NULL};
    server_start(&s, extra);
    int p = s.port;
    const char *url = "/v2/models/lf_base/infer";
    hresp ref, r;
    char h[160];
    char *js = json_request("");
    hreq(p, "POST", url, NULL, js, &ref);
    ck_assert_int_eq(ref.status, 200);
    size_t zn;
    for (int gz = 0; gz < 2; gz++) {
        char *z = hdeflate(js, strlen(js), gz, &zn);
        snprintf(h, sizeof h, "Content-Encoding: %s\r\n", gz ? "gzip" : "deflate");
        post_raw(p, url, h, z, zn, &r);
        ck_assert_msg(r.status == 200, "%s: %d %s", h, r.status, r.body);
        ck_assert_str_eq(r.body, ref.body);
        hresp_free(&r);
        free(z);
    }
    /* a compressed binary-framed request (tritonclient's request_compression_algorithm) */
    size_t len, hlen;
    char *bin = binary_request("", "", &len, &hlen);
    char *z = hdeflate(bin, len, 1, &zn);
    snprintf(h, sizeof h, "Content-Encoding: gzip\r\nInference-Header-Content-Length: %zu\r\n",
             hlen);
    post_raw(p, url, h, z, zn, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert_str_eq(r.body, ref.body);
    hresp_free(&r);
    free(z);
    free(bin);

    /* corrupt data, an unknown coding, and a small body that inflates past the limit */
    post_raw(p, url, "Content-Encoding: gzip\r\n", "not gzip at all", 15, &r);
    ck_assert_msg(r.status == 400 && strstr(r.body, "not valid gzip"), "%d %s", r.status, r.body);
    hresp_free(&r);
    post_raw(p, url, "Content-Encoding: br\r\n", js, strlen(js), &r);
    ck_assert_msg(r.status == 400 && strstr(r.body, "'br' is not supported"), "%d %s", r.status,
                  r.body);
    hresp_free(&r);
    const double rej = metric(p, "longserve_rejected_requests_total{reason=\"payload_too_large\"}");
    size_t big = 300000;
    char *pad = malloc(big + 64);
    int k = snprintf(pad, big + 64, "{\"inputs\":[], \"x\": \"");
    memset(pad + k, 'a', big);
    snprintf(pad + k + big, 64, "\"}");
    z = hdeflate(pad, strlen(pad), 1, &zn);
    ck_assert(zn < 2000);
    post_raw(p, url, "Content-Encoding: gzip\r\n", z, zn, &r);
    ck_assert_msg(r.status == 413 && strstr(r.body, "inflates to more than the limit of 100000"),
                  "%d %s", r.status, r.body);
    hresp_free(&r);
    ck_assert(metric(p, "longserve_rejected_requests_total{reason=\"payload_too_large\"}") ==
              rej + 1);
    free(z);
    free(pad);

    /* compressed replies: gzip, deflate, refused with q=0; small bodies go as they are */
    const char *accept[] = {"gzip", "deflate", "gzip;q=0", "br, gzip;q=0.5"};
    const char *want[] = {"gzip", "deflate", NULL, "gzip"};
    for (int i = 0; i < 4; i++) {
        snprintf(h, sizeof h, "Accept-Encoding: %s\r\n", accept[i]);
        post_raw(p, url, h, js, strlen(js), &r); /* spec_check validates the inflated body */
        ck_assert_int_eq(r.status, 200);
        char enc[32];
        const char *got = hheader(&r, "Content-Encoding", enc, sizeof enc);
        ck_assert_msg(want[i] ? got && strcmp(got, want[i]) == 0 : got == NULL,
                      "Accept-Encoding %s: Content-Encoding %s", accept[i], got ? got : "none");
        if (got) {
            size_t n;
            char *plain = hinflate(r.body, r.len, &n);
            ck_assert(plain && r.len < n);
            ck_assert_str_eq(plain, ref.body);
            free(plain);
        }
        hresp_free(&r);
    }
    hreq(p, "GET", "/v2/models/lf_base/ready", "Accept-Encoding: gzip\r\n", NULL, &r);
    ck_assert(hheader(&r, "Content-Encoding", h, sizeof h) == NULL);
    hresp_free(&r);
    hreq(p, "GET", "/metrics", "Accept-Encoding: gzip\r\n", NULL, &r); /* the loop's own reply */
    ck_assert(hheader(&r, "Content-Encoding", h, sizeof h) && strcmp(h, "gzip") == 0);
    hresp_free(&r);
    expect_healthy(p);
    hresp_free(&ref);
    free(js);
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
    tcase_add_test(tc, v2_binary_tensors);
    tcase_add_test(tc, v2_binary_malformed);
    tcase_add_test(tc, v2_versions_config_stats);
    tcase_add_test(tc, v2_content_encoding);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
