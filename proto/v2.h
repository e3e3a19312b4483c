/* KServe v2 / Open Inference Protocol: infer request decoding and response encoding,
 * for the Longformer-style inputs (input_ids, attention_mask, global_attention_mask,
 * token_type_ids) and float32 outputs, in JSON or with Triton's binary tensor data
 * extension: the body is a JSON header of json_len bytes (the HTTP header
 * Inference-Header-Content-Length) followed by raw little-endian tensors, an input's
 * "parameters": {"binary_data_size": bytes} saying that its data are the next bytes, and
 * an output's "parameters": {"binary_data": true} (or the request's
 * "binary_data_output": true) asking for its data the same way in the response. */
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
    signed char out_binary[16]; /* per requested output: binary_data 1/0, -1 not given */
    int binary_output;          /* "parameters": {"binary_data_output": true} */
} v2_request;

/* Decodes a request body whose first json_len bytes are the JSON header (json_len == len:
 * all JSON). Errors: LS_ERR_BAD_REQUEST for malformed JSON, wrong types, unknown or
 * repeated input names, shapes that disagree with the data, binary framing that does not
 * add up (json_len beyond the body, binary_data_size not shape x datatype, bytes left over
 * or missing); LS_ERR_TOO_LARGE when B·L exceeds max_elems. The message says what and
 * where. */
ls_status v2_request_parse(const char *body, size_t len, size_t json_len, size_t max_elems,
                           v2_request *out, char *err, size_t errlen);
void v2_request_free(v2_request *r);
/* 1 if the request asks for output `name` (or asks for all). */
int v2_request_wants(const v2_request *r, const char *name);
/* 1 if output `name` goes back as binary data: its own binary_data, else the request's
 * binary_data_output. */
int v2_request_binary(const v2_request *r, const char *name);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[3];
    const float *data; /* row-major, product of shape elements */
    int binary;        /* sent as raw bytes after the JSON header */
} v2_output;

/* Encodes {"model_name", "id", "outputs": [{"name","datatype":"FP32","shape","data"}]};
 * a binary output has "parameters": {"binary_data_size": bytes} instead of "data", and
 * its little-endian float32s follow the JSON, in output order. Returns a malloc'd body
 * (NUL-terminated after its last byte), or NULL when out of memory; *json_len is the
 * JSON header's length when an output is binary, 0 when the body is all JSON. Floats are
 * printed with 9 significant digits, which round-trips float32 exactly. */
char *v2_response_encode(const char *model_name, const char *id, const v2_output *outs, int n,
                         size_t *len, size_t *json_len);

#endif
