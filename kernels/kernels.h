/* kernels.h — the only door into compute.
 *
 * One table of function pointers (struct kn_ops) generated from KN_OP_LIST. The CPU
 * reference fills every entry (kn_ops_init_ref), the fast CPU backend overrides them
 * (kn_ops_init_cpu), a device backend overrides what it has (kn_ops_init_cuda). The
 * engine picks a table once. Tests compare every entry of two tables (parity).
 *
 * All tensors are row-major float32. Token-major activations are packed ragged
 * batches: [T, ...] where sequence s owns rows offsets[s] .. offsets[s+1]-1.
 * This header has no device types and includes nothing but the C library. */
#ifndef KN_KERNELS_H
#define KN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Token kinds for attention, as Hugging Face's merged mask: 0 = padding (not attended,
 * output zero), 1 = local (sliding window), 2 = global (attends and is attended by all),
 * 3 = a padding query that still attends (not attended as a key, but its row is computed
 * over the window's keys like a local query's: BERT/RoBERTa's full attention computes the
 * rows of masked tokens; its window must hold at least one local key). */
enum { KN_TOK_PAD = 0, KN_TOK_LOCAL = 1, KN_TOK_GLOBAL = 2, KN_TOK_PAD_QUERY = 3 };

typedef struct {
    /* Local projections for all T tokens; head h is columns h*d .. h*d+d-1; row stride ld. */
    const float *q, *k, *v;
    int ld;
    float *out; /* [T, nh*d] with row stride ldo */
    int ldo;
    int nseq;
    const int32_t *offsets; /* [nseq+1] */
    const uint8_t *kind;    /* [T] KN_TOK_* */
    /* Global tokens, absolute row indices ascending; sequence s owns glob[glob_off[s] ..
     * glob_off[s+1]-1]. */
    const int32_t *glob;
    const int32_t *glob_off; /* [nseq+1] */
    int nh, d;
    int w; /* one-sided window: query i sees keys i-w .. i+w */
    /* [nseq] one-sided window of each sequence (overrides w), or NULL: w for every one.
     * A window covering its sequence with no global token is full attention. */
    const int32_t *seq_w;
    float scale; /* multiplies q before the dot product (1/sqrt(d)) */
    /* Used by global_attn only. qg: query_global of the global tokens, one row per global
     * token in glob order (row stride ldqg). The global keys and values of token j are
     * kg_j = wkg·x_j + bkg and vg_j = wvg·x_j + bvg (nn.Linear layout, (nh*d, hidden));
     * the op gets x and the weights rather than kg/vg for every token so that a backend
     * may reassociate (qg·wkg)·x_j and wvg·(Σ p_j x_j) when there are few global tokens. */
    const float *qg;
    int ldqg;
    const float *x; /* (T, hidden), row stride hidden */
    int hidden;
    const float *wkg, *bkg, *wvg, *bvg;
} kn_attn_args;

/* A linear layer's weight: nn.Linear's (N, K) matrix, and what the backend that runs it
 * made of it once, at load (packed for its GEMM); prep NULL: the backend reads w. */
typedef struct {
    const float *w;
    int N, K;
    void *prep;
} kn_weight;
/* Prepares wt for the table's linear (fills wt->prep); 0, or negative when out of memory.
 * Release frees what prepare made; both may be NULL in a table that needs neither. */
typedef int (*kn_weight_prepare_fn)(kn_weight *wt);
typedef void (*kn_weight_release_fn)(kn_weight *wt);

/* y[M,N] = x[M,K] · w[N,K]ᵀ + b[N]  (nn.Linear layout; b may be NULL; w prepared by the
 * same table). Row strides: x has K, y has N. Rows come in groups (sequences): group g is
 * rows groups[g] .. groups[g+1]-1 (groups NULL: one group of M rows). A backend must
 * compute a group's rows exactly as it would if the group were alone, so that a
 * sequence's numbers never depend on its batch-mates. */
typedef void (*kn_linear_fn)(const float *x, const kn_weight *w, const float *b, float *y, int M,
                             int N, int K, const int32_t *groups, int ngroups);
/* out[t] = word[ids[t]] + pos[pos_ids[t]] + type[tt[t]]  (all rows of width H; tt may be
 * NULL, meaning row 0 of type). Indices are trusted: the engine validated them. */
typedef void (*kn_embed_fn)(const int32_t *ids, const int32_t *pos_ids, const int32_t *tt,
                            const float *word, const float *pos, const float *type, float *out,
                            int T, int H);
/* x[t] = LayerNorm(x[t] + res[t]) * g + b, biased variance; res may be NULL. */
typedef void (*kn_add_layernorm_fn)(float *x, const float *res, const float *g, const float *b,
                                    float eps, int T, int H);
/* Exact GELU 0.5·x·(1+erf(x/√2)), in place. */
typedef void (*kn_gelu_fn)(float *x, size_t n);
/* Optional (NULL in a table that does not fuse it): the feed-forward block
 * y[M, hid] = gelu(x[M, hid] · w1ᵀ + b1) · w2ᵀ + b2, with w1 (inter, hid) and w2 (hid, inter),
 * the same numbers as linear, gelu, linear on the table, without the (M, inter) intermediate
 * in memory.
 * Rows are independent (no groups needed). Returns 0, or negative when it could not run
 * (scratch memory): the caller then composes linear, gelu, linear itself. */
typedef int (*kn_ffn_fn)(const float *x, const kn_weight *w1, const float *b1, const kn_weight *w2,
                         const float *b2, float *y, int M, int hid, int inter);
/* tanh in place. */
typedef void (*kn_tanh_fn)(float *x, size_t n);
/* Sliding-window attention with global columns (hf-semantics A5, A6a): every local
 * query attends to the non-padding local keys in its window plus every global token of
 * its sequence (local k/v); padding queries get zero; rows of global queries are left
 * for global_attn to write (their content is unspecified until then).
 * Returns 0, or a negative value when scratch memory could not be had. */
typedef int (*kn_window_attn_fn)(const kn_attn_args *a);
/* Global queries (A6b): each global token attends to every non-padding token of its
 * sequence through qg/kg/vg and overwrites its output row. Returns 0 or negative. */
typedef int (*kn_global_attn_fn)(const kn_attn_args *a);

/* One segment of chunked attention (Reformer, hf-semantics B5.5-B5.7, B6): n rows of one
 * head in the order attention sees them (sorted by bucket for LSH, by position for local
 * attention). Row r's query is q + r·ld, key k + r·ld, value v + r·ld (d values each). */
typedef struct {
    const float *q, *k, *v;
    int ld;
    float *out; /* row r at out + r·ldo */
    int ldo;
    float *lse;          /* [n] each query's log-sum-exp, or NULL */
    const int32_t *pos;  /* [n] each row's original position in its sequence */
    const uint8_t *keep; /* by position: 0 = padding key (masked), or NULL: no mask */
    int n;
} kn_chunk_seg;

typedef struct {
    const kn_chunk_seg *seg;
    int nseg;
    int d;
    /* n > chunk: rows split into chunks of `chunk` (n a multiple of it); query chunk c sees
     * key chunks (c + j) mod (n / chunk), j = -before .. after, in that order. n <= chunk:
     * every query sees every key once. */
    int chunk, before, after;
    int causal;      /* keys at a later position than the query: -1e9 */
    int self_mask;   /* the query's own position: -1e5 (after the other masks) */
    float key_scale; /* keys are multiplied by it before the product (1/sqrt(d) or 1) */
} kn_chunk_args;

/* Masked keys get the score -1e9 (replacement, padding then causal) and, with self_mask,
 * the query's own position -1e5; then lse = max + log Σ exp(z - max) and p = exp(z - lse),
 * both in float32 as Hugging Face computes them (a row whose keys are all masked has
 * lse == -1e9 in float32, so every p is 1: that is what HF returns for it). out = Σ p·v.
 * Returns 0, or negative when scratch memory could not be had. */
typedef int (*kn_chunk_attn_fn)(const kn_chunk_args *a);
/* max(x, 0) in place. */
typedef void (*kn_relu_fn)(float *x, size_t n);

/* LSH hashing of one head (hf-semantics B5.3): for round h and position t, the rotated
 * vector y = qk_t · rot[:, h, :] (rot: HF's R[head], [d, nH, rot2] row-major, rot2 =
 * Σ factors / 2), bucket = b0 + f0·b1 + ... with b_i the argmax over concat(y_i, −y_i) of
 * factor i's slice (first index on ties), and buckets[h·L + t] = bucket + h·NBp. With pad,
 * positions whose keep[t] is 0 get the extra bucket NB and NBp = NB + 1; else NBp = NB.
 * Products accumulate in float32 like the engine's GEMM; a bucket may differ from another
 * backend's where two rotated values are within rounding of each other. */
enum { KN_LSH_MAX_FACTORS = 4 };
typedef struct {
    const float *qk; /* row t at qk + t·ld, d values */
    int ld;
    const float *rot;
    int L, d, nH;
    int nf;
    int32_t factors[KN_LSH_MAX_FACTORS];
    const uint8_t *keep; /* [L], or NULL: no padding */
    int pad;
    int32_t *buckets; /* [nH·L] */
} kn_lsh_args;
typedef int (*kn_lsh_hash_fn)(const kn_lsh_args *a);
/* perm[s] = the index at slot s of a stable sort of 0 .. n-1 by keys[i] (0 <= keys[i] <
 * nkeys): with keys the round-offset buckets of lsh_hash, HF's order by (round, bucket,
 * position) (B5.4). Returns 0, or negative when scratch memory could not be had. */
typedef int (*kn_lsh_sort_fn)(const int32_t *keys, int32_t *perm, int n, int nkeys);

#define KN_OP_LIST(X)                                                                              \
    X(linear)                                                                                      \
    X(embed)                                                                                       \
    X(add_layernorm)                                                                               \
    X(gelu)                                                                                        \
    X(ffn)                                                                                         \
    X(tanh)                                                                                        \
    X(window_attn)                                                                                 \
    X(global_attn)                                                                                 \
    X(chunk_attn)                                                                                  \
    X(relu)                                                                                        \
    X(lsh_hash)                                                                                    \
    X(lsh_sort)

/* ---- memory the table's ops read and write ------------------------------------------------
 * A table's ops take pointers into its own memory: host memory for the CPU tables, device
 * memory for a device table (ops->device != 0). The buffer ops below are how a caller gets
 * and fills such memory without knowing which it is; the CPU tables implement them with
 * malloc, free and memcpy, so code written against them runs unchanged on both.
 *
 * What is table memory: every float tensor an op takes (activations, biases, LayerNorm
 * parameters, embedding tables, the global-key weights of kn_attn_args), every index array
 * of kn_chunk_seg (pos, keep) and kn_embed's ids/pos_ids/tt, kn_attn_args' kind and glob,
 * kn_lsh_args' keep and buckets and lsh_sort's keys and perm. What is host memory on every
 * table: the argument structs themselves, the kn_chunk_seg array they point to,
 * kn_attn_args' offsets and glob_off and kn_linear's groups (the launcher plans its grid
 * from them; a device backend copies what its kernels need), and kn_weight.w (the model's
 * weights as loaded; weight_prepare makes the table's copy in wt->prep, on the device for a
 * device table).
 *
 * How the engine uses it (the next step; engine/ does not yet):
 *     float *x = ops->buf_alloc(sizeof(float) * T * H);       // activations, once per ctx
 *     ops->upload(ids_dev, ids, sizeof(int32_t) * T);         // per batch: the inputs
 *     ops->embed(ids_dev, ...); ops->linear(x, &wq, bq, q, ...); ...   // unchanged calls
 *     ops->download(host_out, x, sizeof(float) * T * H);      // per batch: the outputs
 *     if (ops->sync(err, sizeof err)) -> LS_ERR_DEVICE, the context is broken
 *     ops->buf_free(x);
 * Ops on a device table run in order on the table's one stream and return before the
 * device finishes; void ops cannot report a failure, so a device table keeps the first
 * error (the op's name and the CUDA message) and sync returns it. download waits for the
 * work before it. On the CPU tables sync always returns 0. */
/* size bytes of table memory (aligned to 256 bytes), or NULL when there is none left. */
typedef void *(*kn_buf_alloc_fn)(size_t size);
/* Frees what buf_alloc returned; NULL is a no-op. */
typedef void (*kn_buf_free_fn)(void *p);
/* Host -> table memory and table -> host memory, size bytes; 0, or negative on a failure
 * (the message is kept for sync). */
typedef int (*kn_upload_fn)(void *dst, const void *src, size_t size);
typedef int (*kn_download_fn)(void *dst, const void *src, size_t size);
/* Waits for every op issued so far; 0, or negative with the first error since the last
 * sync written to err (which then starts afresh). */
typedef int (*kn_sync_fn)(char *err, size_t errlen);

typedef struct kn_ops {
    const char *backend;
    /* What the backend's matrix products run on, said at start-up and in /info ("avx2
     * (cpuid features)", "openblas Haswell", "plain loops"). */
    const char *isa;
    int device; /* 1: the ops' pointers are device pointers (see the memory notes above) */
    kn_buf_alloc_fn buf_alloc;
    kn_buf_free_fn buf_free;
    kn_upload_fn upload;
    kn_download_fn download;
    kn_sync_fn sync;
    kn_weight_prepare_fn weight_prepare;
    kn_weight_release_fn weight_release;
#define KN__MEMBER(name) kn_##name##_fn name;
    KN_OP_LIST(KN__MEMBER)
#undef KN__MEMBER
} kn_ops;

/* Op indices in KN_OP_LIST order: KN_OP_linear, KN_OP_embed, ... (kn_op_names[KN_OP_x]). */
enum {
#define KN__INDEX(name) KN_OP_##name,
    KN_OP_LIST(KN__INDEX)
#undef KN__INDEX
        KN_OP_COUNT
};

extern const char *const kn_op_names[];
extern const int kn_op_count;

/* Plain loops, the reference every backend is tested against. */
void kn_ops_init_ref(kn_ops *ops);
/* Fast CPU backend: our packed GEMM with the micro-kernel of the ISA cpuid finds (or
 * LONGSERVE_ISA forces: portable, avx2, avx512) and OpenMP. Fills every entry. */
void kn_ops_init_cpu(kn_ops *ops);
/* The same with OpenBLAS's sgemm for linear layers (as OpenBLAS picks its kernels: by CPU
 * model), kept for comparison. */
void kn_ops_init_cpu_blas(kn_ops *ops);
/* The cpu table with the linear layers in bfloat16 (`--dtype bf16`): weights rounded and
 * packed once for AMX-BF16 tiles or AVX512_BF16 (cpuid, or LONGSERVE_BF16 = amx-bf16,
 * avx512-bf16, bf16-emu, none), activations rounded per product, sums in float32;
 * attention and every other op as kn_ops_init_cpu. 0, or -1 with the reason in err when
 * this CPU has neither instruction set (ops left untouched). */
int kn_ops_init_cpu_bf16(kn_ops *ops, char *err, size_t errlen);
/* Host memory for the CPU tables' buffer ops (malloc, free, memcpy; sync returns 0). */
void kn_ops_set_host_buffers(kn_ops *ops);

/* CUDA backend for the engine: returns 0 and overrides entries when a device is usable, or
 * a negative value when CUDA is not built in, no device exists, or the engine cannot use
 * it yet (ops left untouched). Until the engine allocates its activations through the
 * buffer ops it passes host pointers, so this refuses with a message that says so;
 * kn_ops_init_cuda_table is the device table itself, for the parity tests and benches. */
int kn_ops_init_cuda(kn_ops *ops, char *err, size_t errlen);

/* The CUDA table's variants: the plain kernels (one obviously correct thread per output,
 * the parity tests' device reference) or the fast ones; the precision the linear layers'
 * weights are prepared in (activations stay float32 in memory, accumulation is float32). */
enum { KN_CUDA_FAST = 0, KN_CUDA_PLAIN = 1 };
enum { KN_DTYPE_F32 = 0, KN_DTYPE_BF16 = 1, KN_DTYPE_F16 = 2 };
typedef struct {
    int variant; /* KN_CUDA_FAST or KN_CUDA_PLAIN */
    int wdtype;  /* KN_DTYPE_* of linear weights and of the attention kernels' operands */
    int device;  /* CUDA device ordinal */
} kn_cuda_params;
/* Fills every entry of ops with the device table (device = 1) and writes what it has to
 * info ("NVIDIA H200 sm_90, 132 SMs, 139 GiB; fast kernels; linear bf16 (cuBLASLt)");
 * 0, or negative with the reason in err (no device, a CUDA error, not built). */
int kn_ops_init_cuda_table(kn_ops *ops, const kn_cuda_params *p, char *info, size_t infolen,
                           char *err, size_t errlen);

/* Threads the CPU backend uses (OpenMP); 0 keeps the current setting. */
void kn_cpu_set_threads(int n);
int kn_cpu_threads(void);

#ifdef __cplusplus
}
#endif

#endif
