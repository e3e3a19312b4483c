/* config.json of a Hugging Face model, decoded into a plain struct. Only decoding and
 * type checks happen here; the engine checks the values make a model. */
#ifndef PR_HFCONFIG_H
#define PR_HFCONFIG_H

#include <stddef.h>

#include "../common/status.h"

#define HF_MAX_LAYERS 256

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
    int num_labels;  /* from id2label when present, else num_labels, else 2 */
    char **id2label; /* num_labels strings, owned */
} hf_config;

/* Parses config.json text. Missing fields get the Hugging Face class defaults for the
 * model_type. `file` names the file in error messages. */
ls_status hf_config_parse(const char *json, size_t len, const char *file, hf_config *out, char *err,
                          size_t errlen);
void hf_config_free(hf_config *c);

#endif
