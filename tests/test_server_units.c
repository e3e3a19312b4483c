/* Unit tests of the server's pure parts: the scheduler (lanes, fairness, budgets,
 * compatibility keys, dropping), the option table (defaults, environment, flags,
 * bounds, secrets), the text routes' codecs in proto/ (input forms, knobs,
 * sentence-transformers files) and the UTF-8 check of common/utf8.c. Linked with
 * server/scheduler.c and server/options.c directly, and with proto/. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/arena.h"
#include "../common/utf8.h"
#include "../proto/openai.h"
#include "../formats/json.h"
#include "../formats/sbert.h"
#include "../proto/tgi.h"
#include "../proto/v2.h"
#include "../proto/tei.h"
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

START_TEST(solo_step_yields_to_later_short)
{
    /* a long job's step is in the mailbox batch; a short request arrives before the worker
     * takes it: the step goes back to its lane and the short one fills the batch first */
    sched s;
    sched_params p = params();
    sched_init(&s, &p);
    sched_item step = item(80, 0), brief = item(10, 0);
    step.solo = 1;
    sched_push(&s, &step, 0);
    sched_batch *b = sched_batch_new(&p);
    sched_item *dropped = NULL;
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
    ck_assert_int_eq(sched_unfill_solo(&s, b), 0); /* nothing else waits: it stays */
    sched_push(&s, &brief, 0);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 0); /* a solo item shares no batch */
    ck_assert_int_eq(sched_unfill_solo(&s, b), 1);
    ck_assert_int_eq(b->n, 0);
    ck_assert_int_eq(sched_depth(&s), 2);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
    ck_assert_ptr_eq(b->items[0], &brief);
    sched_batch_free(b);
    /* the step is next, alone */
    b = sched_batch_new(&p);
    ck_assert_int_eq(sched_fill(&s, b, 0, &dropped), 1);
    ck_assert_ptr_eq(b->items[0], &step);
    ck_assert_int_eq(sched_depth(&s), 0);
    sched_batch_free(b);
}
END_TEST

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

    /* --served-model-name: ALIAS names the only model, ALIAS=NAME a named one; repeatable,
     * also from the environment (comma-separated) */
    char *al1[] = {"longserve", "--model-id", "/m/x", "--served-model-name", "gpt", NULL};
    ck_assert_int_eq(opt_parse(&o, 5, al1, err, sizeof err), 0);
    ck_assert(o.naliases == 1 && strcmp(o.served_model_name[0].alias, "gpt") == 0 &&
              o.served_model_name[0].model == 0);
    opt_free(&o);
    setenv("LONGSERVE_SERVED_MODEL_NAME", "e1=b,e2=a", 1);
    char *al2[] = {"longserve", "--model-id", "a=/m/x", "--model-id", "b=/m/y", NULL};
    ck_assert_int_eq(opt_parse(&o, 5, al2, err, sizeof err), 0);
    ck_assert(o.naliases == 2 && o.served_model_name[0].model == 1 &&
              o.served_model_name[1].model == 0);
    opt_free(&o);
    unsetenv("LONGSERVE_SERVED_MODEL_NAME");
    static const struct {
        const char *alias, *needle;
    } bad_alias[] = {{"gpt", "several models"}, {"gpt=c", "no --model-id"}, {"a=b", "already"}};
    for (size_t i = 0; i < sizeof bad_alias / sizeof *bad_alias; i++) {
        char *al[] = {"longserve",
                      "--model-id",
                      "a=/m/x",
                      "--model-id",
                      "b=/m/y",
                      "--served-model-name",
                      (char *)bad_alias[i].alias,
                      NULL};
        ck_assert_int_eq(opt_parse(&o, 7, al, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad_alias[i].needle) != NULL, "%s", err);
        opt_free(&o);
    }
    /* --accept-any-model-name: only with one model */
    char *any1[] = {"longserve",  "--model-id", "a=/m/x",
                    "--model-id", "b=/m/y",     "--accept-any-model-name",
                    NULL};
    ck_assert_int_eq(opt_parse(&o, 6, any1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "exactly one") != NULL, "%s", err);
    opt_free(&o);
    char *any2[] = {"longserve", "--model-id", "a=/m/x", "--accept-any-model-name", NULL};
    ck_assert_int_eq(opt_parse(&o, 4, any2, err, sizeof err), 0);
    ck_assert_int_eq(o.accept_any_model_name, 1);
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

START_TEST(arena_allocs)
{
    /* alignment, zeroing, blocks of every size, overflow refused, reuse after free */
    ls_arena a = {0};
    unsigned char *small[300];
    for (int i = 0; i < 300; i++) {
        small[i] = ls_arena_calloc(&a, (size_t)i + 1, 7);
        ck_assert_ptr_nonnull(small[i]);
        ck_assert_uint_eq((uintptr_t)small[i] % _Alignof(max_align_t), 0);
        int nonzero = 0; /* one assertion per block: Check's per-call cost is not small */
        for (int k = 0; k < (i + 1) * 7; k++)
            nonzero |= small[i][k];
        ck_assert_int_eq(nonzero, 0);
        memset(small[i], i & 0xff, (size_t)(i + 1) * 7);
    }
    unsigned char *big = ls_arena_alloc(&a, 1u << 20); /* larger than a block */
    ck_assert_ptr_nonnull(big);
    memset(big, 0xab, 1u << 20);
    unsigned char *after = ls_arena_alloc(&a, 16);
    ck_assert_ptr_nonnull(after);
    for (int i = 0; i < 300; i++) { /* nothing overlapped */
        int bad = 0;
        for (int k = 0; k < (i + 1) * 7; k++)
            bad |= small[i][k] != (unsigned char)(i & 0xff);
        ck_assert_msg(!bad, "block %d overwritten", i);
    }
    ck_assert_ptr_nonnull(ls_arena_alloc(&a, 0));
    ck_assert_ptr_null(ls_arena_calloc(&a, SIZE_MAX / 2, 4));
    ck_assert_ptr_null(ls_arena_alloc(&a, SIZE_MAX - 8));
    ls_arena_free(&a);
    ck_assert_ptr_null(a.head);
    ck_assert_ptr_nonnull(ls_arena_alloc(&a, 10));
    ls_arena_free(&a);
    ls_arena_free(&a); /* twice: a no-op */
}
END_TEST

START_TEST(utf8_check)
{
    ck_assert_int_eq(ls_utf8_check("abc", 3), -1);
    ck_assert_int_eq(ls_utf8_check("caf\xc3\xa9", 5), -1);
    ck_assert_int_eq(ls_utf8_check("\xf0\x9f\x98\x80", 4), -1);
    ck_assert_int_eq(ls_utf8_check("\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7), -1); /* U+FFFF, U+10FFFF */
    ck_assert_int_eq(ls_utf8_check("ab\xff", 3), 2);                        /* invalid byte */
    ck_assert_int_eq(ls_utf8_check("a\xc3", 2), 1);                         /* truncated */
    ck_assert_int_eq(ls_utf8_check("\xc0\xaf", 2), 0);                      /* overlong */
    ck_assert_int_eq(ls_utf8_check("\xe0\x9f\xbf", 3), 0);                  /* overlong, 3 bytes */
    ck_assert_int_eq(ls_utf8_check("\xf0\x8f\xbf\xbf", 4), 0);              /* overlong, 4 bytes */
    ck_assert_int_eq(ls_utf8_check("x\xed\xa0\x80", 4), 1);                 /* surrogate */
    ck_assert_int_eq(ls_utf8_check("\xf4\x90\x80\x80", 4), 0);              /* > U+10FFFF */
    ck_assert_int_eq(ls_utf8_check("\xf5\x80\x80\x80", 4), 0);              /* no such lead byte */
    ck_assert_int_eq(ls_utf8_check("\x80", 1), 0);      /* a lone continuation */
    ck_assert_int_eq(ls_utf8_check("\xe2\x82x", 3), 0); /* cut by an ASCII byte */
    /* past an ASCII run of eight and more (the fast path) */
    ck_assert_int_eq(ls_utf8_check("0123456789\xc3", 11), 10);
    ck_assert_int_eq(ls_utf8_check("01234567\xc3\xa9", 10), -1);
    /* the maximal ill-formed subpart that one U+FFFD replaces in lossy decoding */
    int bad = 0;
    ck_assert_int_eq(ls_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3, &bad), 3);
    ck_assert_int_eq(ls_utf8_seq((const unsigned char *)"\xe2\x82x", 3, &bad), 0);
    ck_assert_int_eq(bad, 2);
    ck_assert_int_eq(ls_utf8_seq((const unsigned char *)"\xed\xa0\x80", 3, &bad), 0);
    ck_assert_int_eq(bad, 1);
}
END_TEST

static tei_request parse_ok(tei_kind k, const char *body)
{
    tei_request r;
    char err[256] = "";
    ls_status st = tei_request_parse(k, body, strlen(body), 32, &r, err, sizeof err);
    ck_assert_msg(st == LS_OK, "%s: %s", body, err);
    return r;
}

static void parse_fails(tei_kind k, const char *body, ls_status want, const char *needle)
{
    tei_request r;
    char err[256] = "";
    ls_status st = tei_request_parse(k, body, strlen(body), 32, &r, err, sizeof err);
    ck_assert_msg(st == want, "%s: status %d (%s)", body, st, err);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: '%s' not in '%s'", body, needle, err);
}

START_TEST(tei_input_forms)
{
    tei_request r = parse_ok(TEI_EMBED, "{\"inputs\":\"hi\"}");
    ck_assert(r.n == 1 && !r.batched && strcmp(r.in[0].text, "hi") == 0);
    ck_assert(r.normalize == -1 && r.truncate == TEI_TRUNC_DEFAULT &&
              r.pooling == TEI_POOL_DEFAULT);
    tei_request_free(&r);
    r = parse_ok(TEI_EMBED, "{\"inputs\":[\"a\",[1,2]],\"truncate\":true,"
                            "\"truncation_direction\":\"Left\",\"pooling\":\"cls\"}");
    ck_assert(r.n == 2 && r.batched && r.in[1].nids == 2 && r.in[1].ids[1] == 2);
    ck_assert(r.truncate == TEI_TRUNC_LEFT && r.pooling == TEI_POOL_CLS);
    tei_request_free(&r);
    r = parse_ok(TEI_OPENAI_EMBED,
                 "{\"input\":[5,6,7],\"model\":\"m\",\"encoding_format\":\"base64\"}");
    ck_assert(r.n == 1 && r.in[0].nids == 3 && r.base64 && strcmp(r.model, "m") == 0);
    tei_request_free(&r);
    /* TEI's /predict reading: two strings are one pair, anything else a batch */
    r = parse_ok(TEI_PREDICT, "{\"inputs\":[\"q\",\"p\"]}");
    ck_assert(r.n == 1 && !r.batched && strcmp(r.in[0].pair, "p") == 0);
    tei_request_free(&r);
    r = parse_ok(TEI_PREDICT, "{\"inputs\":[[\"q\",\"p\"],\"x\",[\"y\"]]}");
    ck_assert(r.n == 3 && r.batched && r.in[0].pair && !r.in[1].pair && !r.in[2].pair);
    tei_request_free(&r);
    r = parse_ok(TEI_ANSWER,
                 "{\"inputs\":{\"question\":\"q\",\"context\":\"c\"},\"max_answer_len\":30}");
    ck_assert(r.n == 1 && strcmp(r.in[0].pair, "c") == 0 && r.max_answer_len == 30);
    tei_request_free(&r);
    r = parse_ok(TEI_EMBED, "{\"inputs\":\"x\",\"global_attention\":{\"cls\":true,"
                            "\"token_indices\":[1,4],\"spans\":[[2,3]]},"
                            "\"long_document\":{\"window\":64}}");
    ck_assert(r.ga_given && r.ga_cls && r.ga_nidx == 2 && r.ga_nspans == 1 && r.ga_spans[1] == 3);
    ck_assert(r.ld_given && r.ld_window == 64 && r.ld_stride == 0);
    tei_request_free(&r);
    r = parse_ok(TEI_TOKENIZE, "{\"inputs\":\"\",\"add_special_tokens\":false}");
    ck_assert(r.n == 1 && r.in[0].len == 0 && !r.add_special_tokens);
    tei_request_free(&r);
    r = parse_ok(TEI_DECODE, "{\"ids\":[[1],[2,3]]}");
    ck_assert(r.n == 2 && r.batched && r.skip_special_tokens && r.in[1].nids == 2);
    tei_request_free(&r);

    parse_fails(TEI_EMBED, "{\"inputs\":\"\"}", LS_ERR_BAD_REQUEST, "empty");
    parse_fails(TEI_EMBED, "[1]", LS_ERR_BAD_REQUEST, "object");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\"} x", LS_ERR_BAD_REQUEST, "JSON");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\xe2\x82\"}", LS_ERR_BAD_REQUEST, "byte offset 12");
    parse_fails(TEI_EMBED, "{\"inputs\":[1.5]}", LS_ERR_BAD_REQUEST, "token id");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\",\"pooling\":\"sum\"}", LS_ERR_BAD_REQUEST, "pooling");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\",\"long_document\":{\"stride\":4}}",
                LS_ERR_BAD_REQUEST, "window");
    parse_fails(TEI_EMBED,
                "{\"inputs\":\"a\",\"long_document\":{\"window\":8,\"aggregate\":\"max\"}}",
                LS_ERR_INVALID_INPUT, "mean");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\",\"global_attention\":{\"token_indices\":[-1]}}",
                LS_ERR_BAD_REQUEST, "non-negative");
    r = parse_ok(TEI_OPENAI_EMBED, "{\"input\":\"a\",\"dimensions\":8}");
    ck_assert_int_eq(r.dimensions, 8);
    tei_request_free(&r);
    parse_fails(TEI_OPENAI_EMBED, "{\"input\":\"a\",\"dimensions\":0}", LS_ERR_INVALID_INPUT,
                "dimensions");
    parse_fails(TEI_EMBED, "{\"inputs\":\"a\",\"dimensions\":\"8\"}", LS_ERR_BAD_REQUEST,
                "dimensions");
    /* Hugging Face's "parameters" are read as top-level fields, which win */
    r = parse_ok(TEI_PREDICT, "{\"inputs\":\"a\",\"parameters\":{\"top_k\":2,"
                              "\"function_to_apply\":\"none\"}}");
    ck_assert(r.hf_params && r.top_k == 2 && r.fn == TEI_FN_NONE);
    tei_request_free(&r);
    r = parse_ok(TEI_FILL_MASK, "{\"inputs\":\"a\",\"top_k\":3,\"parameters\":{\"top_k\":2}}");
    ck_assert_int_eq(r.top_k, 3);
    tei_request_free(&r);
    parse_fails(TEI_PREDICT, "{\"inputs\":\"a\",\"parameters\":[1]}", LS_ERR_BAD_REQUEST,
                "parameters");
    parse_fails(TEI_FILL_MASK, "{\"inputs\":\"a\",\"parameters\":{\"targets\":[\"x\"]}}",
                LS_ERR_INVALID_INPUT, "targets");
    /* /similarity: the source first; /rerank: (query, text) pairs */
    r = parse_ok(TEI_SIMILARITY,
                 "{\"inputs\":{\"source_sentence\":\"s\",\"sentences\":[\"a\",\"b\"]}}");
    ck_assert(r.n == 3 && strcmp(r.in[0].text, "s") == 0 && strcmp(r.in[2].text, "b") == 0);
    tei_request_free(&r);
    parse_fails(TEI_SIMILARITY, "{\"inputs\":{\"source_sentence\":\"s\",\"sentences\":[]}}",
                LS_ERR_BAD_REQUEST, "sentences");
    r = parse_ok(TEI_RERANK, "{\"query\":\"q\",\"texts\":[\"a\",\"b\"],\"return_text\":true}");
    ck_assert(r.n == 2 && r.return_text && strcmp(r.in[1].text, "q") == 0 &&
              strcmp(r.in[1].pair, "b") == 0);
    tei_request_free(&r);
    parse_fails(TEI_RERANK, "{\"query\":\"q\",\"texts\":[]}", LS_ERR_BAD_REQUEST, "texts");
    parse_fails(TEI_RERANK, "{\"texts\":[\"a\"]}", LS_ERR_BAD_REQUEST, "query");
    tei_shape shape;
    char model[32];
    const char *peek = "{\"model\":\"m\",\"query\":\"q\",\"texts\":[]}";
    tei_root_peek(peek, strlen(peek), model, sizeof model, &shape);
    ck_assert(shape == TEI_SHAPE_RERANK && strcmp(model, "m") == 0);
    peek = "{\"inputs\":{\"source_sentence\":1}}";
    tei_root_peek(peek, strlen(peek), model, sizeof model, &shape);
    ck_assert(shape == TEI_SHAPE_SIMILARITY && model[0] == 0);
    tei_root_peek("not json", 8, model, sizeof model, &shape);
    ck_assert(shape == TEI_SHAPE_TEXT);
    parse_fails(TEI_FILL_MASK, "{\"inputs\":\"a\",\"top_k\":0}", LS_ERR_INVALID_INPUT, "top_k");
    parse_fails(TEI_TOKCLS, "{\"inputs\":\"a\",\"aggregation_strategy\":\"simple\"}",
                LS_ERR_INVALID_INPUT, "none");
    char big[512];
    int k = snprintf(big, sizeof big, "{\"inputs\":[");
    for (int i = 0; i < 33; i++)
        k += snprintf(big + k, sizeof big - (size_t)k, "%s\"x\"", i ? "," : "");
    snprintf(big + k, sizeof big - (size_t)k, "]}");
    parse_fails(TEI_EMBED, big, LS_ERR_TOO_LARGE, "batch size 33");
}
END_TEST

/* cJSON ends a string at \u0000: "ab\u0000 anything" would embed as "ab". */
START_TEST(json_nul_refused)
{
    parse_fails(TEI_EMBED, "{\"inputs\":\"ab\\u0000 anything\"}", LS_ERR_BAD_REQUEST,
                "`inputs`: NUL (\\u0000) in a string is not accepted");
    parse_fails(TEI_EMBED, "{\"inputs\":[\"a\",\"b\\u0000\"]}", LS_ERR_BAD_REQUEST,
                "`inputs[1]`: NUL");
    parse_fails(TEI_EMBED, "{\"inputs\":\"x\",\"parameters\":{\"k\":[1,{\"a\":\"\\u0000\"}]}}",
                LS_ERR_BAD_REQUEST, "`parameters.k[1].a`: NUL");
    parse_fails(TEI_EMBED, "{\"inputs\":\"x\",\"\\u0000\":1}", LS_ERR_BAD_REQUEST, "(a key)`: NUL");
    parse_fails(TEI_TOKENIZE, "{\"inputs\":\"tab\there\"}", LS_ERR_BAD_REQUEST,
                "`inputs`: a raw control byte (0x09)");
    /* an escaped backslash then the text u0000 is six plain characters */
    tei_request r = parse_ok(TEI_EMBED, "{\"inputs\":\"a\\\\u0000b\"}");
    ck_assert_str_eq(r.in[0].text, "a\\u0000b");
    tei_request_free(&r);
    r = parse_ok(TEI_EMBED, "{\"inputs\":\"\\\\\\\"u0000\\t\"}");
    ck_assert_str_eq(r.in[0].text, "\\\"u0000\t");
    tei_request_free(&r);
    char why[320];
    const char *ok = "[\"\\u0001\", {\"a\" : \"\\\\u0000\"}]";
    ck_assert_int_eq(fmt_json_check_strings(ok, strlen(ok), why, sizeof why), 0);
    const char *top = "\"\\u0000\"";
    ck_assert_int_eq(fmt_json_check_strings(top, strlen(top), why, sizeof why), 1);
    ck_assert_msg(strstr(why, "`the body`") != NULL, "%s", why);
    tgi_request g;
    char err[256] = "";
    const char *gen = "{\"inputs\":\"hi\",\"parameters\":{\"stop\":[\"\\u0000\"]}}";
    ck_assert_int_eq(tgi_request_parse(gen, strlen(gen), &g, err, sizeof err), LS_ERR_BAD_REQUEST);
    ck_assert_msg(strstr(err, "`parameters.stop[0]`: NUL") != NULL, "%s", err);
    v2_request v;
    const char *v2 = "{\"id\":\"a\\u0000b\",\"inputs\":[{\"name\":\"input_ids\",\"datatype\":"
                     "\"INT64\",\"shape\":[1,1],\"data\":[0]}]}";
    ck_assert_int_eq(v2_request_parse(v2, strlen(v2), strlen(v2), 1024, &v, err, sizeof err),
                     LS_ERR_BAD_REQUEST);
    ck_assert_msg(strstr(err, "`id`: NUL") != NULL, "%s", err);
}
END_TEST

START_TEST(tei_encoders)
{
    const float a[2] = {1.5f, -0.25f}, b[2] = {0, 2};
    const float *v[2] = {a, b};
    size_t len;
    char *s = tei_embed_encode(v, 2, 2, &len);
    ck_assert_str_eq(s, "[[1.5,-0.25],[0,2]]");
    ck_assert_int_eq(len, strlen(s));
    free(s);
    tei_echo e = {3, 2, 1, 1, 1, 2, "full+sliding_window", 512};
    s = oai_embeddings_encode(v, 1, 2, 1, "m\"x", 2, &e, &len);
    /* 1.5f = 00 00 c0 3f, -0.25f = 00 00 80 be -> AADAPwAAgL4= */
    ck_assert_msg(strstr(s, "\"embedding\":\"AADAPwAAgL4=\"") != NULL, "%s", s);
    ck_assert(strstr(s, "\"model\":\"m\\\"x\"") != NULL);
    ck_assert(strstr(s, "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}") != NULL);
    ck_assert(strstr(s, "\"truncated\":true") != NULL);
    ck_assert_msg(strstr(s, "\"windows\":1,\"tokens\":2,\"attention\":\"full+sliding_window\","
                            "\"attention_window\":512}") != NULL,
                  "%s", s);
    free(s);
    tei_token t = {7, "a\n", 2, 0, 0, 2, 0, 2, "a", 1};
    const tei_token *lists[1] = {&t};
    int counts[1] = {1};
    s = tei_tokenize_encode(lists, counts, 1, &len);
    ck_assert_str_eq(s, "[[{\"id\":7,\"text\":\"a\\n\",\"special\":false,\"start\":0,\"stop\":2,"
                        "\"char_start\":0,\"char_end\":2,\"token\":\"a\"}]]");
    free(s);
}
END_TEST

START_TEST(sbert_files)
{
    char dir[64], err[256];
    int norm = -1;
    const char *mods =
        "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models."
        "Transformer\"},{\"idx\":1,\"path\":\"1_Pooling\",\"type\":\"sentence_transformers."
        "models.Pooling\"},{\"path\":\"2_Normalize\",\"type\":\"sentence_transformers.models."
        "Normalize\"}]";
    ck_assert_int_eq(sb_modules_parse(mods, strlen(mods), "modules.json", dir, sizeof dir, &norm,
                                      err, sizeof err),
                     LS_OK);
    ck_assert_str_eq(dir, "1_Pooling");
    ck_assert_int_eq(norm, 1);
    const char *bad = "[{\"type\":\"sentence_transformers.models.Dense\",\"path\":\"2_Dense\"}]";
    ck_assert_int_eq(
        sb_modules_parse(bad, strlen(bad), "modules.json", dir, sizeof dir, &norm, err, sizeof err),
        LS_ERR_UNSUPPORTED);
    ck_assert(strstr(err, "Dense") != NULL);
    const char *esc = "[{\"type\":\"Pooling\",\"path\":\"../x\"}]";
    ck_assert_int_eq(
        sb_modules_parse(esc, strlen(esc), "m", dir, sizeof dir, &norm, err, sizeof err),
        LS_ERR_CONFIG);
    sb_pooling p;
    const char *mean = "{\"pooling_mode_cls_token\":false,\"pooling_mode_mean_tokens\":true}";
    ck_assert_int_eq(sb_pooling_parse(mean, strlen(mean), "c", &p, err, sizeof err), LS_OK);
    ck_assert_int_eq(p, SB_POOL_MEAN);
    const char *cls = "{\"pooling_mode\":\"cls\",\"pooling_mode_cls_token\":true}";
    ck_assert_int_eq(sb_pooling_parse(cls, strlen(cls), "c", &p, err, sizeof err), LS_OK);
    ck_assert_int_eq(p, SB_POOL_CLS);
    const char *two = "{\"pooling_mode_cls_token\":true,\"pooling_mode_max_tokens\":true}";
    ck_assert_int_eq(sb_pooling_parse(two, strlen(two), "c", &p, err, sizeof err),
                     LS_ERR_UNSUPPORTED);
    const char *none = "{}";
    ck_assert_int_eq(sb_pooling_parse(none, 2, "c", &p, err, sizeof err), LS_ERR_CONFIG);
    /* include_prompt: absent 1, false 0, another type refused */
    int inc = -1;
    ck_assert_int_eq(sb_pooling_include_prompt(mean, strlen(mean), "c", &inc, err, sizeof err),
                     LS_OK);
    ck_assert_int_eq(inc, 1);
    const char *excl = "{\"pooling_mode_mean_tokens\": true, \"include_prompt\": false}";
    ck_assert_int_eq(sb_pooling_include_prompt(excl, strlen(excl), "c", &inc, err, sizeof err),
                     LS_OK);
    ck_assert_int_eq(inc, 0);
    const char *badinc = "{\"include_prompt\": 0}";
    ck_assert_int_eq(sb_pooling_include_prompt(badinc, strlen(badinc), "c", &inc, err, sizeof err),
                     LS_ERR_CONFIG);
    /* config_sentence_transformers.json prompts */
    sb_prompts pr;
    const char *ok = "{\"prompts\": {\"query\": \"query: \", \"doc\": \"\"}, "
                     "\"default_prompt_name\": \"doc\"}";
    ck_assert_int_eq(sb_prompts_parse(ok, strlen(ok), "c", &pr, err, sizeof err), LS_OK);
    ck_assert_int_eq(pr.n, 2);
    ck_assert_str_eq(pr.names[0], "query");
    ck_assert_str_eq(pr.texts[0], "query: ");
    ck_assert_int_eq(pr.default_index, 1);
    sb_prompts_free(&pr);
    const char *nop = "{\"prompts\": null, \"default_prompt_name\": null}";
    ck_assert_int_eq(sb_prompts_parse(nop, strlen(nop), "c", &pr, err, sizeof err), LS_OK);
    ck_assert_int_eq(pr.n, 0);
    ck_assert_int_eq(pr.default_index, -1);
    sb_prompts_free(&pr);
    static const char *const badp[] = {
        "{\"prompts\": {\"q\": \"a\"}, \"default_prompt_name\": \"d\"}", /* unknown default */
        "{\"prompts\": {\"q\": \"a\", \"q\": \"b\"}}",                   /* twice */
        "{\"prompts\": {\"q\": 1}}", "{\"prompts\": [\"a\"]}", "[]"};
    for (size_t k = 0; k < sizeof badp / sizeof badp[0]; k++) {
        ck_assert_int_eq(
            sb_prompts_parse(badp[k], strlen(badp[k]), "cst.json", &pr, err, sizeof err),
            LS_ERR_CONFIG);
        ck_assert_ptr_nonnull(strstr(err, "cst.json"));
        ck_assert_int_eq(pr.n, 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server_units");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, budget_closes_batches);
    tcase_add_test(tc, solo_step_yields_to_later_short);
    tcase_add_test(tc, oversize_runs_alone_and_keys_separate);
    tcase_add_test(tc, weighted_fairness);
    tcase_add_test(tc, deadlines_drop);
    tcase_add_test(tc, options_table);
    tcase_add_test(tc, secrets_hidden);
    tcase_add_test(tc, arena_allocs);
    tcase_add_test(tc, utf8_check);
    tcase_add_test(tc, tei_input_forms);
    tcase_add_test(tc, json_nul_refused);
    tcase_add_test(tc, tei_encoders);
    tcase_add_test(tc, sbert_files);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
