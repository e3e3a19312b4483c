/* Open Inference Protocol codecs. Requests go through cJSON; responses are printed by
 * hand because they can hold millions of floats. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"
#include "../formats/json.h"

#include "v2.h"

static const char *const v2__names[] = {"input_ids", "attention_mask", "global_attention_mask",
                                        "token_type_ids"};

void v2_request_free(v2_request *r)
{
    if (!r) return;
    free(r->input_ids);
    free(r->attention_mask);
    free(r->global_attention_mask);
    free(r->token_type_ids);
    for (int i = 0; i < r->noutputs; i++)
        free(r->outputs[i]);
    free(r->outputs);
    memset(r, 0, sizeof *r);
}

int v2_request_wants(const v2_request *r, const char *name)
{
    if (!r->outputs) return 1;
    for (int i = 0; i < r->noutputs; i++)
        if (strcmp(r->outputs[i], name) == 0) return 1;
    return 0;
}

int v2_request_binary(const v2_request *r, const char *name)
{
    for (int i = 0; i < r->noutputs; i++)
        if (strcmp(r->outputs[i], name) == 0 && r->out_binary[i] >= 0) return r->out_binary[i];
    return r->binary_output;
}

/* The binary tensor data after the JSON header: bin[0..n), the inputs take theirs in order. */
typedef struct {
    const unsigned char *bin;
    size_t n, used;
} v2__tail;

/* An int64/int32 element, little-endian; int64 beyond int32 clamps as in v2__flatten. */
static int32_t v2__le(const unsigned char *p, int is32)
{
    uint64_t u = 0;
    for (int b = is32 ? 3 : 7; b >= 0; b--)
        u = u << 8 | p[b];
    if (is32) return (int32_t)(uint32_t)u;
    int64_t v = (int64_t)u;
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Flattens data (flat or nested arrays) into dst[0..n), checking integer range. */
static int v2__flatten(const cJSON *a, int32_t *dst, size_t n, size_t *k, int is32, char *err,
                       size_t errlen, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (cJSON_IsArray(e)) {
            if (v2__flatten(e, dst, n, k, is32, err, errlen, name)) return -1;
            continue;
        }
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble)) {
            ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                    "input '%s': data element %zu is not an integer", name, *k);
            return -1;
        }
        double v = e->valuedouble;
        if (is32 ? (v < -2147483648.0 || v > 2147483647.0)
                 : (v < -9223372036854775808.0 || v >= 9223372036854775808.0)) {
            ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                    "input '%s': data element %zu (%.0f) is out of range for its datatype", name,
                    *k, v);
            return -1;
        }
        if (*k >= n) {
            ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                    "input '%s': more data elements than its shape holds (%zu)", name, n);
            return -1;
        }
        /* int64 values beyond int32 cannot be token ids or flags: clamp to a value
         * the engine rejects with a clear message */
        dst[(*k)++] = v > 2147483647.0 ? INT32_MAX : v < -2147483648.0 ? INT32_MIN : (int32_t)v;
    }
    return 0;
}

static ls_status v2__input(const cJSON *in, size_t max_elems, v2__tail *tail, v2_request *r,
                           char *err, size_t errlen)
{
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(in, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    if (!cJSON_IsObject(in) || !cJSON_IsString(nm))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "every input needs a string \"name\"");
    int which = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(nm->valuestring, v2__names[i]) == 0) which = i;
    if (which < 0)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "unknown input '%.64s' (expected input_ids, attention_mask, "
                       "global_attention_mask, token_type_ids)",
                       nm->valuestring);
    const char *name = v2__names[which];
    int32_t **slot[] = {&r->input_ids, &r->attention_mask, &r->global_attention_mask,
                        &r->token_type_ids};
    if (*slot[which])
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "input '%s' given twice", name);
    if (!cJSON_IsString(dt) ||
        (strcmp(dt->valuestring, "INT64") != 0 && strcmp(dt->valuestring, "INT32") != 0))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "input '%s': datatype must be \"INT64\" or \"INT32\"", name);
    int is32 = strcmp(dt->valuestring, "INT32") == 0;
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) != 2)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "input '%s': shape must be [batch, length]",
                       name);
    double d0 =
        cJSON_IsNumber(cJSON_GetArrayItem(sh, 0)) ? cJSON_GetArrayItem(sh, 0)->valuedouble : -1;
    double d1 =
        cJSON_IsNumber(cJSON_GetArrayItem(sh, 1)) ? cJSON_GetArrayItem(sh, 1)->valuedouble : -1;
    if (d0 < 1 || d1 < 1 || d0 != floor(d0) || d1 != floor(d1) || d0 > 1e9 || d1 > 1e9)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "input '%s': shape must be two positive integers", name);
    if (d0 * d1 > (double)max_elems)
        return ls_fail(err, errlen, LS_ERR_TOO_LARGE,
                       "input '%s': shape [%.0f, %.0f] has %.0f elements; the limit is %zu", name,
                       d0, d1, d0 * d1, max_elems);
    if (r->B && (r->B != (int)d0 || r->L != (int)d1))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "input '%s': shape [%.0f, %.0f] differs from another input's [%d, %d]", name,
                       d0, d1, r->B, r->L);
    r->B = (int)d0;
    r->L = (int)d1;
    size_t n = (size_t)r->B * (size_t)r->L, k = 0;
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bs =
        cJSON_IsObject(par) ? cJSON_GetObjectItemCaseSensitive(par, "binary_data_size") : NULL;
    if (par && !cJSON_IsObject(par))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "input '%s': parameters must be an object",
                       name);
    if (bs) {
        const size_t esize = is32 ? 4 : 8, want = n * esize;
        if (!cJSON_IsNumber(bs) || bs->valuedouble < 0 || bs->valuedouble != floor(bs->valuedouble))
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "input '%s': binary_data_size must be a non-negative integer", name);
        if (data)
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "input '%s' has both \"data\" and binary_data_size", name);
        if (bs->valuedouble != (double)want)
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "input '%s': binary_data_size is %.0f bytes; shape [%d, %d] of %s "
                           "needs %zu",
                           name, bs->valuedouble, r->B, r->L, dt->valuestring, want);
        if (want > tail->n - tail->used)
            return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                           "input '%s': binary_data_size %zu goes beyond the body (%zu bytes of "
                           "binary data left after the JSON header%s)",
                           name, want, tail->n - tail->used,
                           tail->n ? "" : "; is Inference-Header-Content-Length set?");
        int32_t *dst = malloc(n * sizeof *dst);
        if (!dst) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for input '%s'", name);
        *slot[which] = dst;
        const unsigned char *p = tail->bin + tail->used;
        for (size_t i = 0; i < n; i++)
            dst[i] = v2__le(p + i * esize, is32);
        tail->used += want;
        return LS_OK;
    }
    if (!cJSON_IsArray(data))
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "input '%s': data must be an array (or parameters.binary_data_size given)",
                       name);
    int32_t *dst = malloc(n * sizeof *dst);
    if (!dst) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for input '%s'", name);
    *slot[which] = dst;
    if (v2__flatten(data, dst, n, &k, is32, err, errlen, name)) return LS_ERR_BAD_REQUEST;
    if (k != n)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "input '%s': shape [%d, %d] needs %zu data elements, got %zu", name, r->B,
                       r->L, n, k);
    return LS_OK;
}

ls_status v2_request_parse(const char *body, size_t len, size_t json_len, size_t max_elems,
                           v2_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (json_len > len)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "Inference-Header-Content-Length is %zu but the body has only %zu bytes",
                       json_len, len);
    cJSON *root = fmt_json_parse(body, json_len);
    if (!root && json_len < len)
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                       "the JSON header (the first %zu bytes, as Inference-Header-Content-Length "
                       "says) is not valid JSON",
                       json_len);
    if (!root) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "request body is not valid JSON");
    char why[320];
    if (fmt_json_check_strings(body, json_len, why, sizeof why)) {
        cJSON_Delete(root);
        return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "%s", why);
    }
    v2__tail tail = {(const unsigned char *)body + json_len, len - json_len, 0};
    ls_status st = LS_OK;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(inputs)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                     "request must be an object with an \"inputs\" array");
        goto done;
    }
    if (id && !cJSON_IsString(id)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "\"id\" must be a string");
        goto done;
    }
    if (id) snprintf(out->id, sizeof out->id, "%s", id->valuestring);
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (par && !cJSON_IsObject(par)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "\"parameters\" must be an object");
        goto done;
    }
    const cJSON *nh = par ? cJSON_GetObjectItemCaseSensitive(par, "num_hashes") : NULL;
    const cJSON *hs = par ? cJSON_GetObjectItemCaseSensitive(par, "hash_seed") : NULL;
    if (nh && !cJSON_IsNull(nh)) {
        if (!cJSON_IsNumber(nh) || nh->valuedouble != floor(nh->valuedouble) ||
            nh->valuedouble < 1 || nh->valuedouble > 64) {
            st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                         "parameters.num_hashes must be an integer in [1, 64]");
            goto done;
        }
        out->num_hashes = (int)nh->valuedouble;
    }
    if (hs && !cJSON_IsNull(hs)) {
        if (!cJSON_IsNumber(hs) || hs->valuedouble != floor(hs->valuedouble) ||
            hs->valuedouble < 0 || hs->valuedouble > 9007199254740992.0) {
            st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                         "parameters.hash_seed must be a non-negative integer (at most 2^53)");
            goto done;
        }
        out->has_hash_seed = 1;
        out->hash_seed = (int64_t)hs->valuedouble;
    }
    const cJSON *bo = par ? cJSON_GetObjectItemCaseSensitive(par, "binary_data_output") : NULL;
    if (bo && !cJSON_IsBool(bo)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                     "parameters.binary_data_output must be true or false");
        goto done;
    }
    out->binary_output = cJSON_IsTrue(bo);
    const cJSON *in;
    cJSON_ArrayForEach(in, inputs)
    {
        if ((st = v2__input(in, max_elems, &tail, out, err, errlen))) goto done;
    }
    if (!out->input_ids) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "input 'input_ids' is required");
        goto done;
    }
    if (tail.used != tail.n) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                     "%zu bytes of binary data follow the JSON header but the inputs' "
                     "binary_data_size add up to %zu",
                     tail.n, tail.used);
        goto done;
    }
    if (outs) {
        if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) > 16) {
            st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                         "\"outputs\" must be an array of at most 16 {\"name\": ...} objects");
            goto done;
        }
        out->outputs = calloc((size_t)cJSON_GetArraySize(outs) + 1, sizeof *out->outputs);
        if (!out->outputs) {
            st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
            goto done;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, outs)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
            if (!cJSON_IsString(n)) {
                st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                             "every requested output needs a string \"name\"");
                goto done;
            }
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "parameters");
            const cJSON *ob =
                cJSON_IsObject(op) ? cJSON_GetObjectItemCaseSensitive(op, "binary_data") : NULL;
            if ((op && !cJSON_IsObject(op)) || (ob && !cJSON_IsBool(ob))) {
                st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                             "output '%.64s': parameters.binary_data must be true or false",
                             n->valuestring);
                goto done;
            }
            if (op && cJSON_GetObjectItemCaseSensitive(op, "classification")) {
                st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST,
                             "output '%.64s': the classification extension is not supported",
                             n->valuestring);
                goto done;
            }
            out->out_binary[out->noutputs] = ob ? (signed char)cJSON_IsTrue(ob) : -1;
            if (!(out->outputs[out->noutputs] = strdup(n->valuestring))) {
                st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
                goto done;
            }
            out->noutputs++;
        }
    }
done:
    cJSON_Delete(root);
    if (st) v2_request_free(out);
    return st;
}

/* ---- response ------------------------------------------------------------------------- */

char *v2_response_encode(const char *model_name, const char *id, const v2_output *outs, int n,
                         size_t *len, size_t *json_len)
{
    *json_len = 0;
    ls_buf b = {0};
    ls_buf_puts(&b, "{\"model_name\":");
    ls_buf_str(&b, model_name, strlen(model_name));
    if (id && *id) {
        ls_buf_puts(&b, ",\"id\":");
        ls_buf_str(&b, id, strlen(id));
    }
    ls_buf_puts(&b, ",\"outputs\":[");
    for (int i = 0; i < n; i++) {
        const v2_output *o = &outs[i];
        ls_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        ls_buf_str(&b, o->name, strlen(o->name));
        ls_buf_puts(&b, ",\"datatype\":\"FP32\",\"shape\":[");
        size_t count = 1;
        for (int d = 0; d < o->ndim; d++) {
            ls_buf_printf(&b, "%s%lld", d ? "," : "", (long long)o->shape[d]);
            count *= (size_t)o->shape[d];
        }
        if (o->binary) {
            ls_buf_printf(&b, "],\"parameters\":{\"binary_data_size\":%zu}}", count * 4);
            continue;
        }
        ls_buf_puts(&b, "],\"data\":");
        ls_buf_floats(&b, o->data, count);
        ls_buf_puts(&b, "}");
    }
    ls_buf_puts(&b, "]}");
    const size_t header = b.n;
    for (int i = 0; i < n; i++) {
        const v2_output *o = &outs[i];
        if (!o->binary) continue;
        size_t count = 1;
        for (int d = 0; d < o->ndim; d++)
            count *= (size_t)o->shape[d];
        ls_buf_reserve(&b, count * 4);
        if (b.oom) break;
        unsigned char *p = (unsigned char *)b.p + b.n;
        for (size_t k = 0; k < count; k++, p += 4) {
            uint32_t u;
            memcpy(&u, &o->data[k], 4);
            p[0] = (unsigned char)u, p[1] = (unsigned char)(u >> 8);
            p[2] = (unsigned char)(u >> 16), p[3] = (unsigned char)(u >> 24);
        }
        b.n += count * 4;
        b.p[b.n] = 0;
        *json_len = header;
    }
    return ls_buf_finish(&b, len);
}
