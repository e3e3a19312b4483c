/* v2 infer: decode, check the inputs against the model, pack rows into one ragged
 * batch, run it, and shape the outputs back to [B, L, ...] as Hugging Face returns them. */
#include <stdlib.h>
#include <string.h>

#include "../proto/v2.h"
#include "v2_infer.h"

/* Elements per input a request may carry (B·L): 64 sequences of 64k tokens. */
#define V2_MAX_ELEMS ((size_t)1 << 22)

static ls_status v2__flags(const int32_t *v, size_t n, const char *name, uint8_t **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (!v) return LS_OK;
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0 && v[i] != 1)
            return ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                           "input '%s': element %zu is %d; it must be 0 or 1", name, i, v[i]);
    uint8_t *f = malloc(n);
    if (!f) return ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) f[i] = (uint8_t)v[i];
    *out = f;
    return LS_OK;
}

ls_status v2_infer(eng_ctx *ctx, const eng_model *m, const char *model_name, const char *body,
                   size_t len, char **resp, size_t *resp_len, char *err, size_t errlen)
{
    *resp = NULL;
    v2_request rq;
    ls_status st = v2_request_parse(body, len, V2_MAX_ELEMS, &rq, err, errlen);
    if (st) return st;
    const size_t n = (size_t)rq.B * (size_t)rq.L;
    uint8_t *attn = NULL, *glob = NULL;
    int32_t *offsets = malloc(sizeof(int32_t) * ((size_t)rq.B + 1));
    if (!offsets) st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory");
    if (!st) st = v2__flags(rq.attention_mask, n, "attention_mask", &attn, err, errlen);
    if (!st) st = v2__flags(rq.global_attention_mask, n, "global_attention_mask", &glob, err, errlen);
    eng_outputs out;
    if (!st) {
        for (int b = 0; b <= rq.B; b++) offsets[b] = b * rq.L;
        eng_batch batch = {
            .nseq = rq.B,
            .offsets = offsets,
            .ids = rq.input_ids,
            .type_ids = rq.token_type_ids,
            .attn_mask = attn,
            .global_mask = glob,
        };
        st = eng_ctx_forward(ctx, &batch, &out, err, errlen);
    }
    if (!st) {
        v2_output vo[ENG_MAX_OUTPUTS];
        int k = 0;
        for (int i = 0; i < out.n; i++) {
            const eng_tensor *t = &out.t[i];
            if (!v2_request_wants(&rq, t->name)) continue;
            v2_output *o = &vo[k++];
            o->name = t->name;
            o->data = t->data;
            o->ndim = 0;
            o->shape[o->ndim++] = rq.B;
            if (t->per_token) o->shape[o->ndim++] = rq.L;
            if (t->width) o->shape[o->ndim++] = t->width;
        }
        for (int i = 0; i < rq.noutputs; i++) {
            int found = 0;
            for (int j = 0; j < out.n; j++) found |= strcmp(rq.outputs[i], out.t[j].name) == 0;
            if (!found) {
                eng_model_info info;
                eng_model_get_info(m, &info);
                st = ls_fail(err, errlen, LS_ERR_INVALID_INPUT,
                             "output '%.64s' is not produced by this model (%s)", rq.outputs[i],
                             info.architecture[0] ? info.architecture : info.model_type);
                break;
            }
        }
        if (!st) {
            *resp = v2_response_encode(model_name, rq.id, vo, k, resp_len);
            if (!*resp) st = ls_fail(err, errlen, LS_ERR_NOMEM, "out of memory for the response");
        }
    }
    free(offsets);
    free(attn);
    free(glob);
    v2_request_free(&rq);
    return st;
}
