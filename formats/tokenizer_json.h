/* tokenizer.json (Hugging Face `tokenizers`) decoded into plain C structs: the parts that
 * BERT, RoBERTa/Longformer and SentencePiece-converted (Reformer, T5) files use. Only
 * decoding and type checks happen here; tokenizer/tok_*.c builds the runtime tokenizer.
 * Everything a tj_tokenizer points to lives in its pool and dies with tj_tokenizer_free. */
#ifndef PR_TOKENIZER_JSON_H
#define PR_TOKENIZER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

typedef struct tj__pool tj__pool;

typedef enum { TJ_PAT_STRING, TJ_PAT_REGEX } tj_pattern_kind;

typedef struct {
    tj_pattern_kind kind;
    const char *text; /* literal string or regex source, as in the file */
} tj_pattern;

typedef enum {
    TJ_SPLIT_REMOVED,
    TJ_SPLIT_ISOLATED,
    TJ_SPLIT_MERGED_WITH_PREVIOUS,
    TJ_SPLIT_MERGED_WITH_NEXT,
    TJ_SPLIT_CONTIGUOUS,
} tj_split_behavior;

typedef enum { TJ_PREPEND_ALWAYS, TJ_PREPEND_NEVER, TJ_PREPEND_FIRST } tj_prepend_scheme;

/* ---- normalizers ------------------------------------------------------------------------ */

typedef enum {
    TJ_NORM_BERT,
    TJ_NORM_NFC,
    TJ_NORM_NFD,
    TJ_NORM_NFKC,
    TJ_NORM_NFKD,
    TJ_NORM_LOWERCASE,
    TJ_NORM_STRIP_ACCENTS,
    TJ_NORM_REPLACE,
    TJ_NORM_PREPEND,
    TJ_NORM_STRIP,
    TJ_NORM_PRECOMPILED,
    TJ_NORM_NMT,
    TJ_NORM_BYTE_LEVEL,
    TJ_NORM_SEQUENCE,
} tj_norm_type;

typedef struct tj_normalizer {
    tj_norm_type type;
    /* BertNormalizer; strip_accents is -1 when null (then it follows lowercase) */
    int clean_text, handle_chinese_chars, strip_accents, lowercase;
    int strip_left, strip_right; /* Strip */
    tj_pattern pattern;          /* Replace */
    const char *content;         /* Replace: replacement; Prepend: the prefix */
    const uint8_t *charsmap;     /* Precompiled: decoded precompiled_charsmap */
    size_t charsmap_len;
    struct tj_normalizer *items; /* Sequence */
    int n_items;
} tj_normalizer;

/* ---- pre-tokenizers --------------------------------------------------------------------- */

typedef enum {
    TJ_PRE_BERT,
    TJ_PRE_BYTE_LEVEL,
    TJ_PRE_WHITESPACE,
    TJ_PRE_WHITESPACE_SPLIT,
    TJ_PRE_METASPACE,
    TJ_PRE_SPLIT,
    TJ_PRE_PUNCTUATION,
    TJ_PRE_DIGITS,
    TJ_PRE_UNICODE_SCRIPTS,
    TJ_PRE_CHAR_DELIMITER,
    TJ_PRE_FIXED_LENGTH,
    TJ_PRE_SEQUENCE,
} tj_pre_type;

typedef struct tj_pretok {
    tj_pre_type type;
    int add_prefix_space, use_regex;  /* ByteLevel */
    const char *replacement;          /* Metaspace: one character, UTF-8 */
    tj_prepend_scheme prepend_scheme; /* Metaspace */
    int split;                        /* Metaspace */
    tj_pattern pattern;               /* Split */
    tj_split_behavior behavior;       /* Split, Punctuation */
    int invert;                       /* Split */
    int individual_digits;            /* Digits */
    const char *delimiter;            /* CharDelimiterSplit: one character, UTF-8 */
    int length;                       /* FixedLength: characters per split */
    struct tj_pretok *items;          /* Sequence */
    int n_items;
} tj_pretok;

/* ---- models ----------------------------------------------------------------------------- */

typedef enum {
    TJ_MODEL_WORDPIECE,
    TJ_MODEL_BPE,
    TJ_MODEL_UNIGRAM,
    TJ_MODEL_BYTES,
    TJ_MODEL_WORDLEVEL,
} tj_model_type;

typedef struct {
    tj_model_type type;
    /* WordPiece, BPE, WordLevel: vocab[i] has id ids[i]; Unigram: piece i, scores[i] */
    const char **vocab;
    int32_t *ids;
    double *scores;
    int n_vocab;
    const char **merges; /* BPE: 2*n_merges strings, left then right, by rank */
    int n_merges;
    const char *unk_token;                 /* WordPiece, BPE, WordLevel; NULL if none */
    const char *continuing_subword_prefix; /* WordPiece ("##"), BPE (NULL if none) */
    const char *end_of_word_suffix;        /* BPE, NULL if none */
    int max_input_chars_per_word;          /* WordPiece */
    int fuse_unk, byte_fallback, ignore_merges;
    int has_dropout; /* BPE dropout above 0 given (random: not supported by the engine) */
    int unk_id;      /* Unigram: -1 if none */
    int byte_offset; /* bytes: id = byte + byte_offset */
} tj_model;

/* ---- added tokens ----------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    const char *content;
    int single_word, lstrip, rstrip, normalized, special;
} tj_added_token;

/* ---- post-processors -------------------------------------------------------------------- */

typedef enum {
    TJ_POST_BERT,
    TJ_POST_ROBERTA,
    TJ_POST_TEMPLATE,
    TJ_POST_BYTE_LEVEL,
    TJ_POST_SEQUENCE,
} tj_post_type;

typedef struct {
    int is_special; /* 1: SpecialToken, 0: Sequence */
    const char *id; /* special token key, or "A"/"B" */
    int32_t type_id;
} tj_template_piece;

typedef struct {
    const char *key; /* the name a template piece uses */
    const char **tokens;
    int32_t *ids;
    int n;
} tj_special;

typedef struct tj_post {
    tj_post_type type;
    const char *sep, *cls; /* Bert, Roberta */
    int32_t sep_id, cls_id;
    int trim_offsets, add_prefix_space; /* Roberta, ByteLevel */
    tj_template_piece *single, *pair;   /* Template */
    int n_single, n_pair;
    tj_special *specials;
    int n_specials;
    struct tj_post *items; /* Sequence */
    int n_items;
} tj_post;

/* ---- decoders --------------------------------------------------------------------------- */

typedef enum {
    TJ_DEC_WORDPIECE,
    TJ_DEC_BYTE_LEVEL,
    TJ_DEC_METASPACE,
    TJ_DEC_REPLACE,
    TJ_DEC_BYTE_FALLBACK,
    TJ_DEC_FUSE,
    TJ_DEC_STRIP,
    TJ_DEC_CTC,
    TJ_DEC_BPE,
    TJ_DEC_SEQUENCE,
} tj_dec_type;

typedef struct tj_decoder {
    tj_dec_type type;
    const char *prefix;                     /* WordPiece */
    int cleanup;                            /* WordPiece, CTC */
    const char *pad_token, *word_delimiter; /* CTC */
    const char *suffix;                     /* BPEDecoder */
    const char *replacement;
    tj_prepend_scheme prepend_scheme; /* Metaspace */
    tj_pattern pattern;               /* Replace */
    const char *content;              /* Replace, Strip */
    int start, stop;                  /* Strip */
    struct tj_decoder *items;         /* Sequence */
    int n_items;
} tj_decoder;

/* ---- the whole file --------------------------------------------------------------------- */

/* Token ids index tables sized by the largest id, so a file's ids are bounded: none over
 * TJ_MAX_ID, and the largest under TJ_ID_SPREAD times the number of entries (vocab and
 * added tokens) plus TJ_ID_SLACK (a vocabulary offset by 1e9 cost 12.7 GB of tables). */
#define TJ_MAX_ID (1 << 24)
#define TJ_ID_SPREAD 16
#define TJ_ID_SLACK 1024

typedef enum { TJ_TRUNC_RIGHT, TJ_TRUNC_LEFT } tj_trunc_dir;

typedef struct {
    tj_model model;
    tj_normalizer *normalizer; /* NULL when absent */
    tj_pretok *pre_tokenizer;
    tj_post *post_processor;
    tj_decoder *decoder;
    tj_added_token *added;
    int n_added;
    int truncation_max_length; /* 0 when the file has no truncation */
    tj_trunc_dir truncation_direction;
    tj__pool *pool;
} tj_tokenizer;

/* Decodes a tokenizer.json held in json[0..len); file names the source in messages.
 * On failure *out is left empty (tj_tokenizer_free is still safe to call). */
ls_status tj_tokenizer_parse(const char *json, size_t len, const char *file, tj_tokenizer *out,
                             char *err, size_t errlen);

/* Decodes the byte tokenizer description {"type": "bytes", "offset": 2} into a tokenizer
 * whose model is TJ_MODEL_BYTES (no other parts). */
ls_status tj_bytes_config_parse(const char *json, size_t len, const char *file, tj_tokenizer *out,
                                char *err, size_t errlen);

void tj_tokenizer_free(tj_tokenizer *t);

#endif
