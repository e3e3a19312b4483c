/* Internal: the weights of a loaded model, shared by model.c (loading) and
 * longformer.c (forward). Shapes are in comments; H = hidden, I = intermediate. */
#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include "../kernels/kernels.h"
#include "../formats/hfconfig.h"
#include "../formats/sbert.h"
#include "engine.h"
#include "safetensors.h"

typedef enum { ENG_FAM_LONGFORMER, ENG_FAM_ROBERTA, ENG_FAM_BERT, ENG_FAM_REFORMER } eng_family;

/* One Reformer layer (hf-semantics B4-B7); A = heads x attention_head_size. */
typedef struct {
    int lsh;              /* attn_layers[k] == "lsh" */
    float *ln1_g, *ln1_b; /* attention.layer_norm (H) */
    /* the projections as one (3A, H) matrix: lsh query_key | value | query_key (the third
     * block becomes the normalised keys in place), local query | key | value */
    float *proj_w;
    float *ao_w;          /* attention.output.dense (H, A), no bias */
    float *ln2_g, *ln2_b; /* feed_forward.layer_norm (H) */
    float *ff1_w, *ff1_b; /* feed_forward.dense.dense (I, H), (I) */
    float *ff2_w, *ff2_b; /* feed_forward.output.dense (H, I), (H) */
    kn_weight proj, ao, ff1, ff2;
} eng_rf_layer;

typedef struct {
    int window;           /* both sides; w = window / 2 */
    float *qkv_w, *qkv_b; /* (3H, H), (3H): query | key | value */
    float *gq_w, *gq_b;   /* (H, H), (H): query_global; NULL when the model has none */
    float *gkv_w, *gkv_b; /* (2H, H), (2H): key_global | value_global; NULL likewise */
    float *ao_w, *ao_b;   /* attention.output.dense (H, H), (H) */
    float *ln1_g, *ln1_b; /* attention.output.LayerNorm (H) */
    float *ff1_w, *ff1_b; /* intermediate.dense (I, H), (I) */
    float *ff2_w, *ff2_b; /* output.dense (H, I), (H) */
    float *ln2_g, *ln2_b; /* output.LayerNorm (H) */
    /* the linear layers' weights as the backend prepared them (packed): qkv_w, gq_w,
     * ao_w, ff1_w, ff2_w; gkv_w is read as it is by global attention */
    kn_weight qkv, gq, ao, ff1, ff2;
} eng_layer;

struct eng_model {
    hf_config cfg;
    eng_family fam;
    eng_head head;
    kn_ops ops;
    char isa[400]; /* ops.isa as it was when the weights were prepared */
    int bf16;      /* --dtype bfloat16: the linear layers run in bfloat16 */
    int H, I, nh, d, L, V;
    int max_tokens;
    int tile_positions; /* bert/roberta: reuse the position table past its trained length */
    int full_upto;      /* bert/roberta: sequences of at most this many tokens attend fully */

    float *word; /* (V, H) */
    float *pos;  /* (max_pos, H) */
    float *type; /* (type_vocab, H) */
    float *emb_ln_g, *emb_ln_b;
    eng_layer *layers; /* [L] (not Reformer) */
    /* Reformer: layers, axial position weights (axis k: its A_k rows of D_k values; NULL
     * when the model has a plain table in `pos`), the final LayerNorm over 2H */
    eng_rf_layer *rf;
    float *axial[HF_MAX_AXES];
    float *rf_ln_g, *rf_ln_b;
    int A;                  /* Reformer: heads x attention_head_size */
    int rf_lcm, rf_min;     /* the padding multiple and the shortest chunk (B2) */
    float *pool_w, *pool_b; /* (H, H): pooler.dense, NULL when absent */

    /* heads (NULL when not this head) */
    float *mlm_dense_w, *mlm_dense_b, *mlm_ln_g, *mlm_ln_b; /* (H, H), LN (H) */
    float *mlm_dec_w, *mlm_dec_b;                           /* (V, H) (may be `word`), (V) */
    float *cls_dense_w, *cls_dense_b;                       /* (H, H): longformer/roberta */
    float *cls_out_w, *cls_out_b;                           /* (labels, H) */
    float *qa_w, *qa_b;                                     /* (2, H) */
    /* the prepared forms of pool_w and the heads' matrices (w NULL when absent) */
    kn_weight pool, mlm_dense, mlm_dec, cls_dense, cls_out, qa;
    eng_output_desc outs[ENG_MAX_OUTPUTS]; /* eng_model_outputs' table */
    int nouts;

    /* the text side: tokenizer.json, sentence-transformers files */
    tok_tokenizer *tok; /* NULL without tokenizer.json */
    eng_pooling pooling;
    int st_config, st_normalize;
    sb_prompts prompts; /* config_sentence_transformers.json */
    int include_prompt; /* the Pooling module pools the prompt's tokens too */
    int32_t mask_id;

    st_model st;   /* the checkpoint's mappings: unfused F32 weights point into them */
    void **allocs; /* every weight buffer the model copied or converted, freed with it */
    size_t nallocs;
};

#endif
