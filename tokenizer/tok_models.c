/* The models that turn one pre-tokenized word into ids: WordLevel (the word or unk),
 * WordPiece (greedy longest match over two hash maps, so "##" never has to be glued on), BPE (merge
 * ranks in a hash map, a binary heap over a linked list of symbols, a per-word cache) and Unigram
 * (Viterbi over a byte trie of the pieces). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- BPE word cache: sharded, never blocks (a busy shard is simply skipped) ------------- */

enum { TOK__CSHARDS = 64, TOK__CSLOTS = 4096, TOK__CMAXWORD = 48 };

typedef struct {
    uint64_t h;
    char *key; /* the word, then n (id, len) pairs; one malloc */
    uint32_t klen, n;
} tok__centry;

typedef struct {
    pthread_mutex_t mu;
    tok__centry e[TOK__CSLOTS];
    uint32_t used;
} tok__cshard;

struct tok__bpe_cache {
    tok__cshard s[TOK__CSHARDS];
};

static void tok__cshard_clear(tok__cshard *s)
{
    for (int i = 0; i < TOK__CSLOTS; i++)
        free(s->e[i].key);
    memset(s->e, 0, sizeof s->e);
    s->used = 0;
}

static tok__bpe_cache *tok__cache_new(void)
{
    tok__bpe_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    for (int i = 0; i < TOK__CSHARDS; i++)
        pthread_mutex_init(&c->s[i].mu, NULL);
    return c;
}

static void tok__cache_free(tok__bpe_cache *c)
{
    if (!c) return;
    for (int i = 0; i < TOK__CSHARDS; i++) {
        tok__cshard_clear(&c->s[i]);
        pthread_mutex_destroy(&c->s[i].mu);
    }
    free(c);
}

/* copies the cached (id, len) pairs of word into out; 1 on a hit */
static int tok__cache_get(tok__bpe_cache *c, const char *w, size_t n, uint64_t h, tok__mtoks *out)
{
    tok__cshard *s = &c->s[h % TOK__CSHARDS];
    if (pthread_mutex_trylock(&s->mu)) return 0;
    int hit = 0;
    uint32_t i = (uint32_t)(h >> 8) & (TOK__CSLOTS - 1);
    for (; s->e[i].key; i = (i + 1) & (TOK__CSLOTS - 1)) {
        tok__centry *e = &s->e[i];
        if (e->h != h || e->klen != n || memcmp(e->key, w, n)) continue;
        if (!TOK__RESERVE(out->v, out->cap, out->n + e->n)) {
            const char *p = e->key + n;
            uint32_t pos = 0;
            for (uint32_t k = 0; k < e->n; k++) {
                int32_t id;
                uint32_t len;
                memcpy(&id, p, 4), memcpy(&len, p + 4, 4);
                p += 8;
                out->v[out->n++] = (tok__mtok){id, pos, pos + len, 0};
                pos += len;
            }
            hit = 1;
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

static void tok__cache_put(tok__bpe_cache *c, const char *w, size_t n, uint64_t h,
                           const tok__mtok *t, size_t nt)
{
    tok__cshard *s = &c->s[h % TOK__CSHARDS];
    if (pthread_mutex_trylock(&s->mu)) return;
    if (s->used >= TOK__CSLOTS / 2) tok__cshard_clear(s);
    uint32_t i = (uint32_t)(h >> 8) & (TOK__CSLOTS - 1);
    int dup = 0;
    for (; s->e[i].key; i = (i + 1) & (TOK__CSLOTS - 1))
        if (s->e[i].h == h && s->e[i].klen == n && !memcmp(s->e[i].key, w, n)) dup = 1;
    char *k = dup ? NULL : malloc(n + nt * 8);
    if (k) {
        memcpy(k, w, n);
        char *p = k + n;
        for (size_t j = 0; j < nt; j++) {
            uint32_t len = t[j].e - t[j].s;
            memcpy(p, &t[j].id, 4), memcpy(p + 4, &len, 4);
            p += 8;
        }
        s->e[i] = (tok__centry){h, k, (uint32_t)n, (uint32_t)nt};
        s->used++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- building --------------------------------------------------------------------------- */

static uint32_t tok__mix32(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

static int tok__merge_get(const tok__model *m, int32_t a, int32_t b, uint32_t *rank, int32_t *nid)
{
    if (!m->merge_key) return 0;
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (uint32_t h = tok__mix32(key) & m->merge_mask; m->merge_key[h]; h = (h + 1) & m->merge_mask)
        if (m->merge_key[h] == key) {
            *rank = (uint32_t)(m->merge_val[h] >> 32);
            *nid = (int32_t)(uint32_t)m->merge_val[h];
            return 1;
        }
    return 0;
}

static int32_t tok__trie_child(const tok__model *m, uint32_t node, unsigned char b)
{
    if (!node) return m->trie_root[b];
    uint32_t key = (node << 8 | b) + 1;
    for (uint32_t h = tok__mix32(key) & m->trie_mask; m->trie[h]; h = (h + 1) & m->trie_mask)
        if ((uint32_t)(m->trie[h] >> 32) == key) return (int32_t)(uint32_t)m->trie[h];
    return -1;
}

static int tok__trie_insert(uint64_t *tab, uint32_t mask, uint32_t key, uint32_t child)
{
    uint32_t h = tok__mix32(key) & mask;
    while (tab[h])
        h = (h + 1) & mask;
    tab[h] = (uint64_t)key << 32 | child;
    return 0;
}

/* the trie is built in a generous table, then moved to one sized for its node count */
static ls_status tok__build_unigram(tok__model *m, const tj_model *j, char *err, size_t errlen)
{
    size_t total = 1;
    for (int i = 0; i < j->n_vocab; i++)
        total += strlen(j->vocab[i]);
    if (total >= (1u << 23))
        return ls_fail(err, errlen, LS_ERR_UNSUPPORTED, "Unigram: pieces too long in total");
    uint32_t sz = 16;
    while (sz < total * 2 + 16)
        sz *= 2;
    m->trie = calloc(sz, sizeof *m->trie);
    m->trie_piece = malloc(total * sizeof *m->trie_piece);
    if (!m->trie || !m->trie_piece)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "Unigram: out of memory");
    m->trie_mask = sz - 1;
    for (int b = 0; b < 256; b++)
        m->trie_root[b] = -1;
    m->trie_nodes = 1;
    m->trie_piece[0] = -1;
    m->min_score = INFINITY;
    for (int i = 0; i < j->n_vocab; i++) {
        if (j->scores[i] < m->min_score) m->min_score = j->scores[i];
        uint32_t node = 0;
        for (const unsigned char *p = (const unsigned char *)j->vocab[i]; *p; p++) {
            int32_t c = tok__trie_child(m, node, *p);
            if (c < 0) {
                c = (int32_t)m->trie_nodes++;
                m->trie_piece[c] = -1;
                if (node)
                    tok__trie_insert(m->trie, m->trie_mask, (node << 8 | *p) + 1, (uint32_t)c);
                else
                    m->trie_root[*p] = c;
            }
            node = (uint32_t)c;
        }
        if (node) m->trie_piece[node] = i; /* a later duplicate wins, as in Hugging Face */
    }
    uint32_t small = 16;
    while (small < m->trie_nodes * 2u + 16)
        small *= 2;
    if (small < sz) {
        uint64_t *t2 = calloc(small, sizeof *t2);
        if (!t2) return ls_fail(err, errlen, LS_ERR_NOMEM, "Unigram: out of memory");
        for (uint32_t h = 0; h < sz; h++)
            if (m->trie[h])
                tok__trie_insert(t2, small - 1, (uint32_t)(m->trie[h] >> 32), (uint32_t)m->trie[h]);
        free(m->trie);
        m->trie = t2, m->trie_mask = small - 1;
    }
    m->scores = j->scores;
    return LS_OK;
}

static ls_status tok__build_bpe(tok__model *m, const tj_model *j, char *err, size_t errlen)
{
    uint32_t sz = 16;
    while (sz < (uint32_t)j->n_merges * 2u + 16)
        sz *= 2;
    m->merge_key = calloc(sz, sizeof *m->merge_key);
    m->merge_val = calloc(sz, sizeof *m->merge_val);
    if (!m->merge_key || !m->merge_val)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "BPE: out of memory");
    m->merge_mask = sz - 1;
    size_t plen = j->continuing_subword_prefix ? strlen(j->continuing_subword_prefix) : 0;
    char *buf = NULL;
    size_t cap = 0;
    for (int r = 0; r < j->n_merges; r++) {
        const char *a = j->merges[2 * r], *b = j->merges[2 * r + 1];
        int32_t ia = tok__map_get(&m->vocab, a, strlen(a));
        int32_t ib = tok__map_get(&m->vocab, b, strlen(b));
        size_t la = strlen(a), lb = strlen(b);
        if (ia < 0 || ib < 0 || lb < plen) {
            free(buf);
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "model.merges[%d]: \"%s %s\": token \"%s\" is not in the vocabulary", r,
                           a, b, ia < 0 ? a : b);
        }
        if (TOK__RESERVE(buf, cap, la + lb + 1)) {
            free(buf);
            return ls_fail(err, errlen, LS_ERR_NOMEM, "BPE: out of memory");
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b + plen, lb - plen);
        int32_t nid = tok__map_get(&m->vocab, buf, la + lb - plen);
        if (nid < 0) {
            buf[la + lb - plen] = 0;
            ls_status st =
                ls_fail(err, errlen, LS_ERR_CONFIG,
                        "model.merges[%d]: merged token \"%s\" is not in the vocabulary", r, buf);
            free(buf);
            return st;
        }
        uint64_t key = ((uint64_t)(uint32_t)ia << 32 | (uint32_t)ib) + 1;
        uint32_t h = tok__mix32(key) & m->merge_mask;
        while (m->merge_key[h] && m->merge_key[h] != key)
            h = (h + 1) & m->merge_mask;
        if (!m->merge_key[h]) { /* the first (lowest) rank of a pair wins */
            m->merge_key[h] = key;
            m->merge_val[h] = (uint64_t)(uint32_t)r << 32 | (uint32_t)nid;
        }
    }
    free(buf);
    /* single-character tokens of the GPT-2 byte alphabet, for the common case */
    const uint32_t *bc = tok__byte_chars();
    for (int b = 0; b < 256; b++) {
        char s[4];
        int l = tok__enc(bc[b], s);
        m->byte_ids[b] = tok__map_get(&m->vocab, s, (size_t)l);
    }
    m->cache = tok__cache_new();
    if (!m->cache) return ls_fail(err, errlen, LS_ERR_NOMEM, "BPE: out of memory");
    return LS_OK;
}

ls_status tok__model_build(tok_tokenizer *t, char *err, size_t errlen)
{
    const tj_model *j = &t->j.model;
    tok__model *m = &t->m;
    m->type = j->type;
    m->unk_id = -1;
    if (j->type == TJ_MODEL_BYTES) return LS_OK;
    if (tok__map_init(&m->vocab, (uint32_t)j->n_vocab))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
    int32_t max_id = -1;
    for (int i = 0; i < j->n_vocab; i++) {
        int32_t id = j->type == TJ_MODEL_UNIGRAM ? i : j->ids[i];
        if (tok__map_put(&m->vocab, j->vocab[i], (uint32_t)strlen(j->vocab[i]), id))
            return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
        if (id > max_id) max_id = id;
        size_t l = strlen(j->vocab[i]);
        if (l > m->max_tok_len) m->max_tok_len = l;
    }
    if (max_id >= TJ_MAX_ID) /* tj_tokenizer_parse bounds ids: n_ids cannot overflow */
        return ls_fail(err, errlen, LS_ERR_CONFIG, "vocabulary: id %d is over %d", max_id,
                       TJ_MAX_ID);
    m->n_ids = max_id + 1;
    for (int b = 0; b < 256; b++) { /* byte_fallback's <0xXX> tokens (BPE, Unigram) */
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        m->byte_fallback_ids[b] = tok__map_get(&m->vocab, s, 6);
    }
    m->id2tok = calloc((size_t)m->n_ids + 1, sizeof *m->id2tok);
    m->id2len = calloc((size_t)m->n_ids + 1, sizeof *m->id2len);
    if (!m->id2tok || !m->id2len)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
    for (int i = 0; i < j->n_vocab; i++) {
        int32_t id = j->type == TJ_MODEL_UNIGRAM ? i : j->ids[i];
        m->id2tok[id] = j->vocab[i];
        m->id2len[id] = (uint32_t)strlen(j->vocab[i]);
    }
    switch (j->type) {
    case TJ_MODEL_WORDPIECE: {
        m->unk_id = tok__map_get(&m->vocab, j->unk_token, strlen(j->unk_token));
        if (m->unk_id < 0)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "model: WordPiece unk_token \"%s\" is not in the vocabulary",
                           j->unk_token);
        size_t pl = strlen(j->continuing_subword_prefix);
        if (tok__map_init(&m->cont, (uint32_t)j->n_vocab))
            return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
        for (int i = 0; i < j->n_vocab; i++) {
            const char *s = j->vocab[i];
            if (strncmp(s, j->continuing_subword_prefix, pl)) continue;
            /* keep the id HF's single map would give prefix+suffix */
            int32_t id = tok__map_get(&m->vocab, s, strlen(s));
            if (tok__map_put(&m->cont, s + pl, (uint32_t)(strlen(s) - pl), id))
                return ls_fail(err, errlen, LS_ERR_NOMEM, "vocabulary: out of memory");
        }
        return LS_OK;
    }
    case TJ_MODEL_BPE:
        if (j->has_dropout)
            return ls_fail(err, errlen, LS_ERR_UNSUPPORTED, "model: BPE dropout is not supported");
        if (j->unk_token) m->unk_id = tok__map_get(&m->vocab, j->unk_token, strlen(j->unk_token));
        return tok__build_bpe(m, j, err, errlen);
    case TJ_MODEL_UNIGRAM:
        m->unk_id = j->unk_id;
        return tok__build_unigram(m, j, err, errlen);
    case TJ_MODEL_WORDLEVEL: /* a missing unk_token fails at the first unknown word, as in HF */
        m->unk_id = tok__map_get(&m->vocab, j->unk_token, strlen(j->unk_token));
        return LS_OK;
    case TJ_MODEL_BYTES:
        return LS_OK;
    }
    return LS_OK;
}

void tok__model_free(tok__model *m)
{
    tok__map_free(&m->vocab);
    tok__map_free(&m->cont);
    free(m->id2tok), free(m->id2len);
    free(m->merge_key), free(m->merge_val);
    tok__cache_free(m->cache);
    free(m->trie), free(m->trie_piece);
    memset(m, 0, sizeof *m);
}

/* ---- WordPiece -------------------------------------------------------------------------- */

static int tok__push(tok__mtoks *o, int32_t id, size_t s, size_t e, int from_text)
{
    if (TOK__RESERVE(o->v, o->cap, o->n + 1)) return -1;
    o->v[o->n++] = (tok__mtok){id, (uint32_t)s, (uint32_t)e, from_text};
    return 0;
}

static int tok__wordpiece(const tok__model *m, const tj_model *j, const char *s, size_t n,
                          tok__mtoks *out)
{
    size_t nch = 0;
    for (size_t i = 0; i < n; i += (size_t)tok__lead_len((unsigned char)s[i]))
        nch++;
    if (nch > (size_t)j->max_input_chars_per_word) return tok__push(out, m->unk_id, 0, n, 0);
    size_t first = out->n, start = 0;
    while (start < n) {
        size_t end = n;
        if (end - start > m->max_tok_len) { /* nothing longer can be in the vocabulary */
            end = start + m->max_tok_len;
            while (end > start && ((unsigned char)s[end] & 0xc0) == 0x80)
                end--;
        }
        int32_t id = -1;
        while (end > start) {
            id = start ? tok__map_get(&m->cont, s + start, end - start)
                       : tok__map_get(&m->vocab, s, end);
            if (id >= 0) break;
            do
                end--;
            while (end > start && ((unsigned char)s[end] & 0xc0) == 0x80);
        }
        if (id < 0) {
            out->n = first;
            return tok__push(out, m->unk_id, 0, n, 0);
        }
        if (tok__push(out, id, start, end, 0)) return -1;
        start = end;
    }
    return 0;
}

/* ---- BPE -------------------------------------------------------------------------------- */

typedef struct {
    int32_t id, prev, next;
    uint32_t len;
} tok__sym;

typedef struct {
    uint32_t rank, pos;
    int32_t nid;
} tok__merge;

static int tok__merge_less(tok__merge a, tok__merge b)
{
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static void tok__heap_push(tok__merge *h, size_t *n, tok__merge x)
{
    size_t i = (*n)++;
    while (i && tok__merge_less(x, h[(i - 1) / 2]))
        h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
    h[i] = x;
}

static tok__merge tok__heap_pop(tok__merge *h, size_t *n)
{
    tok__merge top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok__merge_less(h[c + 1], h[c])) c++;
        if (!tok__merge_less(h[c], x)) break;
        h[i] = h[c], i = c;
    }
    if (*n) h[i] = x;
    return top;
}

static int32_t tok__bpe_sym_id(const tok__model *m, const tj_model *j, const char *s, size_t n,
                               size_t i, size_t l, char *tmp, size_t tmpcap)
{
    int first = i == 0, last = i + l == n;
    if ((first || !j->continuing_subword_prefix) && (!last || !j->end_of_word_suffix)) {
        /* printable ASCII stands for itself in the byte alphabet: no hashing */
        if (l == 1 && tok__byte_chars()[(unsigned char)s[i]] == (unsigned char)s[i])
            return m->byte_ids[(unsigned char)s[i]];
        return tok__map_get(&m->vocab, s + i, l);
    }
    size_t k = 0;
    const char *pre = !first ? j->continuing_subword_prefix : NULL;
    const char *suf = last ? j->end_of_word_suffix : NULL;
    size_t pl = pre ? strlen(pre) : 0, sl = suf ? strlen(suf) : 0;
    if (pl + l + sl > tmpcap) return -1;
    if (pl) memcpy(tmp, pre, pl), k += pl;
    memcpy(tmp + k, s + i, l), k += l;
    if (sl) memcpy(tmp + k, suf, sl), k += sl;
    return tok__map_get(&m->vocab, tmp, k);
}

static int tok__bpe(const tok__model *m, const tj_model *j, const char *s, size_t n,
                    tok__mtoks *out, char *err, size_t errlen)
{
    if (!n) return 0;
    if (j->ignore_merges) {
        int32_t id = tok__map_get(&m->vocab, s, n);
        if (id >= 0) return tok__push(out, id, 0, n, 0);
    }
    uint64_t h = 0;
    size_t first = out->n;
    if (n <= TOK__CMAXWORD) {
        h = tok__hash(s, n);
        if (tok__cache_get(m->cache, s, n, h, out)) return 0;
    }
    tok__sym stack_syms[64];
    tok__merge stack_heap[128];
    tok__sym *sy = n <= 64 ? stack_syms : malloc(n * sizeof *sy);
    tok__merge *hp = n <= 64 ? stack_heap : malloc(2 * n * sizeof *hp + sizeof *hp);
    if (!sy || !hp) {
        if (sy != stack_syms) free(sy);
        if (hp != stack_heap) free(hp);
        return -1;
    }
    size_t ns = 0, nh = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    char tmp[256];
    int rc = 0;
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)tok__lead_len((unsigned char)s[i]);
        int32_t id = tok__bpe_sym_id(m, j, s, n, i, l, tmp, sizeof tmp);
        if (id >= 0) {
            if (unk >= 0) sy[ns++] = (tok__sym){unk, 0, 0, unk_len}, unk = -1;
            sy[ns++] = (tok__sym){id, 0, 0, (uint32_t)l};
        } else {
            int done = 0;
            if (j->byte_fallback) {
                int all = 1;
                for (size_t k = 0; k < l; k++)
                    all &= m->byte_fallback_ids[(unsigned char)s[i + k]] >= 0;
                if (all) {
                    /* byte tokens never merge into the pending unknown, as in HF */
                    for (size_t k = 0; k < l; k++)
                        sy[ns++] =
                            (tok__sym){m->byte_fallback_ids[(unsigned char)s[i + k]], 0, 0, 1};
                    done = 1;
                }
            }
            if (!done && j->unk_token) {
                if (m->unk_id < 0) {
                    rc = ls_fail(err, errlen, LS_ERR_CONFIG,
                                 "model: BPE unk_token \"%s\" is not in the vocabulary",
                                 j->unk_token);
                    goto out;
                }
                if (unk >= 0 && j->fuse_unk)
                    unk_len += (uint32_t)l;
                else {
                    if (unk >= 0) sy[ns++] = (tok__sym){unk, 0, 0, unk_len};
                    unk = m->unk_id, unk_len = (uint32_t)l;
                }
            }
        }
        i += l;
    }
    if (unk >= 0) sy[ns++] = (tok__sym){unk, 0, 0, unk_len};
    for (size_t i = 0; i < ns; i++)
        sy[i].prev = (int32_t)i - 1, sy[i].next = i + 1 < ns ? (int32_t)i + 1 : -1;
    for (size_t i = 0; i + 1 < ns; i++) {
        uint32_t r;
        int32_t nid;
        if (tok__merge_get(m, sy[i].id, sy[i + 1].id, &r, &nid))
            tok__heap_push(hp, &nh, (tok__merge){r, (uint32_t)i, nid});
    }
    while (nh) {
        tok__merge top = tok__heap_pop(hp, &nh);
        tok__sym *cur = &sy[top.pos];
        if (!cur->len || cur->next < 0) continue;
        tok__sym right = sy[cur->next];
        uint32_t r;
        int32_t nid;
        if (!tok__merge_get(m, cur->id, right.id, &r, &nid) || nid != top.nid) continue;
        cur->id = top.nid;
        cur->len += right.len;
        sy[cur->next].len = 0;
        cur->next = right.next;
        if (right.next >= 0) sy[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && tok__merge_get(m, sy[cur->prev].id, cur->id, &r, &nid))
            tok__heap_push(hp, &nh, (tok__merge){r, (uint32_t)cur->prev, nid});
        if (cur->next >= 0 && tok__merge_get(m, cur->id, sy[cur->next].id, &r, &nid))
            tok__heap_push(hp, &nh, (tok__merge){r, top.pos, nid});
    }
    {
        uint32_t pos = 0;
        for (size_t i = 0; i < ns; i++) {
            if (!sy[i].len) continue;
            if (tok__push(out, sy[i].id, pos, pos + sy[i].len, 0)) {
                rc = -1;
                goto out;
            }
            pos += sy[i].len;
        }
    }
    /* a word may give no token (no unk token), before any was pushed: out->v is NULL */
    if (n <= TOK__CMAXWORD)
        tok__cache_put(m->cache, s, n, h, out->v ? out->v + first : NULL, out->n - first);
out:
    if (sy != stack_syms) free(sy);
    if (hp != stack_heap) free(hp);
    return rc;
}

/* ---- Unigram ---------------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    int32_t start; /* -1: unreached */
    double score;
} tok__vnode;

static int tok__unigram(const tok__model *m, const tj_model *j, const char *s, size_t n,
                        tok__mtoks *out, char *err, size_t errlen)
{
    if (!n) return 0;
    tok__vnode stack_nodes[128];
    tok__vnode *best = n < 128 ? stack_nodes : malloc((n + 1) * sizeof *best);
    if (!best) return -1;
    for (size_t i = 0; i <= n; i++)
        best[i] = (tok__vnode){-1, -1, 0.0};
    best[0].start = 0;
    double unk_score = m->min_score - 10.0;
    int rc = 0;
    for (size_t st = 0; st < n;) {
        double base = best[st].score;
        size_t mblen = (size_t)tok__lead_len((unsigned char)s[st]);
        int single = 0;
        uint32_t node = 0;
        for (size_t k = st; k < n; k++) {
            int32_t c = tok__trie_child(m, node, (unsigned char)s[k]);
            if (c < 0) break;
            node = (uint32_t)c;
            int32_t pid = m->trie_piece[node];
            if (pid < 0) continue;
            size_t end = k + 1;
            double cand = base + m->scores[pid];
            if (best[end].start < 0 || cand > best[end].score)
                best[end] = (tok__vnode){pid, (int32_t)st, cand};
            if (end - st == mblen) single = 1;
        }
        if (!single) {
            if (j->unk_id < 0) {
                rc = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                             "Unigram: character at byte %zu is not in the vocabulary and the "
                             "model has no unk_id",
                             st);
                goto done;
            }
            double cand = base + unk_score;
            size_t end = st + mblen;
            if (best[end].start < 0 || cand > best[end].score)
                best[end] = (tok__vnode){j->unk_id, (int32_t)st, cand};
        }
        st += mblen;
    }
    /* back from the end; runs of unknowns fuse into one token (fuse_unk is on for Unigram) */
    {
        size_t first = out->n;
        size_t e = n;
        size_t fuse_end = 0;
        int fusing = 0;
        while (e > 0) {
            tok__vnode *nd = &best[e];
            size_t st = (size_t)nd->start;
            if (nd->id == j->unk_id) {
                if (!fusing) fusing = 1, fuse_end = e;
            } else {
                if (fusing) {
                    if (tok__push(out, -1, e, fuse_end, 1)) goto oom;
                    fusing = 0;
                }
                if (tok__push(out, nd->id, st, e, 1)) goto oom;
            }
            e = st;
        }
        if (fusing && tok__push(out, -1, 0, fuse_end, 1)) goto oom;
        /* reverse into text order */
        for (size_t a = first, b = out->n; a + 1 < b; a++, b--) {
            tok__mtok t = out->v[a];
            out->v[a] = out->v[b - 1], out->v[b - 1] = t;
        }
        /* strings that are not pieces (fused unknowns) get unk_id, or bytes */
        size_t nout = out->n;
        for (size_t i = first; i < nout; i++) {
            tok__mtok *t = &out->v[i];
            if (t->id >= 0) continue;
            int32_t id = tok__map_get(&m->vocab, s + t->s, t->e - t->s);
            if (id >= 0) {
                t->id = id;
                continue;
            }
            if (j->byte_fallback) {
                int all = 1;
                for (uint32_t k = t->s; k < t->e; k++)
                    all &= m->byte_fallback_ids[(unsigned char)s[k]] >= 0;
                if (all) {
                    /* expand in place: shift the rest right */
                    size_t extra = t->e - t->s - 1;
                    if (TOK__RESERVE(out->v, out->cap, out->n + extra)) goto oom;
                    t = &out->v[i];
                    tok__mtok save = *t;
                    memmove(out->v + i + 1 + extra, out->v + i + 1, (out->n - i - 1) * sizeof *t);
                    for (uint32_t k = 0; k < save.e - save.s; k++)
                        out->v[i + k] = (tok__mtok){
                            m->byte_fallback_ids[(unsigned char)s[save.s + k]], save.s, save.e, 0};
                    out->n += extra, nout += extra;
                    i += extra;
                    continue;
                }
            }
            t->id = j->unk_id;
        }
    }
    goto done;
oom:
    rc = -1;
done:
    if (best != stack_nodes) free(best);
    return rc;
}

ls_status tok__model_tokenize(const tok_tokenizer *t, const char *s, size_t n, tok__mtoks *out,
                              char *err, size_t errlen)
{
    const tok__model *m = &t->m;
    const tj_model *j = &t->j.model;
    int rc = 0;
    switch (m->type) {
    case TJ_MODEL_WORDPIECE:
        rc = tok__wordpiece(m, j, s, n, out);
        break;
    case TJ_MODEL_BPE:
        rc = tok__bpe(m, j, s, n, out, err, errlen);
        break;
    case TJ_MODEL_UNIGRAM:
        rc = tok__unigram(m, j, s, n, out, err, errlen);
        break;
    case TJ_MODEL_WORDLEVEL: {
        int32_t id = tok__map_get(&m->vocab, s, n);
        if (id < 0) id = m->unk_id;
        if (id < 0)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "WordLevel: unk_token \"%s\" is not in the vocabulary", j->unk_token);
        rc = tok__push(out, id, 0, n, 0);
        break;
    }
    case TJ_MODEL_BYTES:
        break;
    }
    if (rc == -1) return ls_fail(err, errlen, LS_ERR_NOMEM, "tokenizer: out of memory");
    return (ls_status)rc;
}
