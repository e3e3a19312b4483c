/* longserve end to end, the text routes (TEI, OpenAI, pipelines): /embed and /v1/embeddings
 * equal to sentence-transformers and to the engine, the pipelines, the text errors, and the
 * default model when models/ has it. Harness: tests/server_harness.h. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "server_harness.h"

/* ---- text routes (TEI, OpenAI, pipelines) ----------------------------------------------------
 * Fixtures from tools/make_embed_fixtures.py (tests/fixtures/embed/): a tiny
 * sentence-transformers BERT and tiny Longformer heads with tokenizers, with the outputs of
 * sentence-transformers and of the Hugging Face pipelines for the same texts. */

static double vec_rel_err(const double *a, const double *b, int n)
{
    double diff = 0, mag = 1e-30;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        mag = fmax(mag, fabs(b[i]));
    }
    return diff / mag;
}

static cJSON *str_array(const cJSON *texts)
{
    return cJSON_Duplicate(texts, 1);
}

/* The "text" of each case of a fixture's "cases", as a new array. */
static cJSON *case_texts(const cJSON *cases)
{
    cJSON *texts = cJSON_CreateArray();
    for (int i = 0; i < cJSON_GetArraySize(cases); i++)
        cJSON_AddItemToArray(
            texts, cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(cases, i), "text"), 1));
    return texts;
}

/* The ids /tokenize gives for one text. */
static int tokenize_ids(int port, const char *text, int *ids, int cap)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(port, "/tokenize", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    const cJSON *toks = cJSON_GetArrayItem(j, 0);
    int n = cJSON_GetArraySize(toks);
    ck_assert(n <= cap);
    for (int i = 0; i < n; i++)
        ids[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(toks, i), "id")->valueint;
    cJSON_Delete(j);
    hresp_free(&r);
    return n;
}

/* last_hidden_state [n, H] of one row of ids (optional global mask) through longserve-run. */
static double *runner_hidden(const char *model, const int *ids, int n, const int *glob, int H)
{
    size_t cap = 256 + (size_t)n * 24;
    char *b = malloc(cap);
    int k = snprintf(b, cap,
                     "{\"inputs\":[{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[1,%d],"
                     "\"data\":[",
                     n);
    for (int i = 0; i < n; i++)
        k += snprintf(b + k, cap - (size_t)k, "%s%d", i ? "," : "", ids[i]);
    k += snprintf(b + k, cap - (size_t)k, "]}");
    if (glob) {
        k +=
            snprintf(b + k, cap - (size_t)k,
                     ",{\"name\":\"global_attention_mask\",\"datatype\":\"INT64\",\"shape\":[1,%d],"
                     "\"data\":[",
                     n);
        for (int i = 0; i < n; i++)
            k += snprintf(b + k, cap - (size_t)k, "%s%d", i ? "," : "", glob[i]);
        k += snprintf(b + k, cap - (size_t)k, "]}");
    }
    snprintf(b + k, cap - (size_t)k, "]}");
    char *out = run_runner(model, b);
    free(b);
    cJSON *j = cJSON_Parse(out);
    ck_assert(j != NULL);
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "outputs"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "last_hidden_state");
    const cJSON *d = cJSON_GetObjectItem(o, "data");
    ck_assert_int_eq(cJSON_GetArraySize(d), n * H);
    double *h = malloc((size_t)n * (size_t)H * sizeof *h);
    for (int i = 0; i < n * H; i++)
        h[i] = cJSON_GetArrayItem(d, i)->valuedouble;
    cJSON_Delete(j);
    free(out);
    return h;
}

/* sentence-transformers pooling of [n, H]: 0 mean, 1 cls, 2 max; then L2 when normalize. */
static void pool(const double *h, int n, int H, int mode, int normalize, double *v)
{
    for (int d = 0; d < H; d++) {
        double acc = mode == 2 ? -1e300 : 0;
        for (int t = 0; t < (mode == 1 ? 1 : n); t++)
            acc = mode == 2 ? fmax(acc, h[t * H + d]) : acc + h[t * H + d];
        v[d] = mode == 0 ? acc / n : acc;
    }
    if (!normalize) return;
    double ss = 0;
    for (int d = 0; d < H; d++)
        ss += v[d] * v[d];
    for (int d = 0; d < H; d++)
        v[d] /= fmax(sqrt(ss), 1e-12);
}

static void json_vec(const cJSON *a, double *v, int n)
{
    ck_assert_int_eq(cJSON_GetArraySize(a), n);
    for (int i = 0; i < n; i++)
        v[i] = cJSON_GetArrayItem(a, i)->valuedouble;
}

/* /embed of text with extra fields (a JSON object text, or NULL) into v[H]; the response's
 * header `hname` into hval when asked. */
static void embed_one(int port, const char *text, const char *extra, double *v, int H,
                      const char *hname, char *hval, size_t hlen)
{
    cJSON *b = extra ? cJSON_Parse(extra) : cJSON_CreateObject();
    ck_assert(b != NULL);
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    if (hname) ck_assert_msg(hheader(&r, hname, hval, hlen) != NULL, "no %s header", hname);
    cJSON *j = hjson(&r);
    json_vec(cJSON_GetArrayItem(j, 0), v, H);
    cJSON_Delete(j);
    hresp_free(&r);
}

START_TEST(text_embed_sentence_transformers)
{
    server s;
    text_server(&s, NULL);
    cJSON *exp = fixture_json("embed/st_tiny/expected.json");
    const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
    const int n = cJSON_GetArraySize(cases);
    cJSON *texts = case_texts(cases);

    /* /embed, a batch: equals sentence-transformers (mean pooling + Normalize) */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", str_array(texts));
    hresp r;
    post_json(s.port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    ck_assert_int_eq(cJSON_GetArraySize(got), n);
    long long tokens = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        double e = json_rel_err(cJSON_GetArrayItem(got, i), cJSON_GetObjectItem(c, "embedding"));
        ck_assert_msg(e <= 1e-4, "text %d: /embed differs from sentence-transformers by %g", i, e);
        /* /tokenize gives the ids transformers gives */
        int ids[256];
        int k = tokenize_ids(s.port, cJSON_GetObjectItem(c, "text")->valuestring, ids, 256);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ck_assert_int_eq(k, cJSON_GetArraySize(want));
        for (int t = 0; t < k; t++)
            ck_assert_int_eq(ids[t], cJSON_GetArrayItem(want, t)->valueint);
        tokens += k;
    }

    /* one string: still a list of one vector (TEI) */
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetArrayItem(texts, 0), 1));
    post_json(s.port, "/embed", b, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *one = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(one), 1);
    ck_assert(json_rel_err(cJSON_GetArrayItem(one, 0), cJSON_GetArrayItem(got, 0)) == 0);
    cJSON_Delete(one);
    hresp_free(&r);

    /* OpenAI: the same vectors, usage, base64 of the same float32 values */
    for (int b64 = 0; b64 < 2; b64++) {
        b = cJSON_CreateObject();
        cJSON_AddItemToObject(b, "input", str_array(texts));
        cJSON_AddStringToObject(b, "model", "st_tiny");
        cJSON_AddStringToObject(b, "encoding_format", b64 ? "base64" : "float");
        post_json(s.port, "/v1/embeddings", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        cJSON *j = hjson(&r);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "object")->valuestring, "list");
        ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "st_tiny");
        const cJSON *u = cJSON_GetObjectItem(j, "usage");
        ck_assert_int_eq((long long)cJSON_GetObjectItem(u, "prompt_tokens")->valuedouble, tokens);
        ck_assert_int_eq((long long)cJSON_GetObjectItem(u, "total_tokens")->valuedouble, tokens);
        const cJSON *data = cJSON_GetObjectItem(j, "data");
        ck_assert_int_eq(cJSON_GetArraySize(data), n);
        for (int i = 0; i < n; i++) {
            const cJSON *d = cJSON_GetArrayItem(data, i);
            ck_assert_str_eq(cJSON_GetObjectItem(d, "object")->valuestring, "embedding");
            ck_assert_int_eq(cJSON_GetObjectItem(d, "index")->valueint, i);
            const cJSON *e = cJSON_GetObjectItem(d, "embedding"),
                        *want = cJSON_GetArrayItem(got, i);
            if (!b64) {
                ck_assert(json_rel_err(e, want) == 0);
                continue;
            }
            /* base64 of little-endian float32 */
            ck_assert_int_eq(strlen(e->valuestring), (size_t)(32 * 4 + 2) / 3 * 4);
            float f[40];
            ck_assert_int_eq(b64_floats(e->valuestring, f, 40), 32);
            for (int k = 0; k < 32; k++)
                ck_assert_msg((double)f[k] ==
                                  (double)(float)cJSON_GetArrayItem(want, k)->valuedouble,
                              "base64 element %d", k);
        }
        cJSON_Delete(j);
        hresp_free(&r);
    }
    cJSON_Delete(got);
    cJSON_Delete(texts);
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* /embed (every pooling, normalize off) and /embed_all equal what the engine gives through
 * longserve-run for the same ids; global attention and long-document windows equal what
 * they are defined to be. */
START_TEST(text_embed_equals_engine)
{
    const char *extra[] = {"--max-global-tokens", "4", NULL};
    server s;
    text_server(&s, extra);
    const int H = 32;
    const char *text = "Long documents need sparse attention to be read in one pass, the model "
                       "reads contracts papers clinical notes and logs.";
    int ids[256];
    const int n = tokenize_ids(s.port, text, ids, 256);
    ck_assert(n > 12);
    double *h = runner_hidden("embed/st_tiny", ids, n, NULL, H);
    double want[32], v[32];
    static const char *const modes[] = {"mean", "cls", "max"};
    for (int m = 0; m < 3; m++) {
        char extra_json[128];
        snprintf(extra_json, sizeof extra_json, "{\"normalize\":false,\"pooling\":\"%s\"}",
                 modes[m]);
        embed_one(s.port, text, extra_json, v, H, NULL, NULL, 0);
        pool(h, n, H, m, 0, want);
        ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "pooling %s: %g", modes[m],
                      vec_rel_err(v, want, H));
    }
    /* /embed_all: the engine's hidden states, token by token */
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "inputs", text);
    hresp r;
    post_json(s.port, "/embed_all", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    const cJSON *rows = cJSON_GetArrayItem(j, 0);
    ck_assert_int_eq(cJSON_GetArraySize(rows), n);
    for (int t = 0; t < n; t++) {
        json_vec(cJSON_GetArrayItem(rows, t), v, H);
        ck_assert(vec_rel_err(v, h + t * H, H) <= 1e-5);
    }
    cJSON_Delete(j);
    hresp_free(&r);

    /* global attention: {"cls": true} is the automatic choice for BERT: the same numbers */
    double plain[32];
    char hv[64];
    embed_one(s.port, text, "{\"normalize\":false}", plain, H, NULL, NULL, 0);
    embed_one(s.port, text, "{\"normalize\":false,\"global_attention\":{\"cls\":true}}", v, H,
              "x-global-tokens", hv, sizeof hv);
    ck_assert_str_eq(hv, "1");
    ck_assert(vec_rel_err(v, plain, H) == 0);
    /* ... and extra global tokens are what the engine computes with that mask */
    embed_one(s.port, text,
              "{\"normalize\":false,\"global_attention\":{\"cls\":true,\"token_indices\":[3],"
              "\"spans\":[[5,7]]}}",
              v, H, "x-global-tokens", hv, sizeof hv);
    ck_assert_str_eq(hv, "4");
    int glob[256] = {0};
    glob[0] = glob[3] = glob[5] = glob[6] = 1;
    double *hg = runner_hidden("embed/st_tiny", ids, n, glob, H);
    pool(hg, n, H, 0, 0, want);
    ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "global: %g", vec_rel_err(v, want, H));
    free(hg);

    /* long_document: windows of `window` tokens (specials included) every `stride` content
     * tokens, each pooled, averaged by tokens, then normalised */
    const int W = 8, S = 3, C = W - 2, content = n - 2;
    double acc[32] = {0}, wsum = 0;
    int nwin = 0;
    for (int c0 = 0;; c0 += S) {
        int c1 = c0 + C < content ? c0 + C : content, win[16], k = 0;
        win[k++] = ids[0];
        for (int t = c0; t < c1; t++)
            win[k++] = ids[1 + t];
        win[k++] = ids[n - 1];
        double *hw = runner_hidden("embed/st_tiny", win, k, NULL, H);
        pool(hw, k, H, 0, 0, want);
        free(hw);
        for (int d = 0; d < H; d++)
            acc[d] += k * want[d];
        wsum += k;
        nwin++;
        if (c1 == content) break;
    }
    double ss = 0;
    for (int d = 0; d < H; d++)
        ss += (acc[d] / wsum) * (acc[d] / wsum);
    for (int d = 0; d < H; d++)
        want[d] = acc[d] / wsum / sqrt(ss);
    embed_one(s.port, text,
              "{\"long_document\":{\"window\":8,\"stride\":3,\"aggregate\":\"mean\"}}", v, H,
              "x-long-document-windows", hv, sizeof hv);
    ck_assert_int_eq(atoi(hv), nwin);
    ck_assert_msg(vec_rel_err(v, want, H) <= 1e-5, "long_document: %g", vec_rel_err(v, want, H));
    /* a window that holds the whole text: exactly the plain embedding */
    embed_one(s.port, text, "{\"long_document\":{\"window\":1000}}", v, H, NULL, NULL, 0);
    embed_one(s.port, text, NULL, want, H, NULL, NULL, 0);
    ck_assert(vec_rel_err(v, want, H) == 0);
    free(h);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

START_TEST(text_pipelines)
{
    server s;
    text_server(&s, NULL);
    cJSON *exp = fixture_json("embed/pipelines.json");
    hresp r;

    /* /predict: a batch, then one pair; labels sorted by score as TEI does */
    const cJSON *pr = cJSON_GetObjectItem(exp, "predict");
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(pr, "inputs"), 1));
    post_json(s.port, "/predict", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *j = hjson(&r);
    hresp_free(&r);
    for (int phase = 0; phase < 2; phase++) {
        const cJSON *wants = phase ? NULL : cJSON_GetObjectItem(pr, "outputs");
        int n = phase ? 1 : cJSON_GetArraySize(wants);
        for (int i = 0; i < n; i++) {
            const cJSON *g = phase ? j : cJSON_GetArrayItem(j, i);
            const cJSON *w =
                phase ? cJSON_GetObjectItem(pr, "pair_output") : cJSON_GetArrayItem(wants, i);
            ck_assert_int_eq(cJSON_GetArraySize(g), cJSON_GetArraySize(w));
            for (int k = 0; k < cJSON_GetArraySize(w); k++) {
                const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
                ck_assert_str_eq(cJSON_GetObjectItem(gk, "label")->valuestring,
                                 cJSON_GetObjectItem(wk, "label")->valuestring);
                ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                               cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-5);
            }
        }
        if (phase) break;
        cJSON_Delete(j);
        b = cJSON_CreateObject();
        cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(pr, "pair"), 1));
        post_json(s.port, "/predict", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        j = hjson(&r);
        hresp_free(&r);
    }
    cJSON_Delete(j);

    /* /token_classify: the pipeline's entities (aggregation none, "O" ignored) */
    const cJSON *tc = cJSON_GetObjectItem(exp, "token_classify");
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(tc, "inputs"), 1));
    post_json(s.port, "/token_classify", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = hjson(&r);
    hresp_free(&r);
    const cJSON *wants = cJSON_GetObjectItem(tc, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        const cJSON *g = cJSON_GetArrayItem(j, i), *w = cJSON_GetArrayItem(wants, i);
        ck_assert_int_eq(cJSON_GetArraySize(g), cJSON_GetArraySize(w));
        for (int k = 0; k < cJSON_GetArraySize(w); k++) {
            const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
            static const char *const strs[] = {"entity", "word"}, *const ints[] = {"index", "start",
                                                                                   "end"};
            for (int f = 0; f < 2; f++)
                ck_assert_str_eq(cJSON_GetObjectItem(gk, strs[f])->valuestring,
                                 cJSON_GetObjectItem(wk, strs[f])->valuestring);
            for (int f = 0; f < 3; f++)
                ck_assert_int_eq(cJSON_GetObjectItem(gk, ints[f])->valueint,
                                 cJSON_GetObjectItem(wk, ints[f])->valueint);
            ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                           cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-5);
        }
    }
    cJSON_Delete(j);

    /* /fill_mask: top 5 by score, token_str = decode([id]), sequence with the mask filled */
    const cJSON *fm = cJSON_GetObjectItem(exp, "fill_mask");
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(fm, "inputs"), 1));
    post_json(s.port, "/fill_mask", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    j = hjson(&r);
    hresp_free(&r);
    wants = cJSON_GetObjectItem(fm, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        const cJSON *g = cJSON_GetArrayItem(j, i), *w = cJSON_GetArrayItem(wants, i);
        ck_assert_int_eq(cJSON_GetArraySize(g), 5);
        for (int k = 0; k < 5; k++) {
            const cJSON *gk = cJSON_GetArrayItem(g, k), *wk = cJSON_GetArrayItem(w, k);
            ck_assert_int_eq(cJSON_GetObjectItem(gk, "token")->valueint,
                             cJSON_GetObjectItem(wk, "token")->valueint);
            ck_assert_str_eq(cJSON_GetObjectItem(gk, "token_str")->valuestring,
                             cJSON_GetObjectItem(wk, "token_str")->valuestring);
            ck_assert_str_eq(cJSON_GetObjectItem(gk, "sequence")->valuestring,
                             cJSON_GetObjectItem(wk, "sequence")->valuestring);
            ck_assert(fabs(cJSON_GetObjectItem(gk, "score")->valuedouble -
                           cJSON_GetObjectItem(wk, "score")->valuedouble) <= 1e-6);
        }
    }
    cJSON_Delete(j);

    /* /answer: the QA pipeline's span, character offsets into the context */
    const cJSON *qa = cJSON_GetObjectItem(exp, "answer");
    wants = cJSON_GetObjectItem(qa, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(wants); i++) {
        b = cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(qa, "inputs"), i), 1);
        post_json(s.port, "/answer", b, &r);
        ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
        j = hjson(&r);
        hresp_free(&r);
        const cJSON *w = cJSON_GetArrayItem(wants, i);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "answer")->valuestring,
                         cJSON_GetObjectItem(w, "answer")->valuestring);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "start")->valueint,
                         cJSON_GetObjectItem(w, "start")->valueint);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "end")->valueint,
                         cJSON_GetObjectItem(w, "end")->valueint);
        double gs = cJSON_GetObjectItem(j, "score")->valuedouble,
               ws = cJSON_GetObjectItem(w, "score")->valuedouble;
        ck_assert_msg(fabs(gs - ws) <= 1e-4 * ws, "answer %d score %g vs %g", i, gs, ws);
        const cJSON *ls = cJSON_GetObjectItem(j, "longserve");
        ck_assert_int_eq(cJSON_GetObjectItem(ls, "tokens_used")->valueint,
                         cJSON_GetArraySize(cJSON_GetObjectItem(w, "ids")));
        cJSON_Delete(j);
    }
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* An error status and a substring of its body, then the same server answers health. */
static void text_expect(int port, const char *path, const char *body, int status,
                        const char *needle)
{
    hresp r;
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == status, "%s %.80s: %d (want %d) %s", path, body, r.status, status,
                  r.body);
    ck_assert_msg(strstr(r.body, needle) != NULL, "%s: '%s' not in %s", path, needle, r.body);
    if (status >= 400) {
        cJSON *j = hjson(&r);
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        if (strncmp(path, "/v1/", 4) == 0)
            ck_assert(cJSON_IsString(cJSON_GetObjectItem(e, "message")) &&
                      cJSON_IsString(cJSON_GetObjectItem(e, "type")));
        else
            ck_assert(cJSON_IsString(e) && cJSON_IsString(cJSON_GetObjectItem(j, "error_type")));
        cJSON_Delete(j);
    }
    hresp_free(&r);
}

START_TEST(text_errors)
{
    const char *extra[] = {"--max-global-tokens", "4", "--max-input-tokens", "600", NULL};
    server s;
    text_server(&s, extra);
    char lng[4096];
    int k = snprintf(lng, sizeof lng, "{\"inputs\":\"");
    for (int i = 0; i < 150; i++)
        k += snprintf(lng + k, sizeof lng - (size_t)k, "word%d ", i);
    snprintf(lng + k, sizeof lng - (size_t)k, "\"");
    char body[4200];

    text_expect(s.port, "/embed", "{\"inputs\":\"\"}", 400, "cannot be empty");
    text_expect(s.port, "/embed", "{\"inputs\":[]}", 400, "cannot be empty");
    text_expect(s.port, "/embed", "{\"inputs\":[\"a\",3]}", 400, "inputs[1]");
    text_expect(s.port, "/embed", "{\"inputs\":5}", 400, "must be a string");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"normalize\":\"yes\"}", 400, "normalize");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\"", 400, "not valid JSON");
    text_expect(s.port, "/embed", "{\"inputs\":\"ab\xc3\x28\"}", 400, "byte offset 13");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"truncate\":\"middle\"}", 400, "truncate");
    /* \u0000 would end the C string there (cJSON), silently cutting the text; an escaped
     * backslash then the text u0000 is fine */
    text_expect(s.port, "/embed", "{\"inputs\":\"ab\\u0000 anything\"}", 400,
                "`inputs`: NUL (\\\\u0000) in a string is not accepted");
    text_expect(s.port, "/tokenize", "{\"inputs\":[\"a\",\"b\\u0000c\"]}", 400,
                "`inputs[1]`: NUL (\\\\u0000)");
    text_expect(s.port, "/tokenize", "{\"inputs\":\"raw\x01byte\"}", 400, "raw control byte");
    text_expect(s.port, "/tokenize", "{\"inputs\":\"ab\\\\u0000\"}", 200, "u0000");
    text_expect(s.port, "/embed", "{\"inputs\":\"ab\\\\u0000\"}", 200, "[[");
    /* too many tokens: 413 with the counts, unless truncated (reported in headers) */
    snprintf(body, sizeof body, "%s}", lng);
    text_expect(s.port, "/predict", body, 413, "at most 128");
    /* /tokenize runs no engine but is bounded by --max-input-tokens all the same */
    k = snprintf(body, sizeof body, "{\"inputs\":[\"a b\",\"");
    for (int i = 0; i < 700; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "a ");
    snprintf(body + k, sizeof body - (size_t)k, "\"]}");
    text_expect(s.port, "/tokenize", body, 413, "tokens in inputs 0..1; the limit is 600");
    text_expect(s.port, "/tokenize", "{\"inputs\":\"a b c\"}", 200, "\"id\"");
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 0);
    snprintf(body, sizeof body, "%s,\"truncate\":true}", lng);
    hresp r;
    hreq(s.port, "POST", "/predict", NULL, body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(metric(s.port, "longserve_truncated_requests_total") == 1);
    char hv[64];
    ck_assert(hheader(&r, "x-truncated", hv, sizeof hv) && strcmp(hv, "1") == 0);
    ck_assert(hheader(&r, "x-tokens-used", hv, sizeof hv) && strcmp(hv, "128") == 0);
    ck_assert(hheader(&r, "x-tokens-in", hv, sizeof hv) && atoi(hv) > 128);
    hresp_free(&r);
    /* global attention: positions in range, at most --max-global-tokens */
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b\",\"global_attention\":{\"token_indices\":[9]}}", 422,
                "outside the 4 tokens");
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b c d e f\",\"global_attention\":{\"spans\":[[0,6]]}}", 422,
                "too many global tokens");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"global_attention\":{\"spans\":[[3,1]]}}",
                422, "after end");
    /* models: unknown, wrong task, without a tokenizer */
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"model\":\"nope\"}", 422, "not served");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"model\":\"lf_base\"}", 422, "no tokenizer");
    text_expect(s.port, "/predict", "{\"inputs\":\"a\",\"model\":\"st_tiny\"}", 422,
                "text-classification");
    text_expect(s.port, "/fill_mask", "{\"inputs\":\"no mask here\"}", 422, "mask tokens");
    text_expect(s.port, "/answer", "{\"question\":\"who?\"}", 400, "context");
    text_expect(s.port, "/decode", "{\"ids\":[-1]}", 400, "non-negative");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"long_document\":{\"window\":2}}", 422,
                "window");
    text_expect(s.port, "/embed",
                "{\"inputs\":\"a b c d e f g h\",\"long_document\":{\"window\":6,\"stride\":5}}",
                422, "stride");
    /* OpenAI's error shape on /v1/ */
    text_expect(s.port, "/v1/embeddings", "{\"input\":\"\",\"model\":\"st_tiny\"}", 400,
                "invalid_request_error");
    text_expect(s.port, "/v1/embeddings", "{\"input\":[[1,2,99999]]}", 422,
                "outside the vocabulary");
    /* 33 inputs: over --max-client-batch-size */
    k = snprintf(body, sizeof body, "{\"inputs\":[");
    for (int i = 0; i < 33; i++)
        k += snprintf(body + k, sizeof body - (size_t)k, "%s\"x\"", i ? "," : "");
    snprintf(body + k, sizeof body - (size_t)k, "]}");
    text_expect(s.port, "/embed", body, 413, "batch size 33");
    /* the server is unharmed and serves the next request */
    expect_healthy(s.port);
    text_expect(s.port, "/embed", "{\"inputs\":\"still fine\"}", 200, "[[");
    text_expect(s.port, "/decode", "{\"ids\":[[2,5],[3]],\"skip_special_tokens\":false}", 200,
                "[\"");
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* ---- OpenAI and Hugging Face clients, unmodified ------------------------------------------ */

/* POST body to path; the status must be `status`; the body parsed (NULL for a non-200 when
 * the caller does not want it). */
static cJSON *post_expect(int port, const char *path, const char *body, int status)
{
    hresp r;
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == status, "%s %.120s: %d (want %d) %s", path, body, r.status, status,
                  r.body);
    spec_expect("POST", path, &r);
    cJSON *j = hjson(&r);
    hresp_free(&r);
    return j;
}

/* The body of a 200 as text (malloc'd), to compare two routes byte for byte. */
static char *post_body(int port, const char *path, const char *body)
{
    hresp r;
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == 200, "%s %.120s: %d %s", path, body, r.status, r.body);
    spec_expect("POST", path, &r);
    char *b = strdup(r.body);
    hresp_free(&r);
    return b;
}

static cJSON *get_expect(int port, const char *path, int status)
{
    hresp r;
    hreq(port, "GET", path, NULL, NULL, &r);
    ck_assert_msg(r.status == status, "GET %s: %d (want %d) %s", path, r.status, status, r.body);
    /* the spec's {model} is one segment: ids with slashes ("org/name") are checked by hand */
    if (strncmp(path, "/v1/models/", 11) != 0 || !strchr(path + 11, '/'))
        spec_expect("GET", path, &r);
    cJSON *j = hjson(&r);
    hresp_free(&r);
    return j;
}

static void expect_model_not_found(const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(e, "code")->valuestring, "model_not_found");
    ck_assert_str_eq(cJSON_GetObjectItem(e, "type")->valuestring, "invalid_request_error");
}

static void l2(double *v, int n)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += v[i] * v[i];
    for (int i = 0; i < n; i++)
        v[i] /= fmax(sqrt(ss), 1e-12);
}

START_TEST(text_openai_models)
{
    const char *extra[] = {"--served-model-name", "text-embedding-3-small=st_tiny", NULL};
    server s;
    text_server(&s, extra);
    const char *text = "Contracts, papers and clinical notes are long.";

    /* the list holds the models and the alias; each is a model object, others 404 */
    cJSON *j = get_expect(s.port, "/v1/models", 200);
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    ck_assert_int_eq(cJSON_GetArraySize(data), 7);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 6), "id")->valuestring,
                     "text-embedding-3-small");
    cJSON_Delete(j);
    static const char *const ids[] = {"text-embedding-3-small", "st_tiny", "seqcls"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/models/%s", ids[i]);
        j = get_expect(s.port, path, 200);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, ids[i]);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "object")->valuestring, "model");
        cJSON_Delete(j);
    }
    static const char *const unknown[] = {"/v1/models/nope", "/v1/models/org/nope"};
    for (int i = 0; i < 2; i++) {
        j = get_expect(s.port, unknown[i], 404);
        expect_model_not_found(j);
        cJSON_Delete(j);
    }
    /* /info shows the option */
    j = get_expect(s.port, "/info", 200);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "served_model_name")->valuestring,
                     "text-embedding-3-small=st_tiny");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "accept_any_model_name")));
    cJSON_Delete(j);

    /* the alias computes what the model computes, and the response keeps the alias */
    double plain[32], v[32];
    embed_one(s.port, text, "{\"normalize\":false}", plain, 32, NULL, NULL, 0);
    char body[512];
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"model\":\"text-embedding-3-small\"}", text);
    j = post_expect(s.port, "/v1/embeddings", body, 200);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "text-embedding-3-small");
    json_vec(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding"), v,
        32);
    double want[32];
    memcpy(want, plain, sizeof want);
    l2(want, 32);
    ck_assert_msg(vec_rel_err(v, want, 32) <= 1e-6, "alias: %g", vec_rel_err(v, want, 32));
    cJSON_Delete(j);
    /* an unknown model: OpenAI's 404 model_not_found (TEI's routes keep 422) */
    j = post_expect(s.port, "/v1/embeddings", "{\"input\":\"a\",\"model\":\"gpt-nope\"}", 404);
    expect_model_not_found(j);
    cJSON_Delete(j);

    /* dimensions: the first values, then normalised (sentence-transformers' truncate_dim);
     * /embed with normalize false: exactly the first values */
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"dimensions\":8}", text);
    j = post_expect(s.port, "/v1/embeddings", body, 200);
    json_vec(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding"), v,
        8);
    memcpy(want, plain, sizeof want);
    l2(want, 8);
    ck_assert_msg(vec_rel_err(v, want, 8) <= 1e-6, "dimensions: %g", vec_rel_err(v, want, 8));
    cJSON_Delete(j);
    embed_one(s.port, text, "{\"normalize\":false,\"dimensions\":5}", v, 5, NULL, NULL, 0);
    ck_assert(vec_rel_err(v, plain, 5) == 0);
    embed_one(s.port, text, "{\"dimensions\":32}", v, 32, NULL, NULL, 0);
    memcpy(want, plain, sizeof want);
    l2(want, 32);
    ck_assert(vec_rel_err(v, want, 32) <= 1e-6);
    text_expect(s.port, "/v1/embeddings", "{\"input\":\"a\",\"dimensions\":33}", 422, "dimensions");
    text_expect(s.port, "/v1/embeddings", "{\"input\":\"a\",\"dimensions\":0}", 422, "dimensions");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"dimensions\":33}", 422, "dimensions");
    text_expect(s.port, "/embed", "{\"inputs\":\"a\",\"dimensions\":-1}", 422, "dimensions");
    ck_assert_int_eq(server_stop(&s, 30), 0);

    /* --accept-any-model-name with one model: any name is it, and is echoed */
    const char *const one[] = {"st_tiny=embed/st_tiny", NULL};
    const char *any[] = {"--accept-any-model-name", NULL};
    server_start_models(&s, one, any);
    j = post_expect(s.port, "/v1/embeddings",
                    "{\"input\":\"a\",\"model\":\"text-embedding-ada-002\"}", 200);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "model")->valuestring, "text-embedding-ada-002");
    cJSON_Delete(j);
    j = get_expect(s.port, "/v1/models/BAAI/bge-small-en-v1.5", 200);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "BAAI/bge-small-en-v1.5");
    cJSON_Delete(j);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* The label names of a served model, from /info. */
static cJSON *model_labels(int port, const char *model)
{
    cJSON *j = get_expect(port, "/info", 200), *out = NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "models"))
    {
        if (strcmp(cJSON_GetObjectItem(m, "model_id")->valuestring, model) == 0)
            out = cJSON_Duplicate(cJSON_GetObjectItem(m, "labels"), 1);
    }
    cJSON_Delete(j);
    ck_assert(out != NULL);
    return out;
}

/* The score of label `label` in a /predict list. */
static double label_score(const cJSON *list, const char *label)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (strcmp(cJSON_GetObjectItem(e, "label")->valuestring, label) == 0)
            return cJSON_GetObjectItem(e, "score")->valuedouble;
    }
    ck_abort_msg("no label %s", label);
    return 0;
}

START_TEST(text_tei_routes)
{
    server s;
    text_server(&s, NULL);
    static const char *const sents[] = {"Long documents need sparse attention.",
                                        "Sparse attention reads long documents.",
                                        "The weather was fine on Tuesday."};

    /* /similarity = the cosine of the /embed vectors */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"inputs\":{\"source_sentence\":\"%s\",\"sentences\":[\"%s\",\"%s\",\"%s\"]}}",
             sents[0], sents[0], sents[1], sents[2]);
    cJSON *j = post_expect(s.port, "/similarity", body, 200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    double e0[32], ei[32];
    embed_one(s.port, sents[0], NULL, e0, 32, NULL, NULL, 0);
    for (int i = 0; i < 3; i++) {
        embed_one(s.port, sents[i], NULL, ei, 32, NULL, NULL, 0);
        double dot = 0;
        for (int d = 0; d < 32; d++)
            dot += e0[d] * ei[d];
        double got = cJSON_GetArrayItem(j, i)->valuedouble;
        ck_assert_msg(fabs(got - dot) <= 1e-5, "similarity %d: %g vs %g", i, got, dot);
    }
    cJSON_Delete(j);
    char *root = post_body(s.port, "/", body); /* an embedding model's root: the same */
    char *direct = post_body(s.port, "/similarity", body);
    ck_assert_str_eq(root, direct);
    free(root);
    free(direct);

    /* /rerank: the cross-encoder's (query, text) scores best first; raw: the last label's
     * /predict logit of the pair; else its /predict probability */
    cJSON *labels = model_labels(s.port, "seqcls");
    const char *last = cJSON_GetArrayItem(labels, cJSON_GetArraySize(labels) - 1)->valuestring;
    for (int raw = 0; raw < 2; raw++) {
        snprintf(body, sizeof body,
                 "{\"query\":\"%s\",\"texts\":[\"%s\",\"%s\",\"%s\"],\"raw_scores\":%s,"
                 "\"return_text\":true}",
                 sents[0], sents[0], sents[1], sents[2], raw ? "true" : "false");
        j = post_expect(s.port, "/rerank", body, 200);
        ck_assert_int_eq(cJSON_GetArraySize(j), 3);
        int seen = 0;
        for (int k = 0; k < 3; k++) {
            const cJSON *rk = cJSON_GetArrayItem(j, k);
            const int idx = cJSON_GetObjectItem(rk, "index")->valueint;
            const double sc = cJSON_GetObjectItem(rk, "score")->valuedouble;
            ck_assert(idx >= 0 && idx < 3 && !(seen & 1 << idx));
            seen |= 1 << idx;
            ck_assert_str_eq(cJSON_GetObjectItem(rk, "text")->valuestring, sents[idx]);
            if (k)
                ck_assert(sc <=
                          cJSON_GetObjectItem(cJSON_GetArrayItem(j, k - 1), "score")->valuedouble);
            char pb[512];
            snprintf(pb, sizeof pb, "{\"inputs\":[\"%s\",\"%s\"],\"raw_scores\":%s}", sents[0],
                     sents[idx], raw ? "true" : "false");
            cJSON *p = post_expect(s.port, "/predict", pb, 200);
            ck_assert_msg(fabs(label_score(p, last) - sc) <= 1e-6, "rerank %d: %g vs %g", idx, sc,
                          label_score(p, last));
            cJSON_Delete(p);
        }
        cJSON_Delete(j);
    }
    /* without return_text no text; a classifier's root with {"query", "texts"} reranks */
    snprintf(body, sizeof body, "{\"query\":\"q\",\"texts\":[\"a\",\"b\"],\"model\":\"seqcls\"}");
    root = post_body(s.port, "/", body);
    direct = post_body(s.port, "/rerank", body);
    ck_assert_str_eq(root, direct);
    ck_assert(strstr(direct, "\"text\"") == NULL);
    free(root);
    free(direct);
    cJSON_Delete(labels);

    /* /predict: top_k, function_to_apply, and the Inference API's "parameters" (a list per
     * input, as huggingface_hub's text_classification reads it) */
    j = post_expect(s.port, "/predict", "{\"inputs\":\"a b c\",\"top_k\":2}", 200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    char *raw = post_body(s.port, "/predict", "{\"inputs\":\"a b c\",\"raw_scores\":true}");
    char *none =
        post_body(s.port, "/predict", "{\"inputs\":\"a b c\",\"function_to_apply\":\"none\"}");
    ck_assert_str_eq(raw, none);
    free(raw);
    free(none);
    j = post_expect(s.port, "/predict", "{\"inputs\":\"a b c\",\"function_to_apply\":\"sigmoid\"}",
                    200);
    cJSON *logits =
        post_expect(s.port, "/predict", "{\"inputs\":\"a b c\",\"raw_scores\":true}", 200);
    for (int k = 0; k < cJSON_GetArraySize(j); k++) {
        const cJSON *e = cJSON_GetArrayItem(j, k);
        const double x = label_score(logits, cJSON_GetObjectItem(e, "label")->valuestring);
        ck_assert(fabs(cJSON_GetObjectItem(e, "score")->valuedouble - 1 / (1 + exp(-x))) <= 1e-6);
    }
    cJSON_Delete(j);
    cJSON_Delete(logits);
    j = post_expect(s.port, "/predict", "{\"inputs\":\"a b c\",\"parameters\":{\"top_k\":1}}", 200);
    ck_assert(cJSON_GetArraySize(j) == 1 && cJSON_GetArraySize(cJSON_GetArrayItem(j, 0)) == 1);
    cJSON_Delete(j);
    text_expect(s.port, "/predict", "{\"inputs\":\"a\",\"function_to_apply\":\"relu\"}", 422,
                "function_to_apply");

    /* POST / and /invocations answer as the chosen model's route, Inference API bodies too */
    static const struct {
        const char *body, *route;
    } roots[] = {
        {"{\"inputs\":\"a long text\"}", "/embed"}, /* the first model: st_tiny */
        {"{\"inputs\":\"a long text\",\"model\":\"seqcls\",\"parameters\":{}}", "/predict"},
        {"{\"inputs\":\"a long text\",\"model\":\"tokcls\",\"parameters\":{}}", "/token_classify"},
        {"{\"inputs\":\"a <mask> text\",\"model\":\"mlm\",\"parameters\":{\"top_k\":2}}",
         "/fill_mask"},
        {"{\"inputs\":{\"question\":\"what?\",\"context\":\"a long text\"},\"model\":\"qa\","
         "\"parameters\":{\"max_answer_len\":3}}",
         "/answer"},
    };
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        char *want_body = post_body(s.port, roots[i].route, roots[i].body);
        for (int inv = 0; inv < 2; inv++) {
            char *got = post_body(s.port, inv ? "/invocations" : "/", roots[i].body);
            ck_assert_msg(strcmp(got, want_body) == 0, "%s: %s vs %s", roots[i].route, got,
                          want_body);
            free(got);
        }
        free(want_body);
    }
    j = post_expect(s.port, "/fill_mask",
                    "{\"inputs\":\"a <mask> text\",\"parameters\":{\"top_k\":2}}", 200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);

    /* errors name what is wrong */
    text_expect(s.port, "/rerank", "{\"query\":\"q\",\"texts\":[\"a\"],\"model\":\"st_tiny\"}", 422,
                "text-classification");
    text_expect(s.port, "/rerank", "{\"query\":\"q\",\"texts\":[]}", 400, "texts");
    text_expect(s.port, "/similarity",
                "{\"inputs\":{\"source_sentence\":\"a\",\"sentences\":[\"b\"]},\"model\":"
                "\"seqcls\"}",
                422, "feature-extraction");
    text_expect(s.port, "/similarity", "{\"inputs\":\"a\"}", 400, "source_sentence");
    text_expect(s.port, "/fill_mask",
                "{\"inputs\":\"a <mask>\",\"parameters\":{\"targets\":[\"x\"]}}", 422, "targets");
    text_expect(s.port, "/", "{\"inputs\":\"a\",\"model\":\"nope\"}", 422, "not served");
    expect_healthy(s.port);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* How each response was computed: x-longserve-attention on every text route, the same in
 * the body's "longserve" object where the shape has one; tokens count the input once
 * (usage.prompt_tokens too), not long_document's overlapping windows. st_tiny is a BERT
 * trained on 64 positions: shorter inputs attend fully, longer ones slide (window 512). */
static void attention_header(int port, const char *path, const char *body, const char *want)
{
    hresp r;
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == 200, "%s: %d %s", path, r.status, r.body);
    spec_expect("POST", path, &r);
    char hv[128];
    ck_assert_msg(hheader(&r, "x-longserve-attention", hv, sizeof hv), "%s: no header", path);
    ck_assert_msg(strcmp(hv, want) == 0, "%s %.60s: '%s', want '%s'", path, body, hv, want);
    hresp_free(&r);
}

START_TEST(text_attention_report)
{
    server s;
    text_server(&s, NULL);
    char lng[1024], body[2400], want[128];
    int k = 0;
    for (int i = 0; i < 100; i++)
        k += snprintf(lng + k, sizeof lng - (size_t)k, "%sthe", i ? " " : "");
    int ids[256];
    const int nshort = tokenize_ids(s.port, "a short text", ids, 256);
    const int nlong = tokenize_ids(s.port, lng, ids, 256);
    ck_assert_int_lt(nshort, 64);
    ck_assert_int_gt(nlong, 64);

    snprintf(want, sizeof want, "full; tokens=%d; windows=1", nshort);
    attention_header(s.port, "/embed", "{\"inputs\":\"a short text\"}", want);
    attention_header(s.port, "/embed_all", "{\"inputs\":\"a short text\"}", want);
    snprintf(body, sizeof body, "{\"inputs\":\"%s\"}", lng);
    snprintf(want, sizeof want, "sliding_window; window=512; tokens=%d; windows=1", nlong);
    attention_header(s.port, "/embed", body, want);
    snprintf(body, sizeof body, "{\"inputs\":[\"a short text\",\"%s\"]}", lng);
    snprintf(want, sizeof want, "full+sliding_window; window=512; tokens=%d; windows=2",
             nshort + nlong);
    attention_header(s.port, "/embed", body, want);

    /* long_document: windows of 16 tokens attend fully; tokens and prompt_tokens count the
     * input once, x-tokens-used the windows' tokens */
    snprintf(body, sizeof body,
             "{\"input\":\"%s\",\"model\":\"st_tiny\",\"long_document\":{\"window\":16}}", lng);
    hresp r;
    hreq(s.port, "POST", "/v1/embeddings", "Content-Type: application/json\r\n", body, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    spec_expect("POST", "/v1/embeddings", &r);
    char hv[128];
    ck_assert(hheader(&r, "x-long-document-windows", hv, sizeof hv));
    const int nwin = atoi(hv);
    ck_assert_int_gt(nwin, 1);
    ck_assert(hheader(&r, "x-tokens-used", hv, sizeof hv));
    ck_assert_int_gt(atoi(hv), nlong); /* the windows overlap (stride: half a window) */
    ck_assert(hheader(&r, "x-compute-tokens", hv, sizeof hv));
    ck_assert_int_eq(atoi(hv), nlong);
    snprintf(want, sizeof want, "full; tokens=%d; windows=%d", nlong, nwin);
    ck_assert(hheader(&r, "x-longserve-attention", hv, sizeof hv));
    ck_assert_str_eq(hv, want);
    cJSON *j = hjson(&r);
    hresp_free(&r);
    const cJSON *usage = cJSON_GetObjectItem(j, "usage"), *ls = cJSON_GetObjectItem(j, "longserve");
    ck_assert_int_eq(cJSON_GetObjectItem(usage, "prompt_tokens")->valueint, nlong);
    ck_assert_int_eq(cJSON_GetObjectItem(usage, "total_tokens")->valueint, nlong);
    ck_assert_int_eq(cJSON_GetObjectItem(ls, "tokens")->valueint, nlong);
    ck_assert_int_eq(cJSON_GetObjectItem(ls, "windows")->valueint, nwin);
    ck_assert_str_eq(cJSON_GetObjectItem(ls, "attention")->valuestring, "full");
    ck_assert(cJSON_GetObjectItem(ls, "attention_window") == NULL);
    cJSON_Delete(j);
    /* without long_document the same text slides, and says its window */
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"model\":\"st_tiny\"}", lng);
    j = post_expect(s.port, "/v1/embeddings", body, 200);
    ls = cJSON_GetObjectItem(j, "longserve");
    ck_assert_int_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "prompt_tokens")->valueint, nlong);
    ck_assert_str_eq(cJSON_GetObjectItem(ls, "attention")->valuestring, "sliding_window");
    ck_assert_int_eq(cJSON_GetObjectItem(ls, "attention_window")->valueint, 512);
    cJSON_Delete(j);

    /* a Longformer model slides at every length, with its config's window; /answer says it
     * in the body too */
    j = post_expect(s.port, "/answer",
                    "{\"model\":\"qa\",\"question\":\"who?\",\"context\":\"john lives here\"}",
                    200);
    ls = cJSON_GetObjectItem(j, "longserve");
    ck_assert_str_eq(cJSON_GetObjectItem(ls, "attention")->valuestring, "sliding_window");
    ck_assert_int_gt(cJSON_GetObjectItem(ls, "attention_window")->valueint, 0);
    cJSON_Delete(j);
    /* /info says it per model: st_tiny attends fully up to its 64 trained positions */
    hreq(s.port, "GET", "/info", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    spec_expect("GET", "/info", &r);
    j = hjson(&r);
    hresp_free(&r);
    int seen = 0;
    const cJSON *mi;
    cJSON_ArrayForEach(mi, cJSON_GetObjectItem(j, "models"))
    {
        const char *id = cJSON_GetObjectItem(mi, "model_id")->valuestring;
        const int fa = cJSON_GetObjectItem(mi, "full_attention_tokens")->valueint;
        ck_assert_str_eq(cJSON_GetObjectItem(mi, "attention")->valuestring, "sliding_window");
        if (strcmp(id, "st_tiny") == 0) {
            ck_assert_int_eq(fa, 64);
            seen++;
        }
        if (strcmp(id, "qa") == 0) { /* a Longformer */
            ck_assert_int_eq(fa, 0);
            seen++;
        }
    }
    ck_assert_int_eq(seen, 2);
    cJSON_Delete(j);
    hreq(s.port, "POST", "/predict", "Content-Type: application/json\r\n",
         "{\"model\":\"seqcls\",\"inputs\":\"i like it\"}", &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert(hheader(&r, "x-longserve-attention", hv, sizeof hv));
    ck_assert_msg(strncmp(hv, "sliding_window; window=", 23) == 0 && strstr(hv, "; windows=1"),
                  "%s", hv);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* /embed of every text of a sentence-transformers fixture (embed/<file>) equals its
 * embedding to 1e-4 and /tokenize its ids; each text alone says it attended fully (the
 * default model's trained length is 512); returns the worst relative error. */
static double default_model_case(int port, const char *file)
{
    cJSON *exp = fixture_json(file);
    const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
    cJSON *b = cJSON_CreateObject(), *texts = cJSON_AddArrayToObject(b, "inputs");
    for (int i = 0; i < cJSON_GetArraySize(cases); i++)
        cJSON_AddItemToArray(
            texts, cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(cases, i), "text"), 1));
    hresp r;
    post_json(port, "/embed", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    double worst = 0;
    static int ids[600];
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        double e = json_rel_err(cJSON_GetArrayItem(got, i), cJSON_GetObjectItem(c, "embedding"));
        ck_assert_msg(e <= 1e-4, "%s text %d (%.30s): %g from sentence-transformers", file, i, text,
                      e);
        worst = fmax(worst, e);
        int n = tokenize_ids(port, text, ids, 600);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ck_assert_int_eq(n, cJSON_GetArraySize(want));
        for (int t = 0; t < n; t++)
            ck_assert_int_eq(ids[t], cJSON_GetArrayItem(want, t)->valueint);
        cJSON *one = cJSON_CreateObject();
        cJSON_AddStringToObject(one, "inputs", text);
        char *body = cJSON_PrintUnformatted(one), hv[128], attn[128];
        cJSON_Delete(one);
        hreq(port, "POST", "/embed", "Content-Type: application/json\r\n", body, &r);
        free(body);
        ck_assert(r.status == 200 && hheader(&r, "x-longserve-attention", hv, sizeof hv));
        snprintf(attn, sizeof attn, "full; tokens=%d; windows=1", n);
        ck_assert_str_eq(hv, attn);
        hresp_free(&r);
    }
    fprintf(stderr, "text_default_model: %s: %d texts, worst relative error %.3g\n", file,
            cJSON_GetArraySize(cases), worst);
    cJSON_Delete(got);
    cJSON_Delete(exp);
    return worst;
}

/* The default model (all-MiniLM-L6-v2, BERT trained on 512 positions): /embed equals
 * sentence-transformers to 1e-4 for texts of 8..256 tokens and of 300, 400 and 512 tokens
 * (full attention within the trained length; with Longformer attention at the default
 * window 512 it was 3e-2 at 300 and 6e-2 at 400 tokens). Skipped when models/ lacks it. */
START_TEST(text_default_model)
{
    char dir[512], path[800], model[900];
    snprintf(path, sizeof path, "%s/../../models/all-MiniLM-L6-v2/model.safetensors",
             fixture("", dir, sizeof dir));
    if (access(path, R_OK) != 0) {
        fprintf(stderr,
                "SKIP text_default_model: %s is absent (tools/fetch-default-model.sh "
                "fetches it)\n",
                path);
        return;
    }
    snprintf(model, sizeof model, "minilm=%s/../../models/all-MiniLM-L6-v2", dir);
    const char *const models[] = {model, NULL};
    const char *extra[] = {"--window", "512", NULL};
    server s;
    server_start_models(&s, models, extra);
    default_model_case(s.port, "embed/minilm_expected.json");
    default_model_case(s.port, "embed/minilm_long_expected.json");
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* /embed_sparse: the SPLADE vector (max over all tokens of log(1 + relu(logits))) of
 * Hugging Face's masked-LM logits (tools/make_sparse_prompt_fixtures.py) to 1e-4, as TEI
 * writes it (the non-zero values by increasing index); a model without a masked-LM head
 * answers 424 as TEI's. */
static void sparse_dense(const cJSON *list, double *out, int V)
{
    memset(out, 0, (size_t)V * sizeof *out);
    int last = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        int k = cJSON_GetObjectItem(e, "index")->valueint;
        double v = cJSON_GetObjectItem(e, "value")->valuedouble;
        ck_assert_msg(k > last && k < V, "index %d after %d (vocabulary %d)", k, last, V);
        ck_assert_msg(v > 0, "index %d has value %g: only non-zero values are sent", k, v);
        out[k] = v;
        last = k;
    }
}

/* Each response list against its case's "sparse" (the same non-zero indices, values to 1e-4):
 * the worst relative error. */
static double sparse_check(const cJSON *got, const cJSON *cases, const char *model)
{
    double worst = 0;
    ck_assert_int_eq(cJSON_GetArraySize(got), cJSON_GetArraySize(cases));
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        const int V = cJSON_GetObjectItem(c, "vocab_size")->valueint;
        double *a = malloc((size_t)V * sizeof *a), *w = malloc((size_t)V * sizeof *w);
        ck_assert(a && w);
        sparse_dense(cJSON_GetArrayItem(got, i), a, V);
        sparse_dense(cJSON_GetObjectItem(c, "sparse"), w, V);
        const double e = vec_rel_err(a, w, V);
        ck_assert_msg(e <= 1e-4, "%s input %d: /embed_sparse differs from HF's logits by %g", model,
                      i, e);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(got, i)),
                         cJSON_GetArraySize(cJSON_GetObjectItem(c, "sparse")));
        worst = fmax(worst, e);
        free(a);
        free(w);
    }
    return worst;
}

START_TEST(text_embed_sparse)
{
    server s;
    text_server(&s, NULL);
    cJSON *exp = fixture_json("embed/sparse_expected.json");
    const cJSON *cases = cJSON_GetObjectItem(exp, "cases");
    const int n = cJSON_GetArraySize(cases);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "inputs", case_texts(cases));
    cJSON_AddStringToObject(b, "model", "mlm");
    hresp r;
    post_json(s.port, "/embed_sparse", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    spec_expect("POST", "/embed_sparse", &r);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    ck_assert_int_eq(cJSON_GetArraySize(got), n);
    double worst = sparse_check(got, cases, "mlm");
    /* one string: a list of one, the same bytes as in the batch (batch invariance) */
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(
        b, "inputs", cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(cases, 0), "text"), 1));
    post_json(s.port, "/embed_sparse", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    cJSON *one = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(one), 1);
    char *x = cJSON_PrintUnformatted(cJSON_GetArrayItem(one, 0)),
         *y = cJSON_PrintUnformatted(cJSON_GetArrayItem(got, 0));
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
    cJSON_Delete(one);
    hresp_free(&r);
    /* a model without a masked-LM head: 424 backend, as TEI */
    hreq(s.port, "POST", "/embed_sparse", NULL, "{\"inputs\": \"a\", \"model\": \"st_tiny\"}", &r);
    ck_assert_msg(r.status == 424, "%d %s", r.status, r.body);
    spec_expect("POST", "/embed_sparse", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"error_type\":\"backend\""));
    hresp_free(&r);
    cJSON_Delete(got);
    ck_assert_int_eq(server_stop(&s, 30), 0);

    /* a BERT masked-LM head (bert_mlm: no tokenizer, token-id inputs; the window covers them) */
    static const char *const bert[] = {"bert_mlm=bert_mlm", NULL};
    const char *win[] = {"--window", "16", NULL};
    server_start_models(&s, bert, win);
    const cJSON *idc = cJSON_GetObjectItem(exp, "id_cases");
    b = cJSON_CreateObject();
    cJSON *ins = cJSON_AddArrayToObject(b, "inputs");
    for (int i = 0; i < cJSON_GetArraySize(idc); i++)
        cJSON_AddItemToArray(
            ins, cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetArrayItem(idc, i), "ids"), 1));
    post_json(s.port, "/embed_sparse", b, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    spec_expect("POST", "/embed_sparse", &r);
    got = hjson(&r);
    hresp_free(&r);
    worst = fmax(worst, sparse_check(got, idc, "bert_mlm"));
    fprintf(stderr, "text_embed_sparse: %d texts + %d id inputs, worst relative error %.3g\n", n,
            cJSON_GetArraySize(idc), worst);
    cJSON_Delete(got);
    cJSON_Delete(exp);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

/* prompt_name: sentence-transformers' encode(prompt_name=...)
 * (tools/make_sparse_prompt_fixtures.py) on /embed and /v1/embeddings to 1e-4, the
 * default_prompt_name without one, with the Pooling module's include_prompt false (the prompt's
 * tokens not pooled) and true; 422 for a name the model lacks or a model without prompts. */
static void prompt_case(int port, const char *route, const char *model, const char *prompt,
                        const cJSON *texts, const cJSON *want, double *worst)
{
    const int oai = strcmp(route, "/v1/embeddings") == 0;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, oai ? "input" : "inputs", cJSON_Duplicate(texts, 1));
    cJSON_AddStringToObject(b, "model", model);
    if (prompt[0]) cJSON_AddStringToObject(b, "prompt_name", prompt);
    hresp r;
    post_json(port, route, b, &r);
    ck_assert_msg(r.status == 200, "%s %s '%s': %d %s", route, model, prompt, r.status, r.body);
    spec_expect("POST", route, &r);
    cJSON *got = hjson(&r);
    hresp_free(&r);
    const cJSON *vecs = oai ? cJSON_GetObjectItem(got, "data") : got;
    ck_assert_int_eq(cJSON_GetArraySize(vecs), cJSON_GetArraySize(want));
    for (int i = 0; i < cJSON_GetArraySize(want); i++) {
        const cJSON *v = cJSON_GetArrayItem(vecs, i);
        if (oai) v = cJSON_GetObjectItem(v, "embedding");
        const double e = json_rel_err(v, cJSON_GetArrayItem(want, i));
        ck_assert_msg(e <= 1e-4, "%s %s prompt '%s' text %d: %g from sentence-transformers", route,
                      model, prompt, i, e);
        *worst = fmax(*worst, e);
    }
    cJSON_Delete(got);
}

START_TEST(text_prompts)
{
    static const char *const models[] = {"st_prompts=embed/st_prompts",
                                         "st_incl=embed/st_prompts_incl", "st_tiny=embed/st_tiny",
                                         NULL};
    server s;
    server_start_models(&s, models, NULL);
    static const char *const fix[][2] = {{"st_prompts", "embed/st_prompts/expected.json"},
                                         {"st_incl", "embed/st_prompts_incl/expected.json"}};
    double worst = 0;
    cJSON *first = NULL; /* st_prompts with its default prompt, and with no prompt at all */
    for (int f = 0; f < 2; f++) {
        cJSON *exp = fixture_json(fix[f][1]);
        const cJSON *texts = cJSON_GetObjectItem(exp, "texts");
        const cJSON *embs = cJSON_GetObjectItem(exp, "embeddings");
        const cJSON *e;
        cJSON_ArrayForEach(e, embs)
        {
            prompt_case(s.port, "/embed", fix[f][0], e->string, texts, e, &worst);
            prompt_case(s.port, "/v1/embeddings", fix[f][0], e->string, texts, e, &worst);
        }
        /* the default prompt ("query") is what no prompt_name gives; without a default, no
         * prompt at all (st_incl's "" differs from its "query") */
        const double d = json_rel_err(cJSON_GetArrayItem(cJSON_GetObjectItem(embs, ""), 0),
                                      cJSON_GetArrayItem(cJSON_GetObjectItem(embs, "query"), 0));
        ck_assert_msg(f == 0 ? d == 0 : d > 1e-3, "fixture %d: default vs query %g", f, d);
        if (f == 0) first = cJSON_Duplicate(cJSON_GetObjectItem(embs, "query"), 1);
        cJSON_Delete(exp);
    }
    /* include_prompt false and true give different vectors for the same prompt */
    cJSON *incl = fixture_json("embed/st_prompts_incl/expected.json");
    const double d =
        json_rel_err(cJSON_GetArrayItem(first, 0),
                     cJSON_GetArrayItem(
                         cJSON_GetObjectItem(cJSON_GetObjectItem(incl, "embeddings"), "query"), 0));
    ck_assert_msg(d > 1e-3, "include_prompt false and true agree (%g): the prompt was pooled", d);
    cJSON_Delete(incl);
    cJSON_Delete(first);
    /* 422: a name the model does not have; a model without prompts; ids with a prompt_name */
    static const char *const bad[][2] = {
        {"/embed", "{\"inputs\": \"a\", \"model\": \"st_prompts\", \"prompt_name\": \"nope\"}"},
        {"/embed", "{\"inputs\": \"a\", \"model\": \"st_tiny\", \"prompt_name\": \"query\"}"},
        {"/v1/embeddings",
         "{\"input\": \"a\", \"model\": \"st_tiny\", \"prompt_name\": \"query\"}"},
        {"/embed",
         "{\"inputs\": [[2, 64, 3]], \"model\": \"st_prompts\", \"prompt_name\": \"query\"}"},
        /* late chunking's character spans would be shifted by the (default) prompt */
        {"/embed", "{\"inputs\": \"a b\", \"model\": \"st_prompts\", \"chunks\": [[0, 1]]}"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        hresp r;
        hreq(s.port, "POST", bad[k][0], NULL, bad[k][1], &r);
        ck_assert_msg(r.status == 422, "%s %s: %d %s", bad[k][0], bad[k][1], r.status, r.body);
        ck_assert_ptr_nonnull(strstr(r.body, k == 3 ? "token ids" : "prompt"));
        hresp_free(&r);
    }
    hresp r; /* a prompt_name that is not a string: 400 */
    hreq(s.port, "POST", "/embed", NULL, "{\"inputs\": \"a\", \"prompt_name\": 3}", &r);
    ck_assert_msg(r.status == 400, "%d %s", r.status, r.body);
    hresp_free(&r);
    fprintf(stderr, "text_prompts: worst relative error %.3g\n", worst);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_text");
    TCase *tc = tcase_create("text");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, text_embed_sentence_transformers);
    tcase_add_test(tc, text_embed_equals_engine);
    tcase_add_test(tc, text_pipelines);
    tcase_add_test(tc, text_errors);
    tcase_add_test(tc, text_openai_models);
    tcase_add_test(tc, text_tei_routes);
    tcase_add_test(tc, text_attention_report);
    tcase_add_test(tc, text_default_model);
    tcase_add_test(tc, text_embed_sparse);
    tcase_add_test(tc, text_prompts);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
