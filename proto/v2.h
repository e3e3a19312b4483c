/* KServe v2 / Open Inference Protocol: infer request decoding and response encoding,
 * for the Longformer-style inputs (input_ids, attention_mask, global_attention_mask,
 * token_type_ids) and float32 outputs. */
#ifndef PR_V2_H
#define PR_V2_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

typedef struct {
    char id[128];                   /* request "id", echoed back ("" when absent) */
    int B, L;                       /* shape of every input */
    int32_t *input_ids;             /* (B, L) */
    int32_t *attention_mask;        /* (B, L) or NULL */
    int32_t *global_attention_mask; /* (B, L) or NULL */
    int32_t *token_type_ids;        /* (B, L) or NULL */
    /* "parameters": Reformer's per-request LSH settings (0 / has_hash_seed 0: the model's) */
    int num_hashes;
    int has_hash_seed;
    int64_t hash_seed;
    char **outputs; /* requested output names ("outputs": [{"name": ...}]), or NULL = all */
    int noutputs;
} v2_request;

/* Decodes a request body. Errors: LS_ERR_BAD_REQUEST for malformed JSON, wrong types,
 * unknown or repeated input names, shapes that disagree with the data;
 * LS_ERR_TOO_LARGE when B·L exceeds max_elems. The message says what and where. */
ls_status v2_request_parse(const char *body, size_t len, size_t max_elems, v2_request *out,
                           char *err, size_t errlen);
void v2_request_free(v2_request *r);
/* 1 if the request asks for output `name` (or asks for all). */
int v2_request_wants(const v2_request *r, const char *name);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[3];
    const float *data; /* row-major, product of shape elements */
} v2_output;

/* Encodes {"model_name", "id", "outputs": [{"name","datatype":"FP32","shape","data"}]}.
 * Returns a malloc'd NUL-terminated body, or NULL when out of memory. Floats are
 * printed with 9 significant digits, which round-trips float32 exactly. */
char *v2_response_encode(const char *model_name, const char *id, const v2_output *outs, int n,
                         size_t *len);

#endif
