/* The KServe v2 infer path shared by longserve-run and the server's
 * /v2/models/{m}/infer: request body → engine batch → response body. */
#ifndef SRV_V2_INFER_H
#define SRV_V2_INFER_H

#include <stddef.h>

#include "../engine/engine.h"

/* Runs one v2 infer request. On success *resp is a malloc'd JSON body. On failure the
 * status says which HTTP family (ls_status_http) and err says what went wrong. */
ls_status v2_infer(eng_ctx *ctx, const eng_model *m, const char *model_name, const char *body,
                   size_t len, char **resp, size_t *resp_len, char *err, size_t errlen);

#endif
