/* config.json decoding (formats/hfconfig.c): the Reformer fields of hf-semantics B1 from
 * the fixtures' real configs, ReformerConfig's defaults, and refusals that name the key. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/engine.h"
#include "../formats/hfconfig.h"
#include "../tokenizer/tokenizer.h"
#include "testutil.h"

static ls_status parse(const char *json, hf_config *c, char *err, size_t n)
{
    return hf_config_parse(json, strlen(json), "config.json", c, err, n);
}

static void parse_fixture(const char *model, hf_config *c)
{
    char path[4096], err[512] = "";
    snprintf(path, sizeof path, "%s/reformer/%s/config.json", fixtures(), model);
    size_t len;
    char *text = slurp(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    ls_status st = hf_config_parse(text, len, path, c, err, sizeof err);
    free(text);
    ck_assert_msg(st == LS_OK, "%s: %s", path, err);
}

START_TEST(reformer_mixed_factorised)
{
    hf_config c;
    parse_fixture("rf_mixed_lm", &c);
    const hf_reformer *r = &c.reformer;
    ck_assert_str_eq(c.model_type, "reformer");
    ck_assert_str_eq(c.architecture, "ReformerModelWithLMHead");
    ck_assert_int_eq(c.num_hidden_layers, 4);
    const uint8_t lsh[] = {0, 1, 0, 1};
    for (int l = 0; l < 4; l++)
        ck_assert_int_eq(r->lsh[l], lsh[l]);
    ck_assert_int_eq(r->n_buckets, 2);
    ck_assert_int_eq(r->num_buckets[0], 2);
    ck_assert_int_eq(r->num_buckets[1], 4);
    ck_assert_int_eq(r->num_hashes, 3);
    ck_assert_int_eq(r->head_size, 16);
    ck_assert_int_eq(r->lsh_chunk, 8);
    ck_assert_int_eq(r->local_chunk, 4);
    ck_assert_int_eq(r->lsh_before, 1);
    ck_assert_int_eq(r->lsh_after, 0);
    ck_assert_int_eq(r->axial, 1);
    ck_assert_int_eq(r->n_axes, 2);
    ck_assert_int_eq(r->axial_shape[0], 8);
    ck_assert_int_eq(r->axial_shape[1], 16);
    ck_assert_int_eq(r->axial_dim[0], 12);
    ck_assert_int_eq(r->axial_dim[1], 20);
    ck_assert_int_eq(r->is_decoder, 1);
    ck_assert_int_eq(r->has_hash_seed, 1);
    ck_assert_int_eq(r->hash_seed, 11);
    ck_assert_int_eq(r->feed_forward_size, 64);
    ck_assert_int_eq(c.pad_token_id, 0);
    ck_assert_str_eq(c.hidden_act, "relu");
    hf_config_free(&c);
}
END_TEST

START_TEST(reformer_every_fixture_parses)
{
    static const char *const models[] = {"rf_lsh_enc",   "rf_local_mlm", "rf_mixed_lm",
                                         "rf_seqcls",    "rf_qa_long",   "rf_runtime_seed",
                                         "rf_local_dec", "rf_byte_lm"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        hf_config c;
        parse_fixture(models[i], &c);
        ck_assert_int_ge(c.num_hidden_layers, 1);
        ck_assert_int_ge(c.reformer.num_hashes, 1);
        hf_config_free(&c);
    }
    hf_config c; /* runtime-seed model: no hash_seed in its config */
    parse_fixture("rf_runtime_seed", &c);
    ck_assert_int_eq(c.reformer.has_hash_seed, 0);
    hf_config_free(&c);
}
END_TEST

START_TEST(reformer_defaults)
{
    hf_config c;
    char err[256];
    ck_assert_int_eq(
        parse("{\"model_type\": \"reformer\", \"num_buckets\": 32}", &c, err, sizeof err), LS_OK);
    const hf_reformer *r = &c.reformer;
    ck_assert_int_eq(c.num_hidden_layers, 6); /* len of the default attn_layers */
    ck_assert_int_eq(r->lsh[0], 0);
    ck_assert_int_eq(r->lsh[1], 1);
    ck_assert_int_eq(c.hidden_size, 256);
    ck_assert_int_eq(c.vocab_size, 320);
    ck_assert_int_eq(c.max_position_embeddings, 4096);
    ck_assert_int_eq(r->head_size, 64);
    ck_assert_int_eq(r->n_buckets, 1);
    ck_assert_int_eq(r->num_buckets[0], 32);
    ck_assert_int_eq(r->lsh_chunk, 64);
    ck_assert_int_eq(r->axial_shape[0], 64);
    ck_assert_int_eq(r->axial_dim[1], 192);
    ck_assert_int_eq(r->is_decoder, 0);
    ck_assert_int_eq(r->has_hash_seed, 0);
    ck_assert_int_eq(r->feed_forward_size, 512);
    hf_config_free(&c);
    /* a 2**32 + 7 seed survives (torch seeds with its low 32 bits, the engine's business) */
    ck_assert_int_eq(
        parse("{\"model_type\": \"reformer\", \"hash_seed\": 4294967303}", &c, err, sizeof err),
        LS_OK);
    ck_assert(c.reformer.hash_seed == 4294967303LL);
    hf_config_free(&c);
}
END_TEST

START_TEST(reformer_refusals_name_the_key)
{
    static const struct {
        const char *json, *key;
    } bad[] = {
        {"{\"model_type\": \"reformer\", \"attn_layers\": [\"lsh\", \"dense\"]}", "attn_layers"},
        {"{\"model_type\": \"reformer\", \"attn_layers\": []}", "attn_layers"},
        {"{\"model_type\": \"reformer\", \"num_buckets\": [2, \"4\"]}", "num_buckets"},
        {"{\"model_type\": \"reformer\", \"num_buckets\": 2.5}", "num_buckets"},
        {"{\"model_type\": \"reformer\", \"hash_seed\": -1}", "hash_seed"},
        {"{\"model_type\": \"reformer\", \"hash_seed\": \"7\"}", "hash_seed"},
        {"{\"model_type\": \"reformer\", \"is_decoder\": 1}", "is_decoder"},
        {"{\"model_type\": \"reformer\", \"axial_pos_shape\": [8, 16], "
         "\"axial_pos_embds_dim\": [4, 4, 4]}",
         "axial_pos_embds_dim"},
        {"{\"model_type\": \"reformer\", \"lsh_attn_chunk_length\": \"64\"}",
         "lsh_attn_chunk_length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hf_config c;
        char err[512] = "";
        ck_assert_msg(parse(bad[i].json, &c, err, sizeof err) == LS_ERR_CONFIG, "%s accepted",
                      bad[i].json);
        ck_assert_msg(strstr(err, bad[i].key) != NULL, "%s: message '%s' does not name %s",
                      bad[i].json, err, bad[i].key);
    }
}
END_TEST

/* A Reformer directory loads through the same loader: the info the server reports. */
START_TEST(reformer_model_info)
{
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof dir, "%s/reformer/rf_mixed_lm", fixtures());
    eng_model *m = NULL;
    ck_assert_msg(eng_model_load(dir, NULL, &m, err, sizeof err) == LS_OK, "%s", err);
    eng_model_info info;
    eng_model_get_info(m, &info);
    ck_assert_str_eq(info.model_type, "reformer");
    ck_assert_int_eq(info.head, ENG_HEAD_MLM);
    ck_assert_int_eq(info.hidden_size, 64); /* the outputs' width: both streams, 2 x 32 */
    ck_assert_int_eq(info.num_layers, 4);
    ck_assert_int_eq(info.max_window, 8);   /* lcm(lsh 8, local 4): the padding multiple */
    ck_assert_int_eq(info.max_tokens, 128); /* min(max_position_embeddings, 8 x 16 axial) */
    /* keys per token: local 4 x (1 + 1), lsh 8 x (1 + 1) x 3 rounds, over 4 layers */
    ck_assert(info.attn_keys == (8 + 48 + 8 + 48) / 4.0);
    ck_assert_int_eq(info.lsh_layers, 2);
    ck_assert_int_eq(info.can_generate, 1);
    ck_assert(eng_model_cost(&info, 1, 100, 0) == 100.0 * (6 * 64 + 28));
    eng_output_desc d[ENG_MAX_OUTPUTS];
    ck_assert_int_eq(eng_model_outputs(&info, d, ENG_MAX_OUTPUTS), 1);
    ck_assert_str_eq(d[0].name, "logits");
    ck_assert_int_eq(d[0].width, 200);
    eng_model_free(m);
}
END_TEST

/* A byte-level Reformer (vocab 258, no tokenizer.json) gets the byte tokenizer: id = byte + 2. */
START_TEST(reformer_byte_tokenizer)
{
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof dir, "%s/reformer/rf_byte_lm", fixtures());
    eng_model *m = NULL;
    ck_assert_msg(eng_model_load(dir, NULL, &m, err, sizeof err) == LS_OK, "%s", err);
    const tok_tokenizer *t = eng_model_tokenizer(m);
    ck_assert_ptr_nonnull(t);
    tok_encode_params p = tok_encode_default_params();
    tok_encoding *e = NULL;
    ck_assert_int_eq(tok_encode(t, "ab\xc3\xa9", 4, NULL, 0, &p, &e, err, sizeof err), LS_OK);
    ck_assert_int_eq(e->n, 4);
    const int32_t want[] = {'a' + 2, 'b' + 2, 0xc3 + 2, 0xa9 + 2};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(e->ids[i], want[i]);
    tok_encoding_free(e);
    eng_model_free(m);
    /* a Reformer with another vocabulary and no tokenizer.json serves ids only */
    snprintf(dir, sizeof dir, "%s/reformer/rf_lsh_enc", fixtures());
    ck_assert_msg(eng_model_load(dir, NULL, &m, err, sizeof err) == LS_OK, "%s", err);
    ck_assert_ptr_null(eng_model_tokenizer(m));
    eng_model_free(m);
}
END_TEST

/* The loader checks tokenizer.json's ids against config.json's vocab_size (300 here): an id
 * past the embedding table is a load error naming both. */
START_TEST(tokenizer_ids_within_vocab_size)
{
    char dir[] = "/tmp/ls_vocab_XXXXXX", src[4096], dst[4096], err[512] = "";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const char *const files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/reformer/rf_lsh_enc/%s", fixtures(), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        ck_assert_int_eq(symlink(src, dst), 0);
    }
    eng_model *m = NULL;
    for (int id = 299; id <= 300; id++) {
        snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
        FILE *f = fopen(dst, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": %d}}}",
                id);
        fclose(f);
        ls_status st = eng_model_load(dir, NULL, &m, err, sizeof err);
        if (id == 299) {
            ck_assert_msg(st == LS_OK, "%s", err);
            eng_model_free(m);
        } else {
            ck_assert_int_eq(st, LS_ERR_CONFIG);
            ck_assert_msg(strstr(err, "tokenizer.json: ids go up to 300") &&
                              strstr(err, "vocab_size is 300"),
                          "%s", err);
        }
    }
    for (int i = 0; i < 2; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
    }
    snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
    unlink(dst);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hfconfig");
    TCase *tc = tcase_create("reformer");
    tcase_add_test(tc, reformer_mixed_factorised);
    tcase_add_test(tc, reformer_every_fixture_parses);
    tcase_add_test(tc, reformer_defaults);
    tcase_add_test(tc, reformer_refusals_name_the_key);
    tcase_add_test(tc, reformer_model_info);
    tcase_add_test(tc, reformer_byte_tokenizer);
    tcase_add_test(tc, tokenizer_ids_within_vocab_size);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
