/* Fuzz target: random bytes through every tokenizer type (WordPiece, WordLevel, byte-level
 * BPE, Unigram, the extra and component pipelines, bytes). Byte 0 picks the options, 0xFE splits
 * text from pair. Encoding must succeed or refuse the input as invalid (bad UTF-8); offsets must be
 * ordered; decoding any ids, valid or not, must not fail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static const char *const names[] = {
    "minilm", "wordpiece_cased", "bpe_roberta", "unigram_sp", "unigram_t5", "bpe_extras",
    "bpe_split", "bytes_enwik8",
    /* tools/make_tokenizer_component_fixtures.py: the remaining components */
    "components/wordlevel_scripts", "components/wordlevel_ctc", "components/wordlevel_fixed",
    "components/bpe_bytenorm", "components/unigram_first", "components/unigram_bytes",
    "components/wordpiece_opts", "components/bpe_suffix", "components/bpe_fallback"};
enum { NTOK = sizeof names / sizeof names[0] };
static tok_tokenizer *toks[NTOK];

static void load_all(void)
{
    const char *dir = getenv("LS_FIXTURES");
    if (!dir) dir = LS_FIXTURES_DIR;
    for (int i = 0; i < NTOK; i++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/tokenizers/%s", dir, names[i]);
        if (tok_load(path, &toks[i], err, sizeof err) != LS_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) load_all();
    if (size == 0) return 0;
    tok_encode_params p = tok_encode_default_params();
    p.add_special_tokens = !(data[0] & 1);
    p.max_length = ((data[0] >> 1) & 7) * 3;
    p.direction = (data[0] >> 4) & 1 ? TOK_TRUNC_LEFT : TOK_TRUNC_RIGHT;
    const char *text = (const char *)data + 1, *pair = NULL;
    size_t len = size - 1, plen = 0;
    const uint8_t *sep = memchr(data + 1, 0xFE, size - 1);
    if (sep) {
        len = (size_t)(sep - data) - 1;
        pair = (const char *)sep + 1;
        plen = size - (size_t)(sep - data) - 1;
    }
    for (int i = 0; i < NTOK; i++) {
        tok_encoding *e = NULL;
        char err[256];
        ls_status st = tok_encode(toks[i], text, len, pair, plen, &p, &e, err, sizeof err);
        REQUIRE(st == LS_OK || st == LS_ERR_INVALID_INPUT);
        if (st) continue;
        if (p.max_length > 0 && e->n_untruncated > e->n) REQUIRE(e->n <= (size_t)p.max_length);
        for (size_t k = 0; k < e->n; k++) {
            if (e->special_mask[k]) continue;
            REQUIRE(e->offsets[k].byte_start <= e->offsets[k].byte_end);
            REQUIRE(e->offsets[k].byte_end <= (int32_t)(e->sequence_ids[k] == 1 ? plen : len));
        }
        char *s = NULL;
        REQUIRE(tok_decode(toks[i], e->ids, e->n, data[0] & 0x20, &s, NULL, err, sizeof err) ==
                LS_OK);
        free(s);
        tok_encoding_free(e);
        /* arbitrary ids, negative and out of range included */
        int32_t ids[16];
        size_t n = size / 4;
        if (n > 16) n = 16;
        memcpy(ids, data, n * sizeof ids[0]);
        REQUIRE(tok_decode(toks[i], ids, n, 0, &s, NULL, err, sizeof err) == LS_OK);
        free(s);
    }
    return 0;
}
