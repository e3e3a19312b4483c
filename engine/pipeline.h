/* pipeline.h — what Hugging Face pipelines and sentence-transformers do to a model's
 * outputs, on plain arrays (no protocol types, no tokenizer encodings):
 *
 *     eng_pipe_pool(hidden, n, H, info.pooling, vec);      // (n, H) -> (H)
 *     eng_pipe_l2_normalize(vec, H);                       // Normalize module
 *     eng_pipe_score sc[L];
 *     eng_pipe_classify(logits, L, 0, sc, err, sizeof err); // softmax, best first
 *     eng_pipe_span a;
 *     eng_pipe_answer(start, end, enc->sequence_ids, n, 15, &a, err, sizeof err);
 *
 * Every function computes exactly as the reference does (float softmax with a double sum,
 * double accumulators for pooling), so that results match to the last bit whoever calls. */
#ifndef ENG_PIPELINE_H
#define ENG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Softmax of x[0..n) into p (p may be x), in float as numpy/torch compute it. */
void eng_pipe_softmax(const float *x, int n, float *p);

/* Pools the n token vectors x (n, H) into out (H): the first token's (CLS), their mean,
 * their maximum, or their sum over sqrt(n); accumulated in double. */
void eng_pipe_pool(const float *x, size_t n, size_t H, eng_pooling p, float *out);

/* The vector of a long input cut into nwin windows: vecs[k] (H) is window k's pooled
 * vector and ntok[k] its tokens. One window: exactly its vector; several: their mean
 * weighted by tokens, accumulated in double. */
void eng_pipe_windows(const float *const *vecs, const int *ntok, int nwin, int H, float *out);

/* SPLADE pooling of a masked-LM head's logits (n, V) into out (V): for each vocabulary
 * entry the maximum over the n tokens (all of them, special tokens included, as TEI and
 * sentence-transformers' SpladePooling take it) of log(1 + relu(logit)), so out >= 0. */
void eng_pipe_splade(const float *logits, size_t n, size_t V, float *out);

/* v / max(||v||, 1e-12), as torch.nn.functional.normalize. */
void eng_pipe_l2_normalize(float *v, int H);

typedef struct {
    int label;   /* index into the logits */
    float score; /* probability, or the raw logit */
} eng_pipe_score;

/* Sequence classification (text-classification pipeline): the L logits' scores by fn
 * (its function_to_apply): ENG_PIPE_FN_DEFAULT sigmoid for one label, softmax for more;
 * ENG_PIPE_FN_NONE the logits themselves (TEI's raw_scores); sorted by score, best first
 * (equal scores keep label order, as Python's stable sort). */
enum { ENG_PIPE_FN_DEFAULT, ENG_PIPE_FN_NONE, ENG_PIPE_FN_SIGMOID, ENG_PIPE_FN_SOFTMAX };
ls_status eng_pipe_classify(const float *logits, int L, int fn, eng_pipe_score *out, char *err,
                            size_t errlen);

/* Cosine similarity of two H-vectors, as sentence-transformers' cos_sim: each normalised
 * (torch.nn.functional.normalize), then the dot product (double accumulators). */
float eng_pipe_cosine(const float *a, const float *b, int H);

typedef struct {
    int index;   /* the token's position */
    int label;   /* the best label */
    float score; /* its probability */
} eng_pipe_entity;

/* Token classification (aggregation "none"): for each token t < n that is not special
 * (special may be NULL), the softmax of logits (n, L) row t and its best label (the first
 * of equals); tokens whose best label has ignore[label] set (ignore may be NULL) are left
 * out. Fills out[0 .. *count - 1] (room for n) in token order. */
ls_status eng_pipe_token_classify(const float *logits, int n, int L, const uint8_t *special,
                                  const uint8_t *ignore, eng_pipe_entity *out, int *count,
                                  char *err, size_t errlen);

/* Fill-mask: the k most probable tokens of softmax(logits[0..V)), best first (the lower
 * id of equals): ids[0 .. *count - 1], scores likewise; *count is min(k, V). */
ls_status eng_pipe_top_k(const float *logits, int V, int k, int32_t *ids, float *scores, int *count,
                         char *err, size_t errlen);

typedef struct {
    int start, end; /* token positions, end included; -1 when there is no answer */
    float score;    /* p_start * p_end */
} eng_pipe_span;

/* The question-answering pipeline's span search on one row of n tokens: tokens outside
 * the context (sequence_ids[t] != 1) but the first get -10000, softmax of start and of
 * end logits, the first token's probability then set to 0; the best start <= end <
 * start + max_answer_len, both in the context, by p_start * p_end, first in row-major
 * order. */
ls_status eng_pipe_answer(const float *start_logits, const float *end_logits,
                          const int8_t *sequence_ids, int n, int max_answer_len, eng_pipe_span *out,
                          char *err, size_t errlen);

#endif
