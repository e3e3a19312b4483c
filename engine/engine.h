/* engine.h — models, weights and the forward pass.
 *
 *     eng_model_params mp = eng_model_default_params();
 *     eng_model *m;
 *     if (eng_model_load("models/lf", &mp, &m, err, sizeof err)) die(err);
 *     eng_ctx *ctx = eng_ctx_new(m);
 *     int32_t off[] = {0, 5}, ids[] = {0, 31414, 232, 328, 2};
 *     eng_batch b = {.nseq = 1, .offsets = off, .ids = ids};
 *     eng_outputs out;
 *     if (eng_ctx_forward(ctx, &b, &out, err, sizeof err)) die(err);
 *     // out.t[i].name == "last_hidden_state", out.t[i].data is [5, hidden]
 *     eng_ctx_free(ctx); eng_model_free(m);
 *
 * A batch is packed and ragged: the tokens of all sequences concatenated, with
 * offsets[]. A sequence's outputs never depend on what it is batched with. The model's
 * tokenizer is eng_model_tokenizer(m); what the pipelines do with the outputs (pooling,
 * softmax, spans) is engine/pipeline.h. */
#ifndef ENG_ENGINE_H
#define ENG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

typedef struct eng_model eng_model;
typedef struct eng_ctx eng_ctx;
typedef struct tok_tokenizer tok_tokenizer; /* tokenizer/tokenizer.h */

typedef enum {
    ENG_HEAD_BASE,   /* last_hidden_state (+ pooler_output when the checkpoint has a pooler) */
    ENG_HEAD_MLM,    /* logits [T, vocab] */
    ENG_HEAD_SEQCLS, /* logits [nseq, labels] */
    ENG_HEAD_TOKCLS, /* logits [T, labels] */
    ENG_HEAD_QA,     /* start_logits, end_logits [T] */
} eng_head;

/* sentence-transformers pooling of token vectors into one (1_Pooling/config.json). */
typedef enum {
    ENG_POOL_CLS,
    ENG_POOL_MEAN,
    ENG_POOL_MAX,
    ENG_POOL_MEAN_SQRT_LEN,
} eng_pooling;

const char *eng_pooling_name(eng_pooling p); /* "cls", "mean", "max", "mean_sqrt_len" */

typedef struct {
    /* Attention window (both sides together, even) for bert/roberta checkpoints served
     * with Longformer attention; Longformer checkpoints use their config's windows. */
    int window;
    /* Backend: "cpu" (default: our GEMM, the ISA by cpuid or LONGSERVE_ISA), "blas"
     * (OpenBLAS's sgemm for linear layers), "ref" (plain loops, for tests), "cuda". */
    const char *backend;
    int threads; /* CPU threads, 0 = OpenMP's default */
} eng_model_params;

eng_model_params eng_model_default_params(void);

/* The Hugging Face pipeline task a head serves ("feature-extraction", "fill-mask",
 * "text-classification", "token-classification", "question-answering"). */
const char *eng_head_task(eng_head h);

/* Loads a model directory: config.json and the safetensors weights (every tensor's shape
 * and dtype is checked against the config), tokenizer.json when there is one (without it
 * the model serves token ids only), and the sentence-transformers files when there are
 * (modules.json, its Pooling module's config.json, a Normalize module). Errors name the
 * file and the tensor or key. */
ls_status eng_model_load(const char *dir, const eng_model_params *p, eng_model **out, char *err,
                         size_t errlen);
void eng_model_free(eng_model *m);
/* The model's tokenizer (owned by the model, usable from any thread), or NULL when the
 * directory has no tokenizer.json. */
const tok_tokenizer *eng_model_tokenizer(const eng_model *m);

typedef struct {
    const char *model_type;   /* "longformer", "bert", "roberta" */
    const char *architecture; /* as config.json names it */
    eng_head head;
    int vocab_size, hidden_size, num_layers, num_labels, type_vocab_size;
    int max_tokens; /* longest sequence the model accepts */
    int max_window; /* largest attention window (both sides) over the layers */
    int pad_token_id, sep_token_id;
    int has_pooler;
    const char *const *labels; /* num_labels names (id2label), or NULL */
    /* the text side (eng_model_load) */
    eng_pooling pooling; /* modules.json + <Pooling>/config.json, else mean */
    int st_config;       /* 1 when sentence-transformers files were found */
    int st_normalize;    /* modules.json has a Normalize module */
    int32_t mask_id;     /* the tokenizer's <mask>, [MASK] or <MASK>, -1 if none */
    /* what computes: the backend ("cpu", "blas", "ref", "cuda") and what its matrix
     * products run on, chosen at load ("avx2 (cpuid features)", "openblas Haswell") */
    const char *backend, *isa;
} eng_model_info;

void eng_model_get_info(const eng_model *m, eng_model_info *info);

/* Label k's name: id2label's, else "LABEL_k" written into buf. */
const char *eng_model_label(const eng_model_info *info, int k, char *buf, size_t n);

/* The scheduler's cost of `rows` rows of `len` tokens with `globals` global tokens over
 * all rows, in attention-aware units (token-key products per layer, with the dense part
 * of a layer expressed in the same units): a row of L tokens with g global tokens costs
 * L x (dense + 2w+1 + g) + g x L, where dense = 6H (the projections and the 4H feed-forward
 * are ~12H^2 multiply-adds per token, attention ~2H per token-key pair), so a batch of long
 * documents with many global tokens is charged for what it will take to compute. Behind
 * the model so that another family can bring its own. */
double eng_model_cost(const eng_model_info *info, size_t rows, size_t len, size_t globals);

typedef struct {
    int nseq;
    const int32_t *offsets;     /* [nseq+1], offsets[0] == 0 */
    const int32_t *ids;         /* [T] */
    const int32_t *type_ids;    /* [T] or NULL (all 0) */
    const uint8_t *attn_mask;   /* [T] 1 keep / 0 padding, or NULL (all 1) */
    const uint8_t *global_mask; /* [T] 1 global, or NULL: the head's automatic choice */
    /* Reformer, per sequence, or NULL: LSH hash rounds (0: the config's num_hashes) and
     * the rotations' seed (-1: the config's hash_seed) */
    const int32_t *num_hashes;
    const int64_t *hash_seed;
} eng_batch;

enum { ENG_MAX_OUTPUTS = 4 };

typedef enum {
    ENG_OUT_LAST_HIDDEN_STATE,
    ENG_OUT_POOLER_OUTPUT,
    ENG_OUT_LOGITS,
    ENG_OUT_START_LOGITS,
    ENG_OUT_END_LOGITS,
} eng_output_id;

/* One output of a head. Hugging Face's shape is [batch, seq (per_token), width (when not
 * 0)]: rank 1 + per_token + (width > 0). */
typedef struct {
    eng_output_id id;
    const char *name; /* Hugging Face's output name */
    int per_token;    /* 1: rows are tokens [T, width]; 0: rows are sequences [nseq, width] */
    int width;        /* 0 for a per-token scalar such as start_logits ([T]) */
} eng_output_desc;

/* The one table of what each head produces: fills out[0 .. min(n, max) - 1] with the
 * outputs of info's model, in the order eng_ctx_forward returns them, and returns n
 * (at most ENG_MAX_OUTPUTS). */
int eng_model_outputs(const eng_model_info *info, eng_output_desc *out, int max);

typedef struct {
    const char *name; /* Hugging Face's output name */
    int per_token;    /* 1: rows are tokens [T, width]; 0: rows are sequences [nseq, width] */
    int width;        /* 0 for a per-token scalar such as start_logits ([T]) */
    const float *data;
    eng_output_id id;
} eng_tensor;

typedef struct {
    eng_tensor t[ENG_MAX_OUTPUTS];
    int n;
} eng_outputs;

/* The output `id` of a forward, or NULL when the model does not produce it. */
const eng_tensor *eng_outputs_find(const eng_outputs *o, eng_output_id id);

eng_ctx *eng_ctx_new(const eng_model *m);
void eng_ctx_free(eng_ctx *c);
/* Runs the model. Output buffers belong to the context and stay valid until the next
 * forward or eng_ctx_free. Invalid input (token id out of range, too long, QA input
 * without its separators) gives LS_ERR_INVALID_INPUT / LS_ERR_TOO_LARGE and a message. */
ls_status eng_ctx_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out, char *err,
                          size_t errlen);

/* Kernel ops the forward calls ("linear", "embed", ...), for per-op timings. */
int eng_op_count(void);
const char *eng_op_name(int i); /* 0 <= i < eng_op_count(), else NULL */
/* Wall seconds spent in each kernel op (eng_op_name order) by eng_ctx_forward on this
 * context since eng_ctx_new, cumulative; fills out[0 .. n-1] (entries past
 * eng_op_count() are 0). Call from the thread that runs the context's forwards. */
void eng_ctx_op_seconds(const eng_ctx *c, double *out, int n);
/* Wall seconds spent in eng_ctx_forward on this context since eng_ctx_new, cumulative. */
double eng_ctx_forward_seconds(const eng_ctx *c);

#endif
