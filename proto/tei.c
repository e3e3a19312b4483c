/* Text-route request decoding (TEI, OpenAI, HF pipelines) and the TEI / pipeline response
 * encoders. Requests go through cJSON; responses are printed by hand (ls_buf). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/buf.h"
#include "../common/utf8.h"
#include "../formats/json.h"
#include "tei.h"

/* ---- requests ---------------------------------------------------------------------------------
 */

void tei_request_free(tei_request *r)
{
    if (!r) return;
    for (int i = 0; r->in && i < r->n; i++) {
        free(r->in[i].text);
        free(r->in[i].pair);
        free(r->in[i].ids);
    }
    free(r->in);
    for (int i = 0; i < r->nignore; i++)
        free(r->ignore_labels[i]);
    free(r->ignore_labels);
    free(r->ga_idx);
    free(r->ga_spans);
    free(r->ck_spans);
    free(r->ck_first);
    free(r->ck_count);
    free(r->ck_sep);
    memset(r, 0, sizeof *r);
}

static ls_status tei__bad(char *err, size_t errlen, const char *fmt, const char *where)
{
    return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, fmt, where);
}

static ls_status tei__dup(const cJSON *v, const char *where, int allow_empty, char **out,
                          size_t *len, char *err, size_t errlen)
{
    if (!cJSON_IsString(v)) return tei__bad(err, errlen, "%s must be a string", where);
    size_t n = strlen(v->valuestring);
    if (n == 0 && !allow_empty) return tei__bad(err, errlen, "%s cannot be empty", where);
    if (!(*out = malloc(n + 1))) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    memcpy(*out, v->valuestring, n + 1);
    *len = n;
    return LS_OK;
}

static int tei__is_int(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo &&
           v->valuedouble <= hi;
}

static int tei__all_numbers(const cJSON *a)
{
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e)) return 0;
        n++;
    }
    return n > 0;
}

static ls_status tei__ids(const cJSON *a, const char *where, int32_t **ids, size_t *n, char *err,
                          size_t errlen)
{
    if (!cJSON_IsArray(a)) return tei__bad(err, errlen, "%s must be an array of token ids", where);
    size_t k = (size_t)cJSON_GetArraySize(a);
    if (k == 0) return tei__bad(err, errlen, "%s cannot be empty", where);
    if (!(*ids = malloc(k * sizeof **ids)))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    *n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!tei__is_int(e, 0, 2147483647.0))
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "%s[%zu] must be a non-negative integer token id", where, *n);
        (*ids)[(*n)++] = (int32_t)e->valuedouble;
    }
    return LS_OK;
}

static ls_status tei__alloc_inputs(tei_request *r, int n, int max_inputs, const char *key,
                                   char *err, size_t errlen)
{
    if (n == 0) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`%s` cannot be empty", key);
    if (n > max_inputs)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "batch size %d > maximum allowed batch size %d", n, max_inputs);
    if (!(r->in = calloc((size_t)n, sizeof *r->in)))
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    r->n = n;
    return LS_OK;
}

/* "inputs": str | [int] | [str | [int]] (TEI /embed, OpenAI "input"); ids only with
 * allow_ids. */
static ls_status tei__texts(tei_request *r, const cJSON *v, const char *key, int allow_ids,
                            int allow_empty, int max_inputs, char *err, size_t errlen)
{
    char where[64];
    ls_status st;
    if (!v) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`%s` is required", key);
    if (cJSON_IsString(v)) {
        if ((st = tei__alloc_inputs(r, 1, max_inputs, key, err, errlen))) return st;
        return tei__dup(v, key, allow_empty, &r->in[0].text, &r->in[0].len, err, errlen);
    }
    if (!cJSON_IsArray(v))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       allow_ids ? "`%s` must be a string, an array of strings or token-id arrays"
                                 : "`%s` must be a string or an array of strings",
                       key);
    if (allow_ids && tei__all_numbers(v)) {
        if ((st = tei__alloc_inputs(r, 1, max_inputs, key, err, errlen))) return st;
        return tei__ids(v, key, &r->in[0].ids, &r->in[0].nids, err, errlen);
    }
    if ((st = tei__alloc_inputs(r, cJSON_GetArraySize(v), max_inputs, key, err, errlen))) return st;
    r->batched = 1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        snprintf(where, sizeof where, "%s[%d]", key, i);
        if (allow_ids && cJSON_IsArray(e))
            st = tei__ids(e, where, &r->in[i].ids, &r->in[i].nids, err, errlen);
        else if (cJSON_IsString(e))
            st = tei__dup(e, where, allow_empty, &r->in[i].text, &r->in[i].len, err, errlen);
        else
            st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "%s must be a string%s", where,
                         allow_ids ? " or an array of token ids" : "");
        if (st) return st;
        i++;
    }
    return LS_OK;
}

/* TEI /predict: str | [a, b] (one pair) | [str | [str] | [a, b]] (a batch). */
static ls_status tei__predict_inputs(tei_request *r, const cJSON *v, int max_inputs, char *err,
                                     size_t errlen)
{
    ls_status st;
    if (!v) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`inputs` is required");
    if (cJSON_IsString(v)) {
        if ((st = tei__alloc_inputs(r, 1, max_inputs, "inputs", err, errlen))) return st;
        return tei__dup(v, "inputs", 0, &r->in[0].text, &r->in[0].len, err, errlen);
    }
    if (!cJSON_IsArray(v))
        return tei__bad(err, errlen, "%s must be a string, a pair [text, text] or a batch of those",
                        "`inputs`");
    int n = cJSON_GetArraySize(v);
    if (n == 2 && cJSON_IsString(cJSON_GetArrayItem(v, 0)) &&
        cJSON_IsString(cJSON_GetArrayItem(v, 1))) { /* as TEI reads it: one pair */
        if ((st = tei__alloc_inputs(r, 1, max_inputs, "inputs", err, errlen))) return st;
        if ((st = tei__dup(cJSON_GetArrayItem(v, 0), "inputs[0]", 0, &r->in[0].text, &r->in[0].len,
                           err, errlen)))
            return st;
        return tei__dup(cJSON_GetArrayItem(v, 1), "inputs[1]", 0, &r->in[0].pair,
                        &r->in[0].pair_len, err, errlen);
    }
    if ((st = tei__alloc_inputs(r, n, max_inputs, "inputs", err, errlen))) return st;
    r->batched = 1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        char where[64];
        snprintf(where, sizeof where, "inputs[%d]", i);
        int k = cJSON_IsArray(e) ? cJSON_GetArraySize(e) : 0;
        if (cJSON_IsString(e)) {
            st = tei__dup(e, where, 0, &r->in[i].text, &r->in[i].len, err, errlen);
        } else if (k == 1 || k == 2) {
            st = tei__dup(cJSON_GetArrayItem(e, 0), where, 0, &r->in[i].text, &r->in[i].len, err,
                          errlen);
            if (!st && k == 2)
                st = tei__dup(cJSON_GetArrayItem(e, 1), where, 0, &r->in[i].pair,
                              &r->in[i].pair_len, err, errlen);
        } else {
            st = tei__bad(err, errlen, "%s must be a string, [text] or [text, text]", where);
        }
        if (st) return st;
        i++;
    }
    return LS_OK;
}

static ls_status tei__bool(const cJSON *root, const char *key, int *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!cJSON_IsBool(v))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`%s` must be a boolean", key);
    *out = cJSON_IsTrue(v);
    return LS_OK;
}

static ls_status tei__int(const cJSON *root, const char *key, int lo, int hi, int *out, char *err,
                          size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!tei__is_int(v, -2147483648.0, 2147483647.0))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`%s` must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "`%s` must be in [%d, %d]; got %.0f", key,
                       lo, hi, v->valuedouble);
    *out = (int)v->valuedouble;
    return LS_OK;
}

static ls_status tei__global(tei_request *r, const cJSON *g, char *err, size_t errlen)
{
    if (!g || cJSON_IsNull(g)) return LS_OK;
    if (!cJSON_IsObject(g))
        return tei__bad(err, errlen, "%s must be an object {\"cls\", \"token_indices\", \"spans\"}",
                        "`global_attention`");
    r->ga_given = 1;
    ls_status st = tei__bool(g, "cls", &r->ga_cls, err, errlen);
    if (!st) st = tei__bool(g, "chunk_starts", &r->ga_chunk_starts, err, errlen);
    if (st) return st;
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(g, "token_indices");
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(g, "spans");
    if (idx && !cJSON_IsNull(idx)) {
        if (!cJSON_IsArray(idx))
            return tei__bad(err, errlen, "%s must be an array of token positions",
                            "`global_attention.token_indices`");
        int n = cJSON_GetArraySize(idx);
        if (n && !(r->ga_idx = malloc((size_t)n * sizeof *r->ga_idx)))
            return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, idx)
        {
            if (!tei__is_int(e, 0, 2147483647.0))
                return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                               "`global_attention.token_indices[%d]` must be a non-negative "
                               "integer",
                               r->ga_nidx);
            r->ga_idx[r->ga_nidx++] = (int32_t)e->valuedouble;
        }
    }
    if (spans && !cJSON_IsNull(spans)) {
        if (!cJSON_IsArray(spans))
            return tei__bad(err, errlen, "%s must be an array of [start, end] pairs",
                            "`global_attention.spans`");
        int n = cJSON_GetArraySize(spans);
        if (n && !(r->ga_spans = malloc((size_t)n * 2 * sizeof *r->ga_spans)))
            return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, spans)
        {
            const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 ||
                !tei__is_int(a, 0, 2147483647.0) || !tei__is_int(b, 0, 2147483647.0))
                return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                               "`global_attention.spans[%d]` must be [start, end] with "
                               "non-negative integers",
                               r->ga_nspans);
            if (a->valuedouble > b->valuedouble)
                return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                               "`global_attention.spans[%d]`: start %.0f is after end %.0f",
                               r->ga_nspans, a->valuedouble, b->valuedouble);
            r->ga_spans[2 * r->ga_nspans] = (int32_t)a->valuedouble;
            r->ga_spans[2 * r->ga_nspans + 1] = (int32_t)b->valuedouble;
            r->ga_nspans++;
        }
    }
    return LS_OK;
}

static ls_status tei__long_doc(tei_request *r, const cJSON *d, char *err, size_t errlen)
{
    if (!d || cJSON_IsNull(d)) return LS_OK;
    if (!cJSON_IsObject(d))
        return tei__bad(err, errlen, "%s must be an object {\"window\", \"stride\", \"aggregate\"}",
                        "`long_document`");
    r->ld_given = 1;
    r->ld_window = 0;
    r->ld_stride = 0;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window");
    if (!tei__is_int(w, -1e9, 1e9))
        return tei__bad(err, errlen, "%s is required and must be an integer",
                        "`long_document.window`");
    ls_status st = tei__int(d, "window", 4, 1 << 22, &r->ld_window, err, errlen);
    if (!st) st = tei__int(d, "stride", 1, 1 << 22, &r->ld_stride, err, errlen);
    if (st) return st;
    const cJSON *agg = cJSON_GetObjectItemCaseSensitive(d, "aggregate");
    if (agg && !cJSON_IsNull(agg) &&
        !(cJSON_IsString(agg) && strcmp(agg->valuestring, "mean") == 0))
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                       "`long_document.aggregate` must be \"mean\" (the only aggregation)");
    return LS_OK;
}

/* One list of [start, end] character spans into ck_spans from index *at. */
static ls_status tei__chunk_spans(tei_request *r, const cJSON *a, const char *where, int *at,
                                  char *err, size_t errlen)
{
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const cJSON *s = cJSON_GetArrayItem(e, 0), *t = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !tei__is_int(s, 0, 2147483647.0) ||
            !tei__is_int(t, 0, 2147483647.0))
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "`%s[%d]` must be [start, end] with non-negative integer character "
                           "offsets",
                           where, k);
        if (s->valuedouble > t->valuedouble)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`%s[%d]`: start %.0f is after end %.0f", where, k, s->valuedouble,
                           t->valuedouble);
        r->ck_spans[2 * *at] = (int32_t)s->valuedouble;
        r->ck_spans[2 * *at + 1] = (int32_t)t->valuedouble;
        (*at)++, k++;
    }
    return LS_OK;
}

/* "chunks": [[start, end], ...] for every input, [[[start, end], ...], ...] one list per
 * input, or a chunker {"tokens": N, "overlap": M} / {"sentences": K} / {"separator": S}. */
static ls_status tei__chunks(tei_request *r, const cJSON *root, char *err, size_t errlen)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "chunks");
    if (!c || cJSON_IsNull(c)) return LS_OK;
    ls_status st = tei__bool(root, "return_text", &r->return_text, err, errlen);
    if (st) return st;
    if (cJSON_IsObject(c)) {
        const char *const keys[] = {"tokens", "sentences", "separator"};
        int given = 0;
        for (int k = 0; k < 3; k++)
            given += cJSON_GetObjectItemCaseSensitive(c, keys[k]) != NULL;
        if (given != 1)
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "`chunks` must name one chunker: {\"tokens\": N, \"overlap\": M}, "
                           "{\"sentences\": K} or {\"separator\": \"...\"}");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(c, "separator");
        if (cJSON_GetObjectItemCaseSensitive(c, "tokens")) {
            r->ck_kind = TEI_CHUNKS_TOKENS;
            if (!tei__is_int(cJSON_GetObjectItemCaseSensitive(c, "tokens"), -1e9, 1e9))
                return tei__bad(err, errlen, "%s must be an integer", "`chunks.tokens`");
            st = tei__int(c, "tokens", 1, 1 << 22, &r->ck_tokens, err, errlen);
            if (!st) st = tei__int(c, "overlap", 0, 1 << 22, &r->ck_overlap, err, errlen);
            if (!st && r->ck_overlap >= r->ck_tokens)
                st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                             "`chunks.overlap` %d must be below `chunks.tokens` %d", r->ck_overlap,
                             r->ck_tokens);
            return st;
        }
        if (!sep) {
            r->ck_kind = TEI_CHUNKS_SENTENCES;
            if (!tei__is_int(cJSON_GetObjectItemCaseSensitive(c, "sentences"), -1e9, 1e9))
                return tei__bad(err, errlen, "%s must be an integer", "`chunks.sentences`");
            return tei__int(c, "sentences", 1, 1 << 22, &r->ck_sentences, err, errlen);
        }
        r->ck_kind = TEI_CHUNKS_SEPARATOR;
        return tei__dup(sep, "`chunks.separator`", 0, &r->ck_sep, &r->ck_seplen, err, errlen);
    }
    if (!cJSON_IsArray(c))
        return tei__bad(err, errlen,
                        "%s must be [[start, end], ...], one such list per input, or a chunker "
                        "object",
                        "`chunks`");
    r->ck_kind = TEI_CHUNKS_SPANS;
    const cJSON *e0 = cJSON_GetArrayItem(c, 0), *e00 = cJSON_GetArrayItem(e0, 0);
    const int per_input = cJSON_IsArray(e00) || (cJSON_IsArray(e0) && !e00 && r->n > 1);
    int total = 0;
    const cJSON *e;
    if (per_input) {
        if (cJSON_GetArraySize(c) != r->n)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`chunks` has %d span lists for %d inputs", cJSON_GetArraySize(c), r->n);
        cJSON_ArrayForEach(e, c)
        {
            if (!cJSON_IsArray(e))
                return tei__bad(err, errlen, "%s must be a list of [start, end] spans",
                                "each entry of `chunks`");
            total += cJSON_GetArraySize(e);
        }
    } else {
        total = cJSON_GetArraySize(c);
    }
    r->ck_spans = malloc(((size_t)total + 1) * 2 * sizeof *r->ck_spans);
    r->ck_first = calloc((size_t)r->n, sizeof *r->ck_first);
    r->ck_count = calloc((size_t)r->n, sizeof *r->ck_count);
    if (!r->ck_spans || !r->ck_first || !r->ck_count)
        return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    int at = 0;
    if (!per_input) {
        for (int i = 0; i < r->n; i++)
            r->ck_count[i] = total;
        return tei__chunk_spans(r, c, "chunks", &at, err, errlen);
    }
    int i = 0;
    cJSON_ArrayForEach(e, c)
    {
        char where[32];
        snprintf(where, sizeof where, "chunks[%d]", i);
        r->ck_first[i] = at;
        r->ck_count[i] = cJSON_GetArraySize(e);
        if ((st = tei__chunk_spans(r, e, where, &at, err, errlen))) return st;
        i++;
    }
    return LS_OK;
}

/* A short string field (absent or null: ""): 400 for another type, 422 when too long. */
static ls_status tei__name(const cJSON *root, const char *key, char *out, size_t n, char *err,
                           size_t errlen)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!m || cJSON_IsNull(m)) return LS_OK;
    if (!cJSON_IsString(m))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "`%s` must be a string", key);
    if (strlen(m->valuestring) >= n)
        return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "`%s` is too long", key);
    snprintf(out, n, "%s", m->valuestring);
    return LS_OK;
}

static ls_status tei__common(tei_request *r, const cJSON *root, char *err, size_t errlen)
{
    ls_status st0 = tei__name(root, "model", r->model, sizeof r->model, err, errlen);
    if (!st0)
        st0 = tei__name(root, "prompt_name", r->prompt_name, sizeof r->prompt_name, err, errlen);
    if (st0) return st0;
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(root, "truncation_direction");
    if (dir && !cJSON_IsNull(dir)) {
        if (cJSON_IsString(dir) && strcasecmp(dir->valuestring, "right") == 0)
            r->direction = TEI_TRUNC_RIGHT;
        else if (cJSON_IsString(dir) && strcasecmp(dir->valuestring, "left") == 0)
            r->direction = TEI_TRUNC_LEFT;
        else
            return tei__bad(err, errlen, "%s must be \"right\" or \"left\"",
                            "`truncation_direction`");
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "truncate");
    if (t && !cJSON_IsNull(t)) {
        if (cJSON_IsBool(t))
            r->truncate = cJSON_IsTrue(t) ? r->direction : TEI_TRUNC_NONE;
        else if (cJSON_IsString(t) && strcasecmp(t->valuestring, "right") == 0)
            r->truncate = r->direction = TEI_TRUNC_RIGHT;
        else if (cJSON_IsString(t) && strcasecmp(t->valuestring, "left") == 0)
            r->truncate = r->direction = TEI_TRUNC_LEFT;
        else if (cJSON_IsString(t) && strcasecmp(t->valuestring, "none") == 0)
            r->truncate = TEI_TRUNC_NONE;
        else
            return tei__bad(err, errlen, "%s must be true, false, \"right\", \"left\" or \"none\"",
                            "`truncate`");
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pooling");
    if (p && !cJSON_IsNull(p)) {
        static const char *const names[] = {"cls", "mean", "max"};
        r->pooling = TEI_POOL_DEFAULT;
        for (int i = 0; cJSON_IsString(p) && i < 3; i++)
            if (strcmp(p->valuestring, names[i]) == 0) r->pooling = (tei_pool)i;
        if (r->pooling == TEI_POOL_DEFAULT)
            return tei__bad(err, errlen, "%s must be \"mean\", \"cls\" or \"max\"", "`pooling`");
    }
    ls_status st = tei__bool(root, "normalize", &r->normalize, err, errlen);
    if (!st) st = tei__int(root, "num_hashes", 1, 64, &r->num_hashes, err, errlen);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(root, "hash_seed");
    if (!st && hs && !cJSON_IsNull(hs)) {
        if (!tei__is_int(hs, 0, 9007199254740991.0))
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`hash_seed` must be an integer in [0, 2^53)");
        r->has_hash_seed = 1;
        r->hash_seed = (long long)hs->valuedouble;
    }
    if (!st)
        st =
            tei__global(r, cJSON_GetObjectItemCaseSensitive(root, "global_attention"), err, errlen);
    if (!st)
        st = tei__long_doc(r, cJSON_GetObjectItemCaseSensitive(root, "long_document"), err, errlen);
    return st;
}

static ls_status tei__route(tei_request *r, const cJSON *root, int max_inputs, char *err,
                            size_t errlen)
{
    ls_status st = LS_OK;
    switch (r->kind) {
    case TEI_EMBED:
        if ((st = tei__int(root, "dimensions", 1, 1 << 24, &r->dimensions, err, errlen))) return st;
        if ((st = tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", 1, 0,
                             max_inputs, err, errlen)))
            return st;
        return tei__chunks(r, root, err, errlen);
    case TEI_EMBED_ALL:
    case TEI_EMBED_SPARSE:
        return tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", 1, 0,
                          max_inputs, err, errlen);
    case TEI_OPENAI_EMBED: {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
        if (f && !cJSON_IsNull(f)) {
            if (cJSON_IsString(f) && strcmp(f->valuestring, "base64") == 0)
                r->base64 = 1;
            else if (!(cJSON_IsString(f) && strcmp(f->valuestring, "float") == 0))
                return tei__bad(err, errlen, "%s must be \"float\" or \"base64\"",
                                "`encoding_format`");
        }
        if ((st = tei__int(root, "dimensions", 1, 1 << 24, &r->dimensions, err, errlen))) return st;
        if ((st = tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "input"), "input", 1, 0,
                             max_inputs, err, errlen)))
            return st;
        return tei__chunks(r, root, err, errlen);
    }
    case TEI_PREDICT: {
        st = tei__bool(root, "raw_scores", &r->raw_scores, err, errlen);
        if (!st) st = tei__int(root, "top_k", 1, 1 << 20, &r->top_k, err, errlen);
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "function_to_apply");
        if (!st && f && !cJSON_IsNull(f)) {
            static const char *const fns[] = {"none", "sigmoid", "softmax"};
            r->fn = TEI_FN_DEFAULT;
            for (int i = 0; cJSON_IsString(f) && i < 3; i++)
                if (strcmp(f->valuestring, fns[i]) == 0) r->fn = (tei_fn)(TEI_FN_NONE + i);
            if (r->fn == TEI_FN_DEFAULT)
                return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                               "`function_to_apply` must be \"softmax\", \"sigmoid\" or \"none\"");
        }
        if (!st)
            st = tei__predict_inputs(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"),
                                     max_inputs, err, errlen);
        return st;
    }
    case TEI_SIMILARITY: {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "inputs");
        if (!cJSON_IsObject(o))
            return tei__bad(err, errlen,
                            "%s must be an object {\"source_sentence\", \"sentences\"}",
                            "`inputs`");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source_sentence");
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(o, "sentences");
        if (!src) return tei__bad(err, errlen, "%s is required", "`inputs.source_sentence`");
        if (!cJSON_IsArray(ss))
            return tei__bad(err, errlen, "%s must be an array of strings", "`inputs.sentences`");
        const int n = cJSON_GetArraySize(ss);
        if (n == 0) return tei__bad(err, errlen, "%s cannot be empty", "`inputs.sentences`");
        if ((st = tei__alloc_inputs(r, n + 1, max_inputs + 1, "inputs", err, errlen))) return st;
        st = tei__dup(src, "`inputs.source_sentence`", 0, &r->in[0].text, &r->in[0].len, err,
                      errlen);
        int i = 1;
        const cJSON *e;
        cJSON_ArrayForEach(e, ss)
        {
            char where[64];
            snprintf(where, sizeof where, "`inputs.sentences[%d]`", i - 1);
            if (!st) st = tei__dup(e, where, 0, &r->in[i].text, &r->in[i].len, err, errlen);
            i++;
        }
        return st;
    }
    case TEI_RERANK: {
        st = tei__bool(root, "raw_scores", &r->raw_scores, err, errlen);
        if (!st) st = tei__bool(root, "return_text", &r->return_text, err, errlen);
        if (st) return st;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "query");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "texts");
        if (!q) return tei__bad(err, errlen, "%s is required", "`query`");
        if (!cJSON_IsArray(ts))
            return tei__bad(err, errlen, "%s must be an array of strings", "`texts`");
        if ((st = tei__alloc_inputs(r, cJSON_GetArraySize(ts), max_inputs, "texts", err, errlen)))
            return st;
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ts)
        {
            char where[64];
            snprintf(where, sizeof where, "`texts[%d]`", i);
            if ((st = tei__dup(q, "`query`", 0, &r->in[i].text, &r->in[i].len, err, errlen)) ||
                (st = tei__dup(e, where, 0, &r->in[i].pair, &r->in[i].pair_len, err, errlen)))
                return st;
            i++;
        }
        return LS_OK;
    }
    case TEI_TOKCLS: {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "aggregation_strategy");
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && strcmp(a->valuestring, "none") == 0))
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`aggregation_strategy` must be \"none\" (the only one served)");
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(root, "stride");
        if (sd && !cJSON_IsNull(sd))
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`stride` is not supported: a document is read in one pass");
        const cJSON *ig = cJSON_GetObjectItemCaseSensitive(root, "ignore_labels");
        int n = ig && cJSON_IsArray(ig) ? cJSON_GetArraySize(ig) : 1;
        if (ig && !cJSON_IsNull(ig) && !cJSON_IsArray(ig))
            return tei__bad(err, errlen, "%s must be an array of labels", "`ignore_labels`");
        if (n && !(r->ignore_labels = calloc((size_t)n, sizeof *r->ignore_labels)))
            return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        if (!ig || cJSON_IsNull(ig)) {
            if (!(r->ignore_labels[0] = strdup("O")))
                return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
            r->nignore = 1;
        } else {
            const cJSON *e;
            cJSON_ArrayForEach(e, ig)
            {
                size_t len;
                if ((st = tei__dup(e, "`ignore_labels[]`", 1, &r->ignore_labels[r->nignore], &len,
                                   err, errlen)))
                    return st;
                r->nignore++;
            }
        }
        return tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", 0, 0,
                          max_inputs, err, errlen);
    }
    case TEI_FILL_MASK: {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "targets");
        if (t && !cJSON_IsNull(t))
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "`targets` is not supported: the fills are the top_k of the vocabulary");
        st = tei__int(root, "top_k", 1, 1000, &r->top_k, err, errlen);
        if (!st)
            st = tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", 0, 0,
                            max_inputs, err, errlen);
        return st;
    }
    case TEI_ANSWER: {
        int top_k = 1, impossible = 0;
        st = tei__int(root, "max_answer_len", 1, 4096, &r->max_answer_len, err, errlen);
        if (!st) st = tei__int(root, "top_k", 1, 1, &top_k, err, errlen); /* one answer */
        if (!st) st = tei__bool(root, "handle_impossible_answer", &impossible, err, errlen);
        if (!st && impossible)
            st =
                ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                        "`handle_impossible_answer` is not supported: the answer is the best span");
        if (st) return st;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "inputs");
        if (!o || cJSON_IsNull(o)) o = root;
        if (!cJSON_IsObject(o))
            return tei__bad(err, errlen, "%s must be an object {\"question\", \"context\"}",
                            "`inputs`");
        if ((st = tei__alloc_inputs(r, 1, max_inputs, "inputs", err, errlen))) return st;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "context");
        if (!q) return tei__bad(err, errlen, "%s is required", "`question`");
        if (!c) return tei__bad(err, errlen, "%s is required", "`context`");
        st = tei__dup(q, "`question`", 0, &r->in[0].text, &r->in[0].len, err, errlen);
        if (!st) st = tei__dup(c, "`context`", 0, &r->in[0].pair, &r->in[0].pair_len, err, errlen);
        return st;
    }
    case TEI_TOKENIZE:
        st = tei__bool(root, "add_special_tokens", &r->add_special_tokens, err, errlen);
        if (!st)
            st = tei__texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", 0, 1,
                            max_inputs, err, errlen);
        return st;
    case TEI_DECODE: {
        st = tei__bool(root, "skip_special_tokens", &r->skip_special_tokens, err, errlen);
        if (st) return st;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "ids");
        if (!ids) return tei__bad(err, errlen, "%s is required", "`ids`");
        if (!cJSON_IsArray(ids))
            return tei__bad(err, errlen, "%s must be an array of token ids or of such arrays",
                            "`ids`");
        if (tei__all_numbers(ids)) {
            if ((st = tei__alloc_inputs(r, 1, max_inputs, "ids", err, errlen))) return st;
            return tei__ids(ids, "`ids`", &r->in[0].ids, &r->in[0].nids, err, errlen);
        }
        if ((st = tei__alloc_inputs(r, cJSON_GetArraySize(ids), max_inputs, "ids", err, errlen)))
            return st;
        r->batched = 1;
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ids)
        {
            char where[32];
            snprintf(where, sizeof where, "`ids[%d]`", i);
            if ((st = tei__ids(e, where, &r->in[i].ids, &r->in[i].nids, err, errlen))) return st;
            i++;
        }
        return LS_OK;
    }
    }
    return ls_fail(err, errlen, LS_ERR_INTERNAL, "unknown route kind %d", (int)r->kind);
}

/* Hugging Face's Inference API sends a task's options in "parameters": each one that the
 * body does not also give at the top level is read as if it were there. */
static ls_status tei__parameters(tei_request *r, cJSON *root, char *err, size_t errlen)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (!p || cJSON_IsNull(p)) return LS_OK;
    if (!cJSON_IsObject(p)) return tei__bad(err, errlen, "%s must be an object", "`parameters`");
    r->hf_params = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, p)
    {
        if (!e->string || cJSON_GetObjectItemCaseSensitive(root, e->string)) continue;
        cJSON *c = cJSON_Duplicate(e, 1);
        if (!c || !cJSON_AddItemToObject(root, e->string, c)) {
            cJSON_Delete(c);
            return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        }
    }
    return LS_OK;
}

ls_status tei_request_parse(tei_kind kind, const char *body, size_t len, int max_inputs,
                            tei_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->normalize = -1;
    out->pooling = TEI_POOL_DEFAULT;
    out->truncate = TEI_TRUNC_DEFAULT;
    out->direction = TEI_TRUNC_RIGHT;
    out->add_special_tokens = 1;
    out->skip_special_tokens = 1;
    out->top_k = 5;
    out->max_answer_len = 15;
    ptrdiff_t bad = ls_utf8_check(body, len);
    if (bad >= 0)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "the body is not valid UTF-8: byte 0x%02x at byte offset %td",
                       (unsigned char)body[bad], bad);
    cJSON *root = fmt_json_parse(body, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "the body is not valid JSON");
    ls_status st = LS_OK;
    char why[320];
    if (fmt_json_check_strings(body, len, why, sizeof why))
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "%s", why);
    else if (!cJSON_IsObject(root))
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "the body must be a JSON object");
    else
        st = tei__parameters(out, root, err, errlen);
    if (!st && !(st = tei__common(out, root, err, errlen)))
        st = tei__route(out, root, max_inputs, err, errlen);
    cJSON_Delete(root);
    if (st) tei_request_free(out);
    return st;
}

/* ---- responses --------------------------------------------------------------------------------
 */

char *tei_embed_encode(const float *const *vecs, int n, int dim, size_t *len)
{
    ls_buf b = {0};
    ls_buf_reserve(&b, (size_t)n * (size_t)dim * 16 + 16);
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        if (i) ls_buf_puts(&b, ",");
        ls_buf_floats(&b, vecs[i], (size_t)dim);
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

void tei_buf_chunks(ls_buf *b, const tei_chunk_list *l, int dim, int base64)
{
    ls_buf_puts(b, ",\"chunks\":[");
    for (int k = 0; k < l->n; k++) {
        const tei_chunk *c = &l->c[k];
        ls_buf_printf(b,
                      "%s{\"index\":%d,\"start\":%d,\"end\":%d,\"tokens\":%d,\"truncated\":%s,"
                      "\"embedding\":",
                      k ? "," : "", k, c->start, c->end, c->tokens,
                      c->truncated ? "true" : "false");
        if (!c->vec)
            ls_buf_puts(b, "null");
        else if (base64)
            ls_buf_floats_b64(b, c->vec, (size_t)dim);
        else
            ls_buf_floats(b, c->vec, (size_t)dim);
        if (c->text) {
            ls_buf_puts(b, ",\"text\":");
            ls_buf_str(b, c->text, c->text_len);
        }
        ls_buf_puts(b, "}");
    }
    ls_buf_puts(b, "],\"truncated_chunks\":[");
    for (int k = 0, first = 1; k < l->n; k++)
        if (l->c[k].truncated) ls_buf_printf(b, "%s%d", first ? "" : ",", k), first = 0;
    ls_buf_puts(b, "]");
}

char *tei_embed_chunks_encode(const float *const *vecs, const tei_chunk_list *chunks, int n,
                              int dim, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        ls_buf_puts(&b, i ? ",{\"embedding\":" : "{\"embedding\":");
        ls_buf_floats(&b, vecs[i], (size_t)dim);
        tei_buf_chunks(&b, &chunks[i], dim, 0);
        ls_buf_puts(&b, "}");
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

char *tei_embed_all_encode(const float *const *rows, const int *ntok, int n, int dim, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        ls_buf_puts(&b, i ? ",[" : "[");
        for (int t = 0; t < ntok[i]; t++) {
            if (t) ls_buf_puts(&b, ",");
            ls_buf_floats(&b, rows[i] + (size_t)t * (size_t)dim, (size_t)dim);
        }
        ls_buf_puts(&b, "]");
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

char *tei_embed_sparse_encode(const float *const *vecs, int n, int dim, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        ls_buf_puts(&b, i ? ",[" : "[");
        int first = 1;
        for (int k = 0; k < dim; k++) {
            if (vecs[i][k] == 0) continue; /* as TEI: only the non-zero values */
            ls_buf_printf(&b, first ? "{\"index\":%d,\"value\":" : ",{\"index\":%d,\"value\":", k);
            ls_buf_float(&b, vecs[i][k]);
            ls_buf_puts(&b, "}");
            first = 0;
        }
        ls_buf_puts(&b, "]");
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

/* Opens the list of input i: "[" before a batch, "," between inputs. */
static void tei__open(ls_buf *b, int i, int batched)
{
    if (batched)
        ls_buf_puts(b, i ? ",[" : "[[");
    else
        ls_buf_puts(b, "[");
}

char *tei_predict_encode(const tei_score *const *lists, const int *counts, int n, int batched,
                         size_t *len)
{
    ls_buf b = {0};
    for (int i = 0; i < n; i++) {
        tei__open(&b, i, batched);
        for (int k = 0; k < counts[i]; k++) {
            ls_buf_puts(&b, k ? ",{\"score\":" : "{\"score\":");
            ls_buf_float(&b, lists[i][k].score);
            ls_buf_puts(&b, ",\"label\":");
            ls_buf_str(&b, lists[i][k].label, strlen(lists[i][k].label));
            ls_buf_puts(&b, "}");
        }
        ls_buf_puts(&b, "]");
    }
    if (batched) ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

char *tei_tokcls_encode(const tei_entity *const *lists, const int *counts, int n, int batched,
                        size_t *len)
{
    ls_buf b = {0};
    for (int i = 0; i < n; i++) {
        tei__open(&b, i, batched);
        for (int k = 0; k < counts[i]; k++) {
            const tei_entity *e = &lists[i][k];
            ls_buf_puts(&b, k ? ",{\"entity\":" : "{\"entity\":");
            ls_buf_str(&b, e->entity, strlen(e->entity));
            ls_buf_puts(&b, ",\"score\":");
            ls_buf_float(&b, e->score);
            ls_buf_printf(&b, ",\"index\":%d,\"word\":", e->index);
            ls_buf_str(&b, e->word, e->word_len);
            ls_buf_printf(&b, ",\"start\":%d,\"end\":%d}", e->start, e->end);
        }
        ls_buf_puts(&b, "]");
    }
    if (batched) ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

char *tei_fill_encode(const tei_fill *const *lists, const int *counts, int n, int batched,
                      size_t *len)
{
    ls_buf b = {0};
    for (int i = 0; i < n; i++) {
        tei__open(&b, i, batched);
        for (int k = 0; k < counts[i]; k++) {
            const tei_fill *f = &lists[i][k];
            ls_buf_puts(&b, k ? ",{\"score\":" : "{\"score\":");
            ls_buf_float(&b, f->score);
            ls_buf_printf(&b, ",\"token\":%d,\"token_str\":", f->token);
            ls_buf_str(&b, f->token_str, strlen(f->token_str));
            ls_buf_puts(&b, ",\"sequence\":");
            ls_buf_str(&b, f->sequence, strlen(f->sequence));
            ls_buf_puts(&b, "}");
        }
        ls_buf_puts(&b, "]");
    }
    if (batched) ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

void tei_buf_echo(ls_buf *b, const tei_echo *e)
{
    ls_buf_printf(b,
                  ",\"longserve\":{\"tokens_in\":%lld,\"tokens_used\":%lld,\"truncated\":%s,"
                  "\"global_tokens\":%lld,\"windows\":%d,\"tokens\":%lld",
                  e->tokens_in, e->tokens_used, e->truncated ? "true" : "false", e->global_tokens,
                  e->windows, e->tokens);
    if (e->attention) {
        ls_buf_puts(b, ",\"attention\":");
        ls_buf_str(b, e->attention, strlen(e->attention));
    }
    if (e->attention_window) ls_buf_printf(b, ",\"attention_window\":%d", e->attention_window);
    ls_buf_puts(b, "}");
}

char *tei_answer_encode(const char *answer, size_t answer_len, float score, int start, int end,
                        const tei_echo *echo, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "{\"answer\":");
    ls_buf_str(&b, answer, answer_len);
    ls_buf_puts(&b, ",\"score\":");
    ls_buf_float(&b, score);
    ls_buf_printf(&b, ",\"start\":%d,\"end\":%d", start, end);
    if (echo) tei_buf_echo(&b, echo);
    ls_buf_puts(&b, "}");
    return ls_buf_finish(&b, len);
}

char *tei_tokenize_encode(const tei_token *const *lists, const int *counts, int n, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        ls_buf_puts(&b, i ? ",[" : "[");
        for (int k = 0; k < counts[i]; k++) {
            const tei_token *t = &lists[i][k];
            ls_buf_printf(&b, "%s{\"id\":%d,\"text\":", k ? "," : "", t->id);
            ls_buf_str(&b, t->text, t->text_len);
            ls_buf_printf(&b, ",\"special\":%s", t->special ? "true" : "false");
            if (t->start >= 0)
                ls_buf_printf(&b, ",\"start\":%d,\"stop\":%d,\"char_start\":%d,\"char_end\":%d",
                              t->start, t->stop, t->char_start, t->char_end);
            else
                ls_buf_puts(&b, ",\"start\":null,\"stop\":null,\"char_start\":null,"
                                "\"char_end\":null");
            ls_buf_puts(&b, ",\"token\":");
            ls_buf_str(&b, t->token, t->token_len);
            ls_buf_puts(&b, "}");
        }
        ls_buf_puts(&b, "]");
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

char *tei_decode_encode(char *const *texts, int n, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        if (i) ls_buf_puts(&b, ",");
        ls_buf_str(&b, texts[i], strlen(texts[i]));
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}

void tei_root_peek(const char *body, size_t len, char *model, size_t model_len, tei_shape *shape)
{
    model[0] = 0;
    *shape = TEI_SHAPE_TEXT;
    if (ls_utf8_check(body, len) >= 0) return;
    cJSON *root = fmt_json_parse(body, len);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (cJSON_IsString(m)) snprintf(model, model_len, "%s", m->valuestring);
    if (cJSON_IsObject(in) && cJSON_GetObjectItemCaseSensitive(in, "source_sentence"))
        *shape = TEI_SHAPE_SIMILARITY;
    else if (cJSON_GetObjectItemCaseSensitive(root, "query") &&
             cJSON_GetObjectItemCaseSensitive(root, "texts"))
        *shape = TEI_SHAPE_RERANK;
    cJSON_Delete(root);
}

char *tei_similarity_encode(const float *scores, int n, size_t *len)
{
    ls_buf b = {0};
    ls_buf_floats(&b, scores, (size_t)n);
    return ls_buf_finish(&b, len);
}

char *tei_rerank_encode(const tei_rank *ranks, int n, size_t *len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, "[");
    for (int i = 0; i < n; i++) {
        ls_buf_printf(&b, "%s{\"index\":%d,\"score\":", i ? "," : "", ranks[i].index);
        ls_buf_float(&b, ranks[i].score);
        if (ranks[i].text) {
            ls_buf_puts(&b, ",\"text\":");
            ls_buf_str(&b, ranks[i].text, strlen(ranks[i].text));
        }
        ls_buf_puts(&b, "}");
    }
    ls_buf_puts(&b, "]");
    return ls_buf_finish(&b, len);
}
