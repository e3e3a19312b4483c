/* The KServe v2 infer path shared by longserve-run and the server's
 * /v2/models/{m}/infer, in pieces so the scheduler can put the rows of several requests
 * into one packed batch:
 *
 *     v2_job j;                                    // one request
 *     v2_job_decode(&info, body, len, len, max, &j, err, errlen); // parse + validate (400/413/422)
 *     v2_job *jobs[] = {&j, ...};                  // any number of requests, one model
 *     v2_batch_run(ctx, jobs, n, NULL, err, errlen); // pack rows, forward, copy each slice
 *     char *body = v2_job_encode(&j, "lf", &len, &json_len); // the response (or j.st / j.err)
 *     v2_job_free(&j);
 *
 * v2_infer() is the whole path for one request. A job's outputs do not depend on the
 * jobs it ran with (rows are independent sequences of the packed batch). */
#ifndef SRV_V2_INFER_H
#define SRV_V2_INFER_H

#include <stddef.h>

#include "../engine/engine.h"
#include "../proto/v2.h"
#include "batch.h"

/* Elements per input a request may carry (B·L): 64 sequences of 64k tokens. */
#define V2_MAX_ELEMS ((size_t)1 << 22)

typedef struct {
    v2_request rq;
    int B, L;
    uint8_t *attn, *glob; /* (B, L) 0/1 flags, or NULL (all kept / head's automatic choice) */
    /* after v2_batch_run: this job's verdict and, on success, its outputs */
    ls_status st;
    char err[256];
    bt_steps steps; /* a job run in steps (v2_job_step), else per 0 */
    int nout;
    v2_output out[ENG_MAX_OUTPUTS]; /* names are the engine's static strings */
    float *out_data[ENG_MAX_OUTPUTS];
} v2_job;

/* Parses and validates a body against a model: token ids inside the vocabulary, type ids
 * inside type_vocab_size, rows no longer than the model accepts, flags 0/1, requested
 * outputs produced by the model. The first json_len bytes are JSON, the rest binary
 * tensor data (json_len == len: all JSON; proto/v2.h). max_elems bounds B·L
 * (LS_ERR_TOO_LARGE beyond). */
ls_status v2_job_decode(const eng_model_info *info, const char *body, size_t len, size_t json_len,
                        size_t max_elems, v2_job *j, char *err, size_t errlen);
void v2_job_free(v2_job *j);
/* Tokens the job puts into a batch (B·L) and its global-token count (explicit mask only). */
size_t v2_job_tokens(const v2_job *j);
size_t v2_job_globals(const v2_job *j);
/* 1 if the job brings its own global_attention_mask: such jobs batch only with each other,
 * because eng_batch has one mask for the whole batch or none. */
int v2_job_explicit_global(const v2_job *j);

/* Runs jobs (all with the same v2_job_explicit_global) as one packed batch, then copies
 * each job's rows of every output into the job. Sets every job's st/err. When the batch
 * fails on an input error, each job is run alone so that one request's bad input cannot
 * fail its batch-mates (server/batch.h). Returns LS_OK unless something failed for all
 * (out of memory, device); stats (may be NULL) adds the tokens packed. */
/* Runs j's next step (j->steps planned), as v2_batch_run would run j alone. */
ls_status v2_job_step(eng_ctx *ctx, v2_job *j, bt_stats *stats, char *err, size_t errlen);
ls_status v2_batch_run(eng_ctx *ctx, v2_job *const *jobs, int n, bt_stats *stats, char *err,
                       size_t errlen);

/* The response body of a job that ran successfully (malloc'd, NULL when out of memory);
 * *json_len: the JSON header's length when outputs go as binary data, else 0. */
char *v2_job_encode(const v2_job *j, const char *model_name, size_t *len, size_t *json_len);

/* Runs one v2 infer request. On success *resp is a malloc'd JSON body. On failure the
 * status says which class (proto/http_errors.c maps it to HTTP) and err says what went wrong. */
ls_status v2_infer(eng_ctx *ctx, const eng_model *m, const char *model_name, const char *body,
                   size_t len, char **resp, size_t *resp_len, char *err, size_t errlen);

#endif
