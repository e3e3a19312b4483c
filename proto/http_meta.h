/* Metadata bodies of the HTTP server: KServe v2 server/model metadata and readiness,
 * the OpenAI model list, liveness/readiness and the TEI-like /info. Plain C structs in,
 * malloc'd JSON out (NULL only when out of memory). Shapes: proto/openapi.yaml. */
#ifndef PR_HTTP_META_H
#define PR_HTTP_META_H

#include <stddef.h>

/* The one version of every model: /v2/models/{m}/versions/{v}/... takes only this v. */
#define HM_MODEL_VERSION "1"

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
    const char *pooling;      /* an embedding model's pooling (cls, mean, max, mean_sqrt_len) */
    int ready;
    int max_input_tokens, hidden_size, vocab_size, num_layers, window, num_labels;
    /* sequences of at most full_attention_tokens attend fully (0: none), longer ones as
     * attention says (eng_model_info) */
    int full_attention_tokens;
    const char *attention;
    const char *const *labels; /* num_labels names, or NULL */
    const char *backend;       /* cpu, blas, ref, cuda */
    const char *isa;           /* what its matrix products run on ("avx2 (cpuid features)") */
    const char *dtype;         /* the linear layers' precision: float32, bfloat16 */
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

/* /v2: name, version and the protocol extensions served (binary_tensor_data, ...). */
char *hm_v2_server(const char *name, const char *version, size_t *len);
char *hm_v2_model(const hm_model *m, size_t *len);
char *hm_v2_model_ready(const char *name, int ready, size_t *len);
/* /v2/health/live and /v2/health/ready: {"live": live, "ready": ready}. The spec's
 * ready body reuses "live"; both keys are given so either reading works. */
char *hm_v2_health(int live, int ready, size_t *len);
/* /v2/models/{m}/config in Triton's model configuration shape: name, platform, backend,
 * max_batch_size 0 (inputs carry their batch dimension: dims are whole shapes),
 * input/output with data_type TYPE_INT64/TYPE_FP32 and dims, version_policy, and
 * dynamic_batching with the server's queue delay. */
char *hm_v2_config(const hm_model *m, long long max_queue_delay_us, size_t *len);

/* Triton's statistics extension: a count and summed nanoseconds. */
typedef struct {
    unsigned long long count, ns;
} hm_duration;

typedef struct {
    const char *name;
    unsigned long long last_inference; /* ms since the epoch, 0: none yet */
    unsigned long long inference_count, execution_count;
    hm_duration success, fail, queue, compute_input, compute_infer, compute_output;
} hm_model_stats;

/* /v2/models/stats and /v2/models/{m}/stats: {"model_stats": [{"name", "version",
 * "last_inference", "inference_count", "execution_count", "inference_stats": {"success",
 * "fail", "queue", "compute_input", "compute_infer", "compute_output": {"count","ns"}},
 * "batch_stats": []}]} */
char *hm_v2_stats(const hm_model_stats *s, int n, size_t *len);

/* POST /v2/repository/index: [{"name", "version", "state"}] (state READY or UNAVAILABLE). */
char *hm_v2_repository_index(const hm_model *ms, int n, size_t *len);

/* /health and /ready: {"status": status} */
char *hm_status(const char *status, size_t *len);
/* /v1/models: {"object":"list","data":[{"id","object":"model","created","owned_by"}]} */
char *hm_openai_models(const hm_model *ms, int n, long long created, size_t *len);
/* /v1/models/{id}: {"id","object":"model","created","owned_by"} */
char *hm_openai_model(const char *id, long long created, size_t *len);
/* /info: the first model's identity at the top level in TEI's fields (model_id, model_sha
 * null, model_dtype, model_type as TEI's object: {"embedding": {"pooling"}} for an embedding
 * model ("splade" for a masked-LM one, what /embed_sparse serves), {"classifier": {"id2label",
 * "label2id"}} for a sequence classifier, {"<task>": {}} for the others; max_input_length),
 * tokenization_workers, sha and docker_label null, then the fields (configuration), "version"
 * and "models": [...] (each with our model_type string: longformer, bert, ...). */
char *hm_info(const hm_field *fields, int nfields, const char *version, int tokenization_workers,
              const hm_model *ms, int n, size_t *len);

#endif
