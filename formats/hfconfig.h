/* config.json of a Hugging Face model, decoded into a plain struct. Only decoding and
 * type checks happen here; the engine checks the values make a model. */
#ifndef PR_HFCONFIG_H
#define PR_HFCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/status.h"

#define HF_MAX_LAYERS 256
#define HF_MAX_AXES 4
#define HF_MAX_BUCKET_FACTORS 8

/* The fields of a Reformer config.json that change the computation
 * (shared/reference/hf-semantics.md B1), with ReformerConfig's defaults. */
typedef struct {
    uint8_t lsh[HF_MAX_LAYERS]; /* attn_layers: 1 "lsh", 0 "local"; num_hidden_layers entries */
    int head_size;              /* attention_head_size */
    int num_buckets[HF_MAX_BUCKET_FACTORS]; /* an int (1 entry) or its factors */
    int n_buckets;                          /* 0: null (chosen on the first long input) */
    int num_hashes;
    int lsh_chunk, lsh_before, lsh_after;       /* lsh_attn_chunk_length, lsh_num_chunks_* */
    int local_chunk, local_before, local_after; /* local_attn_chunk_length, local_num_chunks_* */
    int axial;                                  /* axial_pos_embds */
    int axial_shape[HF_MAX_AXES], axial_dim[HF_MAX_AXES], n_axes;
    int is_decoder;
    int has_hash_seed;
    long long hash_seed;
    int feed_forward_size;
    int tie_word_embeddings;
} hf_reformer;

typedef struct {
    char model_type[32];   /* "longformer", "bert", "roberta", ... */
    char architecture[64]; /* first entry of "architectures", "" if absent */
    int vocab_size;
    int hidden_size;
    int num_hidden_layers;
    int num_attention_heads;
    int intermediate_size;
    char hidden_act[32];
    int max_position_embeddings;
    int type_vocab_size;
    double layer_norm_eps;
    int attention_window[HF_MAX_LAYERS]; /* per layer, expanded from an int */
    int n_attention_window;              /* entries given in the file (0 if absent) */
    int pad_token_id, bos_token_id, eos_token_id, sep_token_id;
    char position_embedding_type[32];
    hf_reformer reformer; /* model_type "reformer" only */
    int num_labels;       /* from id2label when present, else num_labels, else 2 */
    char **id2label;      /* num_labels strings, owned */
} hf_config;

/* Parses config.json text. Missing fields get the Hugging Face class defaults for the
 * model_type. `file` names the file in error messages. */
ls_status hf_config_parse(const char *json, size_t len, const char *file, hf_config *out, char *err,
                          size_t errlen);
void hf_config_free(hf_config *c);

#endif
