/* Fuzz target: a KServe v2 infer request body from untrusted bytes. v2_request_parse
 * must refuse it with a 4xx-class status and message or return arrays that hold B*L
 * elements; the id and error text it hands on must survive JSON encoding unchanged,
 * since both are echoed to the client. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../proto/http_errors.h"
#include "../proto/v2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): checks must survive -DNDEBUG release builds. */
#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

/* Small, so that the fuzzer explores shapes instead of allocating gigabytes. */
#define MAX_ELEMS (1u << 16)

/* body must parse as a JSON object whose string `key` equals want. */
static void check_echo(char *body, size_t len, const char *key, const char *want)
{
    REQUIRE(body && strlen(body) == len);
    cJSON *j = cJSON_ParseWithLength(body, len);
    REQUIRE(j);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    REQUIRE(cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
    cJSON_Delete(j);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    v2_request r;
    char err[256] = "";
    size_t len = 0;
    /* the binary tensor data extension: a NUL ends the JSON header, binary data follow */
    const uint8_t *nul = memchr(data, 0, size);
    const size_t json_len = nul ? (size_t)(nul - data) : size;
    ls_status st =
        v2_request_parse((const char *)data, size, json_len, MAX_ELEMS, &r, err, sizeof err);
    if (st != LS_OK) {
        REQUIRE(st == LS_ERR_BAD_REQUEST || st == LS_ERR_TOO_LARGE || st == LS_ERR_NOMEM);
        REQUIRE(err[0] && memchr(err, 0, sizeof err));
        REQUIRE(r.input_ids == NULL && r.outputs == NULL);
        int http = 0; /* the error body the server sends for it */
        char *body = herr_encode(HERR_FAM_KSERVE, herr_from_status(st), err, &http, &len);
        REQUIRE(http == 400 || http == 413 || http == 500);
        check_echo(body, len, "error", err);
        return 0;
    }
    REQUIRE(r.B >= 1 && r.L >= 1 && (size_t)r.B * (size_t)r.L <= MAX_ELEMS);
    REQUIRE(r.input_ids && memchr(r.id, 0, sizeof r.id));
    /* read every element, so a short allocation shows under ASan/valgrind */
    const int32_t *in[] = {r.input_ids, r.attention_mask, r.global_attention_mask,
                           r.token_type_ids};
    int64_t sum = 0;
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; in[k] && i < (size_t)r.B * (size_t)r.L; i++)
            sum += in[k][i];
    (void)sum;
    REQUIRE(r.noutputs >= 0 && r.noutputs <= 16 && (r.noutputs == 0 || r.outputs));
    for (int i = 0; i < r.noutputs; i++)
        REQUIRE(r.outputs[i] && v2_request_wants(&r, r.outputs[i]));

    float vals[2] = {0.5f, -1.0f};
    v2_output o = {.name = "logits", .ndim = 2, .shape = {1, 2}, .data = vals};
    o.binary = v2_request_binary(&r, "logits");
    size_t header = 0;
    char *body = v2_response_encode("model", r.id, &o, 1, &len, &header);
    REQUIRE(!body || header == (o.binary ? len - sizeof vals : 0));
    if (body && o.binary) len = header;
    if (r.id[0])
        check_echo(body, len, "id", r.id);
    else
        free(body);
    v2_request_free(&r);
    v2_request_free(&r);
    return 0;
}
