/* Metadata bodies of the HTTP server: KServe v2 server/model metadata and readiness,
 * the OpenAI model list, liveness/readiness and the TEI-like /info. Plain C structs in,
 * malloc'd JSON out (NULL only when out of memory). Shapes: proto/openapi.yaml. */
#ifndef PR_HTTP_META_H
#define PR_HTTP_META_H

#include <stddef.h>

/* A tensor as v2 model metadata describes it; -1 is a variable dimension. */
typedef struct {
    const char *name;
    const char *datatype;
    int ndim;
    long long shape[3];
} hm_tensor;

typedef struct {
    const char *name;         /* the name requests use */
    const char *model_type;   /* longformer, bert, roberta */
    const char *architecture; /* as config.json names it */
    const char *task;         /* feature-extraction, fill-mask, text-classification, ... */
    int ready;
    int max_input_tokens, hidden_size, vocab_size, num_layers, window, num_labels;
    const char *const *labels; /* num_labels names, or NULL */
    const char *backend;       /* cpu, blas, ref, cuda */
    const char *isa;           /* what its matrix products run on ("avx2 (cpuid features)") */
    hm_tensor inputs[4], outputs[4];
    int ninputs, noutputs;
    /* Reformer: how LSH draws its rotations, and what generation computes (NULL: none) */
    const char *hashing, *generation;
} hm_model;

/* A configuration value for /info: exactly one of the value fields is used. */
typedef enum { HM_INT, HM_STR, HM_BOOL, HM_NULL } hm_kind;
typedef struct {
    const char *key;
    hm_kind kind;
    long long i;
    const char *s;
} hm_field;

char *hm_v2_server(const char *name, const char *version, size_t *len);
char *hm_v2_model(const hm_model *m, size_t *len);
char *hm_v2_model_ready(const char *name, int ready, size_t *len);
/* /v2/health/live and /v2/health/ready: {"live": live, "ready": ready}. The spec's
 * ready body reuses "live"; both keys are given so either reading works. */
char *hm_v2_health(int live, int ready, size_t *len);
/* /health and /ready: {"status": status} */
char *hm_status(const char *status, size_t *len);
/* /v1/models: {"object":"list","data":[{"id","object":"model","created","owned_by"}]} */
char *hm_openai_models(const hm_model *ms, int n, long long created, size_t *len);
/* /v1/models/{id}: {"id","object":"model","created","owned_by"} */
char *hm_openai_model(const char *id, long long created, size_t *len);
/* /info: the fields (configuration), then "version", then "models": [...]; the first
 * model's identity is also given at the top level as TEI does (model_id, max_input_length). */
char *hm_info(const hm_field *fields, int nfields, const char *version, const hm_model *ms, int n,
              size_t *len);

#endif
