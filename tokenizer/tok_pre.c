/* Pre-tokenizers: BertPreTokenizer, ByteLevel (GPT-2 pattern and byte-to-unicode map),
 * Whitespace, WhitespaceSplit, Metaspace, Split, Punctuation, Digits, UnicodeScripts,
 * CharDelimiterSplit, FixedLength and Sequence. Each
 * cuts splits into smaller views of the arena with Hugging Face's split behaviours; the
 * only ones that rewrite text (Metaspace, ByteLevel) do it through the transform writer. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tok_scripts.h"

#define TOK__GPT2                                                                                  \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others are
 * moved to U+0100 upwards in byte order */
static uint32_t tok__byte_char_tab[256];
static pthread_once_t tok__bc_once = PTHREAD_ONCE_INIT;

static void tok__bc_init(void)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        tok__byte_char_tab[b] = printable ? b : 256 + n++;
    }
}

const uint32_t *tok__byte_chars(void)
{
    pthread_once(&tok__bc_once, tok__bc_init);
    return tok__byte_char_tab;
}

/* ---- spans and split behaviours --------------------------------------------------------- */

typedef struct {
    uint32_t s, e;
    int m; /* is a match */
} tok__span;

typedef struct {
    tok__span *v;
    size_t n, cap;
} tok__spans;

static int tok__span_push(tok__spans *v, size_t s, size_t e, int m)
{
    if (TOK__RESERVE(v->v, v->cap, v->n + 1)) return -1;
    v->v[v->n++] = (tok__span){(uint32_t)s, (uint32_t)e, m};
    return 0;
}

/* NormalizedString::slice for each kept span, dropping empty ones as PreTokenizedString
 * does */
static int tok__emit(const tok__arena *a, const tok__split *sp, tok__spans *sv, tj_split_behavior b,
                     tok__splits *out)
{
    tok__span *v = sv->v;
    size_t n = sv->n, k = 0;
    switch (b) {
    case TJ_SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++)
            v[i].m = 0;
        k = n;
        break;
    case TJ_SPLIT_REMOVED:
        k = n;
        break;
    case TJ_SPLIT_CONTIGUOUS: {
        int prev = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            if (m == prev && k)
                v[k - 1].e = v[i].e;
            else
                v[k] = v[i], v[k++].m = 0;
            prev = m;
        }
        break;
    }
    case TJ_SPLIT_MERGED_WITH_PREVIOUS: {
        int prev = 0;
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            if (m && !prev && k)
                v[k - 1].e = v[i].e;
            else
                v[k] = v[i], v[k++].m = 0;
            prev = m;
        }
        break;
    }
    case TJ_SPLIT_MERGED_WITH_NEXT: {
        /* from the right, then back in order */
        int prev = 0;
        for (size_t i = n; i-- > 0;) {
            int m = v[i].m;
            tok__span x = v[i];
            if (m && !prev && k)
                v[n - k].s = x.s;
            else
                k++, v[n - k] = x, v[n - k].m = 0;
            prev = m;
        }
        memmove(v, v + n - k, k * sizeof *v);
        break;
    }
    }
    for (size_t i = 0; i < k; i++) {
        if (v[i].m || v[i].e <= v[i].s) continue;
        tok__split s = {sp->off + v[i].s, v[i].e - v[i].s, a->al[sp->off + v[i].s].s,
                        a->al[sp->off + v[i].e - 1].e, -1};
        if (tok__splits_push(out, s)) return -1;
    }
    return 0;
}

/* every character for which pred holds is a match of its own */
static int tok__spans_pred(const tok__arena *a, const tok__split *sp, int (*pred)(uint32_t),
                           tok__spans *sv)
{
    sv->n = 0;
    const char *s = a->b + sp->off;
    size_t prev = 0;
    for (size_t i = 0; i < sp->len;) {
        int l;
        uint32_t c = tok__dec(s + i, &l);
        if (pred(c)) {
            if (prev < i && tok__span_push(sv, prev, i, 0)) return -1;
            if (tok__span_push(sv, i, i + (size_t)l, 1)) return -1;
            prev = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (prev < sp->len && tok__span_push(sv, prev, sp->len, 0)) return -1;
    if (!sp->len && tok__span_push(sv, 0, 0, 0)) return -1;
    return 0;
}

/* find_iter of a regex (Oniguruma's rule for empty matches), inverted if asked */
static int tok__spans_re(const tok__re *re, pcre2_match_data *md, const tok__arena *a,
                         const tok__split *sp, int invert, tok__spans *sv)
{
    sv->n = 0;
    const char *s = a->b + sp->off;
    size_t n = sp->len, prev = 0, from = 0, ms, me;
    long last_end = -1;
    if (!n) return tok__span_push(sv, 0, 0, invert);
    while (from <= n) {
        int r = tok__re_next(re, md, s, n, from, &ms, &me);
        if (r < 0) return -1;
        if (!r) break;
        if (me == ms && (long)ms == last_end) {
            if (from >= n) break;
            from += (size_t)tok__lead_len((unsigned char)s[from]);
            continue;
        }
        if (prev != ms && tok__span_push(sv, prev, ms, invert)) return -1;
        if (tok__span_push(sv, ms, me, !invert)) return -1;
        prev = me, from = me, last_end = (long)me;
    }
    if (prev != n && tok__span_push(sv, prev, n, invert)) return -1;
    return 0;
}

int tok__split_by_pred(tok__arena *a, const tok__split *sp, int (*pred)(uint32_t),
                       tj_split_behavior b, tok__splits *out)
{
    tok__spans sv = {0};
    int r = tok__spans_pred(a, sp, pred, &sv) || tok__emit(a, sp, &sv, b, out) ? -1 : 0;
    free(sv.v);
    return r;
}

/* ---- the pre-tokenizers ----------------------------------------------------------------- */

/* a slice [s, e) of the split's bytes as a split of its own (NormalizedString::slice) */
static int tok__slice(const tok__arena *a, const tok__split *sp, size_t s, size_t e,
                      tok__splits *out)
{
    if (e <= s) return 0;
    tok__split x = {sp->off + (uint32_t)s, (uint32_t)(e - s), a->al[sp->off + s].s,
                    a->al[sp->off + e - 1].e, -1};
    return tok__splits_push(out, x);
}

/* HF's own script table (not utf8proc's: its Unicode is older), with SentencePiece's
 * fixes: kana and U+30FC count as Han, a space as Any */
static int tok__script(uint32_t c)
{
    if (c == 0x30fc) return TOK__SCRIPT_HAN;
    if (c == ' ') return TOK__SCRIPT_ANY;
    size_t lo = 0, hi = sizeof tok__scripts / sizeof *tok__scripts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tok__scripts[mid].lo)
            hi = mid;
        else if (c > tok__scripts[mid].hi)
            lo = mid + 1;
        else {
            int s = tok__scripts[mid].script;
            return s == TOK__SCRIPT_HIRAGANA || s == TOK__SCRIPT_KATAKANA ? TOK__SCRIPT_HAN : s;
        }
    }
    return TOK__SCRIPT_ANY;
}

/* a cut before every character whose script differs from the last non-Any one; text
 * before the first cut (leading Any characters) belongs to no split, as in HF */
static int tok__unicode_scripts(const tok__arena *a, const tok__split *sp, tok__splits *out)
{
    const char *s = a->b + sp->off;
    int last = -1; /* None */
    size_t cut = 0;
    int have_cut = 0;
    for (size_t i = 0; i < sp->len;) {
        int l;
        int sc = tok__script(tok__dec(s + i, &l));
        if (sc != TOK__SCRIPT_ANY && last != TOK__SCRIPT_ANY && last != sc) {
            if (have_cut && tok__slice(a, sp, cut, i, out)) return -1;
            cut = i, have_cut = 1;
        }
        if (sc != TOK__SCRIPT_ANY) last = sc;
        i += (size_t)l;
    }
    if (have_cut && tok__slice(a, sp, cut, sp->len, out)) return -1;
    return 0;
}

/* CharDelimiterSplit: the delimiter removed */
static int tok__char_split(const tok__arena *a, const tok__split *sp, uint32_t d, tok__splits *out)
{
    const char *s = a->b + sp->off;
    size_t prev = 0;
    for (size_t i = 0; i < sp->len;) {
        int l;
        uint32_t c = tok__dec(s + i, &l);
        if (c == d) {
            if (tok__slice(a, sp, prev, i, out)) return -1;
            prev = i + (size_t)l;
        }
        i += (size_t)l;
    }
    return tok__slice(a, sp, prev, sp->len, out);
}

/* FixedLength: chunks of n characters */
static int tok__fixed_length(const tok__arena *a, const tok__split *sp, int n, tok__splits *out)
{
    const char *s = a->b + sp->off;
    size_t start = 0;
    int k = 0;
    for (size_t i = 0; i < sp->len;) {
        i += (size_t)tok__lead_len((unsigned char)s[i]);
        if (++k == n) {
            if (tok__slice(a, sp, start, i, out)) return -1;
            start = i, k = 0;
        }
    }
    return tok__slice(a, sp, start, sp->len, out);
}

/* whitespace removed, punctuation isolated, in one pass */
static int tok__bert(const tok__arena *a, const tok__split *sp, tok__splits *out)
{
    const char *s = a->b + sp->off;
    size_t run = 0;
    for (size_t i = 0; i < sp->len;) {
        int l;
        uint32_t c = tok__dec(s + i, &l);
        int ws = tok__is_whitespace(c), p = !ws && tok__is_bert_punc(c);
        if (ws || p) {
            if (run < i) {
                tok__split x = {sp->off + (uint32_t)run, (uint32_t)(i - run),
                                a->al[sp->off + run].s, a->al[sp->off + i - 1].e, -1};
                if (tok__splits_push(out, x)) return -1;
            }
            if (p) {
                tok__split x = {sp->off + (uint32_t)i, (uint32_t)l, a->al[sp->off + i].s,
                                a->al[sp->off + i + (size_t)l - 1].e, -1};
                if (tok__splits_push(out, x)) return -1;
            }
            run = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (run < sp->len) {
        tok__split x = {sp->off + (uint32_t)run, (uint32_t)(sp->len - run), a->al[sp->off + run].s,
                        a->al[sp->off + sp->len - 1].e, -1};
        if (tok__splits_push(out, x)) return -1;
    }
    return 0;
}

static int tok__prepend_char(tok__arena *a, tok__split *sp, uint32_t c)
{
    if (!sp->len) return 0;
    int fl;
    uint32_t first = tok__dec(a->b + sp->off, &fl);
    tok__tw w;
    tok__tw_begin(&w, a, sp, 0, (size_t)fl, 0);
    tok__tw_put0(&w, c);
    tok__tw_put(&w, first, 1);
    return tok__tw_end(&w);
}

static int tok__metaspace(const tok__pre *p, tok__arena *a, tok__split *sp, tok__splits *out)
{
    /* replace(' ', replacement) */
    int has_space = memchr(a->b + sp->off, ' ', sp->len) != NULL;
    if (has_space) {
        tok__tw w;
        tok__tw_begin(&w, a, sp, 0, sp->len, 0);
        size_t off = sp->off;
        for (size_t i = 0; i < sp->len;) {
            int l;
            uint32_t c = tok__dec(a->b + off + i, &l);
            if (c == ' ') {
                tok__tw_skip(&w, 1);
                tok__tw_put(&w, p->repl, 1);
            } else {
                tok__tw_put0(&w, c);
            }
            i += (size_t)l;
        }
        if (tok__tw_end(&w)) return -1;
    }
    int l0 = 0;
    uint32_t c0 = sp->len ? tok__dec(a->b + sp->off, &l0) : 0;
    int starts = sp->len && c0 == p->repl;
    tj_prepend_scheme ps = p->j->prepend_scheme;
    if (!starts && (ps == TJ_PREPEND_ALWAYS || (ps == TJ_PREPEND_FIRST && sp->os == 0)))
        if (tok__prepend_char(a, sp, p->repl)) return -1;
    if (!p->j->split) {
        if (sp->len) return tok__splits_push(out, *sp);
        return 0;
    }
    tok__spans sv = {0};
    sv.n = 0;
    const char *s;
    size_t prev = 0;
    int r = 0;
    for (size_t i = 0; i < sp->len && !r;) {
        s = a->b + sp->off;
        int l;
        uint32_t c = tok__dec(s + i, &l);
        if (c == p->repl) {
            if (prev < i) r |= tok__span_push(&sv, prev, i, 0);
            r |= tok__span_push(&sv, i, i + (size_t)l, 1);
            prev = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (!r && prev < sp->len) r |= tok__span_push(&sv, prev, sp->len, 0);
    if (!r) r = tok__emit(a, sp, &sv, TJ_SPLIT_MERGED_WITH_NEXT, out);
    free(sv.v);
    return r;
}

/* every byte of the split becomes its GPT-2 character; the first byte of a character
 * replaces it, the others are inserted after it */
int tok__bytes_to_chars(tok__arena *a, tok__split *sp)
{
    const uint32_t *bc = tok__byte_chars();
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    size_t off = sp->off, n = sp->len;
    int same = r0 == 0;
    for (size_t i = 0; i < n && same; i++) {
        unsigned char b = (unsigned char)a->b[off + i];
        same = b < 0x80 && bc[b] == b;
    }
    if (same) return 0;
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, 0);
    for (size_t i = 0; i < n;) {
        /* read the whole character first: the first put may overwrite it in place */
        int l = tok__lead_len((unsigned char)a->b[off + i]);
        unsigned char by[4];
        memcpy(by, a->b + off + i, (size_t)l);
        for (int k = 0; k < l; k++)
            tok__tw_put(&w, bc[by[k]], k > 0);
        i += (size_t)l;
    }
    return tok__tw_end(&w);
}

static int tok__pre_one(const tok__pre *p, tok__arena *a, tok__split *sp, tok__splits *out,
                        pcre2_match_data *md)
{
    const tj_pretok *j = p->j;
    tok__spans sv = {0};
    int r = 0;
    switch (p->type) {
    case TJ_PRE_BERT:
        return tok__bert(a, sp, out);
    case TJ_PRE_WHITESPACE_SPLIT:
        return tok__split_by_pred(a, sp, tok__is_whitespace, TJ_SPLIT_REMOVED, out);
    case TJ_PRE_PUNCTUATION:
        return tok__split_by_pred(a, sp, tok__is_bert_punc, j->behavior, out);
    case TJ_PRE_DIGITS:
        return tok__split_by_pred(a, sp, tok__is_numeric,
                                  j->individual_digits ? TJ_SPLIT_ISOLATED : TJ_SPLIT_CONTIGUOUS,
                                  out);
    case TJ_PRE_WHITESPACE:
        r = tok__spans_re(&p->re, md, a, sp, 1, &sv) ||
            tok__emit(a, sp, &sv, TJ_SPLIT_REMOVED, out);
        break;
    case TJ_PRE_SPLIT:
        r = tok__spans_re(&p->re, md, a, sp, j->invert, &sv) ||
            tok__emit(a, sp, &sv, j->behavior, out);
        break;
    case TJ_PRE_METASPACE:
        return tok__metaspace(p, a, sp, out);
    case TJ_PRE_UNICODE_SCRIPTS:
        return tok__unicode_scripts(a, sp, out);
    case TJ_PRE_CHAR_DELIMITER:
        return tok__char_split(a, sp, p->delim, out);
    case TJ_PRE_FIXED_LENGTH:
        return tok__fixed_length(a, sp, j->length, out);
    case TJ_PRE_BYTE_LEVEL: {
        if (j->add_prefix_space && sp->len && a->b[sp->off] != ' ' && tok__prepend_char(a, sp, ' '))
            return -1;
        size_t first = out->n;
        if (j->use_regex) {
            r = tok__spans_re(&p->re, md, a, sp, 0, &sv) ||
                tok__emit(a, sp, &sv, TJ_SPLIT_ISOLATED, out);
        } else if (sp->len) {
            r = tok__splits_push(out, *sp);
        }
        for (size_t i = first; i < out->n && !r; i++)
            r = tok__bytes_to_chars(a, &out->v[i]);
        break;
    }
    case TJ_PRE_SEQUENCE:
        break; /* handled by tok__pre_tokenize */
    }
    free(sv.v);
    return r ? -1 : 0;
}

int tok__pre_tokenize(const tok__pre *p, tok__arena *a, tok__splits *in, tok__splits *tmp,
                      pcre2_match_data *md)
{
    if (p->type == TJ_PRE_SEQUENCE) {
        for (int i = 0; i < p->n_items; i++)
            if (tok__pre_tokenize(&p->items[i], a, in, tmp, md)) return -1;
        return 0;
    }
    tmp->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        tok__split sp = in->v[i];
        if (sp.added >= 0) {
            if (tok__splits_push(tmp, sp)) return -1;
            continue;
        }
        if (tok__pre_one(p, a, &sp, tmp, md)) return -1;
    }
    tok__splits t = *in;
    *in = *tmp, *tmp = t;
    return 0;
}

ls_status tok__pre_build(tok__pre *p, const tj_pretok *j, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->type = j->type, p->j = j;
    switch (j->type) {
    case TJ_PRE_BYTE_LEVEL:
        if (!j->use_regex) return LS_OK;
        return tok__re_compile(&p->re, TOK__GPT2, 0, err, errlen, "pre-tokenizer ByteLevel");
    case TJ_PRE_WHITESPACE:
        return tok__re_compile(&p->re, "\\w+|[^\\w\\s]+", 0, err, errlen,
                               "pre-tokenizer Whitespace");
    case TJ_PRE_SPLIT:
        return tok__re_compile(&p->re, j->pattern.text, j->pattern.kind == TJ_PAT_STRING, err,
                               errlen, "pre-tokenizer Split");
    case TJ_PRE_METASPACE: {
        int l;
        p->repl = tok__dec(j->replacement, &l);
        return LS_OK;
    }
    case TJ_PRE_CHAR_DELIMITER: {
        int l;
        p->delim = tok__dec(j->delimiter, &l);
        return LS_OK;
    }
    case TJ_PRE_SEQUENCE:
        p->items = calloc((size_t)j->n_items + 1, sizeof *p->items);
        if (!p->items) return ls_fail(err, errlen, LS_ERR_NOMEM, "pre-tokenizer: out of memory");
        p->n_items = j->n_items;
        for (int i = 0; i < j->n_items; i++) {
            ls_status st = tok__pre_build(&p->items[i], &j->items[i], err, errlen);
            if (st) return st;
        }
        return LS_OK;
    default:
        return LS_OK;
    }
}

void tok__pre_free(tok__pre *p)
{
    if (!p) return;
    tok__re_free(&p->re);
    for (int i = 0; i < p->n_items; i++)
        tok__pre_free(&p->items[i]);
    free(p->items);
    p->items = NULL, p->n_items = 0;
}
