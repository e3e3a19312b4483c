/* The text routes' bodies: requests of TEI (/embed, /embed_all, /predict, /tokenize,
 * /decode), OpenAI (/v1/embeddings) and the Hugging Face pipelines (/token_classify,
 * /fill_mask, /answer) decoded into one plain struct, and the TEI / pipeline response
 * encoders (OpenAI's is in openai.h). Shapes: proto/openapi.yaml. The long-document knobs
 * (global_attention, truncate policies, long_document) are decoded here for every route;
 * the server decides which apply. */
#ifndef PR_TEI_H
#define PR_TEI_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/status.h"

typedef enum {
    TEI_EMBED,
    TEI_EMBED_ALL,
    TEI_OPENAI_EMBED,
    TEI_PREDICT,
    TEI_TOKCLS,
    TEI_FILL_MASK,
    TEI_ANSWER,
    TEI_TOKENIZE,
    TEI_DECODE,
    TEI_SIMILARITY,   /* {"inputs": {"source_sentence", "sentences"}}: in[0] the source */
    TEI_RERANK,       /* {"query", "texts"}: in[i] = (query, texts[i]) */
    TEI_EMBED_SPARSE, /* SPLADE vectors of a masked-LM head */
} tei_kind;

/* /predict's function_to_apply (engine/pipeline.h's classify modes) */
typedef enum {
    TEI_FN_DEFAULT, /* sigmoid for one label, softmax for more (raw_scores: none) */
    TEI_FN_NONE,
    TEI_FN_SIGMOID,
    TEI_FN_SOFTMAX
} tei_fn;

/* How a request cuts its documents into chunks (late chunking). */
typedef enum {
    TEI_CHUNKS_NONE,
    TEI_CHUNKS_SPANS,     /* [[start, end], ...] */
    TEI_CHUNKS_TOKENS,    /* {"tokens": N, "overlap": M} */
    TEI_CHUNKS_SENTENCES, /* {"sentences": K} */
    TEI_CHUNKS_SEPARATOR  /* {"separator": "\n\n"} */
} tei_chunking;

typedef enum { TEI_TRUNC_DEFAULT = -1, TEI_TRUNC_NONE, TEI_TRUNC_RIGHT, TEI_TRUNC_LEFT } tei_trunc;
/* Per-request pooling; TEI_POOL_DEFAULT: the model's (sentence-transformers config). */
typedef enum { TEI_POOL_DEFAULT = -1, TEI_POOL_CLS, TEI_POOL_MEAN, TEI_POOL_MAX } tei_pool;

typedef struct {
    char *text; /* UTF-8, NUL-terminated (owned); NULL for a token-id input */
    size_t len;
    char *pair; /* second text: /predict pairs, /answer context (owned), or NULL */
    size_t pair_len;
    int32_t *ids; /* token ids (OpenAI [int], TEI [int], /decode), owned, or NULL */
    size_t nids;
} tei_input;

typedef struct {
    tei_kind kind;
    tei_input *in; /* [n] */
    int n;
    int batched;     /* the inputs came as a list: the answer is a list per input */
    char model[128]; /* "model" ("" when absent) */
    /* "prompt_name" ("" when absent): sentence-transformers' prompt (embedding routes) */
    char prompt_name[128];
    int normalize; /* -1: absent */
    tei_pool pooling;
    tei_trunc truncate;
    tei_trunc direction;     /* "truncation_direction" (right, left), used when truncating */
    int add_special_tokens;  /* /tokenize, default 1 */
    int skip_special_tokens; /* /decode, default 1 */
    int raw_scores;          /* /predict, /rerank */
    tei_fn fn;               /* /predict "function_to_apply" */
    int return_text;         /* /rerank; /embed, /v1/embeddings with chunks: each chunk's text */
    int top_k;               /* /fill_mask (default 5), /predict (0: every label) */
    int hf_params;           /* the body had "parameters" (Hugging Face's Inference API) */
    int base64;              /* /v1/embeddings encoding_format */
    int dimensions;          /* /embed, /v1/embeddings: keep the first values (0: all) */
    int max_answer_len;      /* /answer, default 15 tokens (the pipeline's) */
    char **ignore_labels;    /* /token_classify, default {"O"} */
    int nignore;
    /* "global_attention": {"cls", "token_indices", "spans": [[start, end)]} */
    int ga_given, ga_cls;
    int32_t *ga_idx; /* [ga_nidx] */
    int ga_nidx;
    int32_t *ga_spans; /* [2 * ga_nspans] */
    int ga_nspans;
    /* "chunks" (late chunking, /embed and /v1/embeddings): explicit character spans
     * [[start, end)] in code points, the same for every input or one list per input
     * (ck_spans + 2 * ck_first[i], ck_count[i] of them), or a chunker */
    tei_chunking ck_kind;
    int32_t *ck_spans;        /* [2 * total] */
    int *ck_first, *ck_count; /* [n] */
    int ck_tokens, ck_overlap, ck_sentences;
    char *ck_sep; /* "separator" (owned) */
    size_t ck_seplen;
    int ga_chunk_starts; /* "global_attention": {"chunk_starts": true} */
    /* "long_document": {"window", "stride", "aggregate": "mean"} */
    int ld_given, ld_window, ld_stride;
    /* Reformer LSH: "num_hashes" (0: absent), "hash_seed" (has_hash_seed) */
    int num_hashes;
    int has_hash_seed;
    long long hash_seed;
} tei_request;

/* Decodes a body for route kind. Errors: LS_ERR_BAD_REQUEST for malformed JSON (or a body
 * that is not UTF-8: the message names the byte offset), wrong types, empty inputs;
 * LS_ERR_TOO_LARGE for more than max_inputs inputs; LS_ERR_INVALID_INPUT for values
 * that are well-typed but impossible. The message names the field. */
ls_status tei_request_parse(tei_kind kind, const char *body, size_t len, int max_inputs,
                            tei_request *out, char *err, size_t errlen);
void tei_request_free(tei_request *r);

/* What TEI's root route (POST /, /invocations) needs before it chooses a route: the body's
 * "model" ("" when absent) and the shape of its inputs. Never fails: a body it cannot read
 * is TEI_SHAPE_TEXT, and the chosen route's parser says what is wrong with it. */
typedef enum { TEI_SHAPE_TEXT, TEI_SHAPE_SIMILARITY, TEI_SHAPE_RERANK } tei_shape;
void tei_root_peek(const char *body, size_t len, char *model, size_t model_len, tei_shape *shape);

/* ---- responses (malloc'd JSON, NULL when out of memory) ---------------------------------- */

/* /embed: [[f32 x dim] x n] */
char *tei_embed_encode(const float *const *vecs, int n, int dim, size_t *len);
/* One chunk of a late-chunking response. */
typedef struct {
    int start, end;   /* characters (code points) of the input */
    int tokens;       /* tokens pooled */
    int truncated;    /* truncation cut some of its tokens */
    const float *vec; /* [dim], NULL (null) when the chunk has no tokens */
    const char *text; /* the chunk's text (text_len bytes), NULL: not asked for */
    size_t text_len;
} tei_chunk;
typedef struct {
    const tei_chunk *c;
    int n;
} tei_chunk_list;
/* ,"chunks":[{"index","start","end","tokens","truncated","embedding","text"?}...],
 * "truncated_chunks":[k...] (float arrays, or base64 of little-endian float32). */
void tei_buf_chunks(ls_buf *b, const tei_chunk_list *l, int dim, int base64);
/* /embed with "chunks": [{"embedding":[f32 x dim],"chunks":[...],"truncated_chunks":[...]} x n] */
char *tei_embed_chunks_encode(const float *const *vecs, const tei_chunk_list *chunks, int n,
                              int dim, size_t *len);
/* /embed_all: [[[f32 x dim] x ntok[i]] x n] */
char *tei_embed_all_encode(const float *const *rows, const int *ntok, int n, int dim, size_t *len);

/* /embed_sparse: [[{"index","value"}...] x n], the non-zero values of each vecs[i] (dim). */
char *tei_embed_sparse_encode(const float *const *vecs, int n, int dim, size_t *len);

typedef struct {
    const char *label;
    float score;
} tei_score;
/* /predict: [{"score","label"}...] per input; a list of those when batched. */
char *tei_predict_encode(const tei_score *const *lists, const int *counts, int n, int batched,
                         size_t *len);

typedef struct {
    const char *entity;
    float score;
    int index;
    const char *word;
    size_t word_len;
    int start, end; /* characters */
} tei_entity;
/* /token_classify: [{"entity","score","index","word","start","end"}...] per input. */
char *tei_tokcls_encode(const tei_entity *const *lists, const int *counts, int n, int batched,
                        size_t *len);

typedef struct {
    float score;
    int token;
    const char *token_str, *sequence;
} tei_fill;
/* /fill_mask: [{"score","token","token_str","sequence"}...] per input. */
char *tei_fill_encode(const tei_fill *const *lists, const int *counts, int n, int batched,
                      size_t *len);

/* What the long-document knobs did, echoed in object-shaped responses as "longserve". */
typedef struct tei_echo {
    long long tokens_in, tokens_used, global_tokens;
    int truncated, windows;
    /* how it was computed: the input tokens the model read, each once (window overlap not
     * counted: usage.prompt_tokens), and the attention its sequences got ("full",
     * "sliding_window", "full+sliding_window" for a mix, "lsh", "local", "lsh+local";
     * NULL: not said) with the sliding window's size, both sides (0: no sequence had one) */
    long long tokens;
    const char *attention;
    int attention_window;
} tei_echo;
/* ,"longserve":{...}: what the long-document knobs did, for object responses (TEI's
 * /answer, OpenAI's embeddings). */
void tei_buf_echo(ls_buf *b, const tei_echo *e);

/* /answer: {"answer","score","start","end","longserve"} */
char *tei_answer_encode(const char *answer, size_t answer_len, float score, int start, int end,
                        const tei_echo *echo, size_t *len);

typedef struct {
    int id;
    const char *text; /* the input's text under the token, or the special token's string */
    size_t text_len;
    int special;
    int start, stop;          /* bytes into the input, as TEI gives them (-1: null) */
    int char_start, char_end; /* code points (-1: null) */
    const char *token;        /* the token string (e.g. "##ing", "Ġthe") */
    size_t token_len;
} tei_token;
/* /tokenize: [[{"id","text","special","start","stop","char_start","char_end","token"}...]...] */
char *tei_tokenize_encode(const tei_token *const *lists, const int *counts, int n, size_t *len);
/* /similarity: [f32 x n] */
char *tei_similarity_encode(const float *scores, int n, size_t *len);

typedef struct {
    int index;
    float score;
    const char *text; /* NULL: not returned */
} tei_rank;
/* /rerank: [{"index","score","text"?}...] in the given order */
char *tei_rerank_encode(const tei_rank *ranks, int n, size_t *len);

/* /decode: ["text", ...] */
char *tei_decode_encode(char *const *texts, int n, size_t *len);

#endif
