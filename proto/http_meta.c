/* Metadata encoders for the HTTP server's GET routes (cJSON: the bodies are small). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http_meta.h"

/* Prints and frees root; NULL if building failed anywhere (ok == 0) or out of memory. */
static char *hm__finish(cJSON *root, int ok, size_t *len)
{
    char *s = root && ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (s && len) *len = strlen(s);
    return s;
}

char *hm_v2_server(const char *name, const char *version, size_t *len)
{
    static const char *const ext[] = {"binary_tensor_data", "model_configuration", "statistics"};
    cJSON *r = cJSON_CreateObject();
    cJSON *e = r ? cJSON_AddArrayToObject(r, "extensions") : NULL;
    int ok = e && cJSON_AddStringToObject(r, "name", name) &&
             cJSON_AddStringToObject(r, "version", version);
    for (size_t i = 0; ok && i < sizeof ext / sizeof ext[0]; i++)
        ok = cJSON_AddItemToArray(e, cJSON_CreateString(ext[i]));
    return hm__finish(r, ok, len);
}

static cJSON *hm__tensors(const hm_tensor *t, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            break;
        }
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        int ok = sh && cJSON_AddStringToObject(o, "name", t[i].name) &&
                 cJSON_AddStringToObject(o, "datatype", t[i].datatype);
        for (int d = 0; ok && d < t[i].ndim; d++)
            ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
        if (!ok) break;
        if (i == n - 1) return a;
    }
    if (a && n == 0) return a;
    cJSON_Delete(a);
    return NULL;
}

char *hm_v2_model(const hm_model *m, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *v = r ? cJSON_AddArrayToObject(r, "versions") : NULL;
    int ok = v && cJSON_AddStringToObject(r, "name", m->name) &&
             cJSON_AddItemToArray(v, cJSON_CreateString(HM_MODEL_VERSION)) &&
             cJSON_AddStringToObject(r, "platform", "longserve") &&
             cJSON_AddItemToObject(r, "inputs", hm__tensors(m->inputs, m->ninputs)) &&
             cJSON_AddItemToObject(r, "outputs", hm__tensors(m->outputs, m->noutputs));
    if (ok) {
        cJSON *p = cJSON_AddObjectToObject(r, "parameters");
        ok = p && cJSON_AddStringToObject(p, "model_type", m->model_type) &&
             cJSON_AddStringToObject(p, "architecture", m->architecture) &&
             cJSON_AddStringToObject(p, "task", m->task) &&
             cJSON_AddNumberToObject(p, "max_input_tokens", m->max_input_tokens) &&
             cJSON_AddNumberToObject(p, "window", m->window);
    }
    return hm__finish(r, ok, len);
}

/* Triton's config tensors: {"name", "data_type": "TYPE_<datatype>", "dims"}. */
static cJSON *hm__config_tensors(const hm_tensor *t, int n)
{
    cJSON *a = cJSON_CreateArray();
    int ok = a != NULL;
    for (int i = 0; ok && i < n; i++) {
        char dt[32];
        snprintf(dt, sizeof dt, "TYPE_%s", t[i].datatype);
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(a, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        cJSON *d = NULL;
        ok = cJSON_AddStringToObject(o, "name", t[i].name) &&
             cJSON_AddStringToObject(o, "data_type", dt) && (d = cJSON_AddArrayToObject(o, "dims"));
        for (int k = 0; ok && k < t[i].ndim; k++)
            ok = cJSON_AddItemToArray(d, cJSON_CreateNumber((double)t[i].shape[k]));
    }
    if (ok) return a;
    cJSON_Delete(a);
    return NULL;
}

char *hm_v2_config(const hm_model *m, long long max_queue_delay_us, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    int ok = r && cJSON_AddStringToObject(r, "name", m->name) &&
             cJSON_AddStringToObject(r, "platform", "longserve") &&
             cJSON_AddStringToObject(r, "backend", "longserve") &&
             cJSON_AddNumberToObject(r, "max_batch_size", 0) &&
             cJSON_AddItemToObject(r, "input", hm__config_tensors(m->inputs, m->ninputs)) &&
             cJSON_AddItemToObject(r, "output", hm__config_tensors(m->outputs, m->noutputs));
    cJSON *vp = ok ? cJSON_AddObjectToObject(r, "version_policy") : NULL;
    cJSON *latest = vp ? cJSON_AddObjectToObject(vp, "latest") : NULL;
    ok = latest && cJSON_AddNumberToObject(latest, "num_versions", 1);
    cJSON *db = ok ? cJSON_AddObjectToObject(r, "dynamic_batching") : NULL;
    ok = db &&
         cJSON_AddNumberToObject(db, "max_queue_delay_microseconds", (double)max_queue_delay_us);
    return hm__finish(r, ok, len);
}

static int hm__duration(cJSON *o, const char *key, hm_duration d)
{
    cJSON *x = cJSON_AddObjectToObject(o, key);
    return x && cJSON_AddNumberToObject(x, "count", (double)d.count) &&
           cJSON_AddNumberToObject(x, "ns", (double)d.ns);
}

char *hm_v2_stats(const hm_model_stats *s, int n, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *a = r ? cJSON_AddArrayToObject(r, "model_stats") : NULL;
    int ok = a != NULL;
    for (int i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(a, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok = cJSON_AddStringToObject(o, "name", s[i].name) &&
             cJSON_AddStringToObject(o, "version", HM_MODEL_VERSION) &&
             cJSON_AddNumberToObject(o, "last_inference", (double)s[i].last_inference) &&
             cJSON_AddNumberToObject(o, "inference_count", (double)s[i].inference_count) &&
             cJSON_AddNumberToObject(o, "execution_count", (double)s[i].execution_count);
        cJSON *is = ok ? cJSON_AddObjectToObject(o, "inference_stats") : NULL;
        ok = is && hm__duration(is, "success", s[i].success) &&
             hm__duration(is, "fail", s[i].fail) && hm__duration(is, "queue", s[i].queue) &&
             hm__duration(is, "compute_input", s[i].compute_input) &&
             hm__duration(is, "compute_infer", s[i].compute_infer) &&
             hm__duration(is, "compute_output", s[i].compute_output) &&
             cJSON_AddArrayToObject(o, "batch_stats");
    }
    return hm__finish(r, ok, len);
}

char *hm_v2_repository_index(const hm_model *ms, int n, size_t *len)
{
    cJSON *a = cJSON_CreateArray();
    int ok = a != NULL;
    for (int i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(a, o) && cJSON_AddStringToObject(o, "name", ms[i].name) &&
             cJSON_AddStringToObject(o, "version", HM_MODEL_VERSION) &&
             cJSON_AddStringToObject(o, "state", ms[i].ready ? "READY" : "UNAVAILABLE");
        if (!o) break;
    }
    return hm__finish(a, ok, len);
}

char *hm_v2_model_ready(const char *name, int ready, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    int ok =
        r && cJSON_AddStringToObject(r, "name", name) && cJSON_AddBoolToObject(r, "ready", ready);
    return hm__finish(r, ok, len);
}

char *hm_v2_health(int live, int ready, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    int ok =
        r && cJSON_AddBoolToObject(r, "live", live) && cJSON_AddBoolToObject(r, "ready", ready);
    return hm__finish(r, ok, len);
}

char *hm_status(const char *status, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    int ok = r && cJSON_AddStringToObject(r, "status", status);
    return hm__finish(r, ok, len);
}

static int hm__openai_model(cJSON *o, const char *id, long long created)
{
    return o && cJSON_AddStringToObject(o, "id", id) &&
           cJSON_AddStringToObject(o, "object", "model") &&
           cJSON_AddNumberToObject(o, "created", (double)created) &&
           cJSON_AddStringToObject(o, "owned_by", "longserve");
}

char *hm_openai_models(const hm_model *ms, int n, long long created, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *d = r ? cJSON_AddArrayToObject(r, "data") : NULL;
    int ok = d && cJSON_AddStringToObject(r, "object", "list");
    for (int i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(d, o) && hm__openai_model(o, ms[i].name, created);
        if (!o) break;
    }
    return hm__finish(r, ok, len);
}

char *hm_openai_model(const char *id, long long created, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    return hm__finish(r, hm__openai_model(r, id, created), len);
}

static int hm__model_info(cJSON *o, const hm_model *m)
{
    int ok = cJSON_AddStringToObject(o, "model_id", m->name) &&
             cJSON_AddStringToObject(o, "model_type", m->model_type) &&
             cJSON_AddStringToObject(o, "architecture", m->architecture) &&
             cJSON_AddStringToObject(o, "task", m->task) &&
             cJSON_AddBoolToObject(o, "ready", m->ready) &&
             cJSON_AddNumberToObject(o, "max_input_length", m->max_input_tokens) &&
             cJSON_AddNumberToObject(o, "hidden_size", m->hidden_size) &&
             cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size) &&
             cJSON_AddNumberToObject(o, "num_layers", m->num_layers) &&
             cJSON_AddNumberToObject(o, "window", m->window) &&
             cJSON_AddNumberToObject(o, "full_attention_tokens", m->full_attention_tokens) &&
             cJSON_AddStringToObject(o, "attention", m->attention ? m->attention : "") &&
             cJSON_AddNumberToObject(o, "num_labels", m->num_labels) &&
             cJSON_AddStringToObject(o, "backend", m->backend ? m->backend : "") &&
             cJSON_AddStringToObject(o, "isa", m->isa ? m->isa : "") &&
             cJSON_AddStringToObject(o, "dtype", m->dtype ? m->dtype : "float32");
    if (ok && m->hashing) ok = cJSON_AddStringToObject(o, "lsh_hashing", m->hashing) != NULL;
    if (ok && m->generation) ok = cJSON_AddStringToObject(o, "generation", m->generation) != NULL;
    if (ok && m->labels) {
        cJSON *l = cJSON_AddArrayToObject(o, "labels");
        for (int i = 0; ok && l && i < m->num_labels; i++)
            ok = cJSON_AddItemToArray(l, cJSON_CreateString(m->labels[i] ? m->labels[i] : ""));
        ok = ok && l;
    }
    return ok;
}

/* TEI's model_type: {"embedding": {"pooling"}}, {"classifier": {"id2label", "label2id"}}. */
static int hm__tei_model_type(cJSON *r, const hm_model *m)
{
    cJSON *t = cJSON_AddObjectToObject(r, "model_type");
    if (!t) return 0;
    if (strcmp(m->task, "feature-extraction") == 0 || strcmp(m->task, "fill-mask") == 0) {
        cJSON *e = cJSON_AddObjectToObject(t, "embedding");
        const int mlm = strcmp(m->task, "fill-mask") == 0;
        return e && cJSON_AddStringToObject(e, "pooling", mlm ? "splade" : m->pooling) != NULL;
    }
    cJSON *c = cJSON_AddObjectToObject(t, strcmp(m->task, "text-classification") == 0 ? "classifier"
                                                                                      : m->task);
    if (!c || strcmp(m->task, "text-classification") != 0) return c != NULL;
    cJSON *i2l = cJSON_AddObjectToObject(c, "id2label"),
          *l2i = cJSON_AddObjectToObject(c, "label2id");
    int ok = i2l && l2i;
    for (int k = 0; ok && k < m->num_labels; k++) {
        char id[16], name[24];
        snprintf(id, sizeof id, "%d", k);
        snprintf(name, sizeof name, "LABEL_%d", k);
        const char *label = m->labels && m->labels[k] ? m->labels[k] : name;
        ok = cJSON_AddStringToObject(i2l, id, label) && cJSON_AddNumberToObject(l2i, label, k);
    }
    return ok;
}

char *hm_info(const hm_field *fields, int nfields, const char *version, int tokenization_workers,
              const hm_model *ms, int n, size_t *len)
{
    cJSON *r = cJSON_CreateObject();
    int ok = r != NULL;
    if (ok && n > 0) /* what the linear layers compute in (--dtype), whatever the weights' */
        ok = cJSON_AddStringToObject(r, "model_id", ms[0].name) &&
             cJSON_AddNullToObject(r, "model_sha") &&
             cJSON_AddStringToObject(r, "model_dtype", ms[0].dtype ? ms[0].dtype : "float32") &&
             hm__tei_model_type(r, &ms[0]) &&
             cJSON_AddNumberToObject(r, "max_input_length", ms[0].max_input_tokens);
    ok = ok && cJSON_AddNumberToObject(r, "tokenization_workers", tokenization_workers) &&
         cJSON_AddNullToObject(r, "sha") && cJSON_AddNullToObject(r, "docker_label");
    for (int i = 0; ok && i < nfields; i++) {
        const hm_field *f = &fields[i];
        if (cJSON_GetObjectItemCaseSensitive(r, f->key)) continue; /* first one wins */
        switch (f->kind) {
        case HM_INT:
            ok = cJSON_AddNumberToObject(r, f->key, (double)f->i) != NULL;
            break;
        case HM_STR:
            ok = cJSON_AddStringToObject(r, f->key, f->s ? f->s : "") != NULL;
            break;
        case HM_BOOL:
            ok = cJSON_AddBoolToObject(r, f->key, f->i != 0) != NULL;
            break;
        case HM_NULL:
            ok = cJSON_AddNullToObject(r, f->key) != NULL;
            break;
        }
    }
    ok = ok && cJSON_AddStringToObject(r, "version", version);
    cJSON *arr = ok ? cJSON_AddArrayToObject(r, "models") : NULL;
    ok = ok && arr;
    for (int i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) && hm__model_info(o, &ms[i]);
    }
    return hm__finish(r, ok, len);
}
