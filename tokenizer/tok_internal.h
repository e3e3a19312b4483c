/* Internals shared by the tok_*.c files: UTF-8 and Unicode helpers, string hash maps, the
 * normalized-string arena with its alignments back to the original text, and the runtime
 * tokenizer struct. Nothing here is part of the public API (tokenizer/tokenizer.h). */
#ifndef ENG_TOK_INTERNAL_H
#define ENG_TOK_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../common/utf8.h"
#include "../formats/tokenizer_json.h"
#include "tokenizer.h"

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* Decodes the (already validated) character at s; *len gets its byte length. */
static inline uint32_t tok__dec(const char *s, int *len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) return *len = 1, u[0];
    if (u[0] < 0xe0) return *len = 2, (uint32_t)(u[0] & 0x1f) << 6 | (u[1] & 0x3f);
    if (u[0] < 0xf0)
        return *len = 3,
               (uint32_t)(u[0] & 0x0f) << 12 | (uint32_t)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
    return *len = 4, (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3f) << 12 |
                         (uint32_t)(u[2] & 0x3f) << 6 | (u[3] & 0x3f);
}

static inline int tok__cplen(uint32_t c)
{
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

static inline int tok__enc(uint32_t c, char *o)
{
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), 2;
    if (c < 0x10000)
        return o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
               o[2] = (char)(0x80 | (c & 0x3f)), 3;
    return o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
           o[2] = (char)(0x80 | ((c >> 6) & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f)), 4;
}

/* Length of the first character (lead byte only). */
static inline int tok__lead_len(unsigned char b)
{
    return b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

/* Appends s[0..n) to *out with ill-formed sequences replaced by U+FFFD, one per maximal
 * subpart (Rust's String::from_utf8_lossy). */
struct tok__buf;
int tok__utf8_lossy(struct tok__buf *out, const char *s, size_t n);

/* ---- Unicode properties: utf8proc, corrected to what HF's crates say (tok_unicode_compat.h) */

int tok__is_whitespace(uint32_t c);            /* White_Space (Rust char::is_whitespace) */
int tok__is_bert_punc(uint32_t c);             /* ASCII punctuation or general category P* */
int tok__is_control(uint32_t c);               /* Cc, Cf, Cs, Co (BertNormalizer's is_control) */
int tok__is_numeric(uint32_t c);               /* Nd, Nl, No */
int tok__is_mn(uint32_t c);                    /* Mn */
int tok__is_mark(uint32_t c);                  /* Mn, Mc, Me */
int tok__hf_no_decomp(uint32_t c, int compat); /* HF leaves c undecomposed */
uint32_t tok__hf_lower(uint32_t c);            /* HF's lowercase where utf8proc has none, or 0 */

/* ---- growable buffers ------------------------------------------------------------------- */

typedef struct tok__buf {
    char *p;
    size_t n, cap;
} tok__buf;

int tok__reserve(void **p, size_t *cap, size_t need, size_t elem);
int tok__buf_put(tok__buf *b, const char *s, size_t n);

#define TOK__RESERVE(ptr, cap, need) tok__reserve((void **)&(ptr), &(cap), (need), sizeof *(ptr))

/* ---- string → int32 hash map ------------------------------------------------------------ */

uint64_t tok__hash(const void *p, size_t n);

typedef struct {
    uint32_t *slot; /* entry index + 1, 0 = empty; power of two */
    uint32_t mask;
    const char **key; /* [n] not owned: point into the tokenizer's pool */
    uint32_t *klen;
    int32_t *val;
    uint32_t n, cap;
} tok__map;

int tok__map_init(tok__map *m, uint32_t expected);
void tok__map_free(tok__map *m);
/* Inserts or overwrites; key must outlive the map. */
int tok__map_put(tok__map *m, const char *key, uint32_t len, int32_t val);
int32_t tok__map_get(const tok__map *m, const char *key, size_t len); /* -1 if absent */

/* ---- normalized text -------------------------------------------------------------------- */

/* Every byte of normalized text maps to the range of original bytes it came from (Hugging
 * Face's NormalizedString alignments), as absolute offsets into the original input. */
typedef struct {
    uint32_t s, e;
} tok__al;

/* All normalized text of one encode lives in one arena; splits are views into it. */
typedef struct {
    char *b;
    tok__al *al;
    size_t len, cap;
} tok__arena;

typedef struct {
    uint32_t off, len; /* normalized bytes arena.b[off .. off+len) */
    uint32_t os, oe;   /* original bytes this split covers (offsets_original) */
    int32_t added;     /* id of the added token this split is, or -1 */
} tok__split;

typedef struct {
    tok__split *v;
    size_t n, cap;
} tok__splits;

int tok__arena_reserve(tok__arena *a, size_t extra);
int tok__splits_push(tok__splits *s, tok__split sp);

/* Transform writer: replaces arena bytes [r0, r1) of split *sp by a stream of (char,
 * change) items with Hugging Face's transform_range semantics (change 0 replaces the next
 * character, 1 inserts, -k replaces and removes k more). Same-length replacements are
 * written in place; anything else moves the split to fresh arena space. */
typedef struct {
    tok__arena *a;
    tok__split *sp;
    size_t r0, r1; /* range being replaced, relative to the split */
    size_t rd;     /* read cursor (relative to the split) */
    int copying;
    size_t out; /* copying: arena offset of the new text */
    size_t wr;  /* in place: write cursor (relative) */
    int oom;
} tok__tw;

void tok__tw_begin(tok__tw *w, tok__arena *a, tok__split *sp, size_t r0, size_t r1,
                   size_t initial_remove);
void tok__tw_put(tok__tw *w, uint32_t c, int change);
void tok__tw_skip(tok__tw *w, size_t nchars); /* consume characters without output */

/* tok__tw_put(w, c, 0), with ASCII replacing ASCII in place done inline */
static inline void tok__tw_put0(tok__tw *w, uint32_t c)
{
    if (c < 0x80 && w->rd < w->r1) {
        tok__arena *a = w->a;
        size_t src = w->sp->off + w->rd;
        if ((unsigned char)a->b[src] < 0x80) {
            if (!w->copying) { /* in place */
                a->b[src] = (char)c;
                w->rd++, w->wr++;
                return;
            }
            if (a->len < a->cap) { /* appended, with the alignment of what it replaces */
                a->b[a->len] = (char)c;
                a->al[a->len++] = a->al[src];
                w->rd++;
                return;
            }
        }
    }
    tok__tw_put(w, c, 0);
}
int tok__tw_end(tok__tw *w); /* 0 ok, -1 out of memory */

/* The transform range Hugging Face uses for a whole-string transform. */
void tok__full_range(const tok__arena *a, const tok__split *sp, size_t *r0, size_t *r1);

/* ---- regexes ---------------------------------------------------------------------------- */

typedef struct {
    pcre2_code *code;
} tok__re;

/* Compiles an Oniguruma/Rust-style pattern (\s, \S, \w, \W as Unicode defines them). */
ls_status tok__re_compile(tok__re *r, const char *pattern, int literal, char *err, size_t errlen,
                          const char *what);
void tok__re_free(tok__re *r);
/* Next match at or after pos; returns 1 and sets [*ms, *me), 0 when none. */
int tok__re_next(const tok__re *r, pcre2_match_data *md, const char *s, size_t n, size_t pos,
                 size_t *ms, size_t *me);

/* ---- runtime tokenizer ------------------------------------------------------------------ */

typedef struct tok__norm tok__norm;
typedef struct tok__pre tok__pre;

struct tok__norm {
    tj_norm_type type;
    const tj_normalizer *j;
    tok__re re; /* Replace */
    struct tok__norm *items;
    int n_items;
    /* Precompiled */
    const uint32_t *pc_array; /* double array units */
    size_t pc_units;
    const char *pc_normalized;
    size_t pc_normalized_len;
};

struct tok__pre {
    tj_pre_type type;
    const tj_pretok *j;
    tok__re re;     /* Split, ByteLevel (GPT-2 pattern), Whitespace */
    uint32_t repl;  /* Metaspace replacement character */
    uint32_t delim; /* CharDelimiterSplit */
    struct tok__pre *items;
    int n_items;
};

/* one token out of a model, offsets into the split's normalized bytes */
typedef struct {
    int32_t id;
    uint32_t s, e;
    int from_text; /* the token's string is the normalized text s..e (Unigram unknowns) */
} tok__mtok;

typedef struct {
    tok__mtok *v;
    size_t n, cap;
} tok__mtoks;

/* a decoder with what it compiled at load (Replace's regex) */
typedef struct tok__decoder {
    const tj_decoder *j;
    tok__re re;
    int has_re;
    struct tok__decoder *items;
    int n_items;
} tok__decoder;

typedef struct tok__bpe_cache tok__bpe_cache;
typedef struct tok__scratch tok__scratch;

typedef struct {
    tj_model_type type;
    tok__map vocab;      /* token → id */
    const char **id2tok; /* [n_ids] */
    uint32_t *id2len;
    int32_t n_ids;
    /* WordPiece */
    tok__map cont; /* token without the continuing prefix → id */
    int32_t unk_id;
    size_t max_tok_len;
    /* BPE */
    uint64_t *merge_key; /* open addressing: (left << 32 | right) + 1, 0 empty */
    uint64_t *merge_val; /* rank << 32 | new id */
    uint32_t merge_mask;
    int32_t byte_ids[256]; /* byte-level: id of the single-character token of each byte */
    tok__bpe_cache *cache;
    /* Unigram */
    uint64_t *trie; /* open addressing: (node << 8 | byte) + 1 in the high 32 bits, child low */
    int32_t trie_root[256];
    uint32_t trie_mask, trie_nodes;
    int32_t *trie_piece; /* [nodes] piece id ending here or -1 */
    double *scores;
    double min_score;
    int32_t byte_fallback_ids[256]; /* <0xXX> */
} tok__model;

typedef struct {
    int32_t id;
    const char *content;
    uint32_t len;
    int single_word, lstrip, rstrip, normalized, special;
    const char *match; /* content to look for (normalized by the normalizer when needed) */
    uint32_t match_len;
} tok__added;

/* a piece of a template: a special token (ids/tokens) or sequence A/B */
typedef struct {
    int seq; /* -1 special, 0 A, 1 B */
    int32_t type_id;
    const int32_t *ids;
    const char *const *toks;
    int n;
} tok__tpl;

struct tok_tokenizer {
    tj_tokenizer j; /* the decoded file, owns every string below */
    tok__model m;
    tok__norm *norm;
    tok__pre *pre;
    tok__added *added;
    int n_added;
    /* added-token matcher: trie over match strings, split by normalized or not */
    uint64_t *at_key;
    uint32_t *at_child, at_mask, at_nodes;
    int32_t *at_term[2]; /* [nodes] added index ending here, per group (0 raw, 1 normalized) */
    int has_group[2];
    tok__re word_re; /* \w, for single_word added tokens */
    /* post-processing */
    int has_post;
    tok__tpl *tpl_single, *tpl_pair;
    int n_tpl_single, n_tpl_pair;
    int trim_offsets, trim_prefix_space; /* RobertaProcessing / ByteLevel trims */
    int post_sets_types;                 /* template decides type ids of sequence tokens */
    int roberta_types;                   /* RobertaProcessing: every type id 0 */
    /* decoding */
    tok__decoder *dec;
    int32_t max_id;
    const char **dec_tok; /* [max_id+1] id → token for decoding */
    uint32_t *dec_len;
    uint8_t *dec_special;
    /* encode working memory, reused across calls (tok_main.c) */
    pthread_mutex_t pool_mu;
    struct tok__scratch *pool;
};

/* tok_norm.c */
ls_status tok__norm_build(tok__norm *n, const tj_normalizer *j, char *err, size_t errlen);
void tok__norm_free(tok__norm *n);
int tok__normalize(const tok__norm *n, tok__arena *a, tok__split *sp, pcre2_match_data *md);
void tok__unicode_init(void);

/* tok_pre.c */
ls_status tok__pre_build(tok__pre *p, const tj_pretok *j, char *err, size_t errlen);
void tok__pre_free(tok__pre *p);
int tok__pre_tokenize(const tok__pre *p, tok__arena *a, tok__splits *in, tok__splits *tmp,
                      pcre2_match_data *md);
int tok__split_by_pred(tok__arena *a, const tok__split *sp, int (*pred)(uint32_t),
                       tj_split_behavior b, tok__splits *out);
const uint32_t *tok__byte_chars(void); /* GPT-2 byte → character */
/* every byte of the split becomes its GPT-2 character (ByteLevel pre-tokenizer, normalizer) */
int tok__bytes_to_chars(tok__arena *a, tok__split *sp);

/* tok_models.c */
ls_status tok__model_build(tok_tokenizer *t, char *err, size_t errlen);
void tok__model_free(tok__model *m);
ls_status tok__model_tokenize(const tok_tokenizer *t, const char *s, size_t n, tok__mtoks *out,
                              char *err, size_t errlen);

/* tok_decode.c: a list of strings, all in one buffer */
typedef struct {
    tok__buf text;
    size_t *start; /* [n+1] */
    size_t n, cap;
} tok__strs;

int tok__strs_push(tok__strs *v, const char *s, size_t n);
void tok__strs_free(tok__strs *v);
ls_status tok__decoder_build(tok__decoder *d, const tj_decoder *j, char *err, size_t errlen);
void tok__decoder_free(tok__decoder *d);
/* runs the decoder over toks, which it replaces by the decoded list */
ls_status tok__decode_chain(const tok__decoder *d, tok__strs *toks, pcre2_match_data *md, char *err,
                            size_t errlen);

#endif
