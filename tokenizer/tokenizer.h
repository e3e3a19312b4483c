/* tokenizer.h — text to token ids and back, exactly as Hugging Face `tokenizers` does it.
 *
 *     tok_tokenizer *t;
 *     if (tok_load("models/lf", &t, err, sizeof err)) die(err);
 *     tok_encode_params p = tok_encode_default_params();
 *     tok_encoding *e;
 *     if (tok_encode(t, text, strlen(text), NULL, 0, &p, &e, err, sizeof err)) die(err);
 *     // e->ids[i], e->type_ids[i], e->offsets[i].char_start .. char_end, tok_encoding_token(e, i)
 *     char *s;
 *     if (tok_decode(t, e->ids, e->n, 1, &s, NULL, err, sizeof err)) die(err);
 *     free(s);
 *     tok_encoding_free(e);
 *     tok_free(t);
 *
 * Loads a tokenizer.json (every normalizer, pre-tokenizer, model, post-processor and decoder
 * of `tokenizers`: WordPiece, WordLevel, BPE with or without byte-level pre-tokenization and
 * byte fallback, Unigram; BPE dropout above 0 is refused, being random) or a byte tokenizer
 * ({"type": "bytes", "offset": 2}). The file's "truncation" and "padding" sections are not
 * applied: truncation is a per-call parameter (tok_file_max_length tells what the file asked
 * for) and batches are ragged, never padded.
 * A loaded tokenizer may be used by any number of threads at once. Invalid UTF-8 is rejected
 * with the byte offset of the first bad byte. */
#ifndef ENG_TOKENIZER_H
#define ENG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

typedef struct tok_tokenizer tok_tokenizer;

/* in the order of tj_model_type (formats/tokenizer_json.h) */
typedef enum {
    TOK_MODEL_WORDPIECE,
    TOK_MODEL_BPE,
    TOK_MODEL_UNIGRAM,
    TOK_MODEL_BYTES,
    TOK_MODEL_WORDLEVEL,
} tok_model;

typedef enum { TOK_TRUNC_RIGHT, TOK_TRUNC_LEFT } tok_trunc_dir;

typedef struct {
    int add_special_tokens; /* 1: apply the post-processor's template (default) */
    /* Truncate to at most max_length tokens, special tokens included, longest-first for
     * pairs (as Hugging Face's enable_truncation). 0: no truncation (default). As in HF, a
     * max_length below the number of special tokens truncates nothing. */
    int max_length;
    tok_trunc_dir direction;
} tok_encode_params;

tok_encode_params tok_encode_default_params(void);

typedef struct {
    int32_t char_start, char_end; /* code points into the text the token came from */
    int32_t byte_start, byte_end; /* bytes into the same text */
} tok_offsets;

typedef struct {
    size_t n;                  /* tokens */
    size_t n_untruncated;      /* tokens there would be without truncation */
    int32_t *ids;              /* [n] */
    int32_t *type_ids;         /* [n] */
    uint8_t *special_mask;     /* [n] 1 for tokens the post-processor added */
    int8_t *sequence_ids;      /* [n] 0 first text, 1 pair text, -1 special */
    tok_offsets *offsets;      /* [n] special tokens have 0, 0 */
    const char *token_text;    /* token i is token_text[token_start[i] .. token_start[i+1]) */
    const size_t *token_start; /* [n+1] */
} tok_encoding;

/* Loads path: a directory holding tokenizer.json (or a byte tokenizer's config.json), or
 * a tokenizer.json file itself. Errors name the file and the JSON key. */
ls_status tok_load(const char *path, tok_tokenizer **out, char *err, size_t errlen);
/* The same from a tokenizer.json held in memory; name is used in messages (may be NULL). */
ls_status tok_load_json(const char *json, size_t len, const char *name, tok_tokenizer **out,
                        char *err, size_t errlen);
/* The byte tokenizer of models without tokenizer.json (enwik8 Reformer: offset 2). */
ls_status tok_load_bytes(int offset, tok_tokenizer **out, char *err, size_t errlen);
void tok_free(tok_tokenizer *t);

tok_model tok_get_model(const tok_tokenizer *t);
int32_t tok_vocab_size(const tok_tokenizer *t); /* largest id + 1, added tokens included */
/* The token string of id (NUL-terminated, owned by t), or NULL if there is none. */
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id);
/* The id of a token string (added tokens first, then the model), or -1. */
int32_t tok_token_to_id(const tok_tokenizer *t, const char *token);
/* max_length of the file's "truncation" section, 0 if it has none. */
int tok_file_max_length(const tok_tokenizer *t);

/* Encodes text (and pair, the second text of a question + context, or NULL). */
ls_status tok_encode(const tok_tokenizer *t, const char *text, size_t len, const char *pair,
                     size_t pair_len, const tok_encode_params *p, tok_encoding **out, char *err,
                     size_t errlen);
void tok_encoding_free(tok_encoding *e);

/* Token i's string (not NUL-terminated); *len gets its length. */
static inline const char *tok_encoding_token(const tok_encoding *e, size_t i, size_t *len)
{
    *len = e->token_start[i + 1] - e->token_start[i];
    return e->token_text + e->token_start[i];
}

/* Turns ids back into text through the tokenizer's decoder (NUL-terminated, malloc'd,
 * *out_len may be NULL). skip_special drops the special added tokens. Ids outside the
 * vocabulary are skipped, as Hugging Face does. */
ls_status tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                     char **out, size_t *out_len, char *err, size_t errlen);

#endif
