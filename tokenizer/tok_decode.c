/* Decoders: token strings back to text (WordPiece with its cleanup, ByteLevel, Metaspace,
 * Replace, ByteFallback, Fuse, Strip, CTC, BPEDecoder, Sequence), each a step over a list of
 * strings as Hugging Face's decode_chain is; the caller joins the last list. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int tok__strs_push(tok__strs *v, const char *s, size_t n)
{
    if (TOK__RESERVE(v->start, v->cap, v->n + 2)) return -1;
    if (!v->n) v->start[0] = v->text.n;
    if (tok__buf_put(&v->text, s, n)) return -1;
    v->start[++v->n] = v->text.n;
    return 0;
}

void tok__strs_free(tok__strs *v)
{
    free(v->text.p), free(v->start);
    memset(v, 0, sizeof *v);
}

static const char *tok__str_at(const tok__strs *v, size_t i, size_t *n)
{
    *n = v->start[i + 1] - v->start[i];
    return v->text.p + v->start[i];
}

/* appends s with every occurrence of from replaced by to (Rust's str::replace: an empty
 * from matches before every character and at the end) */
static int tok__replace_all(tok__buf *o, const char *s, size_t n, const char *from, size_t fl,
                            const char *to, size_t tl)
{
    size_t i = 0, run = 0;
    if (!fl) {
        int rc = tok__buf_put(o, to, tl);
        for (size_t k = 0; k < n && !rc;) {
            size_t l = (size_t)tok__lead_len((unsigned char)s[k]);
            rc = tok__buf_put(o, s + k, l) || tok__buf_put(o, to, tl);
            k += l;
        }
        return rc;
    }
    while (i + fl <= n) {
        if (!memcmp(s + i, from, fl)) {
            if (tok__buf_put(o, s + run, i - run) || tok__buf_put(o, to, tl)) return -1;
            i += fl, run = i;
        } else {
            i++;
        }
    }
    return tok__buf_put(o, s + run, n - run);
}

static int tok__cleanup(tok__buf *out, const char *s, size_t n)
{
    static const char *const rules[][2] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    tok__buf a = {0}, b = {0};
    int rc = tok__buf_put(&a, s, n);
    for (size_t r = 0; r < sizeof rules / sizeof *rules && !rc; r++) {
        b.n = 0;
        rc = tok__replace_all(&b, a.p, a.n, rules[r][0], strlen(rules[r][0]), rules[r][1],
                              strlen(rules[r][1]));
        tok__buf t = a;
        a = b, b = t;
    }
    if (!rc) rc = tok__buf_put(out, a.p, a.n);
    free(a.p), free(b.p);
    return rc;
}

/* Replace with a regex: HF's find_matches (Oniguruma's find_iter: an empty match right
 * after the previous match is skipped) with every match replaced by to */
static int tok__replace_re(tok__buf *o, const tok__re *re, pcre2_match_data *md, const char *s,
                           size_t n, const char *to, size_t tl)
{
    size_t prev = 0, from = 0, ms, me;
    long last_end = -1;
    int rc = 0;
    while (from <= n && !rc) {
        int r = tok__re_next(re, md, s, n, from, &ms, &me);
        if (r < 0) return -1;
        if (!r) break;
        if (me == ms && (long)ms == last_end) {
            if (from >= n) break;
            from += (size_t)tok__lead_len((unsigned char)s[from]);
            continue;
        }
        rc = tok__buf_put(o, s + prev, ms - prev) || tok__buf_put(o, to, tl);
        prev = me, from = me, last_end = (long)me;
    }
    return rc || tok__buf_put(o, s + prev, n - prev);
}

static int tok__dec_step(const tok__decoder *dd, const tok__strs *in, tok__strs *out,
                         pcre2_match_data *md)
{
    const tj_decoder *d = dd->j;
    tok__buf t = {0};
    int rc = 0;
    switch (d->type) {
    case TJ_DEC_WORDPIECE: {
        size_t pl = strlen(d->prefix);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            t.n = 0;
            if (i && n >= pl && !memcmp(s, d->prefix, pl))
                rc |= tok__buf_put(&t, s + pl, n - pl);
            else if (i)
                rc |= tok__buf_put(&t, " ", 1) || tok__buf_put(&t, s, n);
            else
                rc |= tok__buf_put(&t, s, n);
            if (d->cleanup && !rc) {
                tok__buf c = {0};
                rc |= tok__cleanup(&c, t.p, t.n) || tok__strs_push(out, c.p ? c.p : "", c.n);
                free(c.p);
            } else if (!rc) {
                rc |= tok__strs_push(out, t.p, t.n);
            }
        }
        break;
    }
    case TJ_DEC_BYTE_LEVEL: {
        /* character → byte, inverse of GPT-2's map */
        const uint32_t *bc = tok__byte_chars();
        int16_t inv[512];
        for (int i = 0; i < 512; i++)
            inv[i] = -1;
        for (int b = 0; b < 256; b++)
            inv[bc[b]] = (int16_t)b;
        tok__buf bytes = {0};
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            size_t mark = bytes.n;
            int ok = 1;
            for (size_t k = 0; k < n && ok;) {
                int l;
                uint32_t c = tok__dec(s + k, &l);
                if (c < 512 && inv[c] >= 0) {
                    char b = (char)inv[c];
                    rc |= tok__buf_put(&bytes, &b, 1);
                } else {
                    ok = 0;
                }
                k += (size_t)l;
            }
            if (!ok) { /* a character outside the map: the token's own bytes */
                bytes.n = mark;
                rc |= tok__buf_put(&bytes, s, n);
            }
        }
        if (!rc)
            rc |= tok__utf8_lossy(&t, bytes.p ? bytes.p : "", bytes.n) ||
                  tok__strs_push(out, t.p ? t.p : "", t.n);
        free(bytes.p);
        break;
    }
    case TJ_DEC_METASPACE: {
        int rl;
        uint32_t repl = tok__dec(d->replacement, &rl);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            t.n = 0;
            for (size_t k = 0; k < n && !rc;) {
                int l;
                uint32_t c = tok__dec(s + k, &l);
                if (c != repl)
                    rc |= tok__buf_put(&t, s + k, (size_t)l);
                else if (!(i == 0 && d->prepend_scheme != TJ_PREPEND_NEVER))
                    rc |= tok__buf_put(&t, " ", 1);
                k += (size_t)l;
            }
            if (!rc) rc |= tok__strs_push(out, t.p ? t.p : "", t.n);
        }
        break;
    }
    case TJ_DEC_REPLACE: {
        size_t fl = strlen(d->pattern.text), cl = strlen(d->content);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            t.n = 0;
            if (dd->has_re)
                rc |= tok__replace_re(&t, &dd->re, md, s, n, d->content, cl);
            else
                rc |= tok__replace_all(&t, s, n, d->pattern.text, fl, d->content, cl);
            rc |= tok__strs_push(out, t.p ? t.p : "", t.n);
        }
        break;
    }
    case TJ_DEC_CTC: {
        /* consecutive duplicates dropped, pad removed, cleanup, delimiter → space; tokens
         * left empty are dropped */
        size_t pl = strlen(d->pad_token), wl = strlen(d->word_delimiter);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n, pn;
            const char *s = tok__str_at(in, i, &n);
            if (i) {
                const char *p = tok__str_at(in, i - 1, &pn);
                if (pn == n && !memcmp(p, s, n)) continue;
            }
            t.n = 0;
            rc |= tok__replace_all(&t, s, n, d->pad_token, pl, "", 0);
            if (d->cleanup && !rc) {
                tok__buf c = {0}, w = {0};
                rc |= tok__cleanup(&c, t.p ? t.p : "", t.n) ||
                      tok__replace_all(&w, c.p ? c.p : "", c.n, d->word_delimiter, wl, " ", 1);
                t.n = 0;
                if (!rc) rc |= tok__buf_put(&t, w.p ? w.p : "", w.n);
                free(c.p), free(w.p);
            }
            if (t.n && !rc) rc |= tok__strs_push(out, t.p, t.n);
        }
        break;
    }
    case TJ_DEC_BPE: {
        size_t sl = strlen(d->suffix);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            t.n = 0;
            int last = i + 1 == in->n;
            rc |= tok__replace_all(&t, s, n, d->suffix, sl, last ? "" : " ", last ? 0 : 1) ||
                  tok__strs_push(out, t.p ? t.p : "", t.n);
        }
        break;
    }
    case TJ_DEC_BYTE_FALLBACK: {
        tok__buf pend = {0};
        for (size_t i = 0; i <= in->n && !rc; i++) {
            size_t n = 0;
            const char *s = i < in->n ? tok__str_at(in, i, &n) : NULL;
            int byte = -1;
            if (s && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
                char hex[3] = {s[3], s[4], 0}, *end;
                long v = strtol(hex, &end, 16);
                if (!*end && hex[0] != '-' && hex[0] != '+' && hex[0] != ' ') byte = (int)v;
            }
            if (byte >= 0) {
                char b = (char)byte;
                rc |= tok__buf_put(&pend, &b, 1);
                continue;
            }
            if (pend.n) {
                if (ls_utf8_check(pend.p, pend.n) < 0) {
                    rc |= tok__strs_push(out, pend.p, pend.n);
                } else {
                    for (size_t k = 0; k < pend.n; k++)
                        rc |= tok__strs_push(out, "\xef\xbf\xbd", 3);
                }
                pend.n = 0;
            }
            if (s) rc |= tok__strs_push(out, s, n);
        }
        free(pend.p);
        break;
    }
    case TJ_DEC_FUSE:
        rc |= tok__strs_push(out, in->text.p ? in->text.p + (in->n ? in->start[0] : 0) : "",
                             in->n ? in->start[in->n] - in->start[0] : 0);
        break;
    case TJ_DEC_STRIP: {
        int cl;
        uint32_t ch = tok__dec(d->content, &cl);
        for (size_t i = 0; i < in->n && !rc; i++) {
            size_t n;
            const char *s = tok__str_at(in, i, &n);
            size_t a = 0, b = n;
            for (int k = 0; k < d->start && a < n; k++) {
                int l;
                if (tok__dec(s + a, &l) != ch) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t p = b - 1;
                while (p > a && ((unsigned char)s[p] & 0xc0) == 0x80)
                    p--;
                int l;
                if (tok__dec(s + p, &l) != ch) break;
                b = p;
            }
            rc |= tok__strs_push(out, s + a, b - a);
        }
        break;
    }
    case TJ_DEC_SEQUENCE:
        break;
    }
    free(t.p);
    return rc ? -1 : 0;
}

ls_status tok__decoder_build(tok__decoder *d, const tj_decoder *j, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->j = j;
    if (j->type == TJ_DEC_REPLACE && (j->pattern.kind == TJ_PAT_REGEX || !*j->pattern.text)) {
        ls_status st = tok__re_compile(&d->re, j->pattern.text, j->pattern.kind == TJ_PAT_STRING,
                                       err, errlen, "decoder Replace");
        if (st) return st;
        d->has_re = 1;
    }
    if (j->type == TJ_DEC_SEQUENCE) {
        d->items = calloc((size_t)j->n_items + 1, sizeof *d->items);
        if (!d->items) return ls_fail(err, errlen, LS_ERR_NOMEM, "decoder: out of memory");
        d->n_items = j->n_items;
        for (int i = 0; i < j->n_items; i++) {
            ls_status st = tok__decoder_build(&d->items[i], &j->items[i], err, errlen);
            if (st) return st;
        }
    }
    return LS_OK;
}

void tok__decoder_free(tok__decoder *d)
{
    if (!d) return;
    if (d->has_re) tok__re_free(&d->re);
    for (int i = 0; i < d->n_items; i++)
        tok__decoder_free(&d->items[i]);
    free(d->items);
    d->items = NULL, d->n_items = 0;
}

ls_status tok__decode_chain(const tok__decoder *d, tok__strs *toks, pcre2_match_data *md, char *err,
                            size_t errlen)
{
    if (d->j->type == TJ_DEC_SEQUENCE) {
        for (int i = 0; i < d->n_items; i++) {
            ls_status st = tok__decode_chain(&d->items[i], toks, md, err, errlen);
            if (st) return st;
        }
        return LS_OK;
    }
    tok__strs out = {0};
    if (tok__dec_step(d, toks, &out, md)) {
        tok__strs_free(&out);
        return ls_fail(err, errlen, LS_ERR_NOMEM, "decode: out of memory");
    }
    tok__strs_free(toks);
    *toks = out;
    return LS_OK;
}
