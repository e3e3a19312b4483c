/* engine/pipeline.h on hand-made arrays with known answers, the model-directory loader's
 * text side, the outputs table and the cost, then the pipelines against Hugging Face's
 * outputs (tests/fixtures/embed/pipelines.json) through the engine alone, no server. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../engine/chunk.h"
#include "../engine/pipeline.h"
#include "../tokenizer/tokenizer.h"
#include "testutil.h"

static int close_rel(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want) + 1e-12;
}

/* ---- softmax, pooling, windows, normalisation ---------------------------------------- */

START_TEST(softmax_values)
{
    const float x[] = {1.0f, 2.0f, 3.0f, 2.0f};
    float p[4], q[4];
    eng_pipe_softmax(x, 4, p);
    double sum = 0;
    for (int i = 0; i < 4; i++)
        sum += p[i];
    ck_assert(fabs(sum - 1.0) < 1e-6);
    ck_assert(p[1] == p[3]); /* ties */
    ck_assert(p[2] > p[1] && p[1] > p[0]);
    const double e = exp(1.0), z = 1 + 2 * e + e * e;
    ck_assert(close_rel(p[0], 1 / z, 1e-6) && close_rel(p[2], e * e / z, 1e-6));
    memcpy(q, x, sizeof q); /* in place: the same bits */
    eng_pipe_softmax(q, 4, q);
    ck_assert(memcmp(p, q, sizeof p) == 0);
    const float big[] = {1000.0f, 1000.0f}; /* no overflow: shifted by the maximum */
    eng_pipe_softmax(big, 2, p);
    ck_assert(p[0] == 0.5f && p[1] == 0.5f);
}
END_TEST

START_TEST(pool_modes)
{
    const float x[] = {1, 2, 3, -4, 5, 6}; /* (3, 2) */
    float o[2];
    eng_pipe_pool(x, 3, 2, ENG_POOL_CLS, o);
    ck_assert(o[0] == 1 && o[1] == 2);
    eng_pipe_pool(x, 3, 2, ENG_POOL_MEAN, o);
    ck_assert(o[0] == 3 && o[1] == (float)(4.0 / 3));
    eng_pipe_pool(x, 3, 2, ENG_POOL_MAX, o);
    ck_assert(o[0] == 5 && o[1] == 6);
    eng_pipe_pool(x, 3, 2, ENG_POOL_MEAN_SQRT_LEN, o);
    ck_assert(o[0] == (float)(9 / sqrt(3.0)) && o[1] == (float)(4 / sqrt(3.0)));
    const float neg[] = {-3, -1}; /* max of negatives: not 0 */
    eng_pipe_pool(neg, 2, 1, ENG_POOL_MAX, o);
    ck_assert(o[0] == -1);
}
END_TEST

START_TEST(windows_and_normalize)
{
    const float a[] = {1, 0, 0.3f}, b[] = {0, 1, 0.7f};
    const float *v[] = {a, b};
    int n[] = {1, 3};
    float o[3];
    eng_pipe_windows(v, n, 1, 3, o); /* one window: its vector, bit for bit */
    ck_assert(memcmp(o, a, sizeof o) == 0);
    eng_pipe_windows(v, n, 2, 3, o); /* weighted by tokens: (1*a + 3*b) / 4 */
    ck_assert(o[0] == 0.25f && o[1] == 0.75f);
    ck_assert(o[2] == (float)((1.0 * 0.3f + 3.0 * 0.7f) / 4));
    float u[] = {3, 4};
    eng_pipe_l2_normalize(u, 2);
    ck_assert(close_rel(u[0], 0.6, 1e-7) && close_rel(u[1], 0.8, 1e-7));
    float z[] = {0, 0}; /* the eps keeps zero at zero */
    eng_pipe_l2_normalize(z, 2);
    ck_assert(z[0] == 0 && z[1] == 0);
}
END_TEST

/* ---- classification ---------------------------------------------------------------------- */

START_TEST(classify_scores)
{
    const float x[] = {0.5f, 2.0f, -1.0f};
    eng_pipe_score s[3];
    ck_assert_int_eq(eng_pipe_classify(x, 3, 0, s, NULL, 0), LS_OK);
    ck_assert(s[0].label == 1 && s[1].label == 0 && s[2].label == 2);
    ck_assert(fabs(s[0].score + s[1].score + s[2].score - 1.0) < 1e-6);
    float p[3];
    eng_pipe_softmax(x, 3, p);
    ck_assert(s[0].score == p[1] && s[2].score == p[2]);
    ck_assert_int_eq(eng_pipe_classify(x, 3, 1, s, NULL, 0), LS_OK); /* raw, sorted */
    ck_assert(s[0].score == 2.0f && s[1].score == 0.5f && s[2].score == -1.0f);
    const float one = 0.0f; /* one label: sigmoid */
    ck_assert_int_eq(eng_pipe_classify(&one, 1, 0, s, NULL, 0), LS_OK);
    ck_assert(s[0].label == 0 && s[0].score == 0.5f);
    const float tie[] = {1, 3, 3, 1}; /* equal scores keep label order */
    eng_pipe_score t[4];
    ck_assert_int_eq(eng_pipe_classify(tie, 4, 0, t, NULL, 0), LS_OK);
    ck_assert(t[0].label == 1 && t[1].label == 2 && t[2].label == 0 && t[3].label == 3);
}
END_TEST

START_TEST(token_classify_rows)
{
    /* (4 tokens, 3 labels); token 0 special; token 2 ties labels 1 and 2 */
    const float x[] = {9, 0, 0, 0, 5, 1, 1, 4, 4, 3, 0, 0};
    const uint8_t special[] = {1, 0, 0, 0}, ignore[] = {1, 0, 0};
    eng_pipe_entity e[4];
    int n = -1;
    ck_assert_int_eq(eng_pipe_token_classify(x, 4, 3, special, NULL, e, &n, NULL, 0), LS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert(e[0].index == 1 && e[0].label == 1);
    ck_assert(e[1].index == 2 && e[1].label == 1); /* the first of equals */
    ck_assert(e[2].index == 3 && e[2].label == 0);
    float p[3];
    eng_pipe_softmax(x + 3, 3, p);
    ck_assert(e[0].score == p[1]);
    ck_assert_int_eq(eng_pipe_token_classify(x, 4, 3, special, ignore, e, &n, NULL, 0), LS_OK);
    ck_assert_int_eq(n, 2); /* label 0 ignored */
    ck_assert(e[0].index == 1 && e[1].index == 2);
    ck_assert_int_eq(eng_pipe_token_classify(x, 4, 3, NULL, NULL, e, &n, NULL, 0), LS_OK);
    ck_assert(n == 4 && e[0].index == 0 && e[0].label == 0);
}
END_TEST

START_TEST(top_k_selection)
{
    const float x[] = {0, 2, 1, 2, -5};
    int32_t ids[8];
    float sc[8], p[5];
    int n = -1;
    ck_assert_int_eq(eng_pipe_top_k(x, 5, 3, ids, sc, &n, NULL, 0), LS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert(ids[0] == 1 && ids[1] == 3 && ids[2] == 2); /* ties: the lower id first */
    eng_pipe_softmax(x, 5, p);
    ck_assert(sc[0] == p[1] && sc[1] == p[3] && sc[2] == p[2]);
    ck_assert_int_eq(eng_pipe_top_k(x, 5, 8, ids, sc, &n, NULL, 0), LS_OK);
    ck_assert_int_eq(n, 5); /* k past the vocabulary */
    ck_assert(ids[3] == 0 && ids[4] == 4);
}
END_TEST

/* ---- question answering ------------------------------------------------------------------- */

START_TEST(answer_span)
{
    /* <s> q q </s> c c c c </s>: the question's huge logits are masked */
    const int8_t seq[] = {-1, 0, 0, -1, 1, 1, 1, 1, -1};
    const float st[] = {0, 50, 50, 0, 6, 0, 0, 0, 0};
    const float en[] = {0, 50, 50, 0, 0, 5, 0, 10, 0};
    eng_pipe_span a;
    ck_assert_int_eq(eng_pipe_answer(st, en, seq, 9, 15, &a, NULL, 0), LS_OK);
    ck_assert(a.start == 4 && a.end == 7);
    float xs[9], xe[9], ps[9], pe[9];
    for (int t = 0; t < 9; t++) {
        xs[t] = seq[t] == 1 || t == 0 ? st[t] : -10000.0f;
        xe[t] = seq[t] == 1 || t == 0 ? en[t] : -10000.0f;
    }
    eng_pipe_softmax(xs, 9, ps);
    eng_pipe_softmax(xe, 9, pe);
    ck_assert(a.score == ps[4] * pe[7]);
    /* max_answer_len 3: end < start + 3, so the end at 7 is out of reach */
    ck_assert_int_eq(eng_pipe_answer(st, en, seq, 9, 3, &a, NULL, 0), LS_OK);
    ck_assert(a.start == 4 && a.end == 5);
    /* max_answer_len 1: one token, the best product (e^0 x e^10 over e^6 x e^0) */
    ck_assert_int_eq(eng_pipe_answer(st, en, seq, 9, 1, &a, NULL, 0), LS_OK);
    ck_assert(a.start == 7 && a.end == 7);
    /* end before start is never taken */
    const float st2[] = {0, 0, 0, 0, 0, 0, 0, 9, 0}, en2[] = {0, 0, 0, 0, 5, 0, 0, 0, 0};
    ck_assert_int_eq(eng_pipe_answer(st2, en2, seq, 9, 15, &a, NULL, 0), LS_OK);
    ck_assert(a.start == 7 && a.end == 7);
    const float en3[] = {0, 0, 0, 0, 9, 0, 0, 0, 0}; /* equal products: the first row-major */
    ck_assert_int_eq(eng_pipe_answer(st2, en3, seq, 9, 15, &a, NULL, 0), LS_OK);
    ck_assert(a.start == 4 && a.end == 4);
    const int8_t none[] = {-1, 0, 0, -1}; /* no context: no answer */
    ck_assert_int_eq(eng_pipe_answer(st, en, none, 4, 15, &a, NULL, 0), LS_OK);
    ck_assert(a.start < 0 && a.end < 0);
}
END_TEST

/* ---- the outputs table, the cost, labels ---------------------------------------------------- */

START_TEST(outputs_table)
{
    eng_model_info in = {.hidden_size = 32, .vocab_size = 100, .num_labels = 3};
    eng_output_desc d[ENG_MAX_OUTPUTS];
    in.head = ENG_HEAD_BASE;
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 1);
    ck_assert(d[0].id == ENG_OUT_LAST_HIDDEN_STATE && d[0].per_token && d[0].width == 32);
    in.has_pooler = 1;
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 2);
    ck_assert_str_eq(d[1].name, "pooler_output");
    ck_assert(!d[1].per_token && d[1].width == 32);
    in.head = ENG_HEAD_MLM;
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 1);
    ck_assert(d[0].id == ENG_OUT_LOGITS && d[0].per_token && d[0].width == 100);
    in.head = ENG_HEAD_SEQCLS;
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 1);
    ck_assert(!d[0].per_token && d[0].width == 3);
    in.head = ENG_HEAD_TOKCLS;
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 1);
    ck_assert(d[0].per_token && d[0].width == 3);
    in.head = ENG_HEAD_QA;
    ck_assert_int_eq(eng_model_outputs(&in, d, 1), 2); /* the count, one filled */
    ck_assert_str_eq(d[0].name, "start_logits");
    ck_assert_int_eq(eng_model_outputs(&in, d, ENG_MAX_OUTPUTS), 2);
    ck_assert(d[1].id == ENG_OUT_END_LOGITS && d[1].per_token && d[1].width == 0);

    const char *const names[] = {"neg", NULL};
    char buf[24];
    in.labels = names;
    ck_assert_str_eq(eng_model_label(&in, 0, buf, sizeof buf), "neg");
    ck_assert_str_eq(eng_model_label(&in, 1, buf, sizeof buf), "LABEL_1");
    in.labels = NULL;
    ck_assert_str_eq(eng_model_label(&in, 2, buf, sizeof buf), "LABEL_2");

    in.attn_keys = 9; /* rows x len x (6H + keys per token) + 2 x globals x len */
    ck_assert(eng_model_cost(&in, 1, 100, 0) == 100.0 * (192 + 9));
    ck_assert(eng_model_cost(&in, 1, 100, 10) == 100.0 * (192 + 9) + 2000);
    ck_assert(eng_model_cost(&in, 2, 100, 0) == 2 * eng_model_cost(&in, 1, 100, 0));
    const double narrow = eng_model_cost(&in, 1, 100, 0);
    /* a short row's dense part costs ENG_COST_MIN_ROW tokens: 3000 windows of 4 tokens
     * are charged as the 3000 weight reads they are */
    ck_assert(eng_model_cost(&in, 1, 4, 0) == ENG_COST_MIN_ROW * 192.0 + 4 * 9);
    ck_assert(eng_model_cost(&in, 3000, 4, 0) == 3000 * eng_model_cost(&in, 1, 4, 0));
    ck_assert(eng_model_token_cost(&in) == 192 + 9);
    in.attn_keys = 65; /* a wider window costs more */
    ck_assert(eng_model_cost(&in, 1, 100, 0) > narrow);
}
END_TEST

/* ---- the model-directory loader ------------------------------------------------------------ */

static eng_model *load(const char *rel)
{
    char dir[1024], err[1024] = "";
    snprintf(dir, sizeof dir, "%s/%s", fixtures(), rel);
    eng_model *m = NULL;
    ls_status st = eng_model_load(dir, NULL, &m, err, sizeof err);
    ck_assert_msg(st == LS_OK, "%s: %s", dir, err);
    return m;
}

START_TEST(loader_text_side)
{
    eng_model *m = load("embed/st_tiny");
    eng_model_info in;
    eng_model_get_info(m, &in);
    ck_assert(eng_model_tokenizer(m) != NULL);
    ck_assert(in.pooling == ENG_POOL_MEAN && in.st_config && in.st_normalize);
    ck_assert_str_eq(eng_pooling_name(in.pooling), "mean");
    eng_model_free(m);

    m = load("embed/lf_mlm_tok");
    eng_model_get_info(m, &in);
    ck_assert(!in.st_config && !in.st_normalize && in.pooling == ENG_POOL_MEAN);
    ck_assert(in.mask_id >= 0);
    ck_assert_int_eq(in.mask_id, tok_token_to_id(eng_model_tokenizer(m), "<mask>"));
    eng_model_free(m);

    /* config_sentence_transformers.json's prompts and the Pooling config's include_prompt */
    ck_assert(in.nprompts == 0 && in.default_prompt == -1 && in.include_prompt == 1);
    m = load("embed/st_prompts");
    eng_model_get_info(m, &in);
    ck_assert_int_eq(in.nprompts, 3);
    ck_assert_int_eq(in.include_prompt, 0);
    ck_assert(in.default_prompt >= 0);
    ck_assert_str_eq(in.prompt_names[in.default_prompt], "query");
    ck_assert_str_eq(in.prompt_texts[in.default_prompt], "query: ");
    eng_model_free(m);

    m = load("lf_base"); /* no tokenizer.json: token ids only */
    eng_model_get_info(m, &in);
    ck_assert(eng_model_tokenizer(m) == NULL && in.mask_id == -1 && !in.st_config);
    eng_model_free(m);
}
END_TEST

/* A copy of st_tiny (links) in a temporary directory with one file replaced. */
static void bad_copy(char *dir, size_t n, const char *file, const char *text)
{
    snprintf(dir, n, "/tmp/ls_pipe_XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "modules.json", "1_Pooling"};
    char src[1024], dst[1100];
    for (int i = 0; i < 5; i++) {
        snprintf(src, sizeof src, "%s/embed/st_tiny/%s", fixtures(), files[i]);
        char *abs = realpath(src, NULL);
        ck_assert(abs != NULL);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        if (strcmp(files[i], file) == 0) {
            FILE *f = fopen(dst, "w");
            ck_assert(f && fputs(text, f) >= 0 && fclose(f) == 0);
        } else {
            ck_assert_int_eq(symlink(abs, dst), 0);
        }
        free(abs);
    }
    if (strcmp(file, "config_sentence_transformers.json") == 0) { /* st_tiny has none */
        snprintf(dst, sizeof dst, "%s/%s", dir, file);
        FILE *f = fopen(dst, "w");
        ck_assert(f && fputs(text, f) >= 0 && fclose(f) == 0);
    }
}

static void rm_copy(const char *dir)
{
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                        "modules.json", "1_Pooling"};
    char p[1100];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/config_sentence_transformers.json", dir);
    unlink(p);
    rmdir(dir);
}

START_TEST(loader_errors_name_the_file)
{
    static const char *const cases[][2] = {
        {"modules.json", "[{\"type\": 3"},
        {"tokenizer.json", "{\"model\": "},
        {"config_sentence_transformers.json", "{\"prompts\": {\"q\": \"a\"}, "
                                              "\"default_prompt_name\": \"d\"}"},
    };
    for (int i = 0; i < 3; i++) {
        char dir[64], err[1024] = "";
        bad_copy(dir, sizeof dir, cases[i][0], cases[i][1]);
        eng_model *m = (eng_model *)1;
        ls_status st = eng_model_load(dir, NULL, &m, err, sizeof err);
        ck_assert_msg(st < 0 && m == NULL, "%s: %d", cases[i][0], st);
        ck_assert_msg(strstr(err, cases[i][0]) != NULL, "%s: '%s'", cases[i][0], err);
        rm_copy(dir);
    }
}
END_TEST

/* ---- against Hugging Face's pipelines (tests/fixtures/embed/pipelines.json) ------------------ */

static cJSON *pipelines(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/embed/pipelines.json", fixtures());
    char *text = slurp(path, NULL);
    ck_assert_msg(text != NULL, "%s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    return j;
}

/* One fixture section with its model loaded. */
typedef struct {
    cJSON *fx;
    const cJSON *sec; /* fx[section] */
    eng_model *m;
    eng_ctx *c;
    eng_model_info in;
} hf_case;

static void hf_open(hf_case *h, const char *section, const char *model)
{
    h->fx = pipelines();
    h->sec = cJSON_GetObjectItem(h->fx, section);
    ck_assert(h->sec != NULL);
    h->m = load(model);
    ck_assert((h->c = eng_ctx_new(h->m)) != NULL);
    eng_model_get_info(h->m, &h->in);
}

static void hf_close(hf_case *h)
{
    eng_ctx_free(h->c);
    eng_model_free(h->m);
    cJSON_Delete(h->fx);
}

/* One forward of the sequence ids[0 .. n-1] into *o (valid until the next forward). */
static void forward(eng_ctx *c, const int32_t *ids, const int32_t *types, int n, eng_outputs *o)
{
    int32_t off[] = {0, n};
    eng_batch b = {.nseq = 1, .offsets = off, .ids = ids, .type_ids = types};
    char err[512] = "";
    ck_assert_msg(eng_ctx_forward(c, &b, o, err, sizeof err) == LS_OK, "%s", err);
}

static const float *output(const eng_outputs *o, eng_output_id id)
{
    const eng_tensor *t = eng_outputs_find(o, id);
    ck_assert(t != NULL);
    return t->data;
}

static int32_t *json_ids(const cJSON *a, int *n)
{
    *n = cJSON_GetArraySize(a);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    ck_assert(ids != NULL);
    for (int i = 0; i < *n; i++)
        ids[i] = (int32_t)cJSON_GetArrayItem(a, i)->valueint;
    return ids;
}

static tok_encoding *encode(const eng_model *m, const char *text, const char *pair)
{
    tok_encode_params p = tok_encode_default_params();
    tok_encoding *e = NULL;
    char err[256] = "";
    ck_assert_msg(tok_encode(eng_model_tokenizer(m), text, strlen(text), pair,
                             pair ? strlen(pair) : 0, &p, &e, err, sizeof err) == LS_OK,
                  "%s", err);
    return e;
}

static void check_scores(const eng_model_info *in, const float *logits, const cJSON *want)
{
    eng_pipe_score s[64];
    char buf[24];
    ck_assert(in->num_labels <= 64);
    ck_assert_int_eq(eng_pipe_classify(logits, in->num_labels, 0, s, NULL, 0), LS_OK);
    ck_assert_int_eq(cJSON_GetArraySize(want), in->num_labels);
    for (int k = 0; k < in->num_labels; k++) {
        const cJSON *w = cJSON_GetArrayItem(want, k);
        ck_assert_str_eq(eng_model_label(in, s[k].label, buf, sizeof buf),
                         cJSON_GetObjectItem(w, "label")->valuestring);
        const double ws = cJSON_GetObjectItem(w, "score")->valuedouble;
        ck_assert_msg(close_rel(s[k].score, ws, 1e-4), "score %g vs %g", s[k].score, ws);
    }
}

START_TEST(hf_predict)
{
    hf_case h;
    hf_open(&h, "predict", "embed/lf_seqcls_tok");
    eng_outputs o;
    const cJSON *ids = cJSON_GetObjectItem(h.sec, "ids"),
                *outs = cJSON_GetObjectItem(h.sec, "outputs");
    ck_assert_int_eq(cJSON_GetArraySize(ids), cJSON_GetArraySize(outs));
    for (int i = 0; i < cJSON_GetArraySize(ids); i++) {
        int n;
        int32_t *x = json_ids(cJSON_GetArrayItem(ids, i), &n);
        forward(h.c, x, NULL, n, &o);
        check_scores(&h.in, output(&o, ENG_OUT_LOGITS), cJSON_GetArrayItem(outs, i));
        free(x);
    }
    /* a pair: tokenized here as the server does */
    const cJSON *pair = cJSON_GetObjectItem(h.sec, "pair");
    tok_encoding *e = encode(h.m, cJSON_GetArrayItem(pair, 0)->valuestring,
                             cJSON_GetArrayItem(pair, 1)->valuestring);
    forward(h.c, e->ids, e->type_ids, (int)e->n, &o);
    check_scores(&h.in, output(&o, ENG_OUT_LOGITS), cJSON_GetObjectItem(h.sec, "pair_output"));
    tok_encoding_free(e);
    hf_close(&h);
}
END_TEST

START_TEST(hf_token_classify)
{
    hf_case h;
    hf_open(&h, "token_classify", "embed/lf_tokcls_tok");
    const int L = h.in.num_labels;
    char buf[24];
    uint8_t *ignore = calloc((size_t)L, 1); /* the pipeline's default: "O" */
    for (int k = 0; k < L; k++)
        ignore[k] = strcmp(eng_model_label(&h.in, k, buf, sizeof buf), "O") == 0;
    const cJSON *inputs = cJSON_GetObjectItem(h.sec, "inputs"),
                *outs = cJSON_GetObjectItem(h.sec, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(inputs); i++) {
        const char *text = cJSON_GetArrayItem(inputs, i)->valuestring;
        tok_encoding *e = encode(h.m, text, NULL);
        eng_outputs o;
        forward(h.c, e->ids, e->type_ids, (int)e->n, &o);
        eng_pipe_entity *ents = malloc(e->n * sizeof *ents);
        int n = 0;
        ck_assert_int_eq(eng_pipe_token_classify(output(&o, ENG_OUT_LOGITS), (int)e->n, L,
                                                 e->special_mask, ignore, ents, &n, NULL, 0),
                         LS_OK);
        const cJSON *want = cJSON_GetArrayItem(outs, i);
        ck_assert_int_eq(n, cJSON_GetArraySize(want));
        for (int k = 0; k < n; k++) {
            const cJSON *w = cJSON_GetArrayItem(want, k);
            const int idx = ents[k].index;
            ck_assert_int_eq(idx, cJSON_GetObjectItem(w, "index")->valueint);
            ck_assert_str_eq(eng_model_label(&h.in, ents[k].label, buf, sizeof buf),
                             cJSON_GetObjectItem(w, "entity")->valuestring);
            const double ws = cJSON_GetObjectItem(w, "score")->valuedouble;
            ck_assert_msg(close_rel(ents[k].score, ws, 1e-4), "score %g vs %g", ents[k].score, ws);
            size_t wl;
            const char *word = tok_encoding_token(e, (size_t)idx, &wl);
            const char *ww = cJSON_GetObjectItem(w, "word")->valuestring;
            ck_assert(wl == strlen(ww) && memcmp(word, ww, wl) == 0);
            ck_assert_int_eq(e->offsets[idx].char_start, cJSON_GetObjectItem(w, "start")->valueint);
            ck_assert_int_eq(e->offsets[idx].char_end, cJSON_GetObjectItem(w, "end")->valueint);
        }
        free(ents);
        tok_encoding_free(e);
    }
    free(ignore);
    hf_close(&h);
}
END_TEST

START_TEST(hf_fill_mask)
{
    hf_case h;
    hf_open(&h, "fill_mask", "embed/lf_mlm_tok");
    const cJSON *ids = cJSON_GetObjectItem(h.sec, "ids"),
                *outs = cJSON_GetObjectItem(h.sec, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(ids); i++) {
        int n, pos = -1;
        int32_t *x = json_ids(cJSON_GetArrayItem(ids, i), &n);
        for (int t = 0; t < n; t++)
            if (x[t] == h.in.mask_id) pos = t;
        ck_assert(pos >= 0);
        eng_outputs o;
        forward(h.c, x, NULL, n, &o);
        const float *row = output(&o, ENG_OUT_LOGITS) + (size_t)pos * (size_t)h.in.vocab_size;
        const cJSON *want = cJSON_GetArrayItem(outs, i);
        int32_t top[16];
        float sc[16];
        int k = 0;
        ck_assert(cJSON_GetArraySize(want) <= 16);
        ck_assert_int_eq(
            eng_pipe_top_k(row, h.in.vocab_size, cJSON_GetArraySize(want), top, sc, &k, NULL, 0),
            LS_OK);
        ck_assert_int_eq(k, cJSON_GetArraySize(want));
        for (int r = 0; r < k; r++) {
            const cJSON *w = cJSON_GetArrayItem(want, r);
            ck_assert_int_eq(top[r], cJSON_GetObjectItem(w, "token")->valueint);
            const double ws = cJSON_GetObjectItem(w, "score")->valuedouble;
            ck_assert_msg(close_rel(sc[r], ws, 1e-4), "score %g vs %g", sc[r], ws);
        }
        free(x);
    }
    hf_close(&h);
}
END_TEST

START_TEST(hf_answer)
{
    hf_case h;
    hf_open(&h, "answer", "embed/lf_qa_tok");
    const int maxlen = cJSON_GetObjectItem(h.sec, "max_answer_len")->valueint;
    const cJSON *inputs = cJSON_GetObjectItem(h.sec, "inputs"),
                *outs = cJSON_GetObjectItem(h.sec, "outputs");
    for (int i = 0; i < cJSON_GetArraySize(inputs); i++) {
        const cJSON *q = cJSON_GetArrayItem(inputs, i), *w = cJSON_GetArrayItem(outs, i);
        const char *ctx = cJSON_GetObjectItem(q, "context")->valuestring;
        tok_encoding *e = encode(h.m, cJSON_GetObjectItem(q, "question")->valuestring, ctx);
        int n;
        int32_t *x = json_ids(cJSON_GetObjectItem(w, "ids"), &n);
        ck_assert_int_eq((int)e->n, n); /* the tokenizer gives the pipeline's ids */
        ck_assert(memcmp(x, e->ids, (size_t)n * sizeof *x) == 0);
        free(x);
        eng_outputs o;
        forward(h.c, e->ids, e->type_ids, n, &o);
        eng_pipe_span a;
        ck_assert_int_eq(eng_pipe_answer(output(&o, ENG_OUT_START_LOGITS),
                                         output(&o, ENG_OUT_END_LOGITS), e->sequence_ids, n, maxlen,
                                         &a, NULL, 0),
                         LS_OK);
        ck_assert(a.start >= 0 && a.end >= a.start);
        const tok_offsets *f = &e->offsets[a.start], *l = &e->offsets[a.end];
        ck_assert_int_eq(f->char_start, cJSON_GetObjectItem(w, "start")->valueint);
        ck_assert_int_eq(l->char_end, cJSON_GetObjectItem(w, "end")->valueint);
        const char *ans = cJSON_GetObjectItem(w, "answer")->valuestring;
        ck_assert((size_t)(l->byte_end - f->byte_start) == strlen(ans));
        ck_assert(memcmp(ctx + f->byte_start, ans, strlen(ans)) == 0);
        const double ws = cJSON_GetObjectItem(w, "score")->valuedouble;
        ck_assert_msg(close_rel(a.score, ws, 1e-4), "answer %d: score %g vs %g", i, a.score, ws);
        tok_encoding_free(e);
    }
    hf_close(&h);
}
END_TEST

/* ---- engine/chunk.h: the chunkers, spans to tokens, the window of a chunk ---------------- */

static void expect_spans(const eng_chunk *c, int n, const int *want, int nwant)
{
    ck_assert_int_eq(n, nwant);
    for (int k = 0; k < n; k++) {
        ck_assert_msg(c[k].start == want[2 * k] && c[k].end == want[2 * k + 1],
                      "chunk %d is [%d, %d), not [%d, %d)", k, c[k].start, c[k].end, want[2 * k],
                      want[2 * k + 1]);
    }
}

START_TEST(chunk_rules)
{
    eng_chunk c[16];
    /* sentences: ". " "! " "?" at the end; "3.5" and "e.g.x" are not ends; closing quotes
     * stay with their sentence; positions are code points ("é" is 2 bytes, 1 character) */
    const char *t = "Café one. It is 3.5 \"big.\" Two! \n Three?";
    int n = eng_chunk_by_sentences(t, strlen(t), 1, c, 16);
    const int s1[] = {0, 9, 10, 26, 27, 31, 34, 40};
    expect_spans(c, n, s1, 4);
    ck_assert_int_eq(eng_chunk_by_sentences(t, strlen(t), 3, c, 16), 2);
    ck_assert_int_eq(c[1].start, 34);
    ck_assert_int_eq(eng_chunk_by_sentences(t, strlen(t), 1, NULL, 0), 4); /* sizing */
    ck_assert_int_eq(eng_chunk_by_sentences("  ", 2, 1, c, 16), 0);
    ck_assert_int_eq(eng_chunk_by_sentences("no end", 6, 2, c, 16), 1);
    /* separator: pieces trimmed, empty ones dropped */
    const char *p = "a\n\n\n\n  \n\nbé c \n\n";
    n = eng_chunk_by_separator(p, strlen(p), "\n\n", 2, c, 16);
    const int s2[] = {0, 1, 9, 13};
    expect_spans(c, n, s2, 2);
    /* tokens of a span: tokens meeting it; a zero-width token inside counts; none: 0, 0 */
    const int32_t ts[] = {0, 2, 2, 5, 9}, te[] = {2, 2, 4, 9, 10};
    eng_chunk q[] = {{0, 1, 0, 0}, {2, 3, 0, 0}, {4, 5, 0, 0}, {4, 4, 0, 0}, {3, 9, 0, 0}};
    eng_chunk_tokens(ts, te, 5, q, 5);
    const int tok[][2] = {{0, 1}, {1, 3}, {0, 0}, {0, 0}, {2, 4}};
    for (int k = 0; k < 5; k++)
        ck_assert_msg(q[k].t0 == tok[k][0] && q[k].t1 == tok[k][1], "span %d: tokens [%d, %d)", k,
                      q[k].t0, q[k].t1);
    /* tokens chunker: 5 tokens, 2 with overlap 1 -> [0,2) [1,3) [2,4) [3,5) */
    n = eng_chunk_by_tokens(ts, te, 5, 2, 1, c, 16);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(c[3].t0, 3);
    ck_assert_int_eq(c[3].t1, 5);
    ck_assert_int_eq(c[3].start, 5);
    ck_assert_int_eq(c[3].end, 10);
    ck_assert_int_eq(eng_chunk_by_tokens(ts, te, 5, 9, 0, c, 16), 1);
    /* windows [0,10) [5,15) [10,20) of 20 tokens */
    const int c0[] = {0, 5, 10}, c1[] = {10, 15, 20};
    ck_assert_int_eq(eng_chunk_window(c0, c1, 3, 20, 0, 2), 0);   /* the document's start */
    ck_assert_int_eq(eng_chunk_window(c0, c1, 3, 20, 8, 10), 1);  /* margins 3/5 vs 0 */
    ck_assert_int_eq(eng_chunk_window(c0, c1, 3, 20, 11, 13), 1); /* margins 6/2 vs 1/end */
    ck_assert_int_eq(eng_chunk_window(c0, c1, 3, 20, 12, 14), 2); /* 7/1 vs 2/end */
    ck_assert_int_eq(eng_chunk_window(c0, c1, 3, 20, 4, 12), -1); /* no window holds it */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *u = tcase_create("arrays");
    tcase_add_test(u, softmax_values);
    tcase_add_test(u, pool_modes);
    tcase_add_test(u, windows_and_normalize);
    tcase_add_test(u, classify_scores);
    tcase_add_test(u, token_classify_rows);
    tcase_add_test(u, top_k_selection);
    tcase_add_test(u, answer_span);
    tcase_add_test(u, outputs_table);
    tcase_add_test(u, chunk_rules);
    suite_add_tcase(s, u);
    TCase *l = tcase_create("loader");
    tcase_add_test(l, loader_text_side);
    tcase_add_test(l, loader_errors_name_the_file);
    suite_add_tcase(s, l);
    TCase *h = tcase_create("hugging_face");
    tcase_set_timeout(h, 120);
    tcase_add_test(h, hf_predict);
    tcase_add_test(h, hf_token_classify);
    tcase_add_test(h, hf_fill_mask);
    tcase_add_test(h, hf_answer);
    suite_add_tcase(s, h);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
