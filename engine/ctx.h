/* Internal: the forward context every model family's forward runs in (engine/ctx.c):
 * scratch buffers that grow to the largest batch seen and are reused, and the wall time
 * of each kernel op. A family's forward (longformer.c) fills and reads the buffers. */
#ifndef ENG_CTX_H
#define ENG_CTX_H

#include "model.h"
#include "torch_rng.h"

/* Rows per feed-forward chunk: the (rows, intermediate) buffer is the largest per-token
 * activation (12 KB/token for longformer-base) and need not exist for all tokens at once. */
enum { ENG_FFN_ROWS = 2048 };

struct eng_ctx {
    const eng_model *m;
    size_t cap_t, cap_g, cap_s; /* tokens, global tokens, sequences the buffers hold */
    /* per token */
    int32_t *pos;  /* (T) position ids */
    uint8_t *kind; /* (T) KN_TOK_* */
    float *x;      /* (T, H) hidden state */
    float *qkv;    /* (T, 3H) */
    float *att;    /* (T, H) attention output before the dense */
    float *tmp;    /* (T, H) */
    float *inter;  /* head outputs: (T, V) MLM logits, (T, labels), (T, 2) QA */
    float *ffn;    /* (min(T, ENG_FFN_ROWS), I) feed-forward inner, one chunk at a time */
    /* feed-forward chunks: every sequence cut at multiples of ENG_FFN_ROWS from its own
     * start (pieces), consecutive pieces packed into calls of at most ENG_FFN_ROWS rows;
     * call k covers pieces ffn_call[k] .. ffn_call[k+1]-1, rows ffn_off[..] */
    int32_t *ffn_off, *ffn_call, *ffn_groups;
    int nffn_calls;
    size_t cap_p;
    float *head; /* (T, 2) QA start/end, per-token outputs */
    /* per global token */
    int32_t *glob; /* (G) */
    float *xg;     /* (G, H) hidden rows of global tokens */
    float *qg;     /* (G, H) query_global */
    /* per sequence */
    int32_t *glob_off;    /* (nseq+1) */
    uint8_t *full;        /* (nseq) 1: the sequence attends fully (bert/roberta, full_upto) */
    int32_t *seq_w;       /* (nseq) one-sided window of each sequence in the current layer */
    int32_t *each;        /* (nseq+1) 0, 1, …, nseq: one linear-layer group per sequence row */
    float *seq_a, *seq_b; /* (nseq, H) pooler / classifier rows */
    float *seq_out;       /* (nseq, labels) */
    float *rf_out;        /* Reformer: the outputs of the last forward, rf_cap floats */
    size_t rf_cap;
    double op_seconds[KN_OP_COUNT]; /* wall time in each kernel op since eng_ctx_new */
    double forward_seconds;         /* wall time in eng_ctx_forward since eng_ctx_new */
};

/* Monotonic wall clock, seconds. */
double eng__now(void);

/* k->op(...), its wall time added to c->op_seconds[KN_OP_op]. ENG_OP_RC keeps the op's
 * return value in rc. */
#define ENG_OP(c, k, op, ...)                                                                      \
    do {                                                                                           \
        const double eng__t0 = eng__now();                                                         \
        (k)->op(__VA_ARGS__);                                                                      \
        (c)->op_seconds[KN_OP_##op] += eng__now() - eng__t0;                                       \
    } while (0)
#define ENG_OP_RC(rc, c, k, op, ...)                                                               \
    do {                                                                                           \
        const double eng__t0 = eng__now();                                                         \
        (rc) = (k)->op(__VA_ARGS__);                                                               \
        (c)->op_seconds[KN_OP_##op] += eng__now() - eng__t0;                                       \
    } while (0)

/* Grows the buffers to hold T tokens, G global tokens and S sequences (they never
 * shrink); LS_ERR_NOMEM with a message naming the batch. */
/* The Reformer forward (reformer.c); eng_ctx_forward hands Reformer models to it. */
ls_status eng__reformer_forward(eng_ctx *c, const eng_batch *b, eng_outputs *out, char *err,
                                size_t errlen);

/* Reformer decoding (reformer.c), hf-semantics B5.11: what Hugging Face keeps in
 * past_buckets_states, as projections instead of hidden states (the same numbers, computed
 * once). Per layer, rows are positions 0 .. n-1. */
typedef struct {
    float *kv;    /* [cap, 2A] lsh: raw query_key | value; local: key (unscaled) | value */
    int32_t *bkt; /* lsh: [nh][nH][cap] bucket ids as HF caches them (offset by round) */
    int has_bkt;  /* lsh: buckets exist (the prefill hashed, or the cache reached a chunk) */
    int32_t bmax; /* lsh: the largest bucket id cached */
} eng__rf_cache;

/* LSH buckets: num_buckets as factors (one entry for an int), their product and the
 * rotations per round / 2 (B5.3); n 0: not chosen yet (num_buckets null, no hashing yet). */
typedef struct {
    int n, f[HF_MAX_BUCKET_FACTORS];
    int NB, rot2;
} eng__rf_buckets;

typedef struct {
    int L;        /* layers */
    int n, cap;   /* positions cached, rows allocated */
    int nH;       /* hash rounds */
    int64_t seed; /* rotations' seed, or -1: one stream (rng), consecutive draws */
    eng_mt19937 rng;
    eng__rf_buckets bk; /* the config's, or (num_buckets null) the prefill's choice */
    float *rot;         /* seed >= 0: the rotations every hashing call draws, [nh, d, nH, rot/2] */
    eng__rf_cache *lay; /* [L] */
} eng__rf_state;

/* A new state for nH rounds and seed (-1: the default stream), or NULL (out of memory). */
eng__rf_state *eng__rf_state_new(const eng_model *m, int nH, int64_t seed);
void eng__rf_state_free(eng__rf_state *s);
/* Runs ids[0..n) as HF's first generate() call does (padded forward, cache of the first n
 * positions) and writes the logits of position n-1 ([V]). */
ls_status eng__reformer_prefill(eng_ctx *c, eng__rf_state *s, const int32_t *ids, int n,
                                float *logits, char *err, size_t errlen);
/* One cached step: token id at position s->n; the logits of the next ([V]). */
ls_status eng__reformer_step(eng_ctx *c, eng__rf_state *s, int32_t id, float *logits, char *err,
                             size_t errlen);
/* The whole sequence recomputed (generate(use_cache=False)): the logits of position n-1,
 * the rotations from s's seed or stream. */
ls_status eng__reformer_last_logits(eng_ctx *c, eng__rf_state *s, const int32_t *ids, int n,
                                    float *logits, char *err, size_t errlen);

ls_status eng__reserve(eng_ctx *c, size_t T, size_t G, size_t S, char *err, size_t errlen);

#endif
