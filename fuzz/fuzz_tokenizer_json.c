/* Fuzz target: a tokenizer.json through the loader, the file-format layer
 * (formats/tokenizer_json.c) and the runtime tokenizer built from it (tokenizer/tok_*.c),
 * as tok_load_json reads a model directory's file. A refusal is one of the loader's
 * statuses with a message naming the file; a tokenizer that loads has every id in
 * 0..vocab size, encodes and decodes a text and a pair, and decodes ids outside its
 * vocabulary (2147483647, -1, its size) without failing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/tokenizer_json.h"
#include "../tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_tokenizer_json: %s broken (line %d)\n", #c, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_encoding(const tok_tokenizer *t, const tok_encoding *e, size_t len, size_t plen)
{
    const int32_t vocab = tok_vocab_size(t);
    for (size_t k = 0; k < e->n; k++) {
        if (e->ids[k] < 0 || e->ids[k] >= vocab)
            fprintf(stderr, "fuzz_tokenizer_json: token %zu has id %d, vocab size %d\n", k,
                    e->ids[k], vocab);
        REQUIRE(e->ids[k] >= 0 && e->ids[k] < vocab);
        if (e->special_mask[k]) continue;
        REQUIRE(e->offsets[k].byte_start <= e->offsets[k].byte_end);
        REQUIRE(e->offsets[k].byte_end <= (int32_t)(e->sequence_ids[k] == 1 ? plen : len));
    }
    char *s = NULL, err[256];
    REQUIRE(tok_decode(t, e->ids, e->n, 1, &s, NULL, err, sizeof err) == LS_OK);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_tokenizer *t = (tok_tokenizer *)1;
    char err[512] = "";
    ls_status st = tok_load_json((const char *)data, size, "tokenizer.json", &t, err, sizeof err);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "status %d: %s\n", st, st ? err : "loaded");
    if (st != LS_OK) {
        REQUIRE(t == NULL);
        REQUIRE(st == LS_ERR_FORMAT || st == LS_ERR_CONFIG || st == LS_ERR_UNSUPPORTED ||
                st == LS_ERR_NOMEM);
        REQUIRE(strstr(err, "tokenizer.json") != NULL);
        return 0;
    }
    REQUIRE(t != NULL);
    const int32_t vocab = tok_vocab_size(t);
    REQUIRE(vocab >= 0 && vocab <= TJ_MAX_ID + 1);
    /* "Hello WORLD, ünïcödé 123  [CLS] ab\t" */
    static const char text[] = "Hello WORLD, \303\274n\303\257c\303\266d\303\251 123  [CLS] ab\t";
    static const char pair[] = "a b [SEP] \xe2\x96\x81x";
    for (int mode = 0; mode < 2; mode++) {
        tok_encode_params p = tok_encode_default_params();
        p.add_special_tokens = !mode;
        p.max_length = mode ? 5 : 0;
        tok_encoding *e = NULL;
        const size_t len = sizeof text - 1, plen = mode ? sizeof pair - 1 : 0;
        st = tok_encode(t, text, len, mode ? pair : NULL, plen, &p, &e, err, sizeof err);
        /* a file can make a text impossible to encode (no unk token): a refusal, not a crash */
        REQUIRE(st == LS_OK || st == LS_ERR_INVALID_INPUT || st == LS_ERR_TOO_LARGE ||
                st == LS_ERR_CONFIG || st == LS_ERR_UNSUPPORTED || st == LS_ERR_NOMEM);
        if (st == LS_OK) {
            check_encoding(t, e, len, plen);
            tok_encoding_free(e);
        }
    }
    const int32_t odd[] = {2147483647, -1, vocab, 0, vocab - 1, INT32_MIN};
    char *s = NULL;
    REQUIRE(tok_decode(t, odd, sizeof odd / sizeof *odd, 0, &s, NULL, err, sizeof err) == LS_OK);
    free(s);
    for (int32_t id = 0; id < vocab && id < 64; id++) {
        const char *tok = tok_id_to_token(t, id);
        if (tok) REQUIRE(tok_token_to_id(t, tok) >= 0);
    }
    tok_free(t);
    return 0;
}
