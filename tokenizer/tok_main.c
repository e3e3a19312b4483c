/* The tokenizer itself: loading (tokenizer.json through proto/, or a byte tokenizer), the
 * encode pipeline (added tokens → normalizer → pre-tokenizer → model → offsets →
 * truncation → post-processor) and decode. Owns tok_tokenizer and tok_encoding. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/file.h"
#include "tok_internal.h"

tok_encode_params tok_encode_default_params(void)
{
    return (tok_encode_params){
        .add_special_tokens = 1, .max_length = 0, .direction = TOK_TRUNC_RIGHT};
}

/* ---- added tokens: a byte trie, leftmost-longest like Hugging Face's Aho-Corasick ------ */

static uint32_t tok__mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

static int32_t tok__at_child(const tok_tokenizer *t, uint32_t node, unsigned char b)
{
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    for (uint32_t h = tok__mix(key) & t->at_mask; t->at_key[h]; h = (h + 1) & t->at_mask)
        if (t->at_key[h] == key) return (int32_t)t->at_child[h];
    return -1;
}

/* first match at or after pos in group g; 1 if found */
static int tok__at_find(const tok_tokenizer *t, int g, const char *s, size_t n, size_t pos,
                        size_t *ms, size_t *me, int *idx)
{
    if (!t->has_group[g]) return 0;
    for (; pos < n; pos++) {
        if (tok__at_child(t, 0, (unsigned char)s[pos]) < 0) continue;
        uint32_t node = 0;
        int best = -1;
        size_t bend = 0;
        for (size_t k = pos; k < n; k++) {
            int32_t c = tok__at_child(t, node, (unsigned char)s[k]);
            if (c < 0) break;
            node = (uint32_t)c;
            if (t->at_term[g][node] >= 0) best = t->at_term[g][node], bend = k + 1;
        }
        if (best >= 0) {
            *ms = pos, *me = bend, *idx = best;
            return 1;
        }
    }
    return 0;
}

/* regex-crate \w, for single_word tokens */
static int tok__word_char(const tok_tokenizer *t, const char *s, size_t l, pcre2_match_data *md)
{
    unsigned char b = (unsigned char)s[0];
    if (b < 0x80)
        return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
               b == '_';
    size_t ms, me;
    return tok__re_next(&t->word_re, md, s, l, 0, &ms, &me) == 1 && ms == 0;
}

typedef struct {
    int idx; /* added index, -1 for text */
    size_t s, e;
} tok__amatch;

/* AddedVocabulary::find_matches over one split's text */
static int tok__added_split(const tok_tokenizer *t, int g, tok__arena *a, const tok__split *sp,
                            tok__splits *out, pcre2_match_data *md)
{
    size_t n = sp->len, pos = 0, start_off = 0, ms, me;
    int idx;
    const char *s;
    int any = 0;
    while ((s = a->b + sp->off), tok__at_find(t, g, s, n, pos, &ms, &me, &idx)) {
        const tok__added *k = &t->added[idx];
        size_t start = ms, stop = me;
        pos = me;
        if (k->single_word) {
            int start_space = 1, stop_space = 1;
            if (start > 0) {
                size_t p = start - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xc0) == 0x80)
                    p--;
                start_space = !tok__word_char(t, s + p, start - p, md);
            }
            if (stop < n)
                stop_space =
                    !tok__word_char(t, s + stop, (size_t)tok__lead_len((unsigned char)s[stop]), md);
            if (!start_space || !stop_space) continue;
        }
        if (k->lstrip) {
            size_t ns = start;
            while (ns > start_off) {
                size_t p = ns - 1;
                while (p > 0 && ((unsigned char)s[p] & 0xc0) == 0x80)
                    p--;
                int l;
                if (!tok__is_whitespace(tok__dec(s + p, &l))) break;
                ns = p;
            }
            start = ns > start_off ? ns : start_off;
        }
        if (k->rstrip) {
            while (stop < n) {
                int l;
                if (!tok__is_whitespace(tok__dec(s + stop, &l))) break;
                stop += (size_t)l;
            }
        }
        if (start_off < start) {
            tok__split x = {sp->off + (uint32_t)start_off, (uint32_t)(start - start_off),
                            a->al[sp->off + start_off].s, a->al[sp->off + start - 1].e, -1};
            if (tok__splits_push(out, x)) return -1;
        }
        if (stop > start) {
            tok__split x = {sp->off + (uint32_t)start, (uint32_t)(stop - start),
                            a->al[sp->off + start].s, a->al[sp->off + stop - 1].e, idx};
            if (tok__splits_push(out, x)) return -1;
        }
        start_off = stop;
        any = 1;
    }
    if (!any) return sp->len ? tok__splits_push(out, *sp) : 0;
    if (start_off < n) {
        tok__split x = {sp->off + (uint32_t)start_off, (uint32_t)(n - start_off),
                        a->al[sp->off + start_off].s, a->al[sp->off + n - 1].e, -1};
        if (tok__splits_push(out, x)) return -1;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

static ls_status tok__add_template(const tj_template_piece *p, int np, const tj_post *j,
                                   tok__tpl **out, int *nout, char *err, size_t errlen)
{
    *out = calloc((size_t)np + 1, sizeof **out);
    if (!*out) return ls_fail(err, errlen, LS_ERR_NOMEM, "post-processor: out of memory");
    *nout = np;
    for (int i = 0; i < np; i++) {
        tok__tpl *x = &(*out)[i];
        x->type_id = p[i].type_id;
        if (!p[i].is_special) {
            x->seq = p[i].id[0] == 'A' ? 0 : 1;
            continue;
        }
        x->seq = -1;
        const tj_special *sp = NULL;
        for (int k = 0; k < j->n_specials; k++)
            if (!strcmp(j->specials[k].key, p[i].id)) sp = &j->specials[k];
        if (!sp)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "post_processor: template uses special token \"%s\" that "
                           "special_tokens does not define",
                           p[i].id);
        x->ids = sp->ids, x->toks = sp->tokens, x->n = sp->n;
    }
    return LS_OK;
}

static ls_status tok__fixed_template(const tj_post *j, int pair, tok__tpl **out, int *nout,
                                     char *err, size_t errlen)
{
    int roberta = j->type == TJ_POST_ROBERTA;
    int n = pair ? (roberta ? 6 : 5) : 3;
    *out = calloc((size_t)n, sizeof **out);
    if (!*out) return ls_fail(err, errlen, LS_ERR_NOMEM, "post-processor: out of memory");
    *nout = n;
    tok__tpl cls = {-1, 0, &j->cls_id, &j->cls, 1}, sep = {-1, 0, &j->sep_id, &j->sep, 1};
    tok__tpl A = {0, 0, NULL, NULL, 0}, B = {1, roberta ? 0 : 1, NULL, NULL, 0};
    tok__tpl sep1 = sep;
    sep1.type_id = roberta ? 0 : 1;
    tok__tpl *o = *out;
    o[0] = cls, o[1] = A, o[2] = sep;
    if (pair && roberta)
        o[3] = sep, o[4] = B, o[5] = sep1;
    else if (pair)
        o[3] = B, o[4] = sep1;
    return LS_OK;
}

static ls_status tok__build_post(tok_tokenizer *t, const tj_post *j, char *err, size_t errlen)
{
    switch (j->type) {
    case TJ_POST_BERT:
    case TJ_POST_ROBERTA: {
        if (t->has_post)
            return ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                           "post_processor: more than one processor adds special tokens");
        t->has_post = 1;
        t->post_sets_types = 1;
        if (j->type == TJ_POST_ROBERTA && j->trim_offsets)
            t->trim_offsets = 1, t->trim_prefix_space = j->add_prefix_space;
        ls_status st = tok__fixed_template(j, 0, &t->tpl_single, &t->n_tpl_single, err, errlen);
        if (!st) st = tok__fixed_template(j, 1, &t->tpl_pair, &t->n_tpl_pair, err, errlen);
        return st;
    }
    case TJ_POST_TEMPLATE: {
        if (t->has_post)
            return ls_fail(err, errlen, LS_ERR_UNSUPPORTED,
                           "post_processor: more than one processor adds special tokens");
        t->has_post = 1;
        t->post_sets_types = 1;
        ls_status st = tok__add_template(j->single, j->n_single, j, &t->tpl_single,
                                         &t->n_tpl_single, err, errlen);
        if (!st)
            st =
                tok__add_template(j->pair, j->n_pair, j, &t->tpl_pair, &t->n_tpl_pair, err, errlen);
        return st;
    }
    case TJ_POST_BYTE_LEVEL:
        if (j->trim_offsets) t->trim_offsets = 1, t->trim_prefix_space = j->add_prefix_space;
        return LS_OK;
    case TJ_POST_SEQUENCE:
        for (int i = 0; i < j->n_items; i++) {
            ls_status st = tok__build_post(t, &j->items[i], err, errlen);
            if (st) return st;
        }
        return LS_OK;
    }
    return LS_OK;
}

/* normalizes an added token's content the way the tokenizer would normalize text */
static ls_status tok__normalize_text(const tok_tokenizer *t, const char *s, size_t n, char **out,
                                     size_t *outlen, char *err, size_t errlen)
{
    tok__arena a = {0};
    ls_status st = LS_OK;
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    if (!md || tok__arena_reserve(&a, n + 1)) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "added tokens: out of memory");
        goto done;
    }
    memcpy(a.b, s, n);
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)tok__lead_len((unsigned char)s[i]);
        for (size_t k = 0; k < l; k++)
            a.al[i + k] = (tok__al){(uint32_t)i, (uint32_t)(i + l)};
        i += l;
    }
    a.len = n;
    tok__split sp = {0, (uint32_t)n, 0, (uint32_t)n, -1};
    if (tok__normalize(t->norm, &a, &sp, md)) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "added tokens: out of memory");
        goto done;
    }
    *out = malloc(sp.len + 1);
    if (!*out) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "added tokens: out of memory");
        goto done;
    }
    memcpy(*out, a.b + sp.off, sp.len);
    (*out)[sp.len] = 0;
    *outlen = sp.len;
done:
    free(a.b), free(a.al);
    pcre2_match_data_free(md);
    return st;
}

static ls_status tok__build_added(tok_tokenizer *t, char *err, size_t errlen)
{
    int n = t->j.n_added;
    if (!n) return LS_OK;
    t->added = calloc((size_t)n, sizeof *t->added);
    if (!t->added) return ls_fail(err, errlen, LS_ERR_NOMEM, "added tokens: out of memory");
    t->n_added = n;
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        const tj_added_token *j = &t->j.added[i];
        tok__added *k = &t->added[i];
        k->id = j->id, k->content = j->content, k->len = (uint32_t)strlen(j->content);
        k->single_word = j->single_word, k->lstrip = j->lstrip, k->rstrip = j->rstrip;
        k->normalized = j->normalized, k->special = j->special;
        if (ls_utf8_check(j->content, k->len) >= 0)
            return ls_fail(err, errlen, LS_ERR_CONFIG, "added_tokens[%d]: content is not UTF-8", i);
        if (k->normalized && t->norm) {
            char *m = NULL;
            size_t ml = 0;
            ls_status st = tok__normalize_text(t, j->content, k->len, &m, &ml, err, errlen);
            if (st) return st;
            k->match = m, k->match_len = (uint32_t)ml;
        } else {
            k->match = NULL, k->match_len = k->len;
        }
        total += k->match_len;
    }
    uint32_t sz = 16;
    while (sz < total * 2 + 16)
        sz *= 2;
    t->at_key = calloc(sz, sizeof *t->at_key);
    t->at_child = calloc(sz, sizeof *t->at_child);
    t->at_term[0] = malloc(total * sizeof *t->at_term[0]);
    t->at_term[1] = malloc(total * sizeof *t->at_term[1]);
    if (!t->at_key || !t->at_child || !t->at_term[0] || !t->at_term[1])
        return ls_fail(err, errlen, LS_ERR_NOMEM, "added tokens: out of memory");
    t->at_mask = sz - 1, t->at_nodes = 1;
    t->at_term[0][0] = t->at_term[1][0] = -1;
    /* special tokens first, then the others: the order Hugging Face builds its automata */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            tok__added *k = &t->added[i];
            if ((pass == 0) != (k->special != 0) || !k->len || !k->match_len) continue;
            const char *m = k->match ? k->match : k->content;
            uint32_t node = 0;
            for (uint32_t b = 0; b < k->match_len; b++) {
                int32_t c = tok__at_child(t, node, (unsigned char)m[b]);
                if (c < 0) {
                    uint64_t key = ((uint64_t)node << 8 | (unsigned char)m[b]) + 1;
                    uint32_t h = tok__mix(key) & t->at_mask;
                    while (t->at_key[h])
                        h = (h + 1) & t->at_mask;
                    t->at_key[h] = key;
                    c = (int32_t)t->at_nodes++;
                    t->at_child[h] = (uint32_t)c;
                    t->at_term[0][c] = t->at_term[1][c] = -1;
                }
                node = (uint32_t)c;
            }
            int g = k->normalized ? 1 : 0;
            if (t->at_term[g][node] < 0) t->at_term[g][node] = i;
            t->has_group[g] = 1;
        }
    }
    return LS_OK;
}

static ls_status tok__build_decode(tok_tokenizer *t, char *err, size_t errlen)
{
    int32_t max_id = t->m.n_ids - 1;
    if (t->m.type == TJ_MODEL_BYTES) max_id = t->j.model.byte_offset + 255;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    t->max_id = max_id;
    size_t n = (size_t)max_id + 1;
    t->dec_tok = calloc(n + 1, sizeof *t->dec_tok);
    t->dec_len = calloc(n + 1, sizeof *t->dec_len);
    t->dec_special = calloc(n + 1, 1);
    if (!t->dec_tok || !t->dec_len || !t->dec_special)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
    for (int32_t i = 0; i < t->m.n_ids; i++)
        t->dec_tok[i] = t->m.id2tok[i], t->dec_len[i] = t->m.id2len[i];
    for (int i = 0; i < t->n_added; i++) {
        const tok__added *k = &t->added[i];
        /* a normalized added token decodes to its normalized content, as in HF */
        t->dec_tok[k->id] = k->match ? k->match : k->content;
        t->dec_len[k->id] = k->match ? k->match_len : k->len;
        if (k->special) t->dec_special[k->id] = 1;
    }
    return LS_OK;
}

/* The post-processor's token ids must be ids of the vocabulary: tok_vocab_size bounds
 * every id an encoding holds (the engine's own check relies on it). */
static ls_status tok__check_post_ids(const tok_tokenizer *t, char *err, size_t errlen)
{
    for (int pair = 0; pair < 2; pair++) {
        const tok__tpl *tp = pair ? t->tpl_pair : t->tpl_single;
        const int n = pair ? t->n_tpl_pair : t->n_tpl_single;
        for (int i = 0; i < n; i++)
            for (int k = 0; tp[i].seq < 0 && k < tp[i].n; k++)
                if (tp[i].ids[k] < 0 || tp[i].ids[k] > t->max_id)
                    return ls_fail(err, errlen, LS_ERR_CONFIG,
                                   "post_processor: special token \"%s\" has id %d, outside the "
                                   "vocabulary (ids 0..%d)",
                                   tp[i].toks && tp[i].toks[k] ? tp[i].toks[k] : "?",
                                   (int)tp[i].ids[k], (int)t->max_id);
    }
    return LS_OK;
}

static ls_status tok__build(tok_tokenizer *t, char *err, size_t errlen)
{
    tok__unicode_init();
    (void)tok__byte_chars();
    ls_status st = tok__model_build(t, err, errlen);
    if (!st && t->j.normalizer) {
        t->norm = calloc(1, sizeof *t->norm);
        st = t->norm ? tok__norm_build(t->norm, t->j.normalizer, err, errlen)
                     : ls_fail(err, errlen, LS_ERR_NOMEM, "normalizer: out of memory");
    }
    if (!st && t->j.pre_tokenizer) {
        t->pre = calloc(1, sizeof *t->pre);
        st = t->pre ? tok__pre_build(t->pre, t->j.pre_tokenizer, err, errlen)
                    : ls_fail(err, errlen, LS_ERR_NOMEM, "pre-tokenizer: out of memory");
    }
    if (!st) st = tok__build_added(t, err, errlen);
    if (!st) st = tok__re_compile(&t->word_re, "\\w", 0, err, errlen, "single_word");
    if (!st && t->j.post_processor) st = tok__build_post(t, t->j.post_processor, err, errlen);
    if (!st && t->j.decoder) {
        t->dec = calloc(1, sizeof *t->dec);
        st = t->dec ? tok__decoder_build(t->dec, t->j.decoder, err, errlen)
                    : ls_fail(err, errlen, LS_ERR_NOMEM, "decoder: out of memory");
    }
    if (!st) st = tok__build_decode(t, err, errlen);
    if (!st) st = tok__check_post_ids(t, err, errlen);
    return st;
}

static ls_status tok__finish_load(tok_tokenizer *t, const char *file, tok_tokenizer **out,
                                  char *err, size_t errlen)
{
    ls_status st = tok__build(t, err, errlen);
    if (st) {
        /* prefix the file name when the message lacks it */
        if (err && errlen && strncmp(err, file, strlen(file))) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s: %s", file, err);
            snprintf(err, errlen, "%s", tmp);
        }
        tok_free(t);
        return st;
    }
    *out = t;
    return LS_OK;
}

/* decodes json (a tokenizer.json, or a byte tokenizer's config when bytes) and builds */
static ls_status tok__from_json(const char *json, size_t len, const char *name, int bytes,
                                tok_tokenizer **out, char *err, size_t errlen)
{
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", name);
    pthread_mutex_init(&t->pool_mu, NULL);
    ls_status st = bytes ? tj_bytes_config_parse(json, len, name, &t->j, err, errlen)
                         : tj_tokenizer_parse(json, len, name, &t->j, err, errlen);
    if (st) {
        pthread_mutex_destroy(&t->pool_mu);
        free(t);
        return st;
    }
    return tok__finish_load(t, name, out, err, errlen);
}

ls_status tok_load(const char *path, tok_tokenizer **out, char *err, size_t errlen)
{
    *out = NULL;
    char file[4096];
    struct stat sb;
    int bytes = 0;
    if (stat(path, &sb)) return ls_fail(err, errlen, LS_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (stat(file, &sb)) {
            snprintf(file, sizeof file, "%s/config.json", path);
            bytes = 1;
        }
    } else {
        snprintf(file, sizeof file, "%s", path);
        size_t l = strlen(file);
        bytes = l >= 11 && !strcmp(file + l - 11, "config.json");
    }
    char *json = NULL;
    size_t len = 0;
    ls_status st = ls_read_file(file, (size_t)1 << 30, &json, &len, err, errlen);
    if (st) return st;
    st = tok__from_json(json, len, file, bytes, out, err, errlen);
    free(json);
    return st;
}

ls_status tok_load_json(const char *json, size_t len, const char *name, tok_tokenizer **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    return tok__from_json(json, len, name ? name : "tokenizer.json", 0, out, err, errlen);
}

ls_status tok_load_bytes(int offset, tok_tokenizer **out, char *err, size_t errlen)
{
    *out = NULL;
    char json[64];
    int n = snprintf(json, sizeof json, "{\"type\": \"bytes\", \"offset\": %d}", offset);
    return tok__from_json(json, (size_t)n, "byte tokenizer", 1, out, err, errlen);
}

static void tok__pool_drain(tok_tokenizer *t);

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    tok__pool_drain(t);
    pthread_mutex_destroy(&t->pool_mu);
    tok__model_free(&t->m);
    tok__norm_free(t->norm);
    free(t->norm);
    tok__pre_free(t->pre);
    free(t->pre);
    tok__decoder_free(t->dec);
    free(t->dec);
    for (int i = 0; i < t->n_added; i++)
        free((void *)t->added[i].match);
    free(t->added);
    tok__re_free(&t->word_re);
    free(t->at_key), free(t->at_child), free(t->at_term[0]), free(t->at_term[1]);
    free(t->tpl_single), free(t->tpl_pair);
    free(t->dec_tok), free(t->dec_len), free(t->dec_special);
    tj_tokenizer_free(&t->j);
    free(t);
}

tok_model tok_get_model(const tok_tokenizer *t)
{
    return (tok_model)t->m.type;
}

int32_t tok_vocab_size(const tok_tokenizer *t)
{
    return t->max_id + 1;
}

const char *tok_id_to_token(const tok_tokenizer *t, int32_t id)
{
    if (id < 0 || id > t->max_id) return NULL;
    return t->dec_tok[id];
}

int32_t tok_token_to_id(const tok_tokenizer *t, const char *token)
{
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) return t->added[i].id;
    return tok__map_get(&t->m.vocab, token, n);
}

int tok_file_max_length(const tok_tokenizer *t)
{
    return t->j.truncation_max_length;
}

/* ---- encoding one text ---------------------------------------------------------------------- */

/* one token of one sequence, before post-processing */
typedef struct {
    int32_t id;
    int32_t cs, ce;  /* character offsets into the sequence's text */
    int32_t bs;      /* byte tokenizer: the byte's offset (others derive bytes from cs, ce) */
    const char *val; /* its string (arena, vocabulary or added token) */
    uint32_t vlen;
} tok__etok;

typedef struct {
    tok__arena a;
    tok__splits sp, tmp;
    tok__mtoks mt;
    tok__etok *t;
    size_t n, cap;
    size_t n_chars;
    int multibyte; /* the text is not ASCII: c2b and b2c are filled */
    size_t *c2b;   /* [n_chars+1] char index → byte offset */
    uint32_t *b2c; /* [len] byte → index of the character holding it */
    size_t c2b_cap, b2c_cap;
} tok__seq;

/* Per-encode working memory. Encodes take one from the tokenizer's pool and give it back,
 * so a server encoding request after request does not fault fresh pages in each time. */
struct tok__scratch {
    tok__seq q[2];
    pcre2_match_data *md;
    struct tok__scratch *next;
};

enum { TOK__SCRATCH_KEEP = 64 << 20 }; /* arenas bigger than this are not kept */

static void tok__seq_free(tok__seq *q)
{
    free(q->a.b), free(q->a.al), free(q->sp.v), free(q->tmp.v), free(q->mt.v), free(q->t);
    free(q->c2b), free(q->b2c);
}

static void tok__scratch_free(tok__scratch *s)
{
    if (!s) return;
    tok__seq_free(&s->q[0]), tok__seq_free(&s->q[1]);
    pcre2_match_data_free(s->md);
    free(s);
}

static void tok__pool_drain(tok_tokenizer *t)
{
    while (t->pool) {
        tok__scratch *n = t->pool->next;
        tok__scratch_free(t->pool);
        t->pool = n;
    }
}

static tok__scratch *tok__scratch_get(const tok_tokenizer *tc)
{
    tok_tokenizer *t = (tok_tokenizer *)tc; /* the pool is the one mutable part */
    pthread_mutex_lock(&t->pool_mu);
    tok__scratch *s = t->pool;
    if (s) t->pool = s->next;
    pthread_mutex_unlock(&t->pool_mu);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        s->md = pcre2_match_data_create(16, NULL);
        if (!s->md) {
            free(s);
            return NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        tok__seq *q = &s->q[i];
        q->a.len = 0, q->sp.n = 0, q->tmp.n = 0, q->mt.n = 0, q->n = 0;
        q->n_chars = 0, q->multibyte = 0;
    }
    return s;
}

static void tok__scratch_put(const tok_tokenizer *tc, tok__scratch *s)
{
    tok_tokenizer *t = (tok_tokenizer *)tc;
    if (!s) return;
    if (s->q[0].a.cap > TOK__SCRATCH_KEEP || s->q[1].a.cap > TOK__SCRATCH_KEEP) {
        tok__scratch_free(s);
        return;
    }
    pthread_mutex_lock(&t->pool_mu);
    s->next = t->pool;
    t->pool = s;
    pthread_mutex_unlock(&t->pool_mu);
}

static ls_status tok__oom(char *err, size_t errlen)
{
    return ls_fail(err, errlen, LS_ERR_NOMEM, "tokenizer: out of memory");
}

static ls_status tok__encode_text(const tok_tokenizer *t, const char *text, size_t len, tok__seq *q,
                                  pcre2_match_data *md, char *err, size_t errlen)
{
    if (t->m.type == TJ_MODEL_BYTES) { /* one token per byte, no pipeline */
        if (TOK__RESERVE(q->t, q->cap, len + 1)) return tok__oom(err, errlen);
        size_t c = 0;
        for (size_t i = 0; i < len; i++) {
            if (((unsigned char)text[i] & 0xc0) != 0x80 && i) c++;
            q->t[q->n++] = (tok__etok){(int32_t)(unsigned char)text[i] + t->j.model.byte_offset,
                                       (int32_t)c,
                                       (int32_t)c + 1,
                                       (int32_t)i,
                                       NULL,
                                       0};
        }
        return LS_OK;
    }

    /* the arena starts as the original text, each byte aligned to its character; room for
     * a couple of rewrites of the whole text up front */
    if (tok__arena_reserve(&q->a, 3 * len + 64)) return tok__oom(err, errlen);
    memcpy(q->a.b, text, len);
    size_t nch = 0;
    for (size_t i = 0; i < len;) {
        size_t l = (size_t)tok__lead_len((unsigned char)text[i]);
        for (size_t k = 0; k < l; k++)
            q->a.al[i + k] = (tok__al){(uint32_t)i, (uint32_t)(i + l)};
        i += l, nch++;
    }
    q->a.len = len;
    q->n_chars = nch;
    if (nch != len) {
        q->multibyte = 1;
        if (TOK__RESERVE(q->c2b, q->c2b_cap, nch + 1) || TOK__RESERVE(q->b2c, q->b2c_cap, len))
            return tok__oom(err, errlen);
        size_t c = 0;
        for (size_t i = 0; i < len; c++) {
            size_t l = (size_t)tok__lead_len((unsigned char)text[i]);
            q->c2b[c] = i;
            for (size_t k = 0; k < l; k++)
                q->b2c[i + k] = (uint32_t)c;
            i += l;
        }
        q->c2b[nch] = len;
    }

    if (len) {
        tok__split whole = {0, (uint32_t)len, 0, (uint32_t)len, -1};
        if (tok__splits_push(&q->sp, whole)) return tok__oom(err, errlen);
    }
    /* 1. added tokens that match the raw text */
    if (t->has_group[0]) {
        q->tmp.n = 0;
        for (size_t i = 0; i < q->sp.n; i++)
            if (tok__added_split(t, 0, &q->a, &q->sp.v[i], &q->tmp, md))
                return tok__oom(err, errlen);
        tok__splits x = q->sp;
        q->sp = q->tmp, q->tmp = x;
    }
    /* 2. normalize what is left, then the added tokens that match normalized text */
    if (t->norm || t->has_group[1]) {
        q->tmp.n = 0;
        for (size_t i = 0; i < q->sp.n; i++) {
            tok__split s = q->sp.v[i];
            if (s.added >= 0) {
                if (tok__splits_push(&q->tmp, s)) return tok__oom(err, errlen);
                continue;
            }
            if (t->norm && tok__normalize(t->norm, &q->a, &s, md)) return tok__oom(err, errlen);
            /* HF slices the normalized piece again: its original span is now that of the
             * text left (Strip moves it; Metaspace's "first" scheme reads it) */
            if (s.len) s.os = q->a.al[s.off].s, s.oe = q->a.al[s.off + s.len - 1].e;
            if (t->has_group[1]) {
                if (tok__added_split(t, 1, &q->a, &s, &q->tmp, md)) return tok__oom(err, errlen);
            } else if (s.len && tok__splits_push(&q->tmp, s)) {
                return tok__oom(err, errlen);
            }
        }
        tok__splits x = q->sp;
        q->sp = q->tmp, q->tmp = x;
    }
    /* 3. pre-tokenize */
    if (t->pre && tok__pre_tokenize(t->pre, &q->a, &q->sp, &q->tmp, md))
        return tok__oom(err, errlen);
    /* 4. the model, then offsets back to the original text */
    for (size_t i = 0; i < q->sp.n; i++) {
        const tok__split *s = &q->sp.v[i];
        const char *txt = q->a.b + s->off;
        q->mt.n = 0;
        if (s->added >= 0) {
            tok__mtok m = {t->added[s->added].id, 0, s->len, 1};
            if (TOK__RESERVE(q->mt.v, q->mt.cap, 1)) return tok__oom(err, errlen);
            q->mt.v[q->mt.n++] = m;
        } else {
            ls_status st = tok__model_tokenize(t, txt, s->len, &q->mt, err, errlen);
            if (st) return st;
        }
        if (TOK__RESERVE(q->t, q->cap, q->n + q->mt.n)) return tok__oom(err, errlen);
        for (size_t k = 0; k < q->mt.n; k++) {
            const tok__mtok *m = &q->mt.v[k];
            uint32_t bs, be;
            if (m->s == m->e)
                bs = s->os + m->s, be = s->os + m->e;
            else
                bs = q->a.al[s->off + m->s].s, be = q->a.al[s->off + m->e - 1].e;
            tok__etok e = {m->id, (int32_t)bs, (int32_t)be, 0, NULL, 0};
            if (m->from_text) {
                e.val = txt + m->s, e.vlen = m->e - m->s;
            } else if (m->id >= 0 && m->id <= t->max_id && t->dec_tok[m->id]) {
                e.val = t->m.id2tok && m->id < t->m.n_ids && t->m.id2tok[m->id] ? t->m.id2tok[m->id]
                                                                                : t->dec_tok[m->id];
                e.vlen = (uint32_t)strlen(e.val);
            }
            /* bytes → characters (BytesToCharOffsetConverter): a start past the end
             * keeps the byte offsets, an end at the end is one past the last character */
            if (q->multibyte && bs < len) {
                e.cs = (int32_t)q->b2c[bs];
                e.ce = be < len ? (int32_t)q->b2c[be] : (int32_t)q->b2c[be - 1] + 1;
            }
            q->t[q->n++] = e;
        }
    }
    return LS_OK;
}

/* ByteLevel's process_offsets: leading/trailing spaces of a token leave its offsets */
static void tok__trim(tok__seq *q, int add_prefix_space)
{
    const uint32_t g = 0x120; /* the character GPT-2 uses for a space */
    for (size_t i = 0; i < q->n; i++) {
        tok__etok *e = &q->t[i];
        if (!e->val) continue;
        size_t lead = 0, trail = 0, nch = 0;
        int in_lead = 1;
        for (uint32_t k = 0; k < e->vlen;) {
            int l;
            uint32_t c = tok__dec(e->val + k, &l);
            int sp = c == g || tok__is_whitespace(c);
            if (in_lead && sp)
                lead++;
            else
                in_lead = 0;
            trail = sp ? trail + 1 : 0;
            nch++;
            k += (uint32_t)l;
        }
        if (!lead && !trail) continue;
        if (lead) {
            int is_first = i == 0 || e->cs == 0;
            if (is_first && add_prefix_space && lead == 1) lead = 0;
            int32_t ns = e->cs + (int32_t)lead;
            e->cs = ns < e->ce ? ns : e->ce;
        }
        if (trail && e->ce >= (int32_t)trail) {
            int32_t ne = e->ce - (int32_t)trail;
            e->ce = ne > e->cs ? ne : e->cs;
        }
    }
}

static void tok__truncate(tok__seq *q, size_t keep, tok_trunc_dir dir)
{
    if (keep >= q->n) return;
    if (dir == TOK_TRUNC_LEFT) memmove(q->t, q->t + (q->n - keep), keep * sizeof *q->t);
    q->n = keep;
}

static size_t tok__n_added(const tok__tpl *p, int n)
{
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (p[i].seq < 0) k += (size_t)p[i].n;
    return k;
}

ls_status tok_encode(const tok_tokenizer *t, const char *text, size_t len, const char *pair,
                     size_t pair_len, const tok_encode_params *p, tok_encoding **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    tok_encode_params dp = tok_encode_default_params();
    if (!p) p = &dp;
    if (!text) {
        if (len) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "text is NULL");
        text = "";
    }
    if (pair_len && !pair) return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "pair is NULL");
    if (len > (1u << 30) || pair_len > (1u << 30))
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE, "input of %zu bytes is over the 1 GiB limit",
                       len > pair_len ? len : pair_len);
    ptrdiff_t bad = ls_utf8_check(text, len);
    if (bad >= 0)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "text is not valid UTF-8: bad byte 0x%02x at byte offset %td",
                       (unsigned char)text[bad], bad);
    if (pair) {
        bad = ls_utf8_check(pair, pair_len);
        if (bad >= 0)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "pair text is not valid UTF-8: bad byte 0x%02x at byte offset %td",
                           (unsigned char)pair[bad], bad);
    }
    int nseq = pair ? 2 : 1;
    ls_status st = LS_OK;
    tok_encoding *e = NULL;
    tok__scratch *scr = tok__scratch_get(t);
    if (!scr) return tok__oom(err, errlen);
    tok__seq *q = scr->q;
    pcre2_match_data *md = scr->md;
    for (int s = 0; s < nseq && !st; s++)
        st = tok__encode_text(t, s ? pair : text, s ? pair_len : len, &q[s], md, err, errlen);
    if (st) goto done;

    const tok__tpl *tpl = NULL;
    int ntpl = 0;
    if (p->add_special_tokens && t->has_post) {
        tpl = pair ? t->tpl_pair : t->tpl_single;
        ntpl = pair ? t->n_tpl_pair : t->n_tpl_single;
    }
    size_t n_special = tok__n_added(tpl, ntpl);
    size_t total = q[0].n + (pair ? q[1].n : 0);
    size_t untruncated = total + n_special;

    /* truncation (longest first for pairs), room left for the special tokens */
    /* (a max_length below the special tokens truncates nothing, as in Hugging Face) */
    if (p->max_length > 0 && (size_t)p->max_length >= n_special) {
        size_t max = (size_t)p->max_length - n_special;
        if (total > max) {
            if (!pair) {
                tok__truncate(&q[0], max, p->direction);
            } else {
                size_t n1 = q[0].n, n2 = q[1].n;
                int swap = n1 > n2;
                if (swap) {
                    size_t x = n1;
                    n1 = n2, n2 = x;
                }
                if (n1 > max)
                    n2 = n1;
                else
                    n2 = n1 > max - n1 ? n1 : max - n1;
                if (n1 + n2 > max) n1 = max / 2, n2 = n1 + max % 2;
                if (swap) {
                    size_t x = n1;
                    n1 = n2, n2 = x;
                }
                tok__truncate(&q[0], n1, p->direction);
                tok__truncate(&q[1], n2, p->direction);
            }
        }
    }
    if (t->trim_offsets)
        for (int s = 0; s < nseq; s++)
            tok__trim(&q[s], t->trim_prefix_space);

    /* post-processing: the template, or the sequences one after the other */
    size_t n = q[0].n + (pair ? q[1].n : 0) + n_special;
    size_t text_bytes = 0;
    for (int s = 0; s < nseq; s++)
        for (size_t i = 0; i < q[s].n; i++)
            text_bytes += q[s].t[i].vlen;
    for (int i = 0; i < ntpl; i++)
        for (int k = 0; k < tpl[i].n; k++)
            text_bytes += strlen(tpl[i].toks[k]);
    if (t->m.type == TJ_MODEL_BYTES) text_bytes += 6 * n;
    size_t bytes = sizeof *e + n * (4 + 4 + 1 + 1 + sizeof(tok_offsets) + sizeof(size_t)) +
                   sizeof(size_t) + text_bytes + 64;
    e = malloc(bytes);
    if (!e) {
        st = tok__oom(err, errlen);
        goto done;
    }
    memset(e, 0, sizeof *e);
    char *mem = (char *)(e + 1);
    e->offsets = (tok_offsets *)(void *)mem, mem += n * sizeof(tok_offsets);
    e->token_start = (const size_t *)(void *)mem;
    size_t *tstart = (size_t *)(void *)mem;
    mem += (n + 1) * sizeof(size_t);
    e->ids = (int32_t *)(void *)mem, mem += n * 4;
    e->type_ids = (int32_t *)(void *)mem, mem += n * 4;
    e->special_mask = (uint8_t *)mem, mem += n;
    e->sequence_ids = (int8_t *)mem, mem += n;
    char *txt = mem;
    e->token_text = txt;
    e->n_untruncated = untruncated;
    size_t k = 0, tp = 0;

#define TOK__EMIT_SEQ(S, TYPE)                                                                     \
    for (size_t i_ = 0; i_ < q[S].n; i_++, k++) {                                                  \
        const tok__etok *x_ = &q[S].t[i_];                                                         \
        e->ids[k] = x_->id;                                                                        \
        e->type_ids[k] = (TYPE);                                                                   \
        e->special_mask[k] = 0;                                                                    \
        e->sequence_ids[k] = (int8_t)(S);                                                          \
        tok_offsets *o_ = &e->offsets[k];                                                          \
        o_->char_start = x_->cs, o_->char_end = x_->ce;                                            \
        if (t->m.type == TJ_MODEL_BYTES) {                                                         \
            o_->byte_start = x_->bs, o_->byte_end = x_->bs + 1;                                    \
        } else if (q[S].multibyte) {                                                               \
            size_t nc_ = q[S].n_chars;                                                             \
            o_->byte_start = (int32_t)q[S].c2b[(size_t)x_->cs <= nc_ ? (size_t)x_->cs : nc_];      \
            o_->byte_end = (int32_t)q[S].c2b[(size_t)x_->ce <= nc_ ? (size_t)x_->ce : nc_];        \
        } else {                                                                                   \
            o_->byte_start = x_->cs, o_->byte_end = x_->ce;                                        \
        }                                                                                          \
        tstart[k] = tp;                                                                            \
        if (x_->val) {                                                                             \
            memcpy(txt + tp, x_->val, x_->vlen);                                                   \
            tp += x_->vlen;                                                                        \
        } else if (t->m.type == TJ_MODEL_BYTES) {                                                  \
            unsigned b_ = (unsigned)(x_->id - t->j.model.byte_offset) & 0xff;                      \
            memcpy(txt + tp, "<0x", 3);                                                            \
            txt[tp + 3] = "0123456789ABCDEF"[b_ >> 4], txt[tp + 4] = "0123456789ABCDEF"[b_ & 15];  \
            txt[tp + 5] = '>';                                                                     \
            tp += 6;                                                                               \
        }                                                                                          \
    }

    if (tpl) {
        for (int i = 0; i < ntpl; i++) {
            const tok__tpl *pc = &tpl[i];
            if (pc->seq < 0) {
                for (int s = 0; s < pc->n; s++, k++) {
                    e->ids[k] = pc->ids[s];
                    e->type_ids[k] = pc->type_id;
                    e->special_mask[k] = 1;
                    e->sequence_ids[k] = -1;
                    e->offsets[k] = (tok_offsets){0, 0, 0, 0};
                    tstart[k] = tp;
                    size_t l = strlen(pc->toks[s]);
                    memcpy(txt + tp, pc->toks[s], l);
                    tp += l;
                }
            } else if (pc->seq < nseq) {
                int S = pc->seq;
                TOK__EMIT_SEQ(S, pc->type_id)
            }
        }
    } else {
        TOK__EMIT_SEQ(0, 0)
        if (pair) TOK__EMIT_SEQ(1, 1)
    }
#undef TOK__EMIT_SEQ
    tstart[k] = tp;
    e->n = k;
    *out = e;
    e = NULL;
done:
    free(e);
    tok__scratch_put(t, scr);
    return st;
}

void tok_encoding_free(tok_encoding *e)
{
    free(e);
}

/* ---- decoding ------------------------------------------------------------------------------- */

ls_status tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                     char **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    tok__buf o = {0};
    if (t->m.type == TJ_MODEL_BYTES) {
        tok__buf raw = {0};
        int rc = 0;
        int off = t->j.model.byte_offset;
        for (size_t i = 0; i < n && !rc; i++) {
            if (ids[i] < off || ids[i] > off + 255) continue;
            char b = (char)(ids[i] - off);
            rc |= tok__buf_put(&raw, &b, 1);
        }
        rc |= tok__buf_put(&o, "", 0) || tok__utf8_lossy(&o, raw.p ? raw.p : "", raw.n);
        free(raw.p);
        if (rc) {
            free(o.p);
            return tok__oom(err, errlen);
        }
        *out = o.p;
        if (out_len) *out_len = o.n;
        return LS_OK;
    }
    tok__strs v = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int32_t id = ids[i];
        if (id < 0 || id > t->max_id || !t->dec_tok[id]) continue;
        if (skip_special && t->dec_special[id]) continue;
        rc |= tok__strs_push(&v, t->dec_tok[id], t->dec_len[id]);
    }
    if (rc) {
        tok__strs_free(&v);
        return tok__oom(err, errlen);
    }
    if (t->dec) {
        pcre2_match_data *md = pcre2_match_data_create(16, NULL);
        ls_status st = md ? tok__decode_chain(t->dec, &v, md, err, errlen) : tok__oom(err, errlen);
        pcre2_match_data_free(md);
        if (st) {
            tok__strs_free(&v);
            return st;
        }
        rc |= tok__buf_put(&o, "", 0);
        for (size_t i = 0; i < v.n && !rc; i++)
            rc |= tok__buf_put(&o, v.text.p + v.start[i], v.start[i + 1] - v.start[i]);
    } else {
        rc |= tok__buf_put(&o, "", 0);
        for (size_t i = 0; i < v.n && !rc; i++) {
            if (i) rc |= tok__buf_put(&o, " ", 1);
            rc |= tok__buf_put(&o, v.text.p + v.start[i], v.start[i + 1] - v.start[i]);
        }
    }
    tok__strs_free(&v);
    if (rc) {
        free(o.p);
        return tok__oom(err, errlen);
    }
    *out = o.p;
    if (out_len) *out_len = o.n;
    return LS_OK;
}
