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

/* A weights file eng_model_load has opened and checked (one per shard of a sharded
 * checkpoint, `index` of `count`), for progress logs. */
typedef struct {
    const char *path;
    uint64_t bytes;
    size_t tensors;
    double seconds; /* mapping and header validation; the weights are read afterwards */
    int index, count;
} eng_load_file;

typedef struct {
    /* Attention window (both sides together, even) for bert/roberta sequences longer than
     * full_attention (Longformer attention); Longformer checkpoints use their config's. */
    int window;
    /* bert/roberta: a sequence of at most this many tokens attends fully, exactly as
     * Hugging Face's BertModel/RobertaModel compute it (no window, no global token, a
     * plain softmax over its tokens; padding rows attend too); longer ones get Longformer
     * attention with `window`. -1 (default): the trained length (bert:
     * max_position_embeddings; roberta: max_position_embeddings - pad_token_id - 1);
     * 0: never (Longformer attention at every length). Past the trained length positions
     * tile. Longformer and Reformer models ignore it. */
    int full_attention;
    /* Backend: "cpu" (default: our GEMM, the ISA by cpuid or LONGSERVE_ISA), "blas"
     * (OpenBLAS's sgemm for linear layers), "ref" (plain loops, for tests), "cuda". */
    const char *backend;
    /* Precision of the linear layers: "float32" (default: exact to Hugging Face, <= 1e-4) or
     * "bfloat16" ("bf16": weights and activations rounded to bfloat16, float32 sums, on the
     * cpu backend with AMX-BF16 or AVX512_BF16 only; LS_ERR_CONFIG elsewhere, saying why). */
    const char *dtype;
    int threads; /* CPU threads, 0 = OpenMP's default */
    /* Called on the loading thread for each weights file once it is open (NULL: none). */
    void (*on_file)(void *arg, const eng_load_file *f);
    void *on_file_arg;
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
    /* config_sentence_transformers.json's prompts (name, text) [nprompts], the default
     * one's index (-1: none), and the Pooling module's include_prompt (0: the prompt's
     * tokens are not pooled) */
    const char *const *prompt_names, *const *prompt_texts;
    int nprompts, default_prompt, include_prompt;
    /* what computes: the backend ("cpu", "blas", "ref", "cuda") and what its matrix
     * products run on, chosen at load ("avx2 (cpuid features)", "openblas Haswell") */
    const char *backend, *isa;
    const char *dtype; /* the linear layers' precision: "float32" or "bfloat16" */
    /* Reformer: LSH layers, rounds, the config's hash_seed (has_hash_seed 0: the default
     * stream), and whether the model generates (eng_model_can_generate) */
    int lsh_layers, num_hashes, has_hash_seed;
    long long hash_seed;
    int can_generate;
    /* keys each token attends per layer on average (eng_model_cost): Longformer 2w+1 of its
     * widest layer; Reformer chunk x (1 + before + after), times num_hashes for LSH */
    double attn_keys;
    /* How the model attends: sequences of at most full_attention_tokens tokens attend
     * fully (bert/roberta; 0: none do), longer ones as `attention` says:
     * "sliding_window" (Longformer attention, max_window), "lsh", "local" or "lsh+local"
     * (Reformer). eng_model_attention gives a sequence's. */
    int full_attention_tokens;
    const char *attention;
    int can_step; /* 1: eng_fwd_* runs the forward in steps (not a Reformer) */
} eng_model_info;

/* How a sequence of len tokens attends: "full" or info->attention. */
const char *eng_model_attention(const eng_model_info *info, size_t len);

void eng_model_get_info(const eng_model *m, eng_model_info *info);

/* Label k's name: id2label's, else "LABEL_k" written into buf. */
const char *eng_model_label(const eng_model_info *info, int k, char *buf, size_t n);

/* The scheduler's cost of `rows` rows of `len` tokens with `globals` global tokens over
 * all rows, in attention-aware units (token-key products per layer, with the dense part
 * of a layer expressed in the same units): a row of L tokens with g global tokens costs
 * L x (dense + 2w+1 + g) + g x L, where dense = 6H (the projections and the 4H feed-forward
 * are ~12H^2 multiply-adds per token, attention ~2H per token-key pair), so a batch of long
 * documents with many global tokens is charged for what it will take to compute; a Reformer
 * token attends chunk x (1 + before + after) keys per local layer and that times
 * num_hashes per LSH layer (attn_keys, their mean over the layers); a row that attends fully
 * (len <= full_attention_tokens) costs L x (dense + L) and has no global token. Behind the model so
 * that another family can bring its own. */
double eng_model_cost(const eng_model_info *info, size_t rows, size_t len, size_t globals);
/* Rows shorter than this cost, in their dense part, what a row of this many tokens costs
 * (the GEMM reads the weights per row tile: few tokens are bound by memory, not compute). */
enum { ENG_COST_MIN_ROW = 64 };
/* The cost of one more token in a long row without global tokens (budgets in tokens). */
double eng_model_token_cost(const eng_model_info *info);

typedef struct {
    int nseq;
    const int32_t *offsets;     /* [nseq+1], offsets[0] == 0 */
    const int32_t *ids;         /* [T] */
    const int32_t *type_ids;    /* [T] or NULL (all 0) */
    const uint8_t *attn_mask;   /* [T] 1 keep / 0 padding, or NULL (all 1) */
    const uint8_t *global_mask; /* [T] 1 global, or NULL: the head's automatic choice */
    /* Reformer, per sequence, or NULL: LSH hash rounds (0: the config's num_hashes) and
     * the rotations' seed (-1: the config's hash_seed; a config without one: the rotations
     * HF draws after torch.manual_seed(ENG_DEFAULT_HASH_SEED) with hash_seed None, i.e.
     * consecutive draws of one stream, layer after layer) */
    const int32_t *num_hashes;
    const int64_t *hash_seed;
} eng_batch;

enum { ENG_MAX_OUTPUTS = 4 };
/* The seed of the one rotation stream a Reformer without hash_seed hashes with. */
enum { ENG_DEFAULT_HASH_SEED = 0 };

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

/* ---- a forward in steps (Longformer, BERT, RoBERTa) -----------------------------------------
 *
 *     eng_fwd *f;
 *     if (eng_fwd_start(ctx, &b, &f, err, sizeof err)) die(err);   // embeddings
 *     while (eng_fwd_layers_left(f))                                // layers [k, k+n)
 *         if (eng_fwd_step(ctx, f, n, err, sizeof err)) die(err);
 *     if (eng_fwd_finish(ctx, f, &out, err, sizeof err)) die(err); // the head
 *     eng_fwd_free(f);
 *
 * The state between steps (the hidden states of b's sequences and their attention
 * layout) belongs to the eng_fwd, not to the context, so other forwards and other steps may
 * run on the context in between; the outputs are bit for bit eng_ctx_forward's for b. b is
 * read by eng_fwd_start only. A Reformer (reversible layers, eng_model_info.can_step 0) is
 * refused with LS_ERR_UNSUPPORTED: it runs one-shot. */
typedef struct eng_fwd eng_fwd;

ls_status eng_fwd_start(eng_ctx *c, const eng_batch *b, eng_fwd **out, char *err, size_t errlen);
/* Runs the next min(n, left) layers (n >= 1). */
ls_status eng_fwd_step(eng_ctx *c, eng_fwd *f, int n, char *err, size_t errlen);
int eng_fwd_layers_left(const eng_fwd *f);
/* The head on the last layer's hidden states (every layer has run); out as eng_ctx_forward's. */
ls_status eng_fwd_finish(eng_ctx *c, eng_fwd *f, eng_outputs *out, char *err, size_t errlen);
void eng_fwd_free(eng_fwd *f); /* NULL is a no-op */

/* ---- generation (Reformer language models: ReformerModelWithLMHead) ---------------------------
 *
 *     eng_gen_params gp = eng_gen_default_params(m);   // greedy, HF generate()'s defaults
 *     eng_gen *g;
 *     if (eng_gen_start(m, prompt, n, &gp, &g, err, sizeof err)) die(err);
 *     eng_gen_token t;
 *     do if (eng_gen_next(ctx, g, &t, err, sizeof err)) die(err);
 *     while (!t.eos && eng_gen_count(g) < gp.max_new_tokens);
 *     eng_gen_free(g);
 *
 * With use_cache (the default) each step computes what Hugging Face's generate() computes
 * with its cache (hf-semantics B5.11): the new token's query is hashed and attends to its
 * chunk of the cached keys sorted by bucket, local layers to the cached chunk before it.
 * That is not a recomputation of the whole sequence (use_cache 0 recomputes, as
 * generate(use_cache=False) does); the two differ after a few tokens on most models. */
typedef struct {
    int max_new_tokens;       /* tokens to generate at most (default 20) */
    int do_sample;            /* 0: greedy (argmax, the first of equal scores) */
    float temperature;        /* > 0; 1 leaves the scores */
    int top_k;                /* 0: off */
    float top_p;              /* (0, 1]; 1: off */
    float repetition_penalty; /* > 0; 1: off (HF's CTRL penalty over prompt and output) */
    uint64_t seed;            /* the sampler's seed */
    int use_cache;            /* 1: HF's cached decoding; 0: the whole sequence every step */
    int num_hashes;           /* 0: the config's */
    int64_t hash_seed;        /* -1: the config's, else the default stream (eng_batch) */
    int32_t eos_token_id;     /* generation stops after it; -1: never */
} eng_gen_params;

typedef struct {
    int32_t id;
    float logprob; /* log-softmax of the scores the token was chosen from */
    int eos;       /* id is the end-of-sequence token */
} eng_gen_token;

typedef struct eng_gen eng_gen;

eng_gen_params eng_gen_default_params(const eng_model *m);
/* 1 when the model can generate (a Reformer with a causal LM head), else 0 and why. */
int eng_model_can_generate(const eng_model *m, char *why, size_t n);
/* A decoding of prompt[0..n) (copied). Checks the ids and the parameters; computes nothing. */
ls_status eng_gen_start(const eng_model *m, const int32_t *prompt, int n, const eng_gen_params *p,
                        eng_gen **out, char *err, size_t errlen);
/* The next token: the first call runs the prompt, each later one feeds the last token. */
ls_status eng_gen_next(eng_ctx *c, eng_gen *g, eng_gen_token *tok, char *err, size_t errlen);
int eng_gen_count(const eng_gen *g); /* tokens generated so far */
/* The tokens so far, prompt first (count: eng_gen_length). */
const int32_t *eng_gen_ids(const eng_gen *g);
int eng_gen_length(const eng_gen *g);
void eng_gen_free(eng_gen *g); /* NULL is a no-op */

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
