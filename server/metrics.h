/* Prometheus metrics, owned by the loop thread (no locks): every series is registered
 * at start so /metrics is complete before the first request. Names follow the
 * Prometheus conventions: base units (_seconds), counters end in _total. */
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

/* routes: the route labels (the route table's names), kept by pointer. */
metrics *metrics_new(const char *const *routes, int nroutes);
void metrics_free(metrics *m);

void metrics_request(metrics *m, int route, int http, double seconds);
void metrics_reject(metrics *m, metrics_reason why);
void metrics_queue_time(metrics *m, double seconds);
void metrics_tokenize_time(metrics *m, double seconds);
void metrics_input_tokens(metrics *m, double tokens);
void metrics_batch(metrics *m, int requests, double tokens, double cost, double seconds);
/* Padding tokens over all tokens of one batch (0 .. 1). */
void metrics_batch_padding(metrics *m, double ratio);
/* Adds per-op kernel seconds (eng_op_name order; entries past eng_op_count() ignored). */
void metrics_kernel_seconds(metrics *m, const double *seconds, int n);
/* One request whose input was truncated. */
void metrics_truncated(metrics *m);
/* Generation: the first token's latency; at the end, tokens and the time after the first. */
void metrics_generation_first_token(metrics *m, double seconds);
void metrics_generation_done(metrics *m, int tokens, double seconds_after_first);
void metrics_generated_tokens(metrics *m, int tokens);
void metrics_set_queue(metrics *m, double depth, double cost);
void metrics_set_inflight(metrics *m, double n);
void metrics_set_engine_busy(metrics *m, double n);
void metrics_set_ready(metrics *m, int ready);

/* The text exposition format (version 0.0.4), malloc'd; NULL when out of memory. */
/* A batch's engine time over the time the calibrated cost model predicted for it. */
void metrics_batch_time_ratio(metrics *m, double actual_over_predicted);

char *metrics_render(const metrics *m, size_t *len);

#endif
