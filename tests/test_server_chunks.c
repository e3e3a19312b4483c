/* longserve end to end, late chunking ("chunks" on /embed, /v1/embeddings and /): every chunk
 * vector equal to Hugging Face's last_hidden_state of the whole document (or of its
 * long_document windows) pooled over the chunk's tokens (tests/fixtures/chunks/cases.json,
 * tools/make_chunk_fixtures.py), on a Longformer and on a BERT model served with Longformer
 * attention; the edge cases and errors; the cost of a chunked request. Harness:
 * tests/server_harness.h. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server_harness.h"

static const char *model_dir(const char *model)
{
    return strcmp(model, "lf_tok") == 0 ? "lf_tok=chunks/lf_tok" : "st_tiny=embed/st_tiny";
}

/* The flags of a case as a NULL-terminated list (pointers into the case). */
static void case_flags(const cJSON *c, const char **flags, int cap)
{
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(c, "flags"))
    {
        ck_assert(n < cap - 1);
        flags[n++] = f->valuestring;
    }
    flags[n] = NULL;
}

/* Compares one input's answer (an /embed object or an OpenAI data item) with the reference;
 * returns the worst relative error of its vectors. */
static double check_input(const char *name, int i, const cJSON *got, const cJSON *want)
{
    double worst =
        json_rel_err(cJSON_GetObjectItem(got, "embedding"), cJSON_GetObjectItem(want, "embedding"));
    ck_assert_msg(worst <= 1e-4, "%s input %d: document vector %g from HF", name, i, worst);
    const cJSON *gc = cJSON_GetObjectItem(got, "chunks"), *wc = cJSON_GetObjectItem(want, "chunks");
    ck_assert_msg(cJSON_GetArraySize(gc) == cJSON_GetArraySize(wc),
                  "%s input %d: %d chunks, not %d", name, i, cJSON_GetArraySize(gc),
                  cJSON_GetArraySize(wc));
    int ncut = 0;
    for (int k = 0; k < cJSON_GetArraySize(wc); k++) {
        const cJSON *g = cJSON_GetArrayItem(gc, k), *w = cJSON_GetArrayItem(wc, k);
        ck_assert_int_eq(cJSON_GetObjectItem(g, "index")->valueint, k);
        const char *const ints[] = {"start", "end", "tokens"};
        for (int f = 0; f < 3; f++)
            ck_assert_msg(cJSON_GetObjectItem(g, ints[f])->valueint ==
                              cJSON_GetObjectItem(w, ints[f])->valueint,
                          "%s input %d chunk %d: %s %d, HF's tokens say %d", name, i, k, ints[f],
                          cJSON_GetObjectItem(g, ints[f])->valueint,
                          cJSON_GetObjectItem(w, ints[f])->valueint);
        const int cut = cJSON_IsTrue(cJSON_GetObjectItem(w, "truncated"));
        ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(g, "truncated")), cut);
        if (cut) {
            const cJSON *tc =
                cJSON_GetArrayItem(cJSON_GetObjectItem(got, "truncated_chunks"), ncut++);
            ck_assert_msg(tc && tc->valueint == k, "%s: truncated_chunks misses chunk %d", name, k);
        }
        const cJSON *ge = cJSON_GetObjectItem(g, "embedding"),
                    *we = cJSON_GetObjectItem(w, "embedding");
        if (cJSON_IsNull(we)) {
            ck_assert_msg(cJSON_IsNull(ge),
                          "%s input %d chunk %d: a chunk without tokens has a vector", name, i, k);
        } else {
            double e = json_rel_err(ge, we);
            ck_assert_msg(e <= 1e-4, "%s input %d chunk %d: %g from HF", name, i, k, e);
            worst = fmax(worst, e);
        }
        const cJSON *wt = cJSON_GetObjectItem(w, "text"), *gt = cJSON_GetObjectItem(g, "text");
        if (wt)
            ck_assert_str_eq(gt->valuestring, wt->valuestring);
        else
            ck_assert_ptr_null(gt);
    }
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "truncated_chunks")), ncut);
    return worst;
}

START_TEST(chunks_equal_hf)
{
    cJSON *doc = fixture_json("chunks/cases.json");
    const cJSON *cases = cJSON_GetObjectItem(doc, "cases"), *c;
    double worst = 0;
    int nchunks = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char *route = cJSON_GetObjectItem(c, "route")->valuestring;
        const char *models[] = {model_dir(cJSON_GetObjectItem(c, "model")->valuestring), NULL};
        const char *flags[8];
        case_flags(c, flags, 8);
        server s;
        server_start_models(&s, models, flags);
        hresp r;
        post_json(s.port, route, cJSON_Duplicate(cJSON_GetObjectItem(c, "body"), 1), &r);
        ck_assert_msg(r.status == 200, "%s: %d %s", name, r.status, r.body);
        spec_expect("POST", route, &r);
        cJSON *got = hjson(&r);
        const cJSON *items = strcmp(route, "/embed") == 0 ? got : cJSON_GetObjectItem(got, "data");
        const cJSON *want = cJSON_GetObjectItem(c, "expected");
        ck_assert_int_eq(cJSON_GetArraySize(items), cJSON_GetArraySize(want));
        double cw = 0;
        for (int i = 0; i < cJSON_GetArraySize(want); i++) {
            cw = fmax(cw, check_input(name, i, cJSON_GetArrayItem(items, i),
                                      cJSON_GetArrayItem(want, i)));
            nchunks +=
                cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(want, i), "chunks"));
        }
        fprintf(stderr, "chunks_equal_hf: %-20s worst relative error %.3g\n", name, cw);
        worst = fmax(worst, cw);
        cJSON_Delete(got);
        hresp_free(&r);
        ck_assert_int_eq(server_stop(&s, 30), 0);
    }
    fprintf(stderr, "chunks_equal_hf: %d cases, %d chunks, worst relative error %.3g\n",
            cJSON_GetArraySize(cases), nchunks, worst);
    cJSON_Delete(doc);
}
END_TEST

/* POSTs body (JSON text) and expects status; the response is left in *r. */
static void post_expect(int port, const char *path, const char *body, int status, hresp *r)
{
    hreq(port, "POST", path, "Content-Type: application/json\r\n", body, r);
    ck_assert_msg(r->status == status, "%s %s: %d %s (expected %d)", path, body, r->status, r->body,
                  status);
}

START_TEST(chunks_errors_and_cost)
{
    const char *models[] = {"lf_tok=chunks/lf_tok", NULL};
    const char *flags[] = {"--max-chunks", "4", NULL};
    server s;
    server_start_models(&s, models, flags);
    hresp r;
    char body[512];
    struct {
        const char *path, *body, *needle;
        int status;
    } bad[] = {
        {"/embed", "{\"inputs\":\"abc def\",\"chunks\":[[0,8]]}", "outside the 7 characters", 422},
        {"/embed", "{\"inputs\":\"abc def\",\"chunks\":[[3,1]]}", "after end", 422},
        {"/embed", "{\"inputs\":\"abc\",\"chunks\":[[0,-1]]}", "non-negative", 400},
        {"/embed", "{\"inputs\":\"abc\",\"chunks\":[0,1]}", "[start, end]", 400},
        {"/embed", "{\"inputs\":\"abc\",\"chunks\":{\"tokens\":2,\"sentences\":1}}", "one chunker",
         400},
        {"/embed", "{\"inputs\":\"abc\",\"chunks\":{\"tokens\":2,\"overlap\":2}}", "below", 422},
        {"/embed", "{\"inputs\":\"abc\",\"chunks\":{\"separator\":\"\"}}", "empty", 400},
        {"/embed", "{\"inputs\":[[0,40,41,2]],\"chunks\":[[0,1]]}", "text inputs", 422},
        {"/embed", "{\"inputs\":[\"ab\",\"cd\"],\"chunks\":[[[0,1]]]}", "2 inputs", 422},
        {"/embed", "{\"inputs\":\"a b c d e f\",\"chunks\":{\"tokens\":1}}", "--max-chunks", 413},
        {"/embed", "{\"inputs\":\"abc\",\"global_attention\":{\"chunk_starts\":true}}",
         "needs \\\"chunks\\\"", 422},
        {"/v1/embeddings", "{\"input\":\"abc\",\"chunks\":[[0,9]]}", "outside", 422},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        post_expect(s.port, bad[k].path, bad[k].body, bad[k].status, &r);
        ck_assert_msg(strstr(r.body, bad[k].needle), "%s: %s lacks '%s'", bad[k].body, r.body,
                      bad[k].needle);
        hresp_free(&r);
    }
    /* the edge cases that are not errors: an empty span, one at the very end, spans that
     * overlap, a chunk of one token, separator pieces that are only white space */
    post_expect(s.port, "/embed",
                "{\"inputs\":\"ab cd\",\"chunks\":[[5,5],[0,5],[1,2],[2,3]],\"return_text\":true}",
                200, &r);
    spec_expect("POST", "/embed", &r);
    cJSON *j = hjson(&r);
    const cJSON *ch = cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "chunks");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "tokens")->valueint, 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "embedding")));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 0), "text")->valuestring, "");
    ck_assert_int_ge(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 2), "tokens")->valueint, 1);
    /* [2, 3) is the space: byte-level BPE gives it to the next token ("Ġcd"), trimmed to
     * [3, 5) by trim_offsets, so no token meets it */
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 3), "tokens")->valueint, 0);
    cJSON_Delete(j);
    hresp_free(&r);
    post_expect(s.port, "/embed",
                "{\"inputs\":\"a\\n\\n \\n\\nb\",\"chunks\":{\"separator\":\"\\n\\n\"}}", 200, &r);
    j = hjson(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "chunks")),
                     2);
    cJSON_Delete(j);
    hresp_free(&r);

    /* OpenAI's base64: each chunk vector the same float32 values, null stays null */
    hresp rb;
    const char *ob = "{\"input\":\"ab cd. ef\",\"chunks\":[[0,5],[5,5],[6,8]]%s}";
    snprintf(body, sizeof body, ob, "");
    post_expect(s.port, "/v1/embeddings", body, 200, &r);
    snprintf(body, sizeof body, ob, ",\"encoding_format\":\"base64\"");
    post_expect(s.port, "/v1/embeddings", body, 200, &rb);
    spec_expect("POST", "/v1/embeddings", &rb);
    cJSON *jf = hjson(&r), *jb = hjson(&rb);
    const cJSON *cf =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(jf, "data"), 0), "chunks");
    const cJSON *cb =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(jb, "data"), 0), "chunks");
    ck_assert_int_eq(cJSON_GetArraySize(cb), 3);
    for (int k = 0; k < 3; k++) {
        const cJSON *ef = cJSON_GetObjectItem(cJSON_GetArrayItem(cf, k), "embedding");
        const cJSON *eb = cJSON_GetObjectItem(cJSON_GetArrayItem(cb, k), "embedding");
        if (k == 1) {
            ck_assert(cJSON_IsNull(ef) && cJSON_IsNull(eb));
            continue;
        }
        float f[64];
        ck_assert_int_eq(b64_floats(eb->valuestring, f, 64), cJSON_GetArraySize(ef));
        for (int d = 0; d < cJSON_GetArraySize(ef); d++)
            ck_assert((double)f[d] == (double)(float)cJSON_GetArrayItem(ef, d)->valuedouble);
    }
    cJSON_Delete(jf);
    cJSON_Delete(jb);
    hresp_free(&r);
    hresp_free(&rb);

    /* the document vector with chunks is the plain /embed vector, and the request costs the
     * document's forward: the same tokens computed */
    const char *text = "The Tenant pays the rent. It is due monthly.";
    char h1[32], h2[32];
    snprintf(body, sizeof body, "{\"inputs\":\"%s\"}", text);
    post_expect(s.port, "/embed", body, 200, &r);
    cJSON *plain = hjson(&r);
    ck_assert_ptr_nonnull(hheader(&r, "x-compute-tokens", h1, sizeof h1));
    hresp_free(&r);
    snprintf(body, sizeof body, "{\"inputs\":\"%s\",\"chunks\":{\"sentences\":1}}", text);
    post_expect(s.port, "/", body, 200, &r); /* the root route of an embedding model */
    spec_expect("POST", "/", &r);
    cJSON *chunked = hjson(&r);
    ck_assert_ptr_nonnull(hheader(&r, "x-compute-tokens", h2, sizeof h2));
    ck_assert_str_eq(h1, h2);
    ck_assert_ptr_nonnull(hheader(&r, "x-chunks", h2, sizeof h2));
    ck_assert_str_eq(h2, "2");
    ck_assert(json_rel_err(cJSON_GetObjectItem(cJSON_GetArrayItem(chunked, 0), "embedding"),
                           cJSON_GetArrayItem(plain, 0)) == 0);
    cJSON_Delete(plain);
    cJSON_Delete(chunked);
    hresp_free(&r);
    ck_assert_int_eq(server_stop(&s, 30), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("server_chunks");
    TCase *tc = tcase_create("chunks");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, chunks_equal_hf);
    tcase_add_test(tc, chunks_errors_and_cost);
    suite_add_tcase(su, tc);
    return harness_run(su);
}
