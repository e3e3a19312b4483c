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

static int hf__bool(hf__ctx *c, const char *key, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsBool(v)) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG, "%s: \"%s\" must be true or false",
                            c->file, key);
        return def;
    }
    return cJSON_IsTrue(v);
}

static int hf__is_int(const cJSON *e, double lim)
{
    return cJSON_IsNumber(e) && e->valuedouble == floor(e->valuedouble) &&
           fabs(e->valuedouble) <= lim;
}

/* An integer or a list of 1..max integers into out[]; returns the count (0 when absent or
 * null, or on error with c->st set). */
static int hf__ints(hf__ctx *c, const char *key, int *out, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (hf__is_int(v, 1e9)) {
        out[0] = (int)v->valuedouble;
        return 1;
    }
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    const cJSON *e;
    int i = 0, ok = n >= 1 && n <= max;
    if (ok) cJSON_ArrayForEach(e, v)
        {
            if (!hf__is_int(e, 1e9))
                ok = 0;
            else
                out[i++] = (int)e->valuedouble;
        }
    if (!ok) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                            "%s: \"%s\" must be an integer or a list of 1 to %d integers", c->file,
                            key, max);
        return 0;
    }
    return n;
}

/* Reformer's fields (hf-semantics B1); attn_layers also sets num_hidden_layers. */
static void hf__reformer(hf__ctx *c, hf_config *o)
{
    hf_reformer *r = &o->reformer;
    static const char *const dflt[] = {"local", "lsh", "local", "lsh", "local", "lsh"};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, "attn_layers");
    int n = 0;
    if (!v || cJSON_IsNull(v)) {
        for (; n < 6; n++)
            r->lsh[n] = strcmp(dflt[n], "lsh") == 0;
    } else if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 ||
               cJSON_GetArraySize(v) > HF_MAX_LAYERS) {
        if (!c->st)
            c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                            "%s: \"attn_layers\" must be a list of 1 to %d layer types", c->file,
                            HF_MAX_LAYERS);
        return;
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            const char *t = cJSON_IsString(e) ? e->valuestring : "";
            if (strcmp(t, "lsh") && strcmp(t, "local")) {
                if (!c->st)
                    c->st =
                        ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                                "%s: \"attn_layers\"[%d] must be \"lsh\" or \"local\"", c->file, n);
                return;
            }
            r->lsh[n++] = strcmp(t, "lsh") == 0;
        }
    }
    o->num_hidden_layers = n;
    r->head_size = hf__int(c, "attention_head_size", 64);
    r->n_buckets = hf__ints(c, "num_buckets", r->num_buckets, HF_MAX_BUCKET_FACTORS);
    r->num_hashes = hf__int(c, "num_hashes", 1);
    r->lsh_chunk = hf__int(c, "lsh_attn_chunk_length", 64);
    r->lsh_before = hf__int(c, "lsh_num_chunks_before", 1);
    r->lsh_after = hf__int(c, "lsh_num_chunks_after", 0);
    r->local_chunk = hf__int(c, "local_attn_chunk_length", 64);
    r->local_before = hf__int(c, "local_num_chunks_before", 1);
    r->local_after = hf__int(c, "local_num_chunks_after", 0);
    r->axial = hf__bool(c, "axial_pos_embds", 1);
    r->n_axes = hf__ints(c, "axial_pos_shape", r->axial_shape, HF_MAX_AXES);
    if (!r->n_axes) {
        r->axial_shape[0] = r->axial_shape[1] = 64;
        r->n_axes = 2;
    }
    int nd = hf__ints(c, "axial_pos_embds_dim", r->axial_dim, HF_MAX_AXES);
    if (!nd) {
        r->axial_dim[0] = 64;
        r->axial_dim[1] = 192;
        nd = 2;
    }
    if (!c->st && r->axial && nd != r->n_axes)
        c->st = ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                        "%s: \"axial_pos_embds_dim\" has %d entries for %d axes in "
                        "\"axial_pos_shape\"",
                        c->file, nd, r->n_axes);
    r->is_decoder = hf__bool(c, "is_decoder", 0);
    r->feed_forward_size = hf__int(c, "feed_forward_size", 512);
    r->tie_word_embeddings = hf__bool(c, "tie_word_embeddings", 0);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(c->root, "hash_seed");
    if (hs && !cJSON_IsNull(hs)) {
        if (!hf__is_int(hs, 9007199254740992.0) || hs->valuedouble < 0) {
            if (!c->st)
                c->st =
                    ls_fail(c->err, c->errlen, LS_ERR_CONFIG,
                            "%s: \"hash_seed\" must be null or a non-negative integer", c->file);
        } else {
            r->has_hash_seed = 1;
            r->hash_seed = (long long)hs->valuedouble;
        }
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
    int is_rf = strcmp(out->model_type, "reformer") == 0;
    out->vocab_size = hf__int(&c, "vocab_size", is_rf ? 320 : is_lf || is_bert ? 30522 : 50265);
    out->hidden_size = hf__int(&c, "hidden_size", is_rf ? 256 : 768);
    out->num_hidden_layers = hf__int(&c, "num_hidden_layers", 12);
    out->num_attention_heads = hf__int(&c, "num_attention_heads", 12);
    out->intermediate_size = hf__int(&c, "intermediate_size", 3072);
    hf__str(&c, "hidden_act", is_rf ? "relu" : "gelu", out->hidden_act, sizeof out->hidden_act);
    out->max_position_embeddings = hf__int(&c, "max_position_embeddings", is_rf ? 4096 : 512);
    out->type_vocab_size = hf__int(&c, "type_vocab_size", 2);
    out->layer_norm_eps = hf__num(&c, "layer_norm_eps", 1e-12);
    out->pad_token_id = hf__int(&c, "pad_token_id", is_bert || is_rf ? 0 : 1);
    out->bos_token_id = hf__int(&c, "bos_token_id", 0);
    out->eos_token_id = hf__int(&c, "eos_token_id", 2);
    out->sep_token_id = hf__int(&c, "sep_token_id", 2);
    hf__str(&c, "position_embedding_type", "absolute", out->position_embedding_type,
            sizeof out->position_embedding_type);
    hf__windows(&c, out);
    if (is_rf) hf__reformer(&c, out);
    if (!c.st) hf__labels(&c, out);
    cJSON_Delete(root);
    if (c.st) hf_config_free(out);
    return c.st;
}
