/* Normalizers: BertNormalizer, NF(K)C/NF(K)D, Lowercase, StripAccents, Replace, Prepend,
 * Strip, Precompiled, Nmt, ByteLevel and Sequence, each written as the stream of (char, change)
 * items Hugging Face feeds to NormalizedString::transform, so that alignments (and so offsets) come
 * out byte for byte as theirs. Unicode data comes from utf8proc. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tok_internal.h"

/* ---- composition pairs ------------------------------------------------------------------ */

/* characters that end some canonical decomposition: the only ones that can compose with a
 * preceding starter (bit set over all code points) */
static uint8_t tok__second[0x110000 / 8];
static pthread_once_t tok__once = PTHREAD_ONCE_INIT;

static void tok__init_once(void)
{
    for (utf8proc_int32_t c = 0; c < 0x110000; c++) {
        const utf8proc_property_t *p = utf8proc_get_property(c);
        if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;
        utf8proc_int32_t d[8];
        int bc = 0;
        utf8proc_ssize_t n = utf8proc_decompose_char(c, d, 8, UTF8PROC_DECOMPOSE, &bc);
        if (n >= 2 && n <= 8) tok__second[d[n - 1] >> 3] |= (uint8_t)(1u << (d[n - 1] & 7));
    }
    for (uint32_t c = 0x1161; c <= 0x1175; c++)
        tok__second[c >> 3] |= (uint8_t)(1u << (c & 7));
    for (uint32_t c = 0x11a8; c <= 0x11c2; c++)
        tok__second[c >> 3] |= (uint8_t)(1u << (c & 7));
}

void tok__unicode_init(void)
{
    pthread_once(&tok__once, tok__init_once);
}

/* the primary composite of a + b, or 0 */
static uint32_t tok__compose(uint32_t a, uint32_t b)
{
    if (!(tok__second[b >> 3] & (1u << (b & 7)))) return 0;
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    return n == 1 ? (uint32_t)buf[0] : 0;
}

static int tok__ccc(uint32_t c)
{
    return c < 0x300 ? 0 : utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
}

/* ---- iteration over a split's characters ------------------------------------------------ */

/* Hugging Face's transforms read the string they replace before writing; the writer may
 * move the arena, so characters are read through offsets, never cached pointers. */
typedef struct {
    const tok__arena *a;
    size_t off, len, pos;
} tok__it;

static int tok__next(tok__it *it, uint32_t *c)
{
    if (it->pos >= it->len) return 0;
    int l;
    *c = tok__dec(it->a->b + it->off + it->pos, &l);
    it->pos += (size_t)l;
    return 1;
}

/* ---- decomposition and recomposition (unicode-normalization-alignments) ----------------- */

typedef struct {
    uint32_t c;
    int change;
    uint8_t ccc;
} tok__nitem;

typedef struct {
    tok__nitem *v;
    size_t n, cap, ready;
    /* recomposition */
    int has_composee;
    tok__nitem composee;
    int last_ccc; /* -1 none */
    tok__nitem *buf;
    size_t nbuf, capbuf;
    tok__tw *w;
    int compose;
    int oom;
} tok__nf;

static void tok__nf_emit(tok__nf *f, uint32_t c, int change)
{
    if (change == 0)
        tok__tw_put0(f->w, c);
    else
        tok__tw_put(f->w, c, change);
}

static void tok__rc_push(tok__nf *f, tok__nitem it)
{
    if (TOK__RESERVE(f->buf, f->capbuf, f->nbuf + 1)) {
        f->oom = 1;
        return;
    }
    f->buf[f->nbuf++] = it;
}

/* one decomposed item into the recomposer */
static void tok__rc_feed(tok__nf *f, tok__nitem it)
{
    if (!f->compose) {
        tok__nf_emit(f, it.c, it.change);
        return;
    }
    int cls = it.ccc;
    if (!f->has_composee) {
        if (cls != 0) {
            tok__nf_emit(f, it.c, it.change);
            return;
        }
        f->composee = it, f->has_composee = 1;
        return;
    }
    tok__nitem k = f->composee;
    if (f->last_ccc < 0) {
        uint32_t r = tok__compose(k.c, it.c);
        if (r) {
            f->composee.c = r, f->composee.change = k.change + it.change - 1;
            return;
        }
        if (cls == 0) {
            f->composee = it;
            tok__nf_emit(f, k.c, k.change);
            return;
        }
        tok__rc_push(f, it);
        f->last_ccc = cls;
        return;
    }
    if (f->last_ccc >= cls) { /* blocked */
        if (cls == 0) {
            f->composee = it;
            f->last_ccc = -1;
            tok__nf_emit(f, k.c, k.change);
            for (size_t i = 0; i < f->nbuf; i++)
                tok__nf_emit(f, f->buf[i].c, f->buf[i].change);
            f->nbuf = 0;
            return;
        }
        tok__rc_push(f, it);
        f->last_ccc = cls;
        return;
    }
    uint32_t r = tok__compose(k.c, it.c);
    if (r) {
        f->composee.c = r, f->composee.change = k.change + it.change - 1;
        return;
    }
    tok__rc_push(f, it);
    f->last_ccc = cls;
}

static void tok__rc_finish(tok__nf *f)
{
    if (!f->compose) return;
    if (f->has_composee) tok__nf_emit(f, f->composee.c, f->composee.change);
    for (size_t i = 0; i < f->nbuf; i++)
        tok__nf_emit(f, f->buf[i].c, f->buf[i].change);
    f->nbuf = 0, f->has_composee = 0, f->last_ccc = -1;
}

/* stable sort of the pending block by combining class (insertion sort for the usual few
 * marks, a counting sort for long runs so that no input is quadratic) */
static void tok__nf_sort_pending(tok__nf *f)
{
    size_t k = f->n - f->ready;
    if (k > 32) {
        size_t count[257] = {0};
        tok__nitem *tmp = malloc(k * sizeof *tmp);
        if (!tmp) {
            f->oom = 1;
            f->ready = f->n;
            return;
        }
        for (size_t i = f->ready; i < f->n; i++)
            count[f->v[i].ccc + 1]++;
        for (int c = 1; c < 257; c++)
            count[c] += count[c - 1];
        for (size_t i = f->ready; i < f->n; i++)
            tmp[count[f->v[i].ccc]++] = f->v[i];
        memcpy(f->v + f->ready, tmp, k * sizeof *tmp);
        free(tmp);
        f->ready = f->n;
        return;
    }
    for (size_t i = f->ready + 1; i < f->n; i++) {
        tok__nitem x = f->v[i];
        size_t j = i;
        while (j > f->ready && f->v[j - 1].ccc > x.ccc)
            f->v[j] = f->v[j - 1], j--;
        f->v[j] = x;
    }
    f->ready = f->n;
}

static void tok__nf_push(tok__nf *f, uint32_t c, int first)
{
    uint8_t cls = (uint8_t)tok__ccc(c);
    if (cls == 0) tok__nf_sort_pending(f);
    if (TOK__RESERVE(f->v, f->cap, f->n + 1)) {
        f->oom = 1;
        return;
    }
    f->v[f->n++] = (tok__nitem){c, first ? 0 : 1, cls};
}

static void tok__nf_flush_ready(tok__nf *f)
{
    if (!f->ready) return;
    for (size_t i = 0; i < f->ready; i++)
        tok__rc_feed(f, f->v[i]);
    memmove(f->v, f->v + f->ready, (f->n - f->ready) * sizeof *f->v);
    f->n -= f->ready;
    f->ready = 0;
}

static int tok__unicode_nf(tok__arena *a, tok__split *sp, int compat, int compose)
{
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    /* quick check: ASCII is in every normal form, text below U+00C0 in NFC and NFD */
    int plain = 1;
    unsigned char limit = compat ? 0x80 : 0xc3;
    for (size_t i = 0; i < sp->len; i++)
        if ((unsigned char)a->b[sp->off + i] >= limit) {
            plain = 0;
            break;
        }
    if (plain && r0 == 0) return 0;

    tok__tw w;
    tok__nf f = {0};
    f.w = &w, f.compose = compose, f.last_ccc = -1;
    tok__it it = {a, sp->off, sp->len, 0};
    tok__tw_begin(&w, a, sp, r0, r1, 0);
    uint32_t c;
    utf8proc_option_t opt = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    while (tok__next(&it, &c) && !f.oom) {
        if (c < (compat ? 0xa0u : 0xc0u)) {
            tok__nf_push(&f, c, 1);
        } else {
            utf8proc_int32_t d[32];
            int bc = 0;
            utf8proc_ssize_t n = 1;
            if (tok__hf_no_decomp(c, compat))
                d[0] = (utf8proc_int32_t)c;
            else
                n = utf8proc_decompose_char((utf8proc_int32_t)c, d, 32, opt, &bc);
            if (n < 1 || n > 32) d[0] = (utf8proc_int32_t)c, n = 1;
            for (utf8proc_ssize_t k = 0; k < n; k++)
                tok__nf_push(&f, (uint32_t)d[k], k == 0);
        }
        tok__nf_flush_ready(&f);
    }
    tok__nf_sort_pending(&f);
    tok__nf_flush_ready(&f);
    tok__rc_finish(&f);
    free(f.v);
    free(f.buf);
    if (f.oom) {
        tok__tw_end(&w);
        return -1;
    }
    return tok__tw_end(&w);
}

/* ---- simple transforms ------------------------------------------------------------------ */

/* NormalizedString::filter: kept chars carry the count of removed chars that follow */
static int tok__filter(tok__arena *a, tok__split *sp, int (*keep)(uint32_t))
{
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    tok__it it = {a, sp->off, sp->len, 0};
    uint32_t c;
    size_t initial = 0, removed_any = 0;
    while (tok__next(&it, &c))
        if (!keep(c)) removed_any++;
    if (!removed_any && r0 == 0) return 0;
    it.pos = 0;
    /* leading removed chars */
    size_t save;
    for (;;) {
        save = it.pos;
        if (!tok__next(&it, &c)) break;
        if (keep(c)) {
            it.pos = save;
            break;
        }
        initial++;
    }
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, initial);
    int have = 0;
    uint32_t pend = 0;
    int nrem = 0;
    while (tok__next(&it, &c)) {
        if (keep(c)) {
            if (have) {
                if (nrem)
                    tok__tw_put(&w, pend, -nrem);
                else
                    tok__tw_put0(&w, pend);
            }
            pend = c, have = 1, nrem = 0;
        } else {
            nrem++;
        }
    }
    if (have) tok__tw_put(&w, pend, -nrem);
    return tok__tw_end(&w);
}

static int tok__map_chars(tok__arena *a, tok__split *sp, uint32_t (*fn)(uint32_t))
{
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    tok__it it = {a, sp->off, sp->len, 0};
    uint32_t c;
    int same = 1;
    while (same && tok__next(&it, &c))
        same = fn(c) == c;
    if (same && r0 == 0) return 0;
    it.pos = 0;
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, 0);
    while (tok__next(&it, &c))
        tok__tw_put0(&w, fn(c));
    return tok__tw_end(&w);
}

static int tok__bert_keep(uint32_t c)
{
    if (c == 0 || c == 0xfffd) return 0;
    if (c == '\t' || c == '\n' || c == '\r') return 1;
    if (c >= 0x20 && c < 0x7f) return 1;
    return !tok__is_control(c);
}

static uint32_t tok__ws_to_space(uint32_t c)
{
    return tok__is_whitespace(c) ? ' ' : c;
}

/* Nmt: SentencePiece's NMT cleanup (control characters dropped, odd spaces made spaces) */
static int tok__nmt_keep(uint32_t c)
{
    return !((c >= 0x01 && c <= 0x08) || c == 0x0b || (c >= 0x0e && c <= 0x1f) || c == 0x7f ||
             c == 0x8f || c == 0x9f);
}

static uint32_t tok__nmt_space(uint32_t c)
{
    if (c == 0x09 || c == 0x0a || c == 0x0c || c == 0x0d || c == 0x1680 ||
        (c >= 0x200b && c <= 0x200f) || c == 0x2028 || c == 0x2029 || c == 0x2581 || c == 0xfeff ||
        c == 0xfffd)
        return ' ';
    return c;
}

static int tok__not_mn(uint32_t c)
{
    return !tok__is_mn(c);
}

static int tok__not_mark(uint32_t c)
{
    return !tok__is_mark(c);
}

static int tok__is_cjk(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
           (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

static int tok__chinese(tok__arena *a, tok__split *sp)
{
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    tok__it it = {a, sp->off, sp->len, 0};
    uint32_t c;
    int any = 0;
    while (!any && tok__next(&it, &c))
        any = tok__is_cjk(c);
    if (!any && r0 == 0) return 0;
    it.pos = 0;
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, 0);
    while (tok__next(&it, &c)) {
        if (tok__is_cjk(c)) {
            tok__tw_put(&w, ' ', 0);
            tok__tw_put(&w, c, 1);
            tok__tw_put(&w, ' ', 1);
        } else {
            tok__tw_put0(&w, c);
        }
    }
    return tok__tw_end(&w);
}

static uint32_t tok__lower1(uint32_t c)
{
    uint32_t l = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    if (l == c) {
        uint32_t h = tok__hf_lower(c);
        if (h) l = h;
    }
    return l;
}

/* Rust char::to_lowercase: utf8proc's simple mapping, plus the one unconditional
 * multi-character mapping (U+0130 → i + U+0307) */
static int tok__lowercase(tok__arena *a, tok__split *sp)
{
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    tok__it it = {a, sp->off, sp->len, 0};
    uint32_t c;
    int same = 1;
    while (same && tok__next(&it, &c))
        same = c < 0x80 ? !(c >= 'A' && c <= 'Z') : c != 0x130 && tok__lower1(c) == c;
    if (same && r0 == 0) return 0;
    it.pos = 0;
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, 0);
    while (tok__next(&it, &c)) {
        if (c < 0x80) {
            tok__tw_put0(&w, c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (c == 0x130) {
            tok__tw_put(&w, 'i', 0);
            tok__tw_put(&w, 0x307, 1);
        } else {
            tok__tw_put0(&w, tok__lower1(c));
        }
    }
    return tok__tw_end(&w);
}

static int tok__prepend(tok__arena *a, tok__split *sp, const char *pre)
{
    if (!sp->len || !*pre) return 0;
    int fl;
    uint32_t first = tok__dec(a->b + sp->off, &fl);
    tok__tw w;
    tok__tw_begin(&w, a, sp, 0, (size_t)fl, 0);
    int i = 0;
    for (const char *p = pre; *p;) {
        int l;
        uint32_t c = tok__dec(p, &l);
        tok__tw_put(&w, c, i++ ? 1 : 0);
        p += l;
    }
    tok__tw_put(&w, first, 1);
    return tok__tw_end(&w);
}

/* NormalizedString::lrstrip */
static int tok__strip(tok__arena *a, tok__split *sp, int left, int right)
{
    tok__it it = {a, sp->off, sp->len, 0};
    uint32_t c;
    size_t nch = 0, lead = 0, trail = 0;
    int in_lead = 1;
    while (tok__next(&it, &c)) {
        nch++;
        int ws = tok__is_whitespace(c);
        if (in_lead && ws)
            lead++;
        else
            in_lead = 0;
        trail = ws ? trail + 1 : 0;
    }
    if (!left) lead = 0;
    if (!right) trail = 0;
    if (!lead && !trail) return 0;
    size_t r0, r1;
    tok__full_range(a, sp, &r0, &r1);
    tok__tw w;
    tok__tw_begin(&w, a, sp, r0, r1, lead);
    it.pos = 0;
    for (size_t i = 0; tok__next(&it, &c); i++) {
        if (i < lead || i + trail >= nch) continue;
        if (i + trail + 1 == nch)
            tok__tw_put(&w, c, -(int)trail);
        else
            tok__tw_put0(&w, c);
    }
    return tok__tw_end(&w);
}

static int tok__replace(const tok__norm *n, tok__arena *a, tok__split *sp, pcre2_match_data *md)
{
    const char *content = n->j->content;
    size_t off = sp->off, len = sp->len;
    size_t pos = 0, ms, me;
    int r = tok__re_next(&n->re, md, a->b + off, len, 0, &ms, &me);
    if (r < 0) return -1;
    if (!r) return 0;
    tok__tw w;
    tok__tw_begin(&w, a, sp, 0, len, 0);
    while (r > 0) {
        /* unmatched text before the match */
        while (pos < ms) {
            int l;
            uint32_t c = tok__dec(a->b + off + pos, &l);
            tok__tw_put0(&w, c);
            pos += (size_t)l;
        }
        size_t nch = 0;
        for (size_t i = ms; i < me; i += (size_t)tok__lead_len((unsigned char)a->b[off + i]))
            nch++;
        tok__tw_skip(&w, nch);
        for (const char *p = content; *p;) {
            int l;
            uint32_t c = tok__dec(p, &l);
            tok__tw_put(&w, c, 1);
            p += l;
        }
        pos = me;
        size_t next = me;
        if (me == ms) { /* empty match: step one character */
            if (me >= len) break;
            next = me + (size_t)tok__lead_len((unsigned char)a->b[off + me]);
        }
        r = tok__re_next(&n->re, md, a->b + off, len, next, &ms, &me);
        if (r < 0) {
            tok__tw_end(&w);
            return -1;
        }
    }
    while (pos < len) {
        int l;
        uint32_t c = tok__dec(a->b + off + pos, &l);
        tok__tw_put0(&w, c);
        pos += (size_t)l;
    }
    return tok__tw_end(&w);
}

/* ---- Precompiled (SentencePiece's normalization rules as a double-array trie) ------------ */

/* spm_precompiled's transform: the shortest prefix of s[0..len) that is a key (a NUL byte
 * ends the search), as the offset of its replacement; -1 if none */
static int64_t tok__pc_lookup(const tok__norm *n, const char *s, size_t len)
{
    const uint32_t *u = n->pc_array;
    size_t nu = n->pc_units, node = 0;
    if (!nu) return -1;
    uint32_t unit = u[0];
    node ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!ch) break;
        node ^= ch;
        if (node >= nu) return -1;
        unit = u[node];
        if ((unit & ((1u << 31) | 0xff)) != ch) return -1;
        node ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if ((unit >> 8) & 1) {
            if (node >= nu) return -1;
            return (int64_t)(u[node] & ((1u << 31) - 1));
        }
    }
    return -1;
}

typedef struct {
    tok__nitem *v;
    size_t n, cap;
} tok__items;

/* Hugging Face's replace(): the new characters with change 0, the last `diff` of them
 * marked inserted, or the whole shortfall charged to the last item so far */
static int tok__pc_replace(tok__items *it, size_t old_chars, const char *rep, size_t rlen)
{
    size_t nnew = 0;
    for (size_t k = 0; k < rlen;) {
        int l;
        uint32_t c = tok__dec(rep + k, &l);
        if (TOK__RESERVE(it->v, it->cap, it->n + 1)) return -1;
        it->v[it->n++] = (tok__nitem){c, 0, 0};
        k += (size_t)l, nnew++;
    }
    long diff = (long)nnew - (long)old_chars;
    if (diff > 0)
        for (size_t k = 0; k < (size_t)diff; k++)
            it->v[it->n - 1 - k].change = 1;
    else if (diff < 0 && it->n)
        it->v[it->n - 1].change += (int)diff;
    return 0;
}

static int tok__precompiled(const tok__norm *n, tok__arena *a, tok__split *sp)
{
    if (!n->pc_units || !sp->len) return 0;
    size_t off = sp->off, len = sp->len;
    tok__items it = {0};
    int modified = 0, rc = 0;
    /* extended grapheme clusters (utf8proc), as unicode-segmentation cuts them */
    size_t gs = 0;
    utf8proc_int32_t state = 0, prev = -1;
    for (size_t i = 0; i <= len && !rc;) {
        int l = 0;
        uint32_t c = 0;
        int boundary = i == len;
        if (!boundary) {
            c = tok__dec(a->b + off + i, &l);
            boundary =
                prev >= 0 && utf8proc_grapheme_break_stateful(prev, (utf8proc_int32_t)c, &state);
        }
        if (boundary && i > gs) {
            const char *g = a->b + off + gs;
            size_t glen = i - gs;
            int64_t v = glen < 6 ? tok__pc_lookup(n, g, glen) : -1;
            if (v >= 0 && (size_t)v < n->pc_normalized_len) {
                size_t nch = 0;
                for (size_t k = 0; k < glen; k += (size_t)tok__lead_len((unsigned char)g[k]))
                    nch++;
                rc = tok__pc_replace(&it, nch, n->pc_normalized + v, strlen(n->pc_normalized + v));
                modified = 1;
            } else {
                for (size_t k = 0; k < glen && !rc;) {
                    int cl;
                    uint32_t cc = tok__dec(g + k, &cl);
                    int64_t w = tok__pc_lookup(n, g + k, (size_t)cl);
                    if (w >= 0 && (size_t)w < n->pc_normalized_len) {
                        rc = tok__pc_replace(&it, 1, n->pc_normalized + w,
                                             strlen(n->pc_normalized + w));
                        modified = 1;
                    } else if (TOK__RESERVE(it.v, it.cap, it.n + 1)) {
                        rc = -1;
                    } else {
                        it.v[it.n++] = (tok__nitem){cc, 0, 0};
                    }
                    k += (size_t)cl;
                }
            }
            gs = i;
        }
        if (i == len) break;
        prev = (utf8proc_int32_t)c;
        i += (size_t)l;
    }
    if (!rc && modified) {
        size_t r0, r1;
        tok__full_range(a, sp, &r0, &r1);
        tok__tw w;
        tok__tw_begin(&w, a, sp, r0, r1, 0);
        for (size_t k = 0; k < it.n; k++)
            tok__tw_put(&w, it.v[k].c, it.v[k].change);
        rc = tok__tw_end(&w);
    }
    free(it.v);
    return rc;
}

/* ---- building and running ----------------------------------------------------------------- */

ls_status tok__norm_build(tok__norm *n, const tj_normalizer *j, char *err, size_t errlen)
{
    memset(n, 0, sizeof *n);
    n->type = j->type, n->j = j;
    if (j->type == TJ_NORM_REPLACE)
        return tok__re_compile(&n->re, j->pattern.text, j->pattern.kind == TJ_PAT_STRING, err,
                               errlen, "normalizer Replace");
    if (j->type == TJ_NORM_PRECOMPILED && j->charsmap) {
        if (j->charsmap_len < 4)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "Precompiled normalizer: charsmap too short");
        uint32_t tsize;
        memcpy(&tsize, j->charsmap, 4);
        if (tsize % 4 || (size_t)tsize > j->charsmap_len - 4)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "Precompiled normalizer: trie size %u does not fit the charsmap", tsize);
        n->pc_array = (const uint32_t *)(const void *)(j->charsmap + 4);
        n->pc_units = tsize / 4;
        n->pc_normalized = (const char *)j->charsmap + 4 + tsize;
        n->pc_normalized_len = j->charsmap_len - 4 - tsize;
        if (n->pc_normalized_len && n->pc_normalized[n->pc_normalized_len - 1] != 0)
            return ls_fail(err, errlen, LS_ERR_CONFIG,
                           "Precompiled normalizer: normalized strings are not terminated");
    }
    if (j->type == TJ_NORM_SEQUENCE) {
        n->items = calloc((size_t)j->n_items + 1, sizeof *n->items);
        if (!n->items) return ls_fail(err, errlen, LS_ERR_NOMEM, "normalizer: out of memory");
        n->n_items = j->n_items;
        for (int i = 0; i < j->n_items; i++) {
            ls_status st = tok__norm_build(&n->items[i], &j->items[i], err, errlen);
            if (st) return st;
        }
    }
    return LS_OK;
}

void tok__norm_free(tok__norm *n)
{
    if (!n) return;
    tok__re_free(&n->re);
    for (int i = 0; i < n->n_items; i++)
        tok__norm_free(&n->items[i]);
    free(n->items);
    n->items = NULL, n->n_items = 0;
}

int tok__normalize(const tok__norm *n, tok__arena *a, tok__split *sp, pcre2_match_data *md)
{
    const tj_normalizer *j = n->j;
    switch (n->type) {
    case TJ_NORM_BERT: {
        if (j->clean_text) {
            if (tok__filter(a, sp, tok__bert_keep)) return -1;
            if (tok__map_chars(a, sp, tok__ws_to_space)) return -1;
        }
        if (j->handle_chinese_chars && tok__chinese(a, sp)) return -1;
        int strip = j->strip_accents < 0 ? j->lowercase : j->strip_accents;
        if (strip) {
            if (tok__unicode_nf(a, sp, 0, 0)) return -1;
            if (tok__filter(a, sp, tok__not_mn)) return -1;
        }
        if (j->lowercase && tok__lowercase(a, sp)) return -1;
        return 0;
    }
    case TJ_NORM_NFC:
        return tok__unicode_nf(a, sp, 0, 1);
    case TJ_NORM_NFD:
        return tok__unicode_nf(a, sp, 0, 0);
    case TJ_NORM_NFKC:
        return tok__unicode_nf(a, sp, 1, 1);
    case TJ_NORM_NFKD:
        return tok__unicode_nf(a, sp, 1, 0);
    case TJ_NORM_LOWERCASE:
        return tok__lowercase(a, sp);
    case TJ_NORM_STRIP_ACCENTS:
        return tok__filter(a, sp, tok__not_mark);
    case TJ_NORM_REPLACE:
        return tok__replace(n, a, sp, md);
    case TJ_NORM_PREPEND:
        return tok__prepend(a, sp, j->content);
    case TJ_NORM_STRIP:
        return tok__strip(a, sp, j->strip_left, j->strip_right);
    case TJ_NORM_PRECOMPILED:
        return tok__precompiled(n, a, sp);
    case TJ_NORM_NMT:
        if (tok__filter(a, sp, tok__nmt_keep)) return -1;
        return tok__map_chars(a, sp, tok__nmt_space);
    case TJ_NORM_BYTE_LEVEL:
        return sp->len ? tok__bytes_to_chars(a, sp) : 0;
    case TJ_NORM_SEQUENCE:
        for (int i = 0; i < n->n_items; i++)
            if (tok__normalize(&n->items[i], a, sp, md)) return -1;
        return 0;
    }
    return 0;
}
