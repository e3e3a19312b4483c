/* config.json decoding: types are checked here, with the file and key in the message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#include "hfconfig.h"

typedef struct {
    const cJSON *root;
    const char *file;
    char *err;
    size_t errlen;
    ls_status st;
} hf__ctx;

static int hf__int(hf__ctx *c, const char *key, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 2147483647.0) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG, "%s: \"%s\" must be an integer",
                            c->file, key);
        return def;
    }
    return (int)v->valuedouble;
}

static double hf__num(hf__ctx *c, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsNumber(v)) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG, "%s: \"%s\" must be a number",
                            c->file, key);
        return def;
    }
    return v->valuedouble;
}

static void hf__str(hf__ctx *c, const char *key, const char *def, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    const char *s = def;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
            if (!c->st)
                c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                                "%s: \"%s\" must be a string shorter than %zu bytes", c->file, key,
                                cap);
        } else {
            s = v->valuestring;
        }
    }
    snprintf(out, cap, "%s", s);
}

void hf_config_free(hf_config *c)
{
    if (!c) return;
    if (c->id2label)
        for (int i = 0; i < c->num_labels; i++)
            free(c->id2label[i]);
    free(c->id2label);
    c->id2label = NULL;
}

static void hf__windows(hf__ctx *c, hf_config *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, "attention_window");
    o->n_attention_window = 0;
    if (!v || cJSON_IsNull(v)) return;
    if (cJSON_IsNumber(v)) {
        int w = hf__int(c, "attention_window", 512);
        for (int l = 0; l < HF_MAX_LAYERS; l++)
            o->attention_window[l] = w;
        o->n_attention_window = 1;
        return;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > HF_MAX_LAYERS) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                            "%s: \"attention_window\" must be an integer or a list of at most "
                            "%d integers",
                            c->file, HF_MAX_LAYERS);
        return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            fabs(e->valuedouble) > 1e9) {
            if (!c->st)
                c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                                "%s: \"attention_window\"[%d] must be an integer", c->file,
                                o->n_attention_window);
            return;
        }
        o->attention_window[o->n_attention_window++] = (int)e->valuedouble;
    }
}

/* id2label: {"0": "NEG", "1": "POS"}; keys must cover 0..n-1 exactly once. */
static void hf__labels(hf__ctx *c, hf_config *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->root, "id2label");
    int n = hf__int(c, "num_labels", 0);
    if (m && cJSON_IsObject(m) && cJSON_GetArraySize(m) > 0) {
        int k = cJSON_GetArraySize(m);
        if (k > 1000000) {
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG, "%s: id2label too large", c->file);
            return;
        }
        o->id2label = calloc((size_t)k, sizeof *o->id2label);
        if (!o->id2label) {
            c->st = ls_fail(c->err, c->errlen, LS_ERR_NOMEM, "%s: out of memory", c->file);
            return;
        }
        o->num_labels = k;
        const cJSON *e;
        cJSON_ArrayForEach(e, m)
        {
            char *end;
            long id = strtol(e->string, &end, 10);
            if (*end || end == e->string || id < 0 || id >= k || o->id2label[id] ||
                !cJSON_IsString(e)) {
                c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                                "%s: id2label must map each of 0..%d to a string", c->file, k - 1);
                return;
            }
            o->id2label[id] = strdup(e->valuestring);
            if (!o->id2label[id]) {
                c->st = ls_fail(c->err, c->errlen, LS_ERR_NOMEM, "%s: out of memory", c->file);
                return;
            }
        }
        return;
    }
    o->num_labels = n > 0 ? n : 2;
}

ls_status hf_config_parse(const char *json, size_t len, const char *file, hf_config *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = fmt_json_parse(json, len);
    if (!root) return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not valid JSON", file);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ls_fail(err, errlen, LS_ERR_CONFIG, "%s: not a JSON object", file);
    }
    hf__ctx c = {root, file, err, errlen, LS_OK};
    hf__str(&c, "model_type", "", out->model_type, sizeof out->model_type);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (cJSON_IsArray(arch) && cJSON_IsString(cJSON_GetArrayItem(arch, 0)))
        snprintf(out->architecture, sizeof out->architecture, "%s",
                 cJSON_GetArrayItem(arch, 0)->valuestring);
    int is_lf = strcmp(out->model_type, "longformer") == 0;
    int is_bert = strcmp(out->model_type, "bert") == 0;
    out->vocab_size = hf__int(&c, "vocab_size", is_lf || is_bert ? 30522 : 50265);
    out->hidden_size = hf__int(&c, "hidden_size", 768);
    out->num_hidden_layers = hf__int(&c, "num_hidden_layers", 12);
    out->num_attention_heads = hf__int(&c, "num_attention_heads", 12);
    out->intermediate_size = hf__int(&c, "intermediate_size", 3072);
    hf__str(&c, "hidden_act", "gelu", out->hidden_act, sizeof out->hidden_act);
    out->max_position_embeddings = hf__int(&c, "max_position_embeddings", 512);
    out->type_vocab_size = hf__int(&c, "type_vocab_size", 2);
    out->layer_norm_eps = hf__num(&c, "layer_norm_eps", 1e-12);
    out->pad_token_id = hf__int(&c, "pad_token_id", is_bert ? 0 : 1);
    out->bos_token_id = hf__int(&c, "bos_token_id", 0);
    out->eos_token_id = hf__int(&c, "eos_token_id", 2);
    out->sep_token_id = hf__int(&c, "sep_token_id", 2);
    hf__str(&c, "position_embedding_type", "absolute", out->position_embedding_type,
            sizeof out->position_embedding_type);
    hf__windows(&c, out);
    if (!c.st) hf__labels(&c, out);
    cJSON_Delete(root);
    if (c.st) hf_config_free(out);
    return c.st;
}
