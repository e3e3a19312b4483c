/* Prometheus metrics, owned by the loop thread (no locks): every series is registered
 * at start so /metrics is complete before the first request (the per-model ones too,
 * labelled model="NAME", while the models load). Names follow the Prometheus
 * conventions: base units (_seconds, _bytes) or what is counted (_tokens, _requests),
 * counters end in _total; process_* are the standard process metrics. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

// clang-format off
/* Why a request was refused or dropped (longserve_rejected_requests_total{reason}). */
#define METRICS_REJECT_LIST(X)                                                             \
    X(METRICS_REJ_UNAUTHORIZED, "unauthorized")                                            \
    X(METRICS_REJ_PAYLOAD, "payload_too_large")                                            \
    X(METRICS_REJ_QUEUE_FULL, "queue_full")                                                \
    X(METRICS_REJ_INVALID, "invalid_request")                                              \
    X(METRICS_REJ_NOT_READY, "not_ready")                                                  \
    X(METRICS_REJ_DEADLINE, "deadline")                                                    \
    X(METRICS_REJ_DISCONNECTED, "client_disconnected")
// clang-format on

typedef enum {
#define METRICS__ENUM(name, label) name,
    METRICS_REJECT_LIST(METRICS__ENUM)
#undef METRICS__ENUM
        METRICS_REJ_COUNT
} metrics_reason;

typedef struct metrics metrics;

/* routes: the route labels (the route table's names), models: the model names (the
 * `model` label of the per-model series, index = the `model` argument below), version and
 * backend: longserve_build_info's labels; all kept by pointer. */
metrics *metrics_new(const char *const *routes, int nroutes, const char *const *models, int nmodels,
                     const char *version, const char *backend);
void metrics_free(metrics *m);

/* route -1: no route took it (route "(none)": unknown paths, the HTTP parser's refusals) */
void metrics_request(metrics *m, int route, int http, double seconds);
void metrics_reject(metrics *m, metrics_reason why);
void metrics_tokenize_time(metrics *m, double seconds);
/* One request whose input was truncated. */
void metrics_truncated(metrics *m);
void metrics_set_inflight(metrics *m, double n);
void metrics_set_ready(metrics *m, int ready);

/* Per model (an index outside the models given to metrics_new is ignored). */
void metrics_queue_time(metrics *m, int model, double seconds);
void metrics_input_tokens(metrics *m, int model, double tokens);
void metrics_batch(metrics *m, int model, int requests, double tokens, double cost, double seconds);
/* Padding tokens over all tokens of one batch (0 .. 1). */
void metrics_batch_padding(metrics *m, int model, double ratio);
/* A batch's engine time over the time the calibrated cost model predicted for it. */
void metrics_batch_time_ratio(metrics *m, int model, double actual_over_predicted);
/* Adds per-op kernel seconds (eng_op_name order; entries past eng_op_count() ignored). */
void metrics_kernel_seconds(metrics *m, int model, const double *seconds, int n);
/* Generation: the first token's latency; at the end, tokens and the time after the first. */
void metrics_generation_first_token(metrics *m, int model, double seconds);
void metrics_generation_done(metrics *m, int model, int tokens, double seconds_after_first);
void metrics_generated_tokens(metrics *m, int model, int tokens);
void metrics_set_queue(metrics *m, int model, double depth, double cost);
void metrics_set_engine_busy(metrics *m, int model, int busy);

/* The text exposition format (version 0.0.4), malloc'd; NULL when out of memory. */
char *metrics_render(const metrics *m, size_t *len);

#endif
