/* The text routes' jobs (TEI /embed, /embed_all, /predict, /tokenize, /decode, OpenAI
 * /v1/embeddings, pipelines /token_classify, /fill_mask, /answer), in the pieces the
 * server runs on different threads:
 *
 *     txt_job j;                                       // one request
 *     txt_job_prepare(&j, kind, body, len, models, n, &lim, &reply, ...); // uv pool:
 *         // decode (proto/tei.h), pick the model, tokenize, apply truncation, global
 *         // attention and long-document windows -> rows of token ids (400/413/422)
 *         // /tokenize and /decode are answered here (*reply)
 *     txt_batch_run(ctx, jobs, n, NULL, err, errlen);  // engine worker: pack the rows of
 *         // many jobs into one ragged batch, forward, keep each row's part (pooled vector,
 *         // logits of the mask, QA logits...)
 *     char *body = txt_job_encode(&j, &len);           // uv pool: the engine's pipelines
 *         // (engine/pipeline.h: aggregation of windows, softmax, spans, top-k), JSON
 *     txt_job_free(&j);
 *
 * A job's results never depend on the jobs it ran with (rows are independent sequences). */
#ifndef SRV_TEXT_H
#define SRV_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../engine/chunk.h"
#include "../engine/engine.h"
#include "../tokenizer/tokenizer.h"
#include "../proto/tei.h"
#include "batch.h"

/* What a text route needs to know of a served model (filled at startup, read-only):
 * pooling, Normalize and the mask token are in info, as the engine loaded them. */
typedef struct {
    const char *name;
    const eng_model_info *info;
    const tok_tokenizer *tok;   /* eng_model_tokenizer: NULL without tokenizer.json (v2 only) */
    const char *const *aliases; /* [naliases] other names requests may use (--served-model-name) */
    int naliases;
} txt_model;

/* 1 if name is the model's name or one of its aliases. */
int txt_model_named(const txt_model *m, const char *name);

typedef struct {
    long long max_input_tokens; /* per sequence and per request (--max-input-tokens) */
    int max_inputs;             /* inputs per request (--max-client-batch-size) */
    int max_global;             /* global tokens per sequence (--max-global-tokens) */
    int auto_truncate;          /* truncate when the request does not say (--auto-truncate) */
    int any_model_name;         /* one model: any "model" is it (--accept-any-model-name) */
    int max_chunks;             /* chunks per request, all inputs together (--max-chunks) */
} txt_limits;

typedef struct {
    int32_t *ids, *type_ids; /* [n], in the job's arena with glob */
    uint8_t *glob;           /* [n] 1 global, or NULL: the head's automatic choice */
    int n, input, mask_pos;
    int lead, c0, nc;    /* special tokens before the content; its content tokens [c0, c0 + nc) */
    int skip;            /* leading tokens left out of pooling (a prompt, include_prompt false) */
    float *out;          /* the row's results after the run (the job's arena) */
    const float *states; /* (n, H) its token states in the batch's outputs, while kept */
} txt_row;

/* An input's chunks (late chunking): spans, tokens, bytes and what truncation cut. */
typedef struct {
    eng_chunk *c;           /* [n] characters and content tokens */
    int32_t *bstart, *bend; /* [n] the spans in bytes of the input's text */
    uint8_t *cut;           /* [n] 1: truncation cut some of the chunk's tokens */
    int n;
} txt_chunks;

typedef struct {
    tei_request rq;
    const txt_model *m;
    tok_encoding **enc; /* [rq.n]; NULL entries for token-id inputs */
    txt_row *rows;
    int nrows;
    txt_chunks *ck;          /* [rq.n] when the request has chunks, else NULL (the arena) */
    tei_chunk_list *cklists; /* [rq.n] their vectors, pooled when the rows are kept */
    tei_echo echo;
    int prompt_skip; /* tokens of the prompt not pooled (include_prompt false), else 0 */
    ls_status st;    /* the run's verdict for this job */
    char err[512];
    bt_steps steps;    /* a job run in steps (txt_job_step), else per 0 */
    char headers[512]; /* extra response headers, "Name: value\r\n" each */
    /* rows, results and the encoder's temporaries: freed with the job. Used by one
     * thread at a time (prepare, run, encode follow each other). */
    ls_arena arena;
} txt_job;

/* Decodes and tokenizes. On success either *reply holds the whole response (tokenize,
 * decode) or the job has rows for the engine. Fills j->headers. */
ls_status txt_job_prepare(txt_job *j, tei_kind kind, const char *body, size_t len,
                          const txt_model *const *models, int nmodels, const txt_limits *lim,
                          char **reply, size_t *reply_len, char *err, size_t errlen);
void txt_job_free(txt_job *j);

size_t txt_job_tokens(const txt_job *j);
/* 1 if the job's rows carry explicit global masks (batches only with its kind). */
int txt_job_explicit_global(const txt_job *j);

/* Runs jobs (same model, same txt_job_explicit_global) as one packed batch and keeps
 * each row's results; sets every job's st/err. Input errors fall back to one job at a
 * time, so a bad request cannot fail its batch-mates. */
ls_status txt_batch_run(eng_ctx *ctx, txt_job *const *jobs, int n, bt_stats *stats, char *err,
                        size_t errlen);

/* Runs j's next step (its rows as one packed batch, j->steps planned), as txt_batch_run
 * would run j alone; j->st is set once it finishes or fails. */
ls_status txt_job_step(eng_ctx *ctx, txt_job *j, bt_stats *stats, char *err, size_t errlen);

/* The response of a job that ran (malloc'd; NULL with j->st/err set on failure). */
char *txt_job_encode(txt_job *j, size_t *len);

#endif
