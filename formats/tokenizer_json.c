/* tokenizer.json decoding: owns the walk over cJSON and the checks on every key's type;
 * errors name the file and the JSON path ("tokenizer.json: model.merges[12]: ..."). All
 * strings and arrays of a decoded tokenizer come from one pool freed in one place. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#include "tokenizer_json.h"

/* ---- pool: chunked bump allocator, one free for the whole tokenizer -------------------- */

struct tj__pool {
    struct tj__pool *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

static void *tj__alloc(tj__pool **pool, size_t n)
{
    enum { CHUNK = 1 << 20 };
    n = (n + 15) & ~(size_t)15;
    tj__pool *p = *pool;
    if (p && p->cap - p->used >= n) {
        void *r = p->data + p->used;
        p->used += n;
        memset(r, 0, n);
        return r;
    }
    size_t cap = n > CHUNK / 2 ? n : CHUNK;
    tj__pool *q = malloc(sizeof *q + cap);
    if (!q) return NULL;
    q->cap = cap, q->used = n;
    if (p && cap == n) { /* a block of its own: keep filling the current chunk */
        q->next = p->next, p->next = q;
    } else {
        q->next = p, *pool = q;
    }
    memset(q->data, 0, n);
    return q->data;
}

static void tj__pool_free(tj__pool *p)
{
    while (p) {
        tj__pool *n = p->next;
        free(p);
        p = n;
    }
}

/* ---- decoding context ------------------------------------------------------------------- */

typedef struct {
    const char *file;
    char *err;
    size_t errlen;
    ls_status st;
    tj__pool **pool;
} tj__ctx;

__attribute__((format(printf, 3, 4))) static void tj__fail(tj__ctx *c, const char *path,
                                                           const char *fmt, ...)
{
    if (c->st) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG, "%s: %s: %s", c->file, path, msg);
}

static void *tj__new(tj__ctx *c, size_t n)
{
    void *p = tj__alloc(c->pool, n ? n : 1);
    if (!p && !c->st)
        c->st = ls_fail(c->err, c->errlen, LS_ERR_NOMEM, "%s: out of memory", c->file);
    return p;
}

static const char *tj__dup(tj__ctx *c, const char *s)
{
    size_t n = strlen(s);
    char *d = tj__new(c, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* path of a child key, for messages */
static void tj__path(char *out, size_t cap, const char *parent, const char *key)
{
    snprintf(out, cap, "%s%s%s", parent, *parent ? "." : "", key);
}

static const cJSON *tj__get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int tj__bool(tj__ctx *c, const cJSON *o, const char *path, const char *key, int def)
{
    const cJSON *v = tj__get(o, key);
    if (!v) return def;
    if (!cJSON_IsBool(v)) {
        tj__fail(c, path, "\"%s\" must be true or false", key);
        return def;
    }
    return cJSON_IsTrue(v);
}

static int tj__is_int(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

static int tj__int(tj__ctx *c, const cJSON *o, const char *path, const char *key, int def)
{
    const cJSON *v = tj__get(o, key);
    if (!v) return def;
    if (!tj__is_int(v, -2147483648.0, 2147483647.0)) {
        tj__fail(c, path, "\"%s\" must be an integer", key);
        return def;
    }
    return (int)v->valuedouble;
}

/* string value; NULL (no error) when absent or null, unless required */
static const char *tj__str(tj__ctx *c, const cJSON *o, const char *path, const char *key,
                           int required)
{
    const cJSON *v = tj__get(o, key);
    if (!v) {
        if (required) tj__fail(c, path, "missing string \"%s\"", key);
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        tj__fail(c, path, "\"%s\" must be a string", key);
        return NULL;
    }
    return tj__dup(c, v->valuestring);
}

static const cJSON *tj__array(tj__ctx *c, const cJSON *o, const char *path, const char *key)
{
    const cJSON *v = tj__get(o, key);
    if (!v || !cJSON_IsArray(v)) {
        tj__fail(c, path, "\"%s\" must be a list", key);
        return NULL;
    }
    return v;
}

static const char *tj__type(tj__ctx *c, const cJSON *o, const char *path)
{
    if (!cJSON_IsObject(o)) {
        tj__fail(c, path, "must be an object");
        return NULL;
    }
    const cJSON *t = tj__get(o, "type");
    if (!cJSON_IsString(t)) {
        tj__fail(c, path, "missing \"type\"");
        return NULL;
    }
    return t->valuestring;
}

static void tj__pattern(tj__ctx *c, const cJSON *o, const char *path, tj_pattern *out)
{
    char p[256];
    tj__path(p, sizeof p, path, "pattern");
    const cJSON *v = tj__get(o, "pattern");
    const cJSON *s = v ? tj__get(v, "String") : NULL, *r = v ? tj__get(v, "Regex") : NULL;
    if (s && cJSON_IsString(s)) {
        out->kind = TJ_PAT_STRING;
        out->text = tj__dup(c, s->valuestring);
    } else if (r && cJSON_IsString(r)) {
        out->kind = TJ_PAT_REGEX;
        out->text = tj__dup(c, r->valuestring);
    } else {
        tj__fail(c, p, "must be {\"String\": ...} or {\"Regex\": ...}");
    }
}

static tj_split_behavior tj__behavior(tj__ctx *c, const cJSON *o, const char *path)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    const cJSON *v = tj__get(o, "behavior");
    if (!v) return TJ_SPLIT_ISOLATED;
    for (int i = 0; i < 5 && cJSON_IsString(v); i++)
        if (!strcmp(v->valuestring, names[i])) return (tj_split_behavior)i;
    tj__fail(c, path,
             "\"behavior\" must be one of Removed, Isolated, MergedWithPrevious, "
             "MergedWithNext, Contiguous");
    return TJ_SPLIT_ISOLATED;
}

/* Metaspace: "prepend_scheme" (new files) or "add_prefix_space" (old files) */
static tj_prepend_scheme tj__prepend(tj__ctx *c, const cJSON *o, const char *path)
{
    const cJSON *v = tj__get(o, "prepend_scheme");
    if (v) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "always")) return TJ_PREPEND_ALWAYS;
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "never")) return TJ_PREPEND_NEVER;
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "first")) return TJ_PREPEND_FIRST;
        tj__fail(c, path, "\"prepend_scheme\" must be \"always\", \"never\" or \"first\"");
        return TJ_PREPEND_ALWAYS;
    }
    return tj__bool(c, o, path, "add_prefix_space", 1) ? TJ_PREPEND_ALWAYS : TJ_PREPEND_NEVER;
}

/* exactly one UTF-8 character; def when absent (NULL: required) */
static const char *tj__char(tj__ctx *c, const cJSON *o, const char *path, const char *key,
                            const char *def)
{
    const char *r = tj__str(c, o, path, key, def == NULL);
    if (!r) return c->st ? NULL : def;
    size_t n = strlen(r);
    unsigned char b = (unsigned char)r[0];
    size_t want = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    if (n == 0 || n != want) tj__fail(c, path, "\"%s\" must be one character", key);
    return r;
}

static const char *tj__replacement(tj__ctx *c, const cJSON *o, const char *path)
{
    return tj__char(c, o, path, "replacement", "\xe2\x96\x81"); /* U+2581 */
}

/* ---- normalizers ------------------------------------------------------------------------ */

static int tj__b64(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

static void tj__base64(tj__ctx *c, const char *s, const char *path, const uint8_t **out,
                       size_t *outlen)
{
    size_t n = strlen(s);
    uint8_t *d = tj__new(c, n / 4 * 3 + 3);
    if (!d) return;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = tj__b64((unsigned char)s[i]);
        if (v < 0) {
            tj__fail(c, path, "\"precompiled_charsmap\" is not base64 (byte %zu)", i);
            return;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = d;
    *outlen = k;
}

static void tj__normalizer(tj__ctx *c, const cJSON *o, const char *path, tj_normalizer *n)
{
    const char *t = tj__type(c, o, path);
    if (!t) return;
    if (!strcmp(t, "BertNormalizer")) {
        n->type = TJ_NORM_BERT;
        n->clean_text = tj__bool(c, o, path, "clean_text", 1);
        n->handle_chinese_chars = tj__bool(c, o, path, "handle_chinese_chars", 1);
        n->strip_accents =
            tj__get(o, "strip_accents") ? tj__bool(c, o, path, "strip_accents", 0) : -1;
        n->lowercase = tj__bool(c, o, path, "lowercase", 1);
    } else if (!strcmp(t, "NFC")) {
        n->type = TJ_NORM_NFC;
    } else if (!strcmp(t, "NFD")) {
        n->type = TJ_NORM_NFD;
    } else if (!strcmp(t, "NFKC")) {
        n->type = TJ_NORM_NFKC;
    } else if (!strcmp(t, "NFKD")) {
        n->type = TJ_NORM_NFKD;
    } else if (!strcmp(t, "Lowercase")) {
        n->type = TJ_NORM_LOWERCASE;
    } else if (!strcmp(t, "StripAccents")) {
        n->type = TJ_NORM_STRIP_ACCENTS;
    } else if (!strcmp(t, "Replace")) {
        n->type = TJ_NORM_REPLACE;
        tj__pattern(c, o, path, &n->pattern);
        n->content = tj__str(c, o, path, "content", 1);
    } else if (!strcmp(t, "Prepend")) {
        n->type = TJ_NORM_PREPEND;
        n->content = tj__str(c, o, path, "prepend", 1);
    } else if (!strcmp(t, "Strip")) {
        n->type = TJ_NORM_STRIP;
        n->strip_left = tj__bool(c, o, path, "strip_left", 1);
        n->strip_right = tj__bool(c, o, path, "strip_right", 1);
    } else if (!strcmp(t, "Precompiled")) {
        n->type = TJ_NORM_PRECOMPILED;
        const char *b64 = tj__str(c, o, path, "precompiled_charsmap", 0);
        if (b64) tj__base64(c, b64, path, &n->charsmap, &n->charsmap_len);
    } else if (!strcmp(t, "Nmt")) {
        n->type = TJ_NORM_NMT;
    } else if (!strcmp(t, "ByteLevel")) {
        n->type = TJ_NORM_BYTE_LEVEL;
    } else if (!strcmp(t, "Sequence")) {
        n->type = TJ_NORM_SEQUENCE;
        const cJSON *a = tj__array(c, o, path, "normalizers");
        if (!a) return;
        n->n_items = cJSON_GetArraySize(a);
        n->items = tj__new(c, sizeof *n->items * (size_t)n->n_items);
        if (!n->items) return;
        for (int i = 0; i < n->n_items && !c->st; i++) {
            char p[256];
            snprintf(p, sizeof p, "%s.normalizers[%d]", path, i);
            tj__normalizer(c, cJSON_GetArrayItem(a, i), p, &n->items[i]);
        }
    } else {
        c->st = ls_fail(c->err, c->errlen, LS_ERR_UNSUPPORTED, "%s: %s: normalizer \"%s\"", c->file,
                        path, t);
    }
}

/* ---- pre-tokenizers --------------------------------------------------------------------- */

static void tj__pretok(tj__ctx *c, const cJSON *o, const char *path, tj_pretok *p)
{
    const char *t = tj__type(c, o, path);
    if (!t) return;
    if (!strcmp(t, "BertPreTokenizer")) {
        p->type = TJ_PRE_BERT;
    } else if (!strcmp(t, "ByteLevel")) {
        p->type = TJ_PRE_BYTE_LEVEL;
        p->add_prefix_space = tj__bool(c, o, path, "add_prefix_space", 1);
        p->use_regex = tj__bool(c, o, path, "use_regex", 1);
    } else if (!strcmp(t, "Whitespace")) {
        p->type = TJ_PRE_WHITESPACE;
    } else if (!strcmp(t, "WhitespaceSplit")) {
        p->type = TJ_PRE_WHITESPACE_SPLIT;
    } else if (!strcmp(t, "Metaspace")) {
        p->type = TJ_PRE_METASPACE;
        p->replacement = tj__replacement(c, o, path);
        p->prepend_scheme = tj__prepend(c, o, path);
        p->split = tj__bool(c, o, path, "split", 1);
    } else if (!strcmp(t, "Split")) {
        p->type = TJ_PRE_SPLIT;
        tj__pattern(c, o, path, &p->pattern);
        p->behavior = tj__behavior(c, o, path);
        p->invert = tj__bool(c, o, path, "invert", 0);
    } else if (!strcmp(t, "Punctuation")) {
        p->type = TJ_PRE_PUNCTUATION;
        p->behavior = tj__behavior(c, o, path);
    } else if (!strcmp(t, "Digits")) {
        p->type = TJ_PRE_DIGITS;
        p->individual_digits = tj__bool(c, o, path, "individual_digits", 0);
    } else if (!strcmp(t, "UnicodeScripts")) {
        p->type = TJ_PRE_UNICODE_SCRIPTS;
    } else if (!strcmp(t, "CharDelimiterSplit")) {
        p->type = TJ_PRE_CHAR_DELIMITER;
        p->delimiter = tj__char(c, o, path, "delimiter", NULL);
    } else if (!strcmp(t, "FixedLength")) {
        p->type = TJ_PRE_FIXED_LENGTH;
        p->length = tj__int(c, o, path, "length", 5);
        if (!c->st && p->length < 1) tj__fail(c, path, "\"length\" must be at least 1");
    } else if (!strcmp(t, "Sequence")) {
        p->type = TJ_PRE_SEQUENCE;
        const cJSON *a = tj__array(c, o, path, "pretokenizers");
        if (!a) return;
        p->n_items = cJSON_GetArraySize(a);
        p->items = tj__new(c, sizeof *p->items * (size_t)p->n_items);
        if (!p->items) return;
        for (int i = 0; i < p->n_items && !c->st; i++) {
            char q[256];
            snprintf(q, sizeof q, "%s.pretokenizers[%d]", path, i);
            tj__pretok(c, cJSON_GetArrayItem(a, i), q, &p->items[i]);
        }
    } else {
        c->st = ls_fail(c->err, c->errlen, LS_ERR_UNSUPPORTED, "%s: %s: pre-tokenizer \"%s\"",
                        c->file, path, t);
    }
}

/* ---- models ----------------------------------------------------------------------------- */

/* {"token": id, ...} */
static void tj__vocab_map(tj__ctx *c, const cJSON *v, tj_model *m)
{
    if (!cJSON_IsObject(v)) {
        tj__fail(c, "model", "\"vocab\" must be an object of token: id");
        return;
    }
    int n = cJSON_GetArraySize(v);
    m->vocab = tj__new(c, sizeof *m->vocab * (size_t)n);
    m->ids = tj__new(c, sizeof *m->ids * (size_t)n);
    if (!m->vocab || !m->ids) return;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, v)
    {
        if (!tj__is_int(e, 0, TJ_MAX_ID)) {
            char p[128];
            snprintf(p, sizeof p, "model.vocab entry %d (\"%.40s\")", i, e->string);
            tj__fail(c, p, "id must be an integer in 0..%d", TJ_MAX_ID);
            return;
        }
        m->vocab[i] = tj__dup(c, e->string);
        m->ids[i] = (int32_t)e->valuedouble;
        if (!m->vocab[i]) return;
        i++;
    }
    m->n_vocab = n;
}

/* Hugging Face reads tokenizer.json with serde_json, whose default float parser is not
 * correctly rounded: it takes the decimal digits as an integer and divides (or multiplies)
 * once by a power of ten, so a score can land 1 ULP from strtod's. Unigram scores decide
 * Viterbi ties, so we rebuild the digits the file holds (the shortest representation, which
 * is what serde_json writes) and round them the way serde_json does. */
static double tj__serde_f64(double v)
{
    if (v == 0 || v != v || v - v != 0) return v;
    char buf[40];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (p > 17) return v;
    /* buf is [-]d.ddde[+-]xx: digits → integer significand, exponent adjusted */
    const char *q = buf;
    int neg = *q == '-';
    if (neg) q++;
    uint64_t sig = 0;
    int ndig = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') sig = sig * 10 + (uint64_t)(*q - '0'), ndig++;
    int e10 = atoi(q + 1) - (ndig - 1);
    double f = (double)sig;
    while (e10 < -308) { /* serde_json steps huge negative exponents down by 1e308 */
        f /= 1e308;
        e10 += 308;
    }
    if (e10 > 308) return v;
    char t[16]; /* the correctly rounded power of ten, as in serde_json's POW10 table */
    snprintf(t, sizeof t, "1e%d", e10 < 0 ? -e10 : e10);
    double pw = strtod(t, NULL);
    if (e10 >= 0)
        f *= pw;
    else
        f /= pw;
    return neg ? -f : f;
}

/* [["piece", score], ...] */
static void tj__vocab_list(tj__ctx *c, const cJSON *v, tj_model *m)
{
    int n = cJSON_GetArraySize(v);
    m->vocab = tj__new(c, sizeof *m->vocab * (size_t)n);
    m->scores = tj__new(c, sizeof *m->scores * (size_t)n);
    if (!m->vocab || !m->scores) return;
    const cJSON *e = v->child;
    for (int i = 0; i < n; i++, e = e->next) {
        const cJSON *s = cJSON_GetArrayItem(e, 0), *sc = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(s) ||
            !cJSON_IsNumber(sc)) {
            char p[64];
            snprintf(p, sizeof p, "model.vocab[%d]", i);
            tj__fail(c, p, "must be [piece, score]");
            return;
        }
        m->vocab[i] = tj__dup(c, s->valuestring);
        m->scores[i] = tj__serde_f64(sc->valuedouble);
        if (!m->vocab[i]) return;
    }
    m->n_vocab = n;
}

/* ["a b", ...] (old) or [["a", "b"], ...] (new) */
static void tj__merges(tj__ctx *c, const cJSON *a, tj_model *m)
{
    int n = cJSON_GetArraySize(a);
    m->merges = tj__new(c, sizeof *m->merges * 2 * (size_t)n);
    if (!m->merges) return;
    const cJSON *e = a->child;
    for (int i = 0; i < n; i++, e = e->next) {
        char p[64];
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                snprintf(p, sizeof p, "model.merges[%d]", i);
                tj__fail(c, p, "must be two tokens separated by one space");
                return;
            }
            size_t la = (size_t)(sp - s);
            char *l = tj__new(c, la + 1);
            if (!l) return;
            memcpy(l, s, la);
            m->merges[2 * i] = l;
            m->merges[2 * i + 1] = tj__dup(c, sp + 1);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            m->merges[2 * i] = tj__dup(c, cJSON_GetArrayItem(e, 0)->valuestring);
            m->merges[2 * i + 1] = tj__dup(c, cJSON_GetArrayItem(e, 1)->valuestring);
        } else {
            snprintf(p, sizeof p, "model.merges[%d]", i);
            tj__fail(c, p, "must be \"a b\" or [\"a\", \"b\"]");
            return;
        }
        if (c->st) return;
    }
    m->n_merges = n;
}

static void tj__model(tj__ctx *c, const cJSON *o, tj_model *m)
{
    if (!cJSON_IsObject(o)) {
        tj__fail(c, "model", "must be an object");
        return;
    }
    const cJSON *tv = tj__get(o, "type"), *vocab = tj__get(o, "vocab");
    const char *t = cJSON_IsString(tv) ? tv->valuestring : NULL;
    if (!t) { /* very old files have untagged models */
        if (tj__get(o, "merges"))
            t = "BPE";
        else if (cJSON_IsArray(vocab))
            t = "Unigram";
        else if (tj__get(o, "max_input_chars_per_word"))
            t = "WordPiece";
        else
            t = "?";
    }
    if (!vocab) {
        tj__fail(c, "model", "missing \"vocab\"");
        return;
    }
    if (!strcmp(t, "WordPiece")) {
        m->type = TJ_MODEL_WORDPIECE;
        tj__vocab_map(c, vocab, m);
        m->unk_token = tj__str(c, o, "model", "unk_token", 0);
        if (!m->unk_token && !c->st) m->unk_token = "[UNK]";
        m->continuing_subword_prefix = tj__str(c, o, "model", "continuing_subword_prefix", 0);
        if (!m->continuing_subword_prefix && !c->st) m->continuing_subword_prefix = "##";
        m->max_input_chars_per_word = tj__int(c, o, "model", "max_input_chars_per_word", 100);
    } else if (!strcmp(t, "BPE")) {
        m->type = TJ_MODEL_BPE;
        tj__vocab_map(c, vocab, m);
        const cJSON *mg = tj__array(c, o, "model", "merges");
        if (mg) tj__merges(c, mg, m);
        m->unk_token = tj__str(c, o, "model", "unk_token", 0);
        m->continuing_subword_prefix = tj__str(c, o, "model", "continuing_subword_prefix", 0);
        m->end_of_word_suffix = tj__str(c, o, "model", "end_of_word_suffix", 0);
        m->fuse_unk = tj__bool(c, o, "model", "fuse_unk", 0);
        m->byte_fallback = tj__bool(c, o, "model", "byte_fallback", 0);
        m->ignore_merges = tj__bool(c, o, "model", "ignore_merges", 0);
        /* null and 0.0 are both "no dropout" (HF then never skips a merge) */
        const cJSON *dr = tj__get(o, "dropout");
        if (dr && (!cJSON_IsNumber(dr) || dr->valuedouble < 0 || dr->valuedouble > 1))
            tj__fail(c, "model", "\"dropout\" must be null or a number in [0, 1]");
        m->has_dropout = dr && cJSON_IsNumber(dr) && dr->valuedouble > 0;
    } else if (!strcmp(t, "WordLevel")) {
        m->type = TJ_MODEL_WORDLEVEL;
        tj__vocab_map(c, vocab, m);
        m->unk_token = tj__str(c, o, "model", "unk_token", 0);
        if (!m->unk_token && !c->st) m->unk_token = "<unk>";
    } else if (!strcmp(t, "Unigram")) {
        m->type = TJ_MODEL_UNIGRAM;
        if (!cJSON_IsArray(vocab)) {
            tj__fail(c, "model", "\"vocab\" must be a list of [piece, score]");
            return;
        }
        tj__vocab_list(c, vocab, m);
        m->unk_id = tj__int(c, o, "model", "unk_id", -1);
        m->byte_fallback = tj__bool(c, o, "model", "byte_fallback", 0);
        if (!c->st && (m->unk_id < -1 || m->unk_id >= m->n_vocab))
            tj__fail(c, "model", "\"unk_id\" %d is outside the vocabulary (%d pieces)", m->unk_id,
                     m->n_vocab);
    } else {
        c->st = ls_fail(c->err, c->errlen, LS_ERR_UNSUPPORTED, "%s: model.type: model \"%s\"",
                        c->file, t);
    }
}

/* ---- post-processors -------------------------------------------------------------------- */

/* ["[SEP]", 102] */
static void tj__tok_pair(tj__ctx *c, const cJSON *o, const char *path, const char *key,
                         const char **s, int32_t *id)
{
    const cJSON *v = tj__get(o, key);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 ||
        !cJSON_IsString(cJSON_GetArrayItem(v, 0)) ||
        !tj__is_int(cJSON_GetArrayItem(v, 1), 0, TJ_MAX_ID)) {
        tj__fail(c, path, "\"%s\" must be [token, id] with an id in 0..%d", key, TJ_MAX_ID);
        return;
    }
    *s = tj__dup(c, cJSON_GetArrayItem(v, 0)->valuestring);
    *id = (int32_t)cJSON_GetArrayItem(v, 1)->valuedouble;
}

static void tj__template(tj__ctx *c, const cJSON *o, const char *path, const char *key,
                         tj_template_piece **out, int *n)
{
    const cJSON *a = tj__array(c, o, path, key);
    if (!a) return;
    *n = cJSON_GetArraySize(a);
    *out = tj__new(c, sizeof **out * (size_t)*n);
    if (!*out) return;
    for (int i = 0; i < *n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        const cJSON *sp = tj__get(e, "SpecialToken"), *sq = tj__get(e, "Sequence");
        const cJSON *body = sp ? sp : sq;
        char p[256];
        snprintf(p, sizeof p, "%s.%s[%d]", path, key, i);
        if (!body || !cJSON_IsObject(body)) {
            tj__fail(c, p, "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
            return;
        }
        (*out)[i].is_special = sp != NULL;
        (*out)[i].id = tj__str(c, body, p, "id", 1);
        (*out)[i].type_id = tj__int(c, body, p, "type_id", 0);
        if (c->st) return;
        if (!sp && strcmp((*out)[i].id, "A") && strcmp((*out)[i].id, "B")) {
            tj__fail(c, p, "sequence id must be \"A\" or \"B\"");
            return;
        }
    }
}

static void tj__specials(tj__ctx *c, const cJSON *o, const char *path, tj_post *p)
{
    const cJSON *m = tj__get(o, "special_tokens");
    if (!m) return;
    if (!cJSON_IsObject(m)) {
        tj__fail(c, path, "\"special_tokens\" must be an object");
        return;
    }
    p->n_specials = cJSON_GetArraySize(m);
    p->specials = tj__new(c, sizeof *p->specials * (size_t)p->n_specials);
    if (!p->specials) return;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, m)
    {
        char q[256];
        snprintf(q, sizeof q, "%s.special_tokens.%s", path, e->string);
        tj_special *s = &p->specials[i++];
        s->key = tj__dup(c, e->string);
        const cJSON *ids = tj__array(c, e, q, "ids"), *toks = tj__array(c, e, q, "tokens");
        if (c->st) return;
        s->n = cJSON_GetArraySize(ids);
        if (cJSON_GetArraySize(toks) != s->n) {
            tj__fail(c, q, "\"ids\" and \"tokens\" differ in length");
            return;
        }
        s->ids = tj__new(c, sizeof *s->ids * (size_t)s->n);
        s->tokens = tj__new(c, sizeof *s->tokens * (size_t)s->n);
        if (!s->ids || !s->tokens) return;
        for (int k = 0; k < s->n; k++) {
            const cJSON *id = cJSON_GetArrayItem(ids, k), *tk = cJSON_GetArrayItem(toks, k);
            if (!tj__is_int(id, 0, TJ_MAX_ID) || !cJSON_IsString(tk)) {
                tj__fail(c, q, "entry %d must be an integer id in 0..%d and a string token", k,
                         TJ_MAX_ID);
                return;
            }
            s->ids[k] = (int32_t)id->valuedouble;
            s->tokens[k] = tj__dup(c, tk->valuestring);
        }
    }
}

static void tj__post(tj__ctx *c, const cJSON *o, const char *path, tj_post *p)
{
    const char *t = tj__type(c, o, path);
    if (!t) return;
    if (!strcmp(t, "BertProcessing")) {
        p->type = TJ_POST_BERT;
        tj__tok_pair(c, o, path, "sep", &p->sep, &p->sep_id);
        tj__tok_pair(c, o, path, "cls", &p->cls, &p->cls_id);
    } else if (!strcmp(t, "RobertaProcessing")) {
        p->type = TJ_POST_ROBERTA;
        tj__tok_pair(c, o, path, "sep", &p->sep, &p->sep_id);
        tj__tok_pair(c, o, path, "cls", &p->cls, &p->cls_id);
        p->trim_offsets = tj__bool(c, o, path, "trim_offsets", 1);
        p->add_prefix_space = tj__bool(c, o, path, "add_prefix_space", 1);
    } else if (!strcmp(t, "TemplateProcessing")) {
        p->type = TJ_POST_TEMPLATE;
        tj__template(c, o, path, "single", &p->single, &p->n_single);
        tj__template(c, o, path, "pair", &p->pair, &p->n_pair);
        tj__specials(c, o, path, p);
    } else if (!strcmp(t, "ByteLevel")) {
        p->type = TJ_POST_BYTE_LEVEL;
        p->trim_offsets = tj__bool(c, o, path, "trim_offsets", 1);
        p->add_prefix_space = tj__bool(c, o, path, "add_prefix_space", 1);
    } else if (!strcmp(t, "Sequence")) {
        p->type = TJ_POST_SEQUENCE;
        const cJSON *a = tj__array(c, o, path, "processors");
        if (!a) return;
        p->n_items = cJSON_GetArraySize(a);
        p->items = tj__new(c, sizeof *p->items * (size_t)p->n_items);
        if (!p->items) return;
        for (int i = 0; i < p->n_items && !c->st; i++) {
            char q[256];
            snprintf(q, sizeof q, "%s.processors[%d]", path, i);
            tj__post(c, cJSON_GetArrayItem(a, i), q, &p->items[i]);
        }
    } else {
        c->st = ls_fail(c->err, c->errlen, LS_ERR_UNSUPPORTED, "%s: %s: post-processor \"%s\"",
                        c->file, path, t);
    }
}

/* ---- decoders --------------------------------------------------------------------------- */

static void tj__decoder(tj__ctx *c, const cJSON *o, const char *path, tj_decoder *d)
{
    const char *t = tj__type(c, o, path);
    if (!t) return;
    if (!strcmp(t, "WordPiece")) {
        d->type = TJ_DEC_WORDPIECE;
        d->prefix = tj__str(c, o, path, "prefix", 0);
        if (!d->prefix && !c->st) d->prefix = "##";
        d->cleanup = tj__bool(c, o, path, "cleanup", 1);
    } else if (!strcmp(t, "ByteLevel")) {
        d->type = TJ_DEC_BYTE_LEVEL;
    } else if (!strcmp(t, "Metaspace")) {
        d->type = TJ_DEC_METASPACE;
        d->replacement = tj__replacement(c, o, path);
        d->prepend_scheme = tj__prepend(c, o, path);
    } else if (!strcmp(t, "Replace")) {
        d->type = TJ_DEC_REPLACE;
        tj__pattern(c, o, path, &d->pattern);
        d->content = tj__str(c, o, path, "content", 1);
    } else if (!strcmp(t, "ByteFallback")) {
        d->type = TJ_DEC_BYTE_FALLBACK;
    } else if (!strcmp(t, "Fuse")) {
        d->type = TJ_DEC_FUSE;
    } else if (!strcmp(t, "Strip")) {
        d->type = TJ_DEC_STRIP;
        d->content = tj__str(c, o, path, "content", 1);
        d->start = tj__int(c, o, path, "start", 0);
        d->stop = tj__int(c, o, path, "stop", 0);
        if (!c->st && (d->start < 0 || d->stop < 0))
            tj__fail(c, path, "\"start\" and \"stop\" must not be negative");
    } else if (!strcmp(t, "CTC")) {
        d->type = TJ_DEC_CTC;
        d->pad_token = tj__str(c, o, path, "pad_token", 0);
        if (!d->pad_token && !c->st) d->pad_token = "<pad>";
        d->word_delimiter = tj__str(c, o, path, "word_delimiter_token", 0);
        if (!d->word_delimiter && !c->st) d->word_delimiter = "|";
        d->cleanup = tj__bool(c, o, path, "cleanup", 1);
    } else if (!strcmp(t, "BPEDecoder")) {
        d->type = TJ_DEC_BPE;
        d->suffix = tj__str(c, o, path, "suffix", 0);
        if (!d->suffix && !c->st) d->suffix = "</w>";
    } else if (!strcmp(t, "Sequence")) {
        d->type = TJ_DEC_SEQUENCE;
        const cJSON *a = tj__array(c, o, path, "decoders");
        if (!a) return;
        d->n_items = cJSON_GetArraySize(a);
        d->items = tj__new(c, sizeof *d->items * (size_t)d->n_items);
        if (!d->items) return;
        for (int i = 0; i < d->n_items && !c->st; i++) {
            char q[256];
            snprintf(q, sizeof q, "%s.decoders[%d]", path, i);
            tj__decoder(c, cJSON_GetArrayItem(a, i), q, &d->items[i]);
        }
    } else {
        c->st = ls_fail(c->err, c->errlen, LS_ERR_UNSUPPORTED, "%s: %s: decoder \"%s\"", c->file,
                        path, t);
    }
}

/* ---- top level -------------------------------------------------------------------------- */

static void tj__added(tj__ctx *c, const cJSON *a, tj_tokenizer *t)
{
    if (!cJSON_IsArray(a)) {
        tj__fail(c, "added_tokens", "must be a list");
        return;
    }
    t->n_added = cJSON_GetArraySize(a);
    t->added = tj__new(c, sizeof *t->added * (size_t)t->n_added);
    if (!t->added) return;
    const cJSON *e = a->child;
    for (int i = 0; i < t->n_added && !c->st; i++, e = e->next) {
        char p[64];
        snprintf(p, sizeof p, "added_tokens[%d]", i);
        tj_added_token *k = &t->added[i];
        const cJSON *id = tj__get(e, "id");
        if (!id || !tj__is_int(id, 0, TJ_MAX_ID)) {
            tj__fail(c, p, "\"id\" must be an integer in 0..%d", TJ_MAX_ID);
            return;
        }
        k->id = (int32_t)id->valuedouble;
        k->content = tj__str(c, e, p, "content", 1);
        k->special = tj__bool(c, e, p, "special", 0);
        k->single_word = tj__bool(c, e, p, "single_word", 0);
        k->lstrip = tj__bool(c, e, p, "lstrip", 0);
        k->rstrip = tj__bool(c, e, p, "rstrip", 0);
        k->normalized = tj__bool(c, e, p, "normalized", !k->special);
    }
}

static void tj__truncation(tj__ctx *c, const cJSON *o, tj_tokenizer *t)
{
    if (!o) return;
    t->truncation_max_length = tj__int(c, o, "truncation", "max_length", 0);
    const cJSON *d = tj__get(o, "direction");
    t->truncation_direction =
        cJSON_IsString(d) && !strcmp(d->valuestring, "Left") ? TJ_TRUNC_LEFT : TJ_TRUNC_RIGHT;
}

#define TJ__PART(field, T, fn, key)                                                                \
    do {                                                                                           \
        const cJSON *v_ = tj__get(root, key);                                                      \
        if (v_ && !c.st) {                                                                         \
            out->field = tj__new(&c, sizeof(T));                                                   \
            if (out->field) fn(&c, v_, key, out->field);                                           \
        }                                                                                          \
    } while (0)

/* A sparse vocabulary (ids far over the number of entries) would size the id tables by its
 * largest id: refused. */
static void tj__ids_spread(tj__ctx *c, const tj_tokenizer *t)
{
    const tj_model *m = &t->model;
    int32_t max_id = -1;
    char where[128] = "";
    if (m->ids && m->type != TJ_MODEL_UNIGRAM)
        for (int i = 0; i < m->n_vocab; i++)
            if (m->ids[i] > max_id) {
                max_id = m->ids[i];
                snprintf(where, sizeof where, "model.vocab \"%.40s\"", m->vocab[i]);
            }
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) {
            max_id = t->added[i].id;
            snprintf(where, sizeof where, "added_tokens[%d]", i);
        }
    long long entries = (long long)m->n_vocab + t->n_added;
    if (max_id >= 0 && max_id >= entries * TJ_ID_SPREAD + TJ_ID_SLACK)
        tj__fail(c, where,
                 "id %d is far over the %lld entries (ids must stay under %d x entries + %d)",
                 max_id, entries, TJ_ID_SPREAD, TJ_ID_SLACK);
}

ls_status tj_tokenizer_parse(const char *json, size_t len, const char *file, tj_tokenizer *out,
                             char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not valid JSON", file);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not a JSON object", file);
    }
    tj__ctx c = {file, err, errlen, LS_OK, &out->pool};
    const cJSON *model = tj__get(root, "model");
    if (!model)
        tj__fail(&c, "model", "missing");
    else
        tj__model(&c, model, &out->model);
    TJ__PART(normalizer, tj_normalizer, tj__normalizer, "normalizer");
    TJ__PART(pre_tokenizer, tj_pretok, tj__pretok, "pre_tokenizer");
    TJ__PART(post_processor, tj_post, tj__post, "post_processor");
    TJ__PART(decoder, tj_decoder, tj__decoder, "decoder");
    const cJSON *added = tj__get(root, "added_tokens");
    if (added && !c.st) tj__added(&c, added, out);
    if (!c.st) tj__truncation(&c, tj__get(root, "truncation"), out);
    if (!c.st) tj__ids_spread(&c, out);
    cJSON_Delete(root);
    if (c.st) tj_tokenizer_free(out);
    return c.st;
}

ls_status tj_bytes_config_parse(const char *json, size_t len, const char *file, tj_tokenizer *out,
                                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not valid JSON", file);
    tj__ctx c = {file, err, errlen, LS_OK, &out->pool};
    const char *t = tj__type(&c, root, "(top level)");
    if (t && strcmp(t, "bytes")) tj__fail(&c, "type", "is \"%s\", expected \"bytes\"", t);
    int off = tj__int(&c, root, "(top level)", "offset", 0);
    if (!c.st && (off < 0 || off > 1 << 20)) tj__fail(&c, "offset", "must be in 0..1048576");
    out->model.type = TJ_MODEL_BYTES;
    out->model.byte_offset = off;
    out->model.unk_id = -1;
    cJSON_Delete(root);
    if (c.st) tj_tokenizer_free(out);
    return c.st;
}

void tj_tokenizer_free(tj_tokenizer *t)
{
    if (!t) return;
    tj__pool_free(t->pool);
    memset(t, 0, sizeof *t);
}
