/* Tokenizer plumbing: lossy UTF-8 decoding (over common/utf8.c), Unicode character classes
 * (utf8proc), growable buffers, the string hash map, PCRE2 patterns with Oniguruma/Rust
 * meanings for \s and \w, and the normalized-text arena with its transform writer. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tok_internal.h"
#include "tok_unicode_compat.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TOK__ON_VALGRIND RUNNING_ON_VALGRIND
#endif
#endif
#ifndef TOK__ON_VALGRIND
#define TOK__ON_VALGRIND 0
#endif

/* ---- UTF-8 ------------------------------------------------------------------------------ */

int tok__utf8_lossy(tok__buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    while (i < n) {
        int bad = 0, k = ls_utf8_seq(s + i, n - i, &bad);
        if (k) {
            i += (size_t)k;
            continue;
        }
        if (tok__buf_put(out, str + run, i - run) || tok__buf_put(out, "\xef\xbf\xbd", 3))
            return -1;
        i += (size_t)bad;
        run = i;
    }
    return tok__buf_put(out, str + run, n - run);
}

/* ---- Unicode classes -------------------------------------------------------------------- */

int tok__is_whitespace(uint32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

static int tok__in(const uint32_t (*r)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0])
            hi = mid;
        else if (c > r[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define TOK__IN(table, c) tok__in(table, sizeof table / sizeof *table, c)

int tok__is_bert_punc(uint32_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO) ^
           TOK__IN(tok__hf_flip_punct, c);
}

/* Cc, Cf, Cs, Co: the unicode_categories crate Hugging Face uses never reports Cn */
int tok__is_control(uint32_t c)
{
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_CC) ^ TOK__IN(tok__hf_flip_control, c);
}

int tok__is_numeric(uint32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO) ^
           TOK__IN(tok__hf_flip_numeric, c);
}

int tok__is_mn(uint32_t c)
{
    if (c < 0x300) return 0;
    return (utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN) ^
           TOK__IN(tok__hf_flip_mn, c);
}

int tok__is_mark(uint32_t c)
{
    if (c < 0x300) return 0;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME) ^ TOK__IN(tok__hf_flip_mark, c);
}

int tok__hf_no_decomp(uint32_t c, int compat)
{
    return TOK__IN(tok__hf_keep_canon, c) || (compat && TOK__IN(tok__hf_keep_compat, c));
}

uint32_t tok__hf_lower(uint32_t c)
{
    size_t lo = 0, hi = sizeof tok__hf_lower_map / sizeof *tok__hf_lower_map;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tok__hf_lower_map[mid][0])
            hi = mid;
        else if (c > tok__hf_lower_map[mid][0])
            lo = mid + 1;
        else
            return tok__hf_lower_map[mid][1];
    }
    return 0;
}

/* ---- buffers ---------------------------------------------------------------------------- */

int tok__reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

int tok__buf_put(tok__buf *b, const char *s, size_t n)
{
    if (TOK__RESERVE(b->p, b->cap, b->n + n + 1)) return -1;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* ---- hash map --------------------------------------------------------------------------- */

uint64_t tok__hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, s, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t k = 0;
    memcpy(&k, s, n);
    h = (h ^ k) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

int tok__map_init(tok__map *m, uint32_t expected)
{
    memset(m, 0, sizeof *m);
    uint32_t sz = 16;
    while (sz < expected * 2u + 16)
        sz *= 2;
    m->slot = calloc(sz, sizeof *m->slot);
    m->cap = expected ? expected : 1;
    m->key = malloc(m->cap * sizeof *m->key);
    m->klen = malloc(m->cap * sizeof *m->klen);
    m->val = malloc(m->cap * sizeof *m->val);
    m->mask = sz - 1;
    if (!m->slot || !m->key || !m->klen || !m->val) {
        tok__map_free(m);
        return -1;
    }
    return 0;
}

void tok__map_free(tok__map *m)
{
    free(m->slot), free(m->key), free(m->klen), free(m->val);
    memset(m, 0, sizeof *m);
}

static int tok__map_grow(tok__map *m)
{
    uint32_t sz = (m->mask + 1) * 2;
    uint32_t *slot = calloc(sz, sizeof *slot);
    if (!slot) return -1;
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t h = (uint32_t)tok__hash(m->key[i], m->klen[i]) & (sz - 1);
        while (slot[h])
            h = (h + 1) & (sz - 1);
        slot[h] = i + 1;
    }
    free(m->slot);
    m->slot = slot, m->mask = sz - 1;
    return 0;
}

int tok__map_put(tok__map *m, const char *key, uint32_t len, int32_t val)
{
    uint32_t h = (uint32_t)tok__hash(key, len) & m->mask;
    for (; m->slot[h]; h = (h + 1) & m->mask) {
        uint32_t i = m->slot[h] - 1;
        if (m->klen[i] == len && !memcmp(m->key[i], key, len)) {
            m->val[i] = val;
            return 0;
        }
    }
    if (m->n == m->cap) {
        uint32_t c = m->cap * 2;
        const char **k = realloc(m->key, c * sizeof *k);
        if (k) m->key = k;
        uint32_t *kl = realloc(m->klen, c * sizeof *kl);
        if (kl) m->klen = kl;
        int32_t *v = realloc(m->val, c * sizeof *v);
        if (v) m->val = v;
        if (!k || !kl || !v) return -1;
        m->cap = c;
    }
    m->key[m->n] = key, m->klen[m->n] = len, m->val[m->n] = val;
    m->slot[h] = ++m->n;
    if (m->n * 2 > m->mask) return tok__map_grow(m);
    return 0;
}

int32_t tok__map_get(const tok__map *m, const char *key, size_t len)
{
    if (!m->slot) return -1;
    uint32_t h = (uint32_t)tok__hash(key, len) & m->mask;
    for (; m->slot[h]; h = (h + 1) & m->mask) {
        uint32_t i = m->slot[h] - 1;
        if (m->klen[i] == len && !memcmp(m->key[i], key, len)) return m->val[i];
    }
    return -1;
}

/* ---- regexes ---------------------------------------------------------------------------- */

/* White_Space, and regex-crate \w (Alphabetic, marks, decimal digits, connectors, joiners) */
#define TOK__WS                                                                                    \
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{"   \
    "202F}\\x{205F}\\x{3000}"
#define TOK__W "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}" TOK__HF_EXTRA_W
#define TOK__L "\\p{L}" TOK__HF_EXTRA_L
#define TOK__N "\\p{N}" TOK__HF_EXTRA_N

ls_status tok__re_compile(tok__re *r, const char *pat, int literal, char *err, size_t errlen,
                          const char *what)
{
    tok__buf b = {0};
    int in_class = 0, oom = 0;
    if (literal) {
        oom |= tok__buf_put(&b, pat, strlen(pat));
    } else {
        for (const char *p = pat; *p; p++) {
            if (*p == '\\' && p[1]) {
                char e = p[1];
                const char *rep = NULL;
                if (e == 's')
                    rep = in_class ? TOK__WS : "[" TOK__WS "]";
                else if (e == 'S' && !in_class)
                    rep = "[^" TOK__WS "]";
                else if (e == 'w')
                    rep = in_class ? TOK__W : "[" TOK__W "]";
                else if (e == 'W' && !in_class)
                    rep = "[^" TOK__W "]";
                size_t skip = 1;
                if (e == 'p' && (!strncmp(p + 2, "{L}", 3) || p[2] == 'L'))
                    rep = in_class ? TOK__L : "[" TOK__L "]", skip = p[2] == 'L' ? 2 : 4;
                else if (e == 'p' && (!strncmp(p + 2, "{N}", 3) || p[2] == 'N'))
                    rep = in_class ? TOK__N : "[" TOK__N "]", skip = p[2] == 'N' ? 2 : 4;
                if (rep)
                    oom |= tok__buf_put(&b, rep, strlen(rep));
                else
                    oom |= tok__buf_put(&b, p, 2);
                p += skip;
                continue;
            }
            if (*p == '[' && !in_class) {
                in_class = 1;
                oom |= tok__buf_put(&b, p, 1);
                /* a ']' right after '[' or '[^' is literal */
                if (p[1] == '^') oom |= tok__buf_put(&b, ++p, 1);
                if (p[1] == ']') oom |= tok__buf_put(&b, ++p, 1);
                continue;
            }
            if (*p == ']' && in_class) in_class = 0;
            oom |= tok__buf_put(&b, p, 1);
        }
    }
    if (oom) {
        free(b.p);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "%s: out of memory", what);
    }
    int ec;
    PCRE2_SIZE eo;
    r->code = pcre2_compile((PCRE2_SPTR)b.p, b.n, PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP),
                            &ec, &eo, NULL);
    free(b.p);
    if (!r->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: pattern \"%s\": %s", what, pat,
                       (const char *)msg);
    }
    /* JIT when we can (the interpreter is the fallback); not under valgrind, whose memcheck
     * cannot follow the machine code PCRE2 generates and reports its reads as errors */
    if (!TOK__ON_VALGRIND) pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    return LS_OK;
}

void tok__re_free(tok__re *r)
{
    pcre2_code_free(r->code);
    r->code = NULL;
}

int tok__re_next(const tok__re *r, pcre2_match_data *md, const char *s, size_t n, size_t pos,
                 size_t *ms, size_t *me)
{
    if (pos > n) return 0;
    int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) return -1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0], *me = ov[1];
    return 1;
}

/* ---- arena and transforms --------------------------------------------------------------- */

int tok__arena_reserve(tok__arena *a, size_t extra)
{
    size_t need = a->len + extra;
    if (need <= a->cap) return 0;
    size_t c = a->cap ? a->cap : 256;
    while (c < need)
        c *= 2;
    if (c > UINT32_MAX) return -1;
    char *b = realloc(a->b, c);
    if (!b) return -1;
    a->b = b;
    tok__al *al = realloc(a->al, c * sizeof *al);
    if (!al) return -1;
    a->al = al, a->cap = c;
    return 0;
}

int tok__splits_push(tok__splits *s, tok__split sp)
{
    if (TOK__RESERVE(s->v, s->cap, s->n + 1)) return -1;
    s->v[s->n++] = sp;
    return 0;
}

void tok__full_range(const tok__arena *a, const tok__split *sp, size_t *r0, size_t *r1)
{
    *r0 = *r1 = 0;
    if (sp->oe <= sp->os) return; /* empty original: Hugging Face targets 0..0 */
    const tok__al *al = a->al + sp->off;
    size_t i = 0;
    while (i < sp->len && al[i].s == al[i].e)
        i += (size_t)tok__lead_len((unsigned char)a->b[sp->off + i]);
    *r0 = i < sp->len ? i : sp->len;
    *r1 = sp->len;
}

/* moves the split's bytes [0, upto) to the end of the arena and starts copying there */
static void tok__tw_copy(tok__tw *w, size_t upto)
{
    tok__arena *a = w->a;
    if (tok__arena_reserve(a, upto + 64)) {
        w->oom = 1;
        return;
    }
    w->out = a->len;
    memcpy(a->b + a->len, a->b + w->sp->off, upto);
    memcpy(a->al + a->len, a->al + w->sp->off, upto * sizeof *a->al);
    a->len += upto;
    w->copying = 1;
}

static size_t tok__tw_consume(tok__tw *w)
{
    if (w->rd >= w->r1) return 0;
    size_t k = (size_t)tok__lead_len((unsigned char)w->a->b[w->sp->off + w->rd]);
    w->rd += k;
    return k;
}

void tok__tw_begin(tok__tw *w, tok__arena *a, tok__split *sp, size_t r0, size_t r1,
                   size_t initial_remove)
{
    memset(w, 0, sizeof *w);
    w->a = a, w->sp = sp, w->r0 = r0, w->r1 = r1, w->rd = r0, w->wr = r0;
    for (size_t i = 0; i < initial_remove; i++)
        tok__tw_consume(w);
    if (w->rd != r0) tok__tw_copy(w, r0);
}

void tok__tw_put(tok__tw *w, uint32_t c, int change)
{
    if (w->oom) return;
    tok__arena *a = w->a;
    size_t idx = w->rd, off = w->sp->off;
    tok__al al;
    if (change > 0) {
        if (idx < 1)
            al.s = al.e = w->sp->os;
        else
            al = a->al[off + idx - 1];
    } else if (idx < w->sp->len) {
        al = a->al[off + idx];
    } else { /* Hugging Face would index out of bounds here; keep the last alignment */
        al = w->sp->len ? a->al[off + w->sp->len - 1] : (tok__al){w->sp->os, w->sp->os};
    }
    size_t old = change <= 0 ? tok__tw_consume(w) : 0;
    for (int k = change; k < 0; k++)
        tok__tw_consume(w);
    int clen = tok__cplen(c);
    if (!w->copying) {
        if (change == 0 && (size_t)clen == old && w->wr == idx) {
            tok__enc(c, a->b + off + idx);
            w->wr += old;
            return;
        }
        tok__tw_copy(w, w->wr);
        if (w->oom) return;
    }
    if (tok__arena_reserve(a, 4)) {
        w->oom = 1;
        return;
    }
    tok__enc(c, a->b + a->len);
    for (int i = 0; i < clen; i++)
        a->al[a->len + (size_t)i] = al;
    a->len += (size_t)clen;
}

void tok__tw_skip(tok__tw *w, size_t nchars)
{
    if (w->oom || !nchars) return;
    if (!w->copying) tok__tw_copy(w, w->wr);
    for (size_t i = 0; i < nchars; i++)
        tok__tw_consume(w);
}

int tok__tw_end(tok__tw *w)
{
    if (w->oom) return -1;
    tok__split *sp = w->sp;
    if (!w->copying) {
        if (w->wr == w->r1) return 0;
        tok__tw_copy(w, w->wr);
        if (w->oom) return -1;
    }
    tok__arena *a = w->a;
    size_t tail = sp->len - w->r1;
    if (tok__arena_reserve(a, tail)) return -1;
    memcpy(a->b + a->len, a->b + sp->off + w->r1, tail);
    memcpy(a->al + a->len, a->al + sp->off + w->r1, tail * sizeof *a->al);
    a->len += tail;
    sp->off = (uint32_t)w->out;
    sp->len = (uint32_t)(a->len - w->out);
    return 0;
}
