/* TGI's generation bodies (tgi.h): the request decoder and the response encoders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/json.h"
#include "tgi.h"

void tgi_request_free(tgi_request *r)
{
    if (!r) return;
    free(r->inputs);
    for (int i = 0; i < r->nstop; i++)
        free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

static ls_status tgi__bad(char *err, size_t errlen, const char *field, const char *what)
{
    return ls_fail(err, errlen, LS_ERR_INVALID_INPUT, "`%s` %s", field, what);
}

static ls_status tgi__bool(const cJSON *o, const char *key, const char *field, int *out, char *err,
                           size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!cJSON_IsBool(v)) return tgi__bad(err, errlen, field, "must be a boolean");
    *out = cJSON_IsTrue(v);
    return LS_OK;
}

/* An integer in [lo, hi] (absent or null: *out unchanged). */
static ls_status tgi__int(const cJSON *o, const char *key, const char *field, double lo, double hi,
                          long long *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return tgi__bad(err, errlen, field, "must be an integer");
    if (v->valuedouble < lo || v->valuedouble > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be in [%.0f, %.0f]; got %.0f", lo, hi, v->valuedouble);
        return tgi__bad(err, errlen, field, what);
    }
    *out = (long long)v->valuedouble;
    return LS_OK;
}

/* A number in (lo, hi] or [lo, hi] (lo_open). */
static ls_status tgi__num(const cJSON *o, const char *key, const char *field, double lo,
                          int lo_open, double hi, float *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return LS_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return tgi__bad(err, errlen, field, "must be a number");
    const double x = v->valuedouble;
    if ((lo_open ? x <= lo : x < lo) || x > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be in %s%g, %g]; got %g", lo_open ? "(" : "[", lo, hi, x);
        return tgi__bad(err, errlen, field, what);
    }
    *out = (float)x;
    return LS_OK;
}

static ls_status tgi__params(tgi_request *r, const cJSON *p, char *err, size_t errlen)
{
    if (!cJSON_IsObject(p)) return tgi__bad(err, errlen, "parameters", "must be an object");
    long long v = -1;
    ls_status st;
    if ((st = tgi__int(p, "max_new_tokens", "parameters.max_new_tokens", 1, 1 << 20, &v, err,
                       errlen)))
        return st;
    r->max_new_tokens = (int)v;
    if ((st = tgi__bool(p, "do_sample", "parameters.do_sample", &r->do_sample, err, errlen)) ||
        (st = tgi__num(p, "temperature", "parameters.temperature", 0, 1, 1e6, &r->temperature, err,
                       errlen)) ||
        (st = tgi__num(p, "top_p", "parameters.top_p", 0, 1, 1, &r->top_p, err, errlen)) ||
        (st = tgi__num(p, "repetition_penalty", "parameters.repetition_penalty", 0, 1, 1e6,
                       &r->repetition_penalty, err, errlen)) ||
        (st = tgi__bool(p, "return_full_text", "parameters.return_full_text", &r->return_full_text,
                        err, errlen)) ||
        (st = tgi__bool(p, "details", "parameters.details", &r->details, err, errlen)) ||
        (st = tgi__bool(p, "decoder_input_details", "parameters.decoder_input_details",
                        &r->decoder_input_details, err, errlen)) ||
        (st = tgi__bool(p, "use_cache", "parameters.use_cache", &r->use_cache, err, errlen)))
        return st;
    v = 0;
    if ((st = tgi__int(p, "top_k", "parameters.top_k", 1, 1 << 30, &v, err, errlen))) return st;
    r->top_k = (int)v;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(p, "seed");
    if (seed && !cJSON_IsNull(seed)) {
        if (!cJSON_IsNumber(seed) || seed->valuedouble != floor(seed->valuedouble) ||
            seed->valuedouble < 0 || seed->valuedouble > 18446744073709549568.0)
            return tgi__bad(err, errlen, "parameters.seed", "must be a non-negative integer");
        r->has_seed = 1;
        r->seed = (uint64_t)seed->valuedouble;
    }
    v = -1;
    if ((st = tgi__int(p, "num_hashes", "parameters.num_hashes", 1, 64, &v, err, errlen)))
        return st;
    r->num_hashes = (int)v;
    r->hash_seed = -1;
    if ((st = tgi__int(p, "hash_seed", "parameters.hash_seed", 0, 9007199254740991.0, &r->hash_seed,
                       err, errlen)))
        return st;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(p, "stop");
    if (stop && !cJSON_IsNull(stop)) {
        if (!cJSON_IsArray(stop))
            return tgi__bad(err, errlen, "parameters.stop", "must be a list of strings");
        if (cJSON_GetArraySize(stop) > TGI_MAX_STOP) {
            char what[64];
            snprintf(what, sizeof what, "has at most %d sequences", TGI_MAX_STOP);
            return tgi__bad(err, errlen, "parameters.stop", what);
        }
        const cJSON *s;
        cJSON_ArrayForEach(s, stop)
        {
            if (!cJSON_IsString(s) || !s->valuestring[0])
                return tgi__bad(err, errlen, "parameters.stop", "must hold non-empty strings");
            if (!(r->stop[r->nstop] = strdup(s->valuestring)))
                return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
            r->nstop++;
        }
    }
    /* TGI's other knobs: accepted when they ask for nothing */
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(p, "watermark");
    if (w && cJSON_IsTrue(w))
        return tgi__bad(err, errlen, "parameters.watermark", "is not supported");
    const cJSON *bo = cJSON_GetObjectItemCaseSensitive(p, "best_of");
    if (bo && !cJSON_IsNull(bo) && !(cJSON_IsNumber(bo) && bo->valuedouble == 1))
        return tgi__bad(err, errlen, "parameters.best_of", "must be 1 (one sequence per request)");
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(p, "grammar");
    if (gr && !cJSON_IsNull(gr))
        return tgi__bad(err, errlen, "parameters.grammar", "is not supported");
    return LS_OK;
}

ls_status tgi_request_parse(const char *body, size_t len, tgi_request *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->max_new_tokens = -1, r->use_cache = -1, r->num_hashes = -1, r->hash_seed = -1;
    cJSON *root = fmt_json_parse(body, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "the body is not valid JSON");
    ls_status st = LS_OK;
    char why[320];
    if (fmt_json_check_strings(body, len, why, sizeof why)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "%s", why);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        st = ls_fail(err, errlen, LS_ERR_BAD_REQUEST, "the body must be a JSON object");
        goto done;
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsString(in)) {
        st = tgi__bad(err, errlen, "inputs", in ? "must be a string" : "is required");
        goto done;
    }
    r->len = strlen(in->valuestring);
    if (!r->len) {
        st = tgi__bad(err, errlen, "inputs", "cannot be empty");
        goto done;
    }
    if (!(r->inputs = strdup(in->valuestring))) {
        st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
        goto done;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof r->model) {
            st = tgi__bad(err, errlen, "model", "must be a model name");
            goto done;
        }
        snprintf(r->model, sizeof r->model, "%s", m->valuestring);
    }
    if ((st = tgi__bool(root, "stream", "stream", &r->stream, err, errlen))) goto done;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (p && !cJSON_IsNull(p)) st = tgi__params(r, p, err, errlen);
done:
    cJSON_Delete(root);
    if (st) tgi_request_free(r);
    return st;
}

const char *tgi_finish_name(tgi_finish f)
{
    return f == TGI_FINISH_EOS ? "eos_token" : f == TGI_FINISH_STOP ? "stop_sequence" : "length";
}

static void tgi__token(ls_buf *b, const tgi_token *t)
{
    ls_buf_printf(b, "{\"id\":%d,\"text\":", (int)t->id);
    ls_buf_str(b, t->text, t->len);
    ls_buf_puts(b, ",\"logprob\":");
    ls_buf_float(b, t->logprob);
    ls_buf_printf(b, ",\"special\":%s}", t->special ? "true" : "false");
}

static void tgi__seed(ls_buf *b, const uint64_t *seed)
{
    if (seed)
        ls_buf_printf(b, "%llu", (unsigned long long)*seed);
    else
        ls_buf_puts(b, "null");
}

char *tgi_generate_encode(const char *text, size_t len, int details, tgi_finish finish, int ntokens,
                          const uint64_t *seed, const tgi_token *tokens, int n, int as_list,
                          size_t *out_len)
{
    ls_buf b = {0};
    ls_buf_puts(&b, as_list ? "[{\"generated_text\":" : "{\"generated_text\":");
    ls_buf_str(&b, text, len);
    if (details) {
        ls_buf_printf(&b,
                      ",\"details\":{\"finish_reason\":\"%s\",\"generated_tokens\":%d,\"seed\":",
                      tgi_finish_name(finish), ntokens);
        tgi__seed(&b, seed);
        ls_buf_puts(&b, ",\"prefill\":[],\"tokens\":[");
        for (int i = 0; i < n; i++) {
            if (i) ls_buf_puts(&b, ",");
            tgi__token(&b, &tokens[i]);
        }
        ls_buf_puts(&b, "]}");
    }
    ls_buf_puts(&b, as_list ? "}]" : "}");
    return ls_buf_finish(&b, out_len);
}

void tgi_stream_event(ls_buf *b, int index, const tgi_token *t, int final, const char *text,
                      size_t len, tgi_finish finish, int ntokens, const uint64_t *seed)
{
    ls_buf_printf(b, "data:{\"index\":%d,\"token\":", index);
    tgi__token(b, t);
    ls_buf_puts(b, ",\"top_tokens\":null,\"generated_text\":");
    if (final) {
        ls_buf_str(b, text, len);
        ls_buf_printf(b, ",\"details\":{\"finish_reason\":\"%s\",\"generated_tokens\":%d,\"seed\":",
                      tgi_finish_name(finish), ntokens);
        tgi__seed(b, seed);
        ls_buf_puts(b, "}}\n\n");
    } else {
        ls_buf_puts(b, "null,\"details\":null}\n\n");
    }
}

void tgi_stream_error(ls_buf *b, const char *msg, const char *type)
{
    ls_buf_puts(b, "data:{\"error\":");
    ls_buf_str(b, msg, strlen(msg));
    ls_buf_puts(b, ",\"error_type\":");
    ls_buf_str(b, type, strlen(type));
    ls_buf_puts(b, "}\n\n");
}
