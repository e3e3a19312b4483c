/* Tokenizer parity with Hugging Face `tokenizers`: every line of the fixture corpus through
 * every fixture tokenizer (tests/fixtures/tokenizers, made by tools/make_tokenizer_fixtures.py)
 * must give the same ids, tokens, type ids, special mask, sequence ids, character and byte
 * offsets and both decodes. Also: invalid UTF-8 is rejected at the right byte, load errors
 * name the file, and the API's small promises hold. */
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../tokenizer/tokenizer.h"
#include "testutil.h"

/* cJSON strings end at NUL: expected strings holding U+0000 are read with U+10FFFF in its
 * place (the corpus has no U+10FFFF), and our strings are compared the same way */
static void nul_escape(char *line)
{
    size_t n = strlen(line);
    for (size_t i = 0; i + 6 <= n; i++) {
        if (line[i] != '\\') continue;
        if (!strncmp(line + i, "\\u0000", 6)) {
            memmove(line + i + 12, line + i + 6, n - i - 6 + 1);
            memcpy(line + i, "\\uDBFF\\uDFFF", 12);
            n += 6;
            i += 11;
        } else {
            i++; /* skip the escaped character */
        }
    }
}

/* s with every NUL byte replaced by U+10FFFF (malloc'd) */
static char *denul(const char *s, size_t n, size_t *out)
{
    char *d = malloc(4 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i])
            d[k++] = s[i];
        else
            memcpy(d + k, "\xf4\x8f\xbf\xbf", 4), k += 4;
    }
    d[k] = 0;
    *out = k;
    return d;
}

/* the lines of a .jsonl file, parsed */
typedef struct {
    cJSON **v;
    int n;
} jsonl;

static int jsonl_read(const char *path, jsonl *out)
{
    out->v = NULL, out->n = 0;
    char *b = slurp(path, NULL);
    if (!b) return -1;
    int cap = 0;
    for (char *p = b; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        if (*p) {
            char *line = malloc(strlen(p) * 2 + 1);
            strcpy(line, p);
            nul_escape(line);
            if (out->n == cap) {
                cap = cap ? cap * 2 : 256;
                out->v = realloc(out->v, (size_t)cap * sizeof *out->v);
            }
            out->v[out->n++] = cJSON_Parse(line);
            free(line);
        }
        if (!e) break;
        p = e + 1;
    }
    free(b);
    return 0;
}

static void jsonl_free(jsonl *j)
{
    for (int i = 0; i < j->n; i++)
        cJSON_Delete(j->v[i]);
    free(j->v);
}

static unsigned char *unhex(const char *h, size_t *n)
{
    size_t l = strlen(h) / 2;
    unsigned char *b = malloc(l + 1);
    for (size_t i = 0; i < l; i++)
        sscanf(h + 2 * i, "%2hhx", &b[i]);
    b[l] = 0;
    *n = l;
    return b;
}

/* a corpus text: exact bytes from *_hex when the text holds NUL */
static char *corpus_text(const cJSON *rec, const char *key, const char *hexkey, size_t *n)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(rec, hexkey);
    if (cJSON_IsString(h)) return (char *)unhex(h->valuestring, n);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(rec, key);
    if (!cJSON_IsString(s)) return NULL;
    *n = strlen(s->valuestring);
    char *c = malloc(*n + 1);
    memcpy(c, s->valuestring, *n + 1);
    return c;
}

/* ---- digests, as the fixture generator computes them ------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t fnv_i32(uint64_t h, int32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fnv(h, b, 4);
}

/* ---- comparison ------------------------------------------------------------------------ */

typedef struct {
    int lines, mismatches, reported;
    char first[4096];
} tally;

static void report(tally *t, int id, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(tally *t, int id, const char *field, const char *fmt, ...)
{
    if (t->reported++ >= 8) return;
    size_t l = strlen(t->first);
    int k = snprintf(t->first + l, sizeof t->first - l, "\n  line %d %s: ", id, field);
    if (k < 0 || (size_t)k >= sizeof t->first - l) return;
    l += (size_t)k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->first + l, sizeof t->first - l, fmt, ap);
    va_end(ap);
}

/* compares an int array field; returns 1 on mismatch */
static int cmp_ints(tally *t, int id, const char *field, const cJSON *exp, size_t n,
                    int32_t (*get)(const tok_encoding *, size_t, int), const tok_encoding *e,
                    int width)
{
    int en = cJSON_GetArraySize(exp);
    if ((size_t)en != n) {
        report(t, id, field, "length %zu, expected %d", n, en);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(exp, (int)i);
        for (int k = 0; k < width; k++) {
            const cJSON *v = width == 1 ? x : cJSON_GetArrayItem(x, k);
            int32_t want = cJSON_IsNull(v) ? -1 : (int32_t)v->valuedouble;
            int32_t got = get(e, i, k);
            if (got != want) {
                report(t, id, field, "token %zu: got %d, expected %d", i, got, want);
                return 1;
            }
        }
    }
    return 0;
}

static int32_t g_id(const tok_encoding *e, size_t i, int k)
{
    (void)k;
    return e->ids[i];
}
static int32_t g_type(const tok_encoding *e, size_t i, int k)
{
    (void)k;
    return e->type_ids[i];
}
static int32_t g_spec(const tok_encoding *e, size_t i, int k)
{
    (void)k;
    return e->special_mask[i];
}
static int32_t g_seq(const tok_encoding *e, size_t i, int k)
{
    (void)k;
    return e->sequence_ids[i];
}
static int32_t g_off(const tok_encoding *e, size_t i, int k)
{
    return k ? e->offsets[i].char_end : e->offsets[i].char_start;
}
static int32_t g_boff(const tok_encoding *e, size_t i, int k)
{
    return k ? e->offsets[i].byte_end : e->offsets[i].byte_start;
}

static int cmp_str(tally *t, int id, const char *field, const cJSON *exp, const char *raw,
                   size_t rn)
{
    if (!cJSON_IsString(exp)) {
        report(t, id, field, "expected value missing");
        return 1;
    }
    size_t n;
    char *got = denul(raw, rn, &n);
    int same = strlen(exp->valuestring) == n && !memcmp(exp->valuestring, got, n);
    if (!same) {
        size_t k = 0;
        while (k < n && got[k] == exp->valuestring[k])
            k++;
        report(t, id, field, "differs at byte %zu: got \"%.*s\", expected \"%.60s\"", k,
               (int)(n - k < 60 ? n - k : 60), got + k,
               exp->valuestring + (k < strlen(exp->valuestring) ? k : strlen(exp->valuestring)));
    }
    free(got);
    return !same;
}

static int cmp_tokens(tally *t, int id, const cJSON *exp, const tok_encoding *e)
{
    if ((size_t)cJSON_GetArraySize(exp) != e->n) {
        report(t, id, "tokens", "length %zu, expected %d", e->n, cJSON_GetArraySize(exp));
        return 1;
    }
    for (size_t i = 0; i < e->n; i++) {
        size_t l, raw;
        const char *r = tok_encoding_token(e, i, &raw);
        char *s = denul(r, raw, &l);
        const cJSON *x = cJSON_GetArrayItem(exp, (int)i);
        int bad = !cJSON_IsString(x) || strlen(x->valuestring) != l || memcmp(x->valuestring, s, l);
        if (bad)
            report(t, id, "tokens", "token %zu: got \"%.*s\", expected \"%s\"", i, (int)l, s,
                   cJSON_IsString(x) ? x->valuestring : "?");
        free(s);
        if (bad) return 1;
    }
    return 0;
}

static int cmp_digest(tally *t, int id, const cJSON *dig, const char *field, uint64_t got)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dig, field);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)got);
    if (cJSON_IsString(d) && !strcmp(d->valuestring, hex)) return 0;
    report(t, id, field, "digest %s, expected %s", hex, cJSON_IsString(d) ? d->valuestring : "?");
    return 1;
}

/* a digest line: full ids, FNV-1a 64 of every other field */
static int cmp_digests(tally *t, int id, const cJSON *exp, const tok_encoding *e, const char *dec,
                       size_t dn, const char *dec2, size_t dn2)
{
    const cJSON *dig = cJSON_GetObjectItemCaseSensitive(exp, "digests");
    int bad = 0;
    uint64_t h;
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(h, e->ids[i]);
    bad |= cmp_digest(t, id, dig, "ids", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++) {
        size_t l;
        const char *s = tok_encoding_token(e, i, &l);
        h = fnv(h, s, l);
        h = fnv(h, "\xff", 1);
    }
    bad |= cmp_digest(t, id, dig, "tokens", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(h, e->type_ids[i]);
    bad |= cmp_digest(t, id, dig, "type_ids", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(h, e->special_mask[i]);
    bad |= cmp_digest(t, id, dig, "special_mask", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(h, e->sequence_ids[i]);
    bad |= cmp_digest(t, id, dig, "sequence_ids", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(fnv_i32(h, e->offsets[i].char_start), e->offsets[i].char_end);
    bad |= cmp_digest(t, id, dig, "offsets", h);
    h = FNV0;
    for (size_t i = 0; i < e->n; i++)
        h = fnv_i32(fnv_i32(h, e->offsets[i].byte_start), e->offsets[i].byte_end);
    bad |= cmp_digest(t, id, dig, "byte_offsets", h);
    bad |= cmp_digest(t, id, dig, "decode", fnv(FNV0, dec, dn));
    bad |= cmp_digest(t, id, dig, "decode_skip_special", fnv(FNV0, dec2, dn2));
    return bad;
}

/* the tokenizers under test: the keys of manifest.json's "tokenizers" (so that a new
 * fixture is tested without touching this file), or these when there is no manifest */
enum { MAX_TOKENIZERS = 64 };
static char TOKENIZERS[MAX_TOKENIZERS][64] = {"minilm",     "wordpiece_cased", "bpe_roberta",
                                              "unigram_sp", "unigram_t5",      "bpe_extras",
                                              "bpe_split"};
static int N_TOKENIZERS = 7;

/* adds the tokenizers of dir's manifest.json (dir "" or "components/") */
static int read_manifest_in(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/%smanifest.json", fixtures(), dir);
    char *b = slurp(path, NULL);
    cJSON *m = b ? cJSON_Parse(b) : NULL;
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(m, "tokenizers"), *e;
    int n = 0;
    cJSON_ArrayForEach(e, tk)
    {
        if (N_TOKENIZERS < MAX_TOKENIZERS &&
            strlen(dir) + strlen(e->string) < sizeof TOKENIZERS[0]) {
            char *d = TOKENIZERS[N_TOKENIZERS++];
            strcpy(d, dir), strcat(d, e->string);
            n++;
        }
    }
    cJSON_Delete(m);
    free(b);
    return n;
}

/* the main fixtures (the built-in list when their manifest is missing), then the
 * components/ ones, made by tools/make_tokenizer_component_fixtures.py */
static void read_manifest(void)
{
    int builtin = N_TOKENIZERS;
    N_TOKENIZERS = 0;
    if (!read_manifest_in("")) N_TOKENIZERS = builtin;
    read_manifest_in("components/");
}

static void run_tokenizer(const char *name, tally *t)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizers/%s", fixtures(), name);
    tok_tokenizer *tk;
    ls_status st = tok_load(path, &tk, err, sizeof err);
    ck_assert_msg(st == LS_OK, "%s: %s", name, err);
    jsonl corpus, exp;
    snprintf(path, sizeof path, "%s/tokenizers/corpus.jsonl", fixtures());
    ck_assert_msg(jsonl_read(path, &corpus) == 0, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/tokenizers/%s/expected.jsonl", fixtures(), name);
    ck_assert_msg(jsonl_read(path, &exp) == 0, "cannot read %s", path);
    /* expected lines follow the corpus order; the components/ files skip some lines */
    ck_assert_int_le(exp.n, corpus.n);
    for (int li = 0, ci = 0; li < exp.n; li++, ci++) {
        const cJSON *x = exp.v[li];
        int id = cJSON_GetObjectItemCaseSensitive(x, "id")->valueint;
        while (ci < corpus.n &&
               cJSON_GetObjectItemCaseSensitive(corpus.v[ci], "id")->valueint != id)
            ci++;
        ck_assert_msg(ci < corpus.n, "%s: expected line %d is not in the corpus", name, id);
        const cJSON *rec = corpus.v[ci];
        size_t n = 0, pn = 0;
        char *text = corpus_text(rec, "text", "text_hex", &n);
        char *pair = corpus_text(rec, "pair", "pair_hex", &pn);
        tok_encode_params p = tok_encode_default_params();
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(rec, "truncate");
        if (tr) {
            p.max_length = cJSON_GetObjectItemCaseSensitive(tr, "max_length")->valueint;
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(tr, "direction");
            p.direction = !strcmp(d->valuestring, "left") ? TOK_TRUNC_LEFT : TOK_TRUNC_RIGHT;
        }
        t->lines++;
        tok_encoding *e = NULL;
        st = tok_encode(tk, text, n, pair, pn, &p, &e, err, sizeof err);
        int bad = 0;
        if (cJSON_GetObjectItemCaseSensitive(x, "error")) {
            if (st == LS_OK) report(t, id, "error", "encoded, expected an error"), bad = 1;
        } else if (st != LS_OK) {
            report(t, id, "encode", "%s", err);
            bad = 1;
        } else {
            char *d1 = NULL, *d2 = NULL;
            size_t n1 = 0, n2 = 0;
            ck_assert_int_eq(tok_decode(tk, e->ids, e->n, 0, &d1, &n1, err, sizeof err), LS_OK);
            ck_assert_int_eq(tok_decode(tk, e->ids, e->n, 1, &d2, &n2, err, sizeof err), LS_OK);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(x, "ids");
            bad |= cmp_ints(t, id, "ids", ids, e->n, g_id, e, 1);
            if (cJSON_GetObjectItemCaseSensitive(x, "digests")) {
                bad |= cmp_digests(t, id, x, e, d1, n1, d2, n2);
            } else {
                bad |= cmp_tokens(t, id, cJSON_GetObjectItemCaseSensitive(x, "tokens"), e);
                bad |= cmp_ints(t, id, "type_ids", cJSON_GetObjectItemCaseSensitive(x, "type_ids"),
                                e->n, g_type, e, 1);
                bad |= cmp_ints(t, id, "special_mask",
                                cJSON_GetObjectItemCaseSensitive(x, "special_mask"), e->n, g_spec,
                                e, 1);
                bad |= cmp_ints(t, id, "sequence_ids",
                                cJSON_GetObjectItemCaseSensitive(x, "sequence_ids"), e->n, g_seq, e,
                                1);
                bad |= cmp_ints(t, id, "offsets", cJSON_GetObjectItemCaseSensitive(x, "offsets"),
                                e->n, g_off, e, 2);
                bad |= cmp_ints(t, id, "byte_offsets",
                                cJSON_GetObjectItemCaseSensitive(x, "byte_offsets"), e->n, g_boff,
                                e, 2);
                bad |=
                    cmp_str(t, id, "decode", cJSON_GetObjectItemCaseSensitive(x, "decode"), d1, n1);
                bad |= cmp_str(t, id, "decode_skip_special",
                               cJSON_GetObjectItemCaseSensitive(x, "decode_skip_special"), d2, n2);
            }
            free(d1), free(d2);
        }
        t->mismatches += bad;
        tok_encoding_free(e);
        free(text), free(pair);
    }
    jsonl_free(&corpus), jsonl_free(&exp);
    tok_free(tk);
}

START_TEST(parity)
{
    const char *name = TOKENIZERS[_i];
    tally t = {0};
    run_tokenizer(name, &t);
    printf("tokenizer %-16s %4d lines, %d mismatches\n", name, t.lines, t.mismatches);
    fflush(stdout);
    ck_assert_msg(t.mismatches == 0, "%s: %d of %d lines differ from Hugging Face; first:%s", name,
                  t.mismatches, t.lines, t.first);
}
END_TEST

/* the enwik8 byte tokenizer: ids are bytes + 2, decode is lossy UTF-8 */
START_TEST(bytes_parity)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizers/bytes_enwik8", fixtures());
    tok_tokenizer *tk;
    ck_assert_msg(tok_load(path, &tk, err, sizeof err) == LS_OK, "%s", err);
    ck_assert_int_eq(tok_get_model(tk), TOK_MODEL_BYTES);
    jsonl corpus, exp;
    snprintf(path, sizeof path, "%s/tokenizers/corpus.jsonl", fixtures());
    ck_assert(jsonl_read(path, &corpus) == 0);
    snprintf(path, sizeof path, "%s/tokenizers/bytes_enwik8/expected.jsonl", fixtures());
    ck_assert(jsonl_read(path, &exp) == 0);
    tally t = {0};
    for (int li = 0; li < corpus.n; li++) {
        const cJSON *rec = corpus.v[li], *x = exp.v[li];
        int id = cJSON_GetObjectItemCaseSensitive(rec, "id")->valueint;
        size_t n = 0;
        char *text = corpus_text(rec, "text", "text_hex", &n);
        tok_encoding *e;
        ck_assert_int_eq(tok_encode(tk, text, n, NULL, 0, NULL, &e, err, sizeof err), LS_OK);
        char *d;
        size_t dn;
        ck_assert_int_eq(tok_decode(tk, e->ids, e->n, 0, &d, &dn, err, sizeof err), LS_OK);
        int bad = 0;
        const cJSON *dig = cJSON_GetObjectItemCaseSensitive(x, "digests");
        if (dig) {
            uint64_t h = FNV0;
            for (size_t i = 0; i < e->n; i++)
                h = fnv_i32(h, e->ids[i]);
            bad |= cmp_digest(&t, id, dig, "ids", h);
            bad |= cmp_digest(&t, id, dig, "decode", fnv(FNV0, d, dn));
        } else {
            bad |= cmp_ints(&t, id, "ids", cJSON_GetObjectItemCaseSensitive(x, "ids"), e->n, g_id,
                            e, 1);
            bad |= cmp_str(&t, id, "decode", cJSON_GetObjectItemCaseSensitive(x, "decode"), d, dn);
        }
        /* offsets: one token per byte */
        for (size_t i = 0; i < e->n && !bad; i++)
            if (e->offsets[i].byte_start != (int32_t)i || e->offsets[i].byte_end != (int32_t)i + 1)
                report(&t, id, "byte_offsets", "token %zu", i), bad = 1;
        t.lines++;
        t.mismatches += bad;
        free(d), free(text);
        tok_encoding_free(e);
    }
    printf("tokenizer %-16s %4d lines, %d mismatches\n", "bytes_enwik8", t.lines, t.mismatches);
    ck_assert_msg(t.mismatches == 0, "bytes_enwik8: %d of %d lines differ; first:%s", t.mismatches,
                  t.lines, t.first);
    jsonl_free(&corpus), jsonl_free(&exp);
    tok_free(tk);
}
END_TEST

/* every tokenizer rejects ill-formed UTF-8 naming the first bad byte; decode of raw bytes
 * replaces what is ill-formed as Python's errors="replace" does */
START_TEST(invalid_utf8)
{
    char path[1024], err[512];
    jsonl v;
    snprintf(path, sizeof path, "%s/tokenizers/invalid_utf8.jsonl", fixtures());
    ck_assert(jsonl_read(path, &v) == 0);
    ck_assert_int_gt(v.n, 10);
    tok_tokenizer *tks[MAX_TOKENIZERS + 1];
    for (int k = 0; k < N_TOKENIZERS; k++) {
        snprintf(path, sizeof path, "%.900s/tokenizers/%.63s", fixtures(), TOKENIZERS[k]);
        ck_assert_msg(tok_load(path, &tks[k], err, sizeof err) == LS_OK, "%s", err);
    }
    ck_assert(tok_load_bytes(2, &tks[N_TOKENIZERS], err, sizeof err) == LS_OK);
    for (int i = 0; i < v.n; i++) {
        size_t n = 0;
        unsigned char *b = unhex(cJSON_GetObjectItemCaseSensitive(v.v[i], "hex")->valuestring, &n);
        const cJSON *fb = cJSON_GetObjectItemCaseSensitive(v.v[i], "first_bad_byte");
        for (int k = 0; k <= N_TOKENIZERS; k++) {
            tok_encoding *e = NULL;
            err[0] = 0;
            ls_status st =
                tok_encode(tks[k], (const char *)b, n, NULL, 0, NULL, &e, err, sizeof err);
            if (cJSON_IsNull(fb)) {
                ck_assert_msg(st == LS_OK, "%s: valid input rejected: %s", (char *)b, err);
            } else {
                ck_assert_int_eq(st, LS_ERR_INVALID_INPUT);
                char want[64];
                snprintf(want, sizeof want, "byte offset %d", fb->valueint);
                ck_assert_msg(strstr(err, want), "message \"%s\" lacks \"%s\"", err, want);
                /* the same bytes as the pair text */
                ck_assert_int_eq(
                    tok_encode(tks[k], "a", 1, (const char *)b, n, NULL, &e, err, sizeof err),
                    LS_ERR_INVALID_INPUT);
                ck_assert_msg(strstr(err, want) && strstr(err, "pair"), "%s", err);
            }
            tok_encoding_free(e);
        }
        /* lossy decode through the byte tokenizer */
        int32_t *ids = malloc((n + 1) * sizeof *ids);
        for (size_t j = 0; j < n; j++)
            ids[j] = b[j] + 2;
        char *d;
        size_t dn;
        ck_assert_int_eq(tok_decode(tks[N_TOKENIZERS], ids, n, 0, &d, &dn, err, sizeof err), LS_OK);
        const char *want = cJSON_GetObjectItemCaseSensitive(v.v[i], "decode_replace")->valuestring;
        size_t gn;
        char *got = denul(d, dn, &gn);
        ck_assert_msg(gn == strlen(want) && !memcmp(got, want, gn), "lossy decode of %s",
                      cJSON_GetObjectItemCaseSensitive(v.v[i], "hex")->valuestring);
        free(got), free(d), free(ids), free(b);
    }
    for (int k = 0; k <= N_TOKENIZERS; k++)
        tok_free(tks[k]);
    jsonl_free(&v);
}
END_TEST

/* ---- load errors and API ------------------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *name, const char *body)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(body, f);
    fclose(f);
}

static ls_status load_json(const char *body, char *err, size_t errlen, tok_tokenizer **t)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ls_tok_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    write_file("tokenizer.json", body);
    ls_status st = tok_load(tmpdir, t, err, errlen);
    char p[256];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmpdir);
    remove(p);
    rmdir(tmpdir);
    return st;
}

START_TEST(load_errors)
{
    char err[512];
    tok_tokenizer *t = (tok_tokenizer *)1;
    ck_assert_int_eq(tok_load("/nonexistent/dir", &t, err, sizeof err), LS_ERR_IO);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir"));
    static const struct {
        const char *json, *want;
        ls_status st;
    } cases[] = {
        {"{", "not valid JSON", LS_ERR_CONFIG},
        {"{}", "model", LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"WordSoup\", \"vocab\": {}}}", "model.type", LS_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"dropout\": 0.1}}",
         "dropout", LS_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\": {\"type\": \"CharDelimiterSplit\", \"delimiter\": \"ab\"}, "
         "\"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
         "delimiter", LS_ERR_CONFIG},
        {"{\"pre_tokenizer\": {\"type\": \"FixedLength\", \"length\": 0}, \"model\": "
         "{\"type\": \"Unigram\", \"vocab\": []}}",
         "length", LS_ERR_CONFIG},
        {"{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, "
         "{\"type\": \"Nope\"}]}, \"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
         "decoder.decoders[1]", LS_ERR_UNSUPPORTED},
        {"{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Nmt\"}, "
         "{\"type\": \"Nope\"}]}, \"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
         "normalizer.normalizers[1]", LS_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "[UNK]", LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
         "merges[0]", LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", "vocab",
         LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]], \"unk_id\": 5}}", "unk_id",
         LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]]}}", "vocab[0]", LS_ERR_CONFIG},
        {"{\"normalizer\": {\"type\": \"Nope\"}, \"model\": {\"type\": \"Unigram\", \"vocab\": "
         "[]}}",
         "Nope", LS_ERR_UNSUPPORTED},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
         "\"Isolated\"}, \"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
         "Split", LS_ERR_CONFIG},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": "
         "\"Sideways\"}, \"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
         "behavior", LS_ERR_CONFIG},
        {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
         "{\"id\": \"[X]\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": {}}, \"model\": "
         "{\"type\": \"Unigram\", \"vocab\": []}}",
         "[X]", LS_ERR_CONFIG},
        {"{\"added_tokens\": [{\"id\": \"x\", \"content\": \"a\"}], \"model\": {\"type\": "
         "\"Unigram\", \"vocab\": []}}",
         "added_tokens[0]", LS_ERR_CONFIG},
        /* ids size the id tables: bounded, and not far over the number of entries */
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1000000000}}}",
         "model.vocab entry 1 (\"a\"): id must be an integer in 0..16777216", LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 2147483647}}}",
         "0..16777216", LS_ERR_CONFIG},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 5000}}}",
         "model.vocab \"a\": id 5000 is far over the 2 entries", LS_ERR_CONFIG},
        {"{\"added_tokens\": [{\"id\": 2147483647, \"content\": \"a\"}], \"model\": {\"type\": "
         "\"Unigram\", \"vocab\": []}}",
         "added_tokens[0]: \"id\" must be an integer in 0..16777216", LS_ERR_CONFIG},
        {"{\"added_tokens\": [{\"id\": 100000, \"content\": \"a\"}], \"model\": {\"type\": "
         "\"Unigram\", \"vocab\": []}}",
         "added_tokens[0]: id 100000 is far over the 1 entries", LS_ERR_CONFIG},
        /* a post-processor's ids are ids of the vocabulary (found by fuzz_tokenizer_json) */
        {"{\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
         "{\"id\": \"[X]\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": {\"[X]\": "
         "{\"id\": \"[X]\", \"ids\": [7], \"tokens\": [\"[X]\"]}}}, \"model\": {\"type\": "
         "\"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1}}}",
         "special token \"[X]\" has id 7, outside the vocabulary (ids 0..1)", LS_ERR_CONFIG},
        {"{\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"a\", 1], \"cls\": "
         "[\"[C]\", 2]}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, "
         "\"a\": 1}}}",
         "special token \"[C]\" has id 2, outside", LS_ERR_CONFIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = 0;
        t = (tok_tokenizer *)1;
        ls_status st = load_json(cases[i].json, err, sizeof err, &t);
        ck_assert_msg(st == cases[i].st, "case %zu: status %d (%s)", i, st, err);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
                      cases[i].want);
        ck_assert_msg(strstr(err, "tokenizer.json"), "case %zu: \"%s\" lacks the file", i, err);
    }
    /* ids up to 16 x entries + 1024 load */
    t = NULL;
    ck_assert_msg(load_json("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, "
                            "\"a\": 1000}}}",
                            err, sizeof err, &t) == LS_OK,
                  "%s", err);
    ck_assert_int_eq(tok_vocab_size(t), 1001);
    tok_free(t);
    tok_free(NULL);
    tok_encoding_free(NULL);
}
END_TEST

START_TEST(api)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tokenizers/minilm/tokenizer.json", fixtures());
    tok_tokenizer *t;
    ck_assert_msg(tok_load(path, &t, err, sizeof err) == LS_OK, "%s", err);
    ck_assert_int_eq(tok_get_model(t), TOK_MODEL_WORDPIECE);
    ck_assert_int_eq(tok_vocab_size(t), 30522);
    ck_assert_str_eq(tok_id_to_token(t, 101), "[CLS]");
    ck_assert_int_eq(tok_token_to_id(t, "[SEP]"), 102);
    ck_assert_int_eq(tok_token_to_id(t, "no such token"), -1);
    ck_assert_ptr_null(tok_id_to_token(t, -1));
    ck_assert_ptr_null(tok_id_to_token(t, 1 << 30));
    /* truncation report and a max_length below the special tokens */
    tok_encode_params p = tok_encode_default_params();
    p.max_length = 4;
    tok_encoding *e;
    const char *s = "one two three four five";
    ck_assert_int_eq(tok_encode(t, s, strlen(s), NULL, 0, &p, &e, err, sizeof err), LS_OK);
    ck_assert_uint_eq(e->n, 4);
    ck_assert_uint_eq(e->n_untruncated, 7);
    ck_assert_int_eq(e->ids[0], 101);
    ck_assert_int_eq(e->ids[3], 102);
    tok_encoding_free(e);
    /* below the special tokens: no truncation at all, as Hugging Face */
    p.max_length = 1;
    ck_assert_int_eq(tok_encode(t, s, strlen(s), NULL, 0, &p, &e, err, sizeof err), LS_OK);
    ck_assert_uint_eq(e->n, 7);
    tok_encoding_free(e);
    /* loading from memory gives the same tokenizer */
    size_t jl;
    char *json = slurp(path, &jl);
    ck_assert_ptr_nonnull(json);
    tok_tokenizer *t2;
    ck_assert_msg(tok_load_json(json, jl, "minilm", &t2, err, sizeof err) == LS_OK, "%s", err);
    tok_encoding *e2;
    ck_assert_int_eq(tok_encode(t, s, strlen(s), "pair", 4, NULL, &e, err, sizeof err), LS_OK);
    ck_assert_int_eq(tok_encode(t2, s, strlen(s), "pair", 4, NULL, &e2, err, sizeof err), LS_OK);
    ck_assert_uint_eq(e->n, e2->n);
    ck_assert(!memcmp(e->ids, e2->ids, e->n * sizeof *e->ids));
    tok_encoding_free(e), tok_encoding_free(e2);
    tok_free(t2);
    ck_assert_int_eq(tok_load_json(json, jl / 2, "half.json", &t2, err, sizeof err), LS_ERR_CONFIG);
    ck_assert_ptr_null(t2);
    ck_assert_ptr_nonnull(strstr(err, "half.json"));
    free(json);
    /* decode skips ids outside the vocabulary */
    int32_t ids[] = {7592, -5, 1 << 28, 2088};
    char *d;
    ck_assert_int_eq(tok_decode(t, ids, 4, 1, &d, NULL, err, sizeof err), LS_OK);
    ck_assert_str_eq(d, "hello world");
    free(d);
    tok_free(t);
}
END_TEST

/* one tokenizer, many threads: same results as one thread (the BPE cache is shared) */
typedef struct {
    tok_tokenizer *t;
    int ok;
} thr_arg;

static void *thr(void *p)
{
    thr_arg *a = p;
    const char *s = "Longformer reads whole documents; tokenizers must keep up with it. ";
    char err[256];
    a->ok = 1;
    for (int r = 0; r < 200; r++) {
        tok_encoding *e;
        if (tok_encode(a->t, s, strlen(s), NULL, 0, NULL, &e, err, sizeof err)) {
            a->ok = 0;
            return NULL;
        }
        char *d;
        if (tok_decode(a->t, e->ids, e->n, 1, &d, NULL, err, sizeof err) || strcmp(d, s)) a->ok = 0;
        free(d);
        tok_encoding_free(e);
    }
    return NULL;
}

START_TEST(threads)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/tokenizers/bpe_roberta", fixtures());
    tok_tokenizer *t;
    ck_assert_msg(tok_load(path, &t, err, sizeof err) == LS_OK, "%s", err);
    pthread_t th[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++)
        a[i].t = t, pthread_create(&th[i], NULL, thr, &a[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL), ck_assert(a[i].ok);
    tok_free(t);
}
END_TEST

int main(void)
{
    read_manifest();
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, parity, 0, N_TOKENIZERS);
    tcase_add_test(tc, bytes_parity);
    tcase_add_test(tc, invalid_utf8);
    suite_add_tcase(s, tc);
    TCase *tu = tcase_create("api");
    tcase_add_test(tu, load_errors);
    tcase_add_test(tu, api);
    tcase_add_test(tu, threads);
    suite_add_tcase(s, tu);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
